// Client defaults, and why they differ from bob's (docs/bob-protocol.md §7, §8).
import { MAX_COUNT } from '../spoke/public.js';

/**
 * bob's default relay is osau.re; ours is the local host, so that nothing
 * ever reaches an outside address unless the user names it with -r.
 */
export const DEFAULT_RELAY_HOST = '127.0.0.1';
export const DEFAULT_HANDSHAKE_PORT = 9000;
export const DEFAULT_SECURE_PORT = 9001;

/**
 * PBKDF2 count our senders advertise: bob's 16 (§4.1). The count buys no
 * protection here: SPAKE2 gives an eavesdropper nothing to test passwords
 * against offline, an active attacker one guess per exchange whatever the
 * count, and the derived secret never leaves memory. It only costs CPU, and
 * mostly the receivers': each runs one PBKDF2 per sender the relay shows it
 * (§4.6), so at the seed's scale (every receiver sees every sender) 20 000,
 * our old default, made receivers pay 1250 times bob's work.
 */
export const DEFAULT_PBKDF2_COUNT = 16;

/** Giving up on connect() when the relay does not answer. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** A running transfer with no byte moving for this long is abandoned. */
export const TRANSFER_IDLE_TIMEOUT_MS = 60_000;

/** Receivers (handshake states) one sender keeps at once; more 07s are ignored (bob keeps all). */
export const MAX_PENDING_PEERS = 4096;

/**
 * Advertised senders a receiver keeps waiting for their PBKDF2 (run one at
 * a time, in slices); senders advertised while the queue is full are
 * ignored and counted (bob tries every one at once, with any count). Four
 * times the seed's 256 pairs, where a receiver may be shown every sender.
 */
export const MAX_QUEUED_SENDERS = 1024;

/**
 * The PBKDF2 work those queued senders may add up to, in units of count:
 * 16 senders at MAX_COUNT (≈ 1.6 s of CPU at ≈ 5.1 µs per unit), or every
 * one of MAX_QUEUED_SENDERS at bob's 16. A burst of fake senders at the cap
 * thus costs a receiver at most ≈ 1.6 s before the excess is ignored.
 */
export const MAX_QUEUED_PBKDF2_WORK = 16 * MAX_COUNT;
