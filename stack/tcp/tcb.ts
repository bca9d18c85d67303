// The transmission control block (RFC 9293 3.3.1): everything one connection
// knows. It is plain data; the functions that move it through the state
// machine live in input.ts, output.ts and timers.ts.
//
// Lifetime (docs/architecture.md section 5): a Tcb owns its arena chunks (send, receive,
// reassembly) and its timers (entries keyed by its timerId in the stack's one
// TimerQueue). Tcp.release() frees all of them and removes the Tcb from every
// table; after that nothing in the stack refers to it.

import { OwnerKind, ownerTag, type HotPath } from '../hotpath/engine.js';
import { ChunkQueue, Reassembly } from './buffers.js';
import type { SackScoreboard } from './sack-scoreboard.js';
import { State } from './state.js';
import type { Connection } from './connection.js';
import type { Listener } from './listener.js';

/** Bits of Tcb.events: what the application should hear about after the
 *  current segment or timer has been fully processed. */
export const enum TcbEvent {
  Established = 1, // the handshake completed
  Data = 2, // bytes were added to the receive queue
  Eof = 4, // the peer's FIN arrived (after all its data)
  Writable = 8, // send-buffer space was freed
}

export class Tcb {
  /** Its timers' owner id in the stack's TimerQueue (one of TCP's range). */
  readonly timerId: number;
  state: State = State.Closed;
  /** True once release() ran: every later call on it is a no-op. */
  released = false;

  // ---- Identity ---------------------------------------------------------
  /** Owner id of this connection's arena chunks (24 bits, unique among live Tcbs). */
  readonly id: number;
  readonly localAddr: number;
  readonly localPort: number;
  readonly remoteAddr: number;
  readonly remotePort: number;
  /** remoteAddr * 65536 + remotePort: the key within the local port's table. */
  readonly remoteKey: number;
  /** Monotonic time of creation (oldest-first choices under pressure). */
  readonly createdAt: number;
  /** Opened by connect() (true) or by a SYN to a listener (false). */
  readonly active: boolean;
  /** The listener that accepted the SYN, until the application takes the connection. */
  listener: Listener | null = null;
  /** The application's object (created at connect() or when the handshake completes). */
  conn: Connection | null = null;

  // ---- Send sequence space (RFC 9293 3.3.1) --------------------------------
  iss = 0;
  sndUna = 0;
  sndNxt = 0;
  /** Highest sequence number sent + 1 (SND.NXT before a go-back-N rewind). */
  sndMax = 0;
  /** Peer's window in bytes (already scaled). */
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  /** Largest window the peer has offered (RFC 5961 5.2 MAX.SND.WND). */
  maxSndWnd = 0;
  /** Largest payload we put in one segment: min(peer's MSS, our MTU - 40). */
  sndMss = 536;
  /** Unacknowledged and unsent application bytes; byte 0 is at SND.UNA (after the SYN). */
  readonly sendBuf: ChunkQueue;
  /** The application will write no more: a FIN follows the queued data. */
  finQueued = false;
  /** Our FIN has been acknowledged. */
  finAcked = false;

  // ---- Receive sequence space ----------------------------------------------
  irs = 0;
  rcvNxt = 0;
  /** Right edge of the window we last advertised (RCV.NXT + RCV.WND then); never moves left. */
  rcvAdvRight = 0;
  /** Largest payload we announced we accept (our MSS option). */
  rcvMss = 536;
  /** In-order bytes waiting for the application. */
  readonly recvBuf: ChunkQueue;
  readonly reassembly: Reassembly;
  /** The peer's FIN has been received (and acknowledged). */
  finReceived = false;
  /** The application closed its read side: incoming data is acknowledged and discarded. */
  readClosed = false;

  // ---- Negotiated options (RFC 7323 window scale, RFC 2018 SACK; place for timestamps) ---
  /** Shift of the peer's window fields (0 unless both SYNs carried the option). */
  sndShift = 0;
  /** Shift of our window fields (0 unless both SYNs carried the option). */
  rcvShift = 0;
  /** The shift our SYN offers, or NO_WSCALE (0xff) to send none: set when the
   *  control block is made, withdrawn if the peer's SYN carries no option. */
  wscaleOffer = 0xff;
  /** Our SYN offers SACK-permitted: set when the control block is made,
   *  withdrawn if the peer's SYN does not carry it. */
  sackOffer = false;
  /** First sequence number of the most recent out-of-order segment held:
   *  the block containing it is reported first (RFC 2018 section 4). */
  sackLatest = 0;
  /** What the peer SACKed above SND.UNA; made on the first block it sends. */
  sackBoard: SackScoreboard | null = null;
  /** End of the highest segment retransmitted in this fast recovery: holes
   *  below it were resent already. */
  sackRetxHigh = 0;
  sackOk = false;
  timestamps = false;

  // ---- RFC 6298 retransmission timer ---------------------------------------
  srtt8 = 0;
  rttvar4 = 0;
  rto: number;
  /** Consecutive retransmissions of the same data (reset when new data is acked). */
  retries = 0;
  /** Karn's rule: the segment being timed ends at rttSeq; rttTiming false = none. */
  rttTiming = false;
  rttSeq = 0;
  rttStart = 0;

  // ---- RFC 5681 / 6582 congestion control ------------------------------------
  cwnd = 0;
  ssthresh = 0x7fffffff;
  dupAcks = 0;
  inRecovery = false;
  /** NewReno "recover": SND.MAX when loss was last detected. */
  recover = 0;

  // ---- Acknowledgement and sending policy -------------------------------------
  /** Bytes received since we last sent an ACK (delayed ACK, RFC 9293 3.8.6.3). */
  unackedBytes = 0;
  /** An ACK must go out at the end of this event. */
  ackNow = false;
  /** When we last answered an unacceptable pure ACK (rate limit, input.ts). */
  lastOowAck = -Infinity;
  noDelay: boolean;
  /** Zero-window probes sent without an answer, and the probe backoff exponent. */
  persistProbes = 0;
  persistBackoff = 0;

  // ---- Keepalive (RFC 9293 3.8.4) --------------------------------------------
  keepalive: boolean;
  keepaliveProbes = 0;
  /** Monotonic time of the last segment received from the peer. */
  lastHeard: number;

  /** TcbEvent bits pending for the application. */
  events = 0;
  /** A segment for this connection is being processed (its output follows). */
  inInput = false;

  constructor(
    hot: HotPath,
    init: {
      id: number;
      timerId: number;
      localAddr: number;
      localPort: number;
      remoteAddr: number;
      remotePort: number;
      now: number;
      active: boolean;
      rto: number;
      noDelay: boolean;
      keepalive: boolean;
    },
  ) {
    this.id = init.id;
    this.timerId = init.timerId;
    this.localAddr = init.localAddr;
    this.localPort = init.localPort;
    this.remoteAddr = init.remoteAddr;
    this.remotePort = init.remotePort;
    this.remoteKey = remoteKeyOf(init.remoteAddr, init.remotePort);
    this.createdAt = init.now;
    this.lastHeard = init.now;
    this.active = init.active;
    this.rto = init.rto;
    this.noDelay = init.noDelay;
    this.keepalive = init.keepalive;
    this.sendBuf = new ChunkQueue(hot, ownerTag(OwnerKind.TcpSend, init.id));
    this.recvBuf = new ChunkQueue(hot, ownerTag(OwnerKind.TcpRecv, init.id));
    this.reassembly = new Reassembly(hot, ownerTag(OwnerKind.TcpReassembly, init.id));
  }
}

/** Key of a remote endpoint inside one local port's table: exact in 48 bits,
 *  so a plain number (no string, no allocation) indexes the Map. */
export function remoteKeyOf(remoteAddr: number, remotePort: number): number {
  return (remoteAddr >>> 0) * 65536 + remotePort;
}
