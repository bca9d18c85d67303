// Bounds of the relay. bob's relay has none but its -t timeout
// (docs/bob-protocol.md §7); every table, buffer and wait here has one, and every
// refusal it causes is answered at the protocol level or with a clean close,
// and counted (stats.ts).
//
// Fairness between source addresses (the IP of a socket's `ip:port`). A table
// that one address can fill is a table one address can lock, so registrations
// and rooms are shared by two rules:
// - a ceiling per source (maxPeersPerSource, maxRoomsPerSource), three
//   quarters of the table by default: high enough for the stress tool and
//   the seed's script, which run everything from one address (up to 512
//   clients at once, so 512 registrations and 256 rooms), and low enough that
//   a quarter of the table is always free for everyone else;
// - fair-share eviction when the table is full: a newcomer whose address
//   holds fewer slots than the largest holder takes the largest holder's
//   oldest one (a registration with no candidate first, then any; a room not
//   yet piping first, then any), answered as a full table would be (0f).
//   With nobody else contending, nothing is ever evicted.
// Behind a NAT all clients are one source: eviction never helps them, and the
// ceiling is three quarters of the table for all of them. (On user
// networking each host client keeps its own address: host/net/tcp-forward.ts.)

import { MAX_IDENTITY_BYTES, MIN_IDENTITY_BYTES } from '../handshake/packet.js';

export interface RelayLimits {
  /** bob's -t: seconds a 9000 connection may stay, from accept (§2.3). At
   *  expiry a registered peer gets `0f` and its candidates `09`. */
  handshakeTimeoutSec: number;
  /** Seconds a 9000 connection has to say Hello. bob has none: a silent
   *  connection stays forever. */
  helloTimeoutSec: number;
  /** Seconds a registered peer may stay unpaired: with no candidate (no peer
   *  of the other role it may pair with; all refused, failed or gone). At
   *  expiry it gets `0f` as at -t. A peer with a candidate is bounded by -t. */
  unpairedTimeoutSec: number;
  /** Seconds a piping room may see no byte either way; then both sockets
   *  are reset. bob has none: an idle pipe holds its room forever. */
  pipeIdleTimeoutSec: number;
  /** Seconds a room may pipe at all, from its `00`; then both are reset. */
  pipeLifetimeSec: number;
  /** Seconds a 9001 socket has to send a valid line and find its partner, and a
   *  room recorded at Accepted waits for its first socket (§3, §7). */
  pairingTimeoutSec: number;
  /** Seconds a socket the relay closed may take to flush and see the peer's FIN
   *  before it is reset. */
  lingerSec: number;
  /** Registered peers (senders + receivers); a Hello beyond it gets `0f`
   *  unless it may evict (fair share, above). */
  maxPeers: number;
  /** Registered peers from one source address; a Hello beyond it gets `0f`.
   *  At or above maxPeers: no ceiling but the table. */
  maxPeersPerSource: number;
  /** Rooms: pairs recorded at Accepted, waiting or piping. An Accepted beyond
   *  it gets `0f` on both sides unless it may evict (fair share, above). */
  maxRooms: number;
  /** Rooms one source address takes part in (a room counts once for each of
   *  its two addresses); an Accepted beyond it gets `0f` on both sides. */
  maxRoomsPerSource: number;
  /** Repeated Hellos a connection may send (§2.2: each re-sends the identity
   *  and every 04). bob peers never repeat; beyond it they are ignored. */
  maxHelloRepeats: number;
  /** When Relay.pressure(true) turns on, at most this fraction of the open
   *  9000 connections is shed, newest and least advanced first (relay.ts). */
  pressureShedFraction: number;
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
  // Five minutes to pass a password on and start the other side; -t stays
  // bob's hour for peers that have someone to pair with.
  unpairedTimeoutSec: 300,
  // Twice the 60 s stall after which our own clients give up: bytes flow
  // continuously in a live transfer, and TCP retransmits within seconds.
  pipeIdleTimeoutSec: 120,
  // Six hours: 50 GB at 2.5 MB/s. Bounds a room kept alive by a trickle.
  pipeLifetimeSec: 6 * 3600,
  pairingTimeoutSec: 30,
  lingerSec: 30,
  maxPeers: 1024,
  maxPeersPerSource: 768,
  maxRooms: 512,
  maxRoomsPerSource: 384,
  // bob never repeats its Hello; a few repeats keep §2.2's answer for a
  // client that does, and bound each connection's 04s to 4 × maxPeers.
  maxHelloRepeats: 3,
  // Half: frees memory at once, while the older half (more likely there
  // before the surge that caused the pressure) keeps its place.
  pressureShedFraction: 0.5,
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
  unpairedTimeoutSec: [0.001, 1e7],
  pipeIdleTimeoutSec: [0.001, 1e7],
  pipeLifetimeSec: [0.001, 1e7],
  pairingTimeoutSec: [0.001, 1e7],
  lingerSec: [0.001, 1e7],
  maxPeers: [1, 0xfffe],
  maxPeersPerSource: [1, 0xfffe],
  maxRooms: [1, 1e6],
  maxRoomsPerSource: [1, 1e6],
  maxHelloRepeats: [0, 1000],
  pressureShedFraction: [0, 1],
  maxHandshakeSockets: [1, 1e6],
  maxSecureSockets: [2, 1e6],
  maxUid: [1, 0xfffe],
  maxIdentityBytes: [MIN_IDENTITY_BYTES, MAX_IDENTITY_BYTES],
  maxLineBytes: [MIN_IDENTITY_BYTES, 4096],
  maxQueuedBytes: [1024, 1 << 30],
};

const INTEGRAL: readonly NumericLimit[] = [
  'maxPeers',
  'maxPeersPerSource',
  'maxRooms',
  'maxRoomsPerSource',
  'maxHelloRepeats',
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

/**
 * One `NAME=VALUE` of a command line (`bob relay --limit`), added to
 * `previous` and checked as resolveLimits checks it; throws RangeError.
 */
export function parseLimit(text: string, previous: Partial<RelayLimits> = {}): Partial<RelayLimits> {
  const eq = text.indexOf('=');
  const name = text.slice(0, eq) as keyof RelayLimits;
  if (eq <= 0 || !Object.hasOwn(RELAY_DEFAULTS, name)) {
    throw new RangeError(`expected NAME=VALUE with NAME one of ${Object.keys(RELAY_DEFAULTS).join(', ')}; got ${text}`);
  }
  const raw = text.slice(eq + 1).trim();
  let value: number | boolean;
  if (typeof RELAY_DEFAULTS[name] !== 'boolean') value = raw === '' ? Number.NaN : Number(raw);
  else if (raw === 'true' || raw === 'false') value = raw === 'true';
  else throw new RangeError(`relay limit ${name} must be true or false, got ${raw}`);
  const next = { ...previous, [name]: value };
  resolveLimits(next);
  return next;
}
