// What the relay reports about itself. Gauges (sockets, peers, rooms, timers,
// buffered bytes) return to zero once every connection has ended; counters are
// cumulative. Every refusal, timeout and error has its own counter, bumped on
// the path that decides it.

import type { HandshakeErrorKind } from '../handshake/decoder.js';

export class RelayCounters {
  // ---- 9000: connections and registrations
  handshakeAccepted = 0;
  handshakeSocketsFull = 0; // reset at accept: maxHandshakeSockets open (or the relay is closed)
  badIdentity = 0; // socket identity outside 5..maxIdentityBytes bytes: closed at accept
  sendersRegistered = 0;
  receiversRegistered = 0;
  helloRepeated = 0; // identity and 04s sent again (§2.2)
  peersFull = 0; // Hello refused with 0f: maxPeers registered, and its address holds as many as any
  peersPerSourceFull = 0; // Hello refused with 0f: its address holds maxPeersPerSource
  peersEvicted = 0; // 0f to the oldest registration of the largest holder, for a newcomer holding fewer
  helloRepeatsIgnored = 0; // Hello beyond maxHelloRepeats on one connection
  uidsExhausted = 0; // Hello refused with 0f: no free uid in 1..maxUid

  // ---- 9000: packets
  forwarded = 0; // 05, 06, 07, 08, 0d delivered to their destination
  paired = 0; // 0a: 0a and 0e sent, room recorded
  refusedPairs = 0; // 0b: candidacy dropped
  spokeFailures = 0; // 0d forwarded (candidacy dropped)
  relayFailures = 0; // 0c to the relay (logged only)
  ignored = 0; // §2.2 "ignored": wrong role, unregistered, relay-only types, uid ≠ 0 on Hello/0c
  unknownDestination = 0; // no live peer of the right role with that uid
  notCandidate = 0; // destination live but not a candidate of the source
  identityMismatch = 0; // 07 whose identity is not the receiver's own (§7)
  roomsFull = 0; // 0a refused (0f to both): maxRooms rooms, and its addresses hold as many as any
  roomsPerSourceFull = 0; // 0a refused (0f to both): one of its addresses is in maxRoomsPerSource rooms
  roomsEvicted = 0; // the oldest room of the largest holder, dropped for a newcomer holding fewer
  closedNotices = 0; // 09 sent to candidates of a vanished peer
  unsendable = 0; // a packet a bob peer could not parse (e.g. 07 identity < 5 bytes): not forwarded

  // ---- 9000: how connections ended
  helloTimeout = 0; // no Hello within helloTimeoutSec
  handshakeTimeout = 0; // registered, -t expired: 0f sent
  unpairedTimeout = 0; // registered with no candidate for unpairedTimeoutSec: 0f sent
  peerEof = 0; // FIN from the peer (at a packet boundary)
  peerReset = 0; // socket gone without our close
  parseError = 0; // see parseErrors
  slowReader = 0; // more than maxQueuedBytes queued for a peer that does not read
  parseErrors: Record<HandshakeErrorKind, number> = {
    Invalid_header: 0,
    Invalid_packet: 0,
    Invalid_new_server: 0,
    Invalid_uid: 0,
    Identity_too_long: 0,
    End_of_input: 0,
  };

  // ---- 9001
  secureAccepted = 0;
  secureSocketsFull = 0; // reset at accept: maxSecureSockets open (or the relay is closed)
  unknownLine = 0; // 02: no room for that line
  lineTooLong = 0; // 02: no `\n` within maxLineBytes
  duplicateLine = 0; // 02: a socket already waits with that line
  sourceMismatch = 0; // 02: line sent from another IP than its peer's (§7)
  lineEof = 0; // 02: EOF or reset before the line
  lineTimeout = 0; // 01: no valid line in time
  pairingTimeout = 0; // valid line, no partner in time: silent close
  waitingEof = 0; // a waiting socket went away: its room is dropped
  roomsExpired = 0; // a room recorded at Accepted saw no socket in time
  roomsReplaced = 0; // a new room reused a line of an unused one
  roomsPiped = 0; // both sides arrived: 00 sent, piping
  pipeEnded = 0; // EOF or reset on a pipe: ff ff ff ff to both, both closed
  pipeIdleTimeout = 0; // no byte either way for pipeIdleTimeoutSec: both reset
  pipeLifetimeExpired = 0; // piping for pipeLifetimeSec: both reset
  bytesPiped = 0;
  pipePauses = 0; // a reader paused because its partner's queue is full
  pipeResumes = 0;
  earlyBytesDropped = 0; // bytes sent before 00 (after the line), dropped like bob

  // ---- both ports
  lingerResets = 0; // a socket we closed did not finish within lingerSec
  shutdownCloses = 0; // sockets reset by Relay.close()

  // ---- memory pressure (Relay.pressure)
  pressureEpisodes = 0; // times pressure turned on
  pressureRefused = 0; // 9000 sockets reset at accept while pressure is on
  pressureShedUnregistered = 0; // sockets without a Hello, reset when pressure turned on
  pressureShedRegistered = 0; // registered peers, 0f and closed when pressure turned on
}

export type RelayCounterValues = Omit<RelayCounters, 'parseErrors'> & {
  parseErrors: Record<HandshakeErrorKind, number>;
};

export interface RelayStats {
  /** Sockets accepted and not yet reported closed by the adapter. */
  sockets: { handshake: number; secure: number };
  /** Open 9000 connections by role (unregistered: no Hello yet). */
  peers: { unregistered: number; senders: number; receivers: number };
  /** pending: recorded at Accepted, no socket yet; waiting: one socket; piping: two. */
  rooms: { pending: number; waiting: number; piping: number };
  /** Armed relay timers. */
  timers: number;
  /** Bytes the relay itself holds: partial packets and partial 9001 lines. */
  bufferedBytes: number;
  /** Source addresses holding registrations, and rooms (limits.ts, fairness). */
  sources: { peers: number; rooms: number };
  counters: RelayCounterValues;
  /** On our stack only (stack.ts): the arena chunks the sockets' send queues
   *  hold, their budget, and writes refused for want of room (each socket reset). */
  arenaQueues?: { chunks: number; limit: number; refused: number };
}

/** The gauges only, for "back to empty" comparisons. */
export type RelayLevels = Omit<RelayStats, 'counters'>;

export function relayLevels(s: RelayStats): RelayLevels {
  // arenaQueues belongs to the stack adapter: its chunks are the stack's own
  // app chunks, which the stack's levels already compare.
  const { counters: _counters, arenaQueues: _queues, ...levels } = s;
  return levels;
}

export const EMPTY_LEVELS: RelayLevels = Object.freeze({
  sockets: { handshake: 0, secure: 0 },
  peers: { unregistered: 0, senders: 0, receivers: 0 },
  rooms: { pending: 0, waiting: 0, piping: 0 },
  timers: 0,
  bufferedBytes: 0,
  sources: { peers: 0, rooms: 0 },
});

export function snapshotCounters(c: RelayCounters): RelayCounterValues {
  return { ...c, parseErrors: { ...c.parseErrors } };
}
