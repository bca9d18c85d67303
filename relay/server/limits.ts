// Bounds of the relay. bob's relay has none but its -t timeout
// (docs/bob-protocol.md §7); every table, buffer and wait here has one, and every
// refusal it causes is answered at the protocol level or with a clean close,
// and counted (stats.ts).

import { MAX_IDENTITY_BYTES, MIN_IDENTITY_BYTES } from '../handshake/packet.js';

export interface RelayLimits {
  /** bob's -t: seconds a 9000 connection may stay, from accept (§2.3). At
   *  expiry a registered peer gets `0f` and its candidates `09`. */
  handshakeTimeoutSec: number;
  /** Seconds a 9000 connection has to say Hello. bob has none: a silent
   *  connection stays forever. */
  helloTimeoutSec: number;
  /** Seconds a 9001 socket has to send a valid line and find its partner, and a
   *  room recorded at Accepted waits for its first socket (§3, §7). */
  pairingTimeoutSec: number;
  /** Seconds a socket the relay closed may take to flush and see the peer's FIN
   *  before it is reset. */
  lingerSec: number;
  /** Registered peers (senders + receivers); a Hello beyond it gets `0f`. */
  maxPeers: number;
  /** Rooms: pairs recorded at Accepted, waiting or piping. An Accepted beyond
   *  it gets `0f` on both sides. */
  maxRooms: number;
  /** Open sockets on 9000 (any state); beyond it a new one is reset at once. */
  maxHandshakeSockets: number;
  /** Open sockets on 9001 (any state); beyond it a new one is reset at once. */
  maxSecureSockets: number;
  /** Uids are allocated in 1..maxUid, skipping live ones (§7: never 0xffff). */
  maxUid: number;
  /** Longest identity in a packet, and longest socket identity (§7). */
  maxIdentityBytes: number;
  /** Longest 9001 line before its `\n` (§3: bob buffers 100 bytes). */
  maxLineBytes: number;
  /** Handshake bytes queued for a peer that does not read, beyond which it is
   *  reset. Above the largest legitimate burst: a 04 (≤ 109 bytes) per peer. */
  maxQueuedBytes: number;
  /** Drop 07s whose identity differs from the sender's own (§7). */
  checkClientIdentity: boolean;
  /** A 9001 socket must come from the IP of the peer it names the partner of. */
  checkRoomSource: boolean;
}

export const RELAY_DEFAULTS: Readonly<RelayLimits> = Object.freeze({
  handshakeTimeoutSec: 3600,
  helloTimeoutSec: 30,
  pairingTimeoutSec: 30,
  lingerSec: 30,
  maxPeers: 1024,
  maxRooms: 512,
  maxHandshakeSockets: 2048,
  maxSecureSockets: 1024,
  maxUid: 0xfffe,
  maxIdentityBytes: MAX_IDENTITY_BYTES,
  maxLineBytes: 100,
  maxQueuedBytes: 256 * 1024,
  checkClientIdentity: true,
  checkRoomSource: true,
});

type NumericLimit = { [K in keyof RelayLimits]: RelayLimits[K] extends number ? K : never }[keyof RelayLimits];

/** Inclusive ranges of the numeric limits. */
const RANGES: Record<NumericLimit, readonly [number, number]> = {
  handshakeTimeoutSec: [0.001, 1e7],
  helloTimeoutSec: [0.001, 1e7],
  pairingTimeoutSec: [0.001, 1e7],
  lingerSec: [0.001, 1e7],
  maxPeers: [1, 0xfffe],
  maxRooms: [1, 1e6],
  maxHandshakeSockets: [1, 1e6],
  maxSecureSockets: [2, 1e6],
  maxUid: [1, 0xfffe],
  maxIdentityBytes: [MIN_IDENTITY_BYTES, MAX_IDENTITY_BYTES],
  maxLineBytes: [MIN_IDENTITY_BYTES, 4096],
  maxQueuedBytes: [1024, 1 << 30],
};

const INTEGRAL: readonly NumericLimit[] = [
  'maxPeers',
  'maxRooms',
  'maxHandshakeSockets',
  'maxSecureSockets',
  'maxUid',
  'maxIdentityBytes',
  'maxLineBytes',
  'maxQueuedBytes',
];

/** Defaults overridden by `partial`, checked; throws RangeError on a bad value. */
export function resolveLimits(partial: Partial<RelayLimits> = {}): RelayLimits {
  const limits: RelayLimits = { ...RELAY_DEFAULTS };
  for (const [key, value] of Object.entries(partial) as [keyof RelayLimits, unknown][]) {
    if (value !== undefined) (limits as unknown as Record<string, unknown>)[key] = value;
  }
  for (const [name, [min, max]] of Object.entries(RANGES) as [NumericLimit, readonly [number, number]][]) {
    const value = limits[name];
    const integral = INTEGRAL.includes(name);
    if (typeof value !== 'number' || !(value >= min && value <= max) || (integral && !Number.isInteger(value))) {
      throw new RangeError(`relay limit ${name} must be ${integral ? 'an integer' : 'a number'} in ${min}..${max}, got ${String(value)}`);
    }
  }
  for (const name of ['checkClientIdentity', 'checkRoomSource'] as const) {
    if (typeof limits[name] !== 'boolean') throw new RangeError(`relay limit ${name} must be a boolean`);
  }
  return limits;
}
