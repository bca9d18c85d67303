// Client defaults, and why they differ from bob's (docs/bob-protocol.md §7, §8).

/**
 * bob's default relay is osau.re; ours is the local host, so that nothing
 * ever reaches an outside address unless the user names it with -r.
 */
export const DEFAULT_RELAY_HOST = '127.0.0.1';
export const DEFAULT_HANDSHAKE_PORT = 9000;
export const DEFAULT_SECURE_PORT = 9001;

/**
 * PBKDF2 count our senders advertise (bob sends 16, §7). spoke's PBKDF2
 * costs about 5.2 µs per iteration here (4 blocks of HMAC-SHA256), so 20 000
 * is ≈ 0.1 s: paid once by the sender before it connects and once by the
 * receiver when the sender is advertised, ≈ 0.2 s on the critical path of a
 * transfer, 1250 times bob's work for a password guesser. A receiver pays it
 * again for every other sender the relay advertises (§4.6), which is why the
 * stress tool and many-pair scripts use bob's 16 (BOB_PBKDF2_COUNT=16).
 */
export const DEFAULT_PBKDF2_COUNT = 20_000;

/** Giving up on connect() when the relay does not answer. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** A running transfer with no byte moving for this long is abandoned. */
export const TRANSFER_IDLE_TIMEOUT_MS = 60_000;

/** Receivers (handshake states) one sender keeps at once; more 07s are ignored (bob keeps all). */
export const MAX_PENDING_PEERS = 4096;
