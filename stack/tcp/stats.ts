// What TCP reports about itself (docs/architecture.md section 4: exact and cheap).
// Counters are plain number fields, bumped on the path that makes the decision;
// stats() copies them into a fresh object.

import type { StateName } from './state.js';

/** Why a connection ended, as `Connection.closed` reports it. */
export type CloseReason =
  | 'closed' // both sides closed (FIN handshake done, or TIME_WAIT entered)
  | 'reset' // the peer sent an acceptable RST
  | 'refused' // RST in answer to our SYN
  | 'timeout' // retransmission, SYN, connect, FIN_WAIT_2 or persist give-up
  | 'keepalive' // keepalive probes went unanswered
  | 'aborted' // the application called abort()
  | 'listenerClosed' // its listener closed before the application took it
  | 'pressure' // reset to relieve arena pressure
  | 'shutdown'; // the stack shut down

export interface CloseInfo {
  reason: CloseReason;
  /** Finer cause, e.g. 'syn', 'retransmit', 'connect', 'finWait2', 'persist'. */
  detail?: string;
}

/** Counters of every decision that drops, resets, retransmits or gives up. */
export class TcpCounters {
  segmentsIn = 0;
  segmentsOut = 0;
  bytesIn = 0; // payload bytes accepted in order
  bytesOut = 0; // payload bytes sent (retransmissions included)

  // Drops on input.
  dropNotForUs = 0; // destination is not our unicast address
  dropNoListener = 0; // closed port (answered with RST unless it was a RST)
  dropNotAcceptable = 0; // sequence check failed (RFC 9293 3.10.7.4 first)
  oowAcksRateLimited = 0; // no ACK sent for an unacceptable pure ACK (rate limit)
  dropNoAck = 0; // segment without ACK in a synchronized state
  dropAckUnsent = 0; // SEG.ACK > SND.NXT
  dropAckTooOld = 0; // SEG.ACK < SND.UNA - MAX.SND.WND (RFC 5961 5.2)
  dropBadSynSent = 0; // unacceptable ACK or stray segment in SYN_SENT
  dropOutOfWindowData = 0; // payload bytes beyond the window we advertised
  dropReassemblyFull = 0; // out-of-order segment not kept (cap or arena)
  dropRecvNoMemory = 0; // in-order payload bytes dropped: arena exhausted
  dropAfterReadClose = 0; // payload bytes discarded after the application closed
  dropSynBacklogFull = 0; // listen backlog full
  dropSynNoMemory = 0; // arena below its reserve
  dropSynConnLimit = 0; // maxConnections reached
  dropSynPressure = 0; // heap above its high-water mark (stack/admission.ts)

  // SYN cookies (syn-cookies.ts): the backlog was full.
  synCookiesSent = 0; // SYN-ACKs carrying a cookie, no state kept
  synCookiesAccepted = 0; // ACKs with a valid cookie: connection made
  synCookiesExpired = 0; // a cookie older than its lifetime (a late or replayed ACK)
  synCookiesInvalid = 0; // an ACK in LISTEN that is no cookie of ours (forged, or stray): reset
  synCookiesQueueFull = 0; // valid cookie, accept queue full: dropped, the peer retransmits
  dropSynData = 0; // payload carried by a SYN (not queued: no TCP Fast Open)

  // RSTs.
  rstSent = 0;
  rstSentClosedPort = 0;
  rstSentBadAck = 0; // unacceptable ACK in LISTEN, SYN_SENT or SYN_RECEIVED
  rstSentAbort = 0;
  rstReceived = 0; // acceptable RSTs that ended a connection
  rstIgnored = 0; // RSTs outside the window, in LISTEN, or unacceptable in SYN_SENT

  // RFC 5961.
  challengeAcks = 0;
  challengeAcksRateLimited = 0;
  challengeForRst = 0;
  challengeForSyn = 0;
  challengeForAck = 0;

  // Retransmission and congestion.
  retransmitTimeouts = 0;
  retransmittedSegments = 0;
  fastRetransmits = 0;
  partialAckRetransmits = 0;
  sackRetransmits = 0; // holes resent in fast recovery because the peer's SACK blocks showed them
  sackBlocksIgnored = 0; // SACK blocks outside (SND.UNA, SND.MAX]: D-SACK, stale or forged
  synRetransmits = 0;
  zeroWindowProbes = 0;
  keepaliveProbes = 0;
  delayedAcks = 0; // ACKs sent by the delayed-ACK timer
  windowUpdates = 0; // ACKs sent because the application opened the window
  sackAcksSent = 0; // segments that reported out-of-order blocks (RFC 2018)
  txNoSlot = 0; // a segment could not be built: no TX chunk (retried later)

  // Give-ups and other endings.
  giveUpRetransmit = 0;
  giveUpSyn = 0;
  giveUpConnectTimeout = 0;
  giveUpPersist = 0;
  giveUpKeepalive = 0;
  finWait2Timeouts = 0;
  timeWaitEntered = 0;
  timeWaitExpired = 0;
  timeWaitRecycled = 0; // oldest record dropped because the table was full
  timeWaitReacked = 0; // retransmitted FIN answered from a record
  timeWaitReused = 0; // new SYN accepted over a record
  embryonicDropped = 0; // SYN_RECEIVED returned to LISTEN (RST or SYN)
  pressureResets = 0; // embryonic connections reset under arena pressure
  reassemblyPrunes = 0; // out-of-order queues dropped whole under arena pressure
  reassemblyPrunedBytes = 0; // the bytes they held
  finHeld = 0; // FINs that came out of order right after held data, kept until it is in order
  finOutOfOrderDropped = 0; // FINs out of order with nothing held right before them (the peer resends)
  urgentInLine = 0; // segments with URG: their data delivered in line (RFC 6093)
  dsackSent = 0; // ACKs that reported a duplicate segment (RFC 2883 D-SACK)
  // ICMP errors about our segments (RFC 1122 4.2.3.9, RFC 5927)
  icmpHardErrors = 0; // protocol or port unreachable while connecting: the connect fails
  icmpSoftErrors = 0; // every other one, and hard ones once synchronized: noted, nothing aborted
  icmpFragNeeded = 0; // among the soft ones: fragmentation needed (path MTU discovery is not built)
  icmpNoConnection = 0; // about no connection we have
  icmpBadSequence = 0; // quoting a sequence number outside SND.UNA..SND.MAX: ignored
  ephemeralExhausted = 0;
  connectRefusedPressure = 0; // connect() refused: heap above its high-water mark

  // The engine's fast path (stack/hotpath/engine.ts tcpInput, tcpSendBurst).
  fastPathSegments = 0; // segments the engine processed whole, in one call
  burstSegments = 0; // data segments built by the engine's burst call

  // Connections.
  activeOpens = 0;
  passiveOpens = 0;
  established = 0;
  closedBy: Record<string, number> = {};
}

export interface BacklogStats {
  port: number;
  limit: number;
  synReceived: number;
  acceptQueue: number;
}

export interface TcpStats {
  /** Live control blocks (every state but TIME_WAIT, which is compact). */
  connections: number;
  byState: Record<StateName, number>;
  listeners: number;
  backlog: BacklogStats[];
  /** Compact TIME_WAIT records. */
  timeWait: number;
  /** Armed TCP timers by kind name. */
  timers: Record<string, number>;
  /** Arena chunks held by TCP, by purpose. */
  chunks: { send: number; recv: number; reassembly: number };
  counters: Omit<TcpCounters, 'closedBy'> & {
    closedBy: Record<string, number>;
    /** Segments the engine's fast path left to the TypeScript path, by reason
     *  (layout.ts Slow, SLOW_NAMES; segments for no connection count here too).
     *  With counters.fastPathSegments they add up to counters.segmentsIn, but
     *  for reassembled fragments and segments to another address (which the
     *  engine sees as notTcp or notLocal before IPv4 decides about them). */
    slowPath: Record<string, number>;
  };
}
