// The transmission control block (RFC 9293 3.3.1): everything one connection
// knows, as a record in the arena (layout.ts T; the table is tcb-table.ts).
// The functions that move it through the state machine live in input.ts,
// output.ts and timers.ts; they work on it through a Tcb: an accessor with a
// property per field, pointed at one record at a time. A Tcb is not the
// connection: TCP keeps a few of them and points one at a record for the
// length of one event (a segment, a timer, an application call), so no JS
// object exists per connection. Nothing may keep a Tcb past the event it was
// handed for; what must outlive it keeps the record's handle (tcb-table.ts).
//
// Lifetime (docs/architecture.md section 5): a record owns its arena chunks
// (send, receive, out-of-order) and its timers (keyed by timerId in the
// stack's one TimerQueue). Tcp.release() frees all of them, moves the
// record's generation on (every handle to it goes stale at once, even while
// the release is still running) and gives the record back to the table.

import { OwnerKind, ownerTag, type HotPath } from '../hotpath/engine.js';
import { T, TE, TF, X } from '../hotpath/layout.js';
import { ChunkQueue, type OooHost, Reassembly } from './buffers.js';
import type { ChunkLinks } from './chunk-links.js';
import type { Connection } from './connection.js';
import type { Listener } from './listener.js';
import { SackScoreboard } from './sack-scoreboard.js';
import type { State } from './state.js';
import { handleFor, type TcbTable } from './tcb-table.js';

/** Bits of Tcb.events: what the application should hear about after the
 *  current segment or timer has been fully processed. */
export const enum TcbEvent {
  Established = TE.ESTABLISHED, // the handshake completed
  Data = TE.DATA, // bytes were added to the receive queue
  Eof = TE.EOF, // the peer's FIN arrived (after all its data)
  Writable = TE.WRITABLE, // send-buffer space was freed
}

/** What a Tcb needs from the TCP instance its records belong to. */
export interface TcbHome {
  readonly table: TcbTable;
  /** Timer owner id of record 0 (record i's is timerBase + i). */
  readonly timerBase: number;
  listenerById(id: number): Listener | null;
  connOf(index: number): Connection | null;
  setConn(index: number, conn: Connection | null): void;
  /** Record `index` took an out-of-order chunk at word `b` / gave it back. */
  oooTaken(index: number, b: number): void;
  oooGiven(index: number, b: number): void;
}

export class Tcb implements OooHost {
  /** The record this accessor points at (-1: none). */
  index = -1;
  private r = 0;
  private gen = 0;
  private readonly w: Uint32Array;
  private readonly f: Float64Array;
  readonly sendBuf: ChunkQueue;
  readonly recvBuf: ChunkQueue;
  readonly reassembly: Reassembly;
  readonly sackBoard: SackScoreboard;

  constructor(
    private readonly home: TcbHome,
    private readonly hot: HotPath,
    links: ChunkLinks,
    /** Its place in TCP's pool of accessors. */
    readonly slot: number,
  ) {
    this.w = home.table.w;
    this.f = new Float64Array(this.w.buffer, 0, this.w.length >>> 1);
    this.sendBuf = new ChunkQueue(links, 0, this.w, 0, true);
    this.recvBuf = new ChunkQueue(links, 0, this.w, 0, false);
    this.reassembly = new Reassembly(links, 0);
    this.sackBoard = new SackScoreboard(this.w);
  }

  /** Point this accessor at record `index`; returns it. */
  point(index: number): this {
    const r = this.home.table.at(index);
    // Already there (the next event of the same connection): nothing to rebind.
    if (index === this.index && this.w[r + T.GEN] === this.gen) return this;
    this.index = index;
    this.r = r;
    this.gen = this.w[r + T.GEN]!;
    const id = index + 1;
    this.sendBuf.rebind(ownerTag(OwnerKind.TcpSend, id), this.w, r + T.SEND_HEAD);
    this.recvBuf.rebind(ownerTag(OwnerKind.TcpRecv, id), this.w, r + T.RECV_HEAD);
    this.reassembly.rebind(ownerTag(OwnerKind.TcpReassembly, id), this);
    this.sackBoard.rebind(this);
    return this;
  }

  /** The record's handle (what outlives this event). */
  get handle(): number {
    return this.home.table.handleOf(this.index);
  }

  /** The handle of the connection this accessor was pointed at (stale once it ended). */
  get pointedHandle(): number {
    return handleFor(this.gen, this.index);
  }

  /** True once release() began: the record's generation moved on. */
  get released(): boolean {
    return this.w[this.r + T.GEN] !== this.gen;
  }

  // ---- Identity ---------------------------------------------------------

  /** Owner id of this connection's arena chunks (record index + 1). */
  get id(): number {
    return this.index + 1;
  }
  /** Its timers' owner id in the stack's TimerQueue. */
  get timerId(): number {
    return this.home.timerBase + this.index;
  }
  get localAddr(): number {
    return this.w[this.r + T.LOCAL_ADDR]!;
  }
  get remoteAddr(): number {
    return this.w[this.r + T.REMOTE_ADDR]!;
  }
  get localPort(): number {
    return this.w[this.r + T.PORTS]! >>> 16;
  }
  get remotePort(): number {
    return this.w[this.r + T.PORTS]! & 0xffff;
  }
  /** remoteAddr * 65536 + remotePort (a 48-bit key: port choice, TIME_WAIT). */
  get remoteKey(): number {
    return this.remoteAddr * 65536 + this.remotePort;
  }
  /** Set a new record's addresses and ports (once, before it enters the hash). */
  setEndpoints(localAddr: number, localPort: number, remoteAddr: number, remotePort: number): void {
    this.w[this.r + T.LOCAL_ADDR] = localAddr;
    this.w[this.r + T.REMOTE_ADDR] = remoteAddr;
    this.w[this.r + T.PORTS] = ((localPort << 16) | remotePort) >>> 0;
  }
  get active(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.ACTIVE) !== 0;
  }
  set active(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.ACTIVE : this.w[i]! & ~TF.ACTIVE;
  }
  /** The listener that accepted the SYN, until the application takes the connection. */
  get listener(): Listener | null {
    const id = this.w[this.r + T.LISTENER]!;
    return id === 0 ? null : this.home.listenerById(id - 1);
  }
  set listener(l: Listener | null) {
    this.w[this.r + T.LISTENER] = l === null ? 0 : l.id + 1;
  }
  /** The application's object, when it asked for one. */
  get conn(): Connection | null {
    return (this.w[this.r + T.FLAGS]! & TF.HAS_CONN) !== 0 ? this.home.connOf(this.index) : null;
  }
  set conn(c: Connection | null) {
    this.home.setConn(this.index, c);
    const i = this.r + T.FLAGS;
    this.w[i] = c !== null ? this.w[i]! | TF.HAS_CONN : this.w[i]! & ~TF.HAS_CONN;
  }

  get state(): State {
    return this.w[this.r + T.STATE]! as State;
  }
  set state(s: State) {
    this.w[this.r + T.STATE] = s;
  }
  get events(): number {
    return this.w[this.r + T.EVENTS]!;
  }
  set events(e: number) {
    this.w[this.r + T.EVENTS] = e;
  }

  // ---- Send sequence space (RFC 9293 3.3.1) --------------------------------
  get iss(): number {
    return this.w[this.r + T.ISS]!;
  }
  set iss(v: number) {
    this.w[this.r + T.ISS] = v;
  }
  get sndUna(): number {
    return this.w[this.r + T.SND_UNA]!;
  }
  set sndUna(v: number) {
    this.w[this.r + T.SND_UNA] = v;
  }
  get sndNxt(): number {
    return this.w[this.r + T.SND_NXT]!;
  }
  set sndNxt(v: number) {
    this.w[this.r + T.SND_NXT] = v;
  }
  /** Highest sequence number sent + 1 (SND.NXT before a go-back-N rewind). */
  get sndMax(): number {
    return this.w[this.r + T.SND_MAX]!;
  }
  set sndMax(v: number) {
    this.w[this.r + T.SND_MAX] = v;
  }
  /** Peer's window in bytes (already scaled). */
  get sndWnd(): number {
    return this.w[this.r + T.SND_WND]!;
  }
  set sndWnd(v: number) {
    this.w[this.r + T.SND_WND] = v;
  }
  get sndWl1(): number {
    return this.w[this.r + T.SND_WL1]!;
  }
  set sndWl1(v: number) {
    this.w[this.r + T.SND_WL1] = v;
  }
  get sndWl2(): number {
    return this.w[this.r + T.SND_WL2]!;
  }
  set sndWl2(v: number) {
    this.w[this.r + T.SND_WL2] = v;
  }
  /** Largest window the peer has offered (RFC 5961 5.2 MAX.SND.WND). */
  get maxSndWnd(): number {
    return this.w[this.r + T.MAX_SND_WND]!;
  }
  set maxSndWnd(v: number) {
    this.w[this.r + T.MAX_SND_WND] = v;
  }
  /** Largest payload we put in one segment: min(peer's MSS, our MTU - 40). */
  get sndMss(): number {
    return this.w[this.r + T.MSS]! >>> 16;
  }
  set sndMss(v: number) {
    this.w[this.r + T.MSS] = ((v << 16) | (this.w[this.r + T.MSS]! & 0xffff)) >>> 0;
  }
  /** Largest payload we announced we accept (our MSS option). */
  get rcvMss(): number {
    return this.w[this.r + T.MSS]! & 0xffff;
  }
  set rcvMss(v: number) {
    this.w[this.r + T.MSS] = ((this.w[this.r + T.MSS]! & 0xffff0000) | v) >>> 0;
  }
  /** The application will write no more: a FIN follows the queued data. */
  get finQueued(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.FIN_QUEUED) !== 0;
  }
  set finQueued(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.FIN_QUEUED : this.w[i]! & ~TF.FIN_QUEUED;
  }
  /** Our FIN has been acknowledged. */
  get finAcked(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.FIN_ACKED) !== 0;
  }
  set finAcked(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.FIN_ACKED : this.w[i]! & ~TF.FIN_ACKED;
  }

  // ---- Receive sequence space ----------------------------------------------
  get irs(): number {
    return this.w[this.r + T.IRS]!;
  }
  set irs(v: number) {
    this.w[this.r + T.IRS] = v;
  }
  get rcvNxt(): number {
    return this.w[this.r + T.RCV_NXT]!;
  }
  set rcvNxt(v: number) {
    this.w[this.r + T.RCV_NXT] = v;
  }
  /** Right edge of the window we last advertised (RCV.NXT + RCV.WND then); never moves left. */
  get rcvAdvRight(): number {
    return this.w[this.r + T.RCV_ADV_RIGHT]!;
  }
  set rcvAdvRight(v: number) {
    this.w[this.r + T.RCV_ADV_RIGHT] = v;
  }
  /** The peer's FIN has been received (and acknowledged). */
  get finReceived(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.FIN_RECEIVED) !== 0;
  }
  set finReceived(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.FIN_RECEIVED : this.w[i]! & ~TF.FIN_RECEIVED;
  }
  /** The application closed its read side: incoming data is acknowledged and discarded. */
  get readClosed(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.READ_CLOSED) !== 0;
  }
  set readClosed(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.READ_CLOSED : this.w[i]! & ~TF.READ_CLOSED;
  }

  // ---- Negotiated options (RFC 7323 window scale, RFC 2018 SACK; place for timestamps) ---
  /** Shift of the peer's window fields (0 unless both SYNs carried the option). */
  get sndShift(): number {
    return this.w[this.r + T.SHIFTS]! & 0xff;
  }
  set sndShift(v: number) {
    this.setByte(T.SHIFTS, 0, v);
  }
  /** Shift of our window fields (0 unless both SYNs carried the option). */
  get rcvShift(): number {
    return (this.w[this.r + T.SHIFTS]! >>> 8) & 0xff;
  }
  set rcvShift(v: number) {
    this.setByte(T.SHIFTS, 8, v);
  }
  /** The shift our SYN offers, or NO_WSCALE (0xff) to send none. */
  get wscaleOffer(): number {
    return (this.w[this.r + T.SHIFTS]! >>> 16) & 0xff;
  }
  set wscaleOffer(v: number) {
    this.setByte(T.SHIFTS, 16, v);
  }
  /** Our SYN offers SACK-permitted (withdrawn if the peer's SYN does not carry it). */
  get sackOffer(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.SACK_OFFER) !== 0;
  }
  set sackOffer(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.SACK_OFFER : this.w[i]! & ~TF.SACK_OFFER;
  }
  get sackOk(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.SACK_OK) !== 0;
  }
  set sackOk(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.SACK_OK : this.w[i]! & ~TF.SACK_OK;
  }
  get timestamps(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.TIMESTAMPS) !== 0;
  }
  set timestamps(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.TIMESTAMPS : this.w[i]! & ~TF.TIMESTAMPS;
  }
  /** The peer's FIN came out of order, right after data held for
   *  reassembly (at reassembly.finSeq): it takes effect when that data does.
   *  Only while data is held: pruning the data forgets the FIN too. */
  get finHeld(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.FIN_HELD) !== 0 && this.reassembly.count > 0;
  }
  set finHeld(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.FIN_HELD : this.w[i]! & ~TF.FIN_HELD;
  }
  /** First sequence number of the most recent out-of-order segment held:
   *  the block containing it is reported first (RFC 2018 section 4). */
  get sackLatest(): number {
    return this.w[this.r + T.SACK_LATEST]!;
  }
  set sackLatest(v: number) {
    this.w[this.r + T.SACK_LATEST] = v;
  }
  /** End of the highest segment retransmitted in this fast recovery. */
  get sackRetxHigh(): number {
    return this.w[this.r + T.SACK_RETX_HIGH]!;
  }
  set sackRetxHigh(v: number) {
    this.w[this.r + T.SACK_RETX_HIGH] = v;
  }

  // ---- RFC 6298 retransmission timer ---------------------------------------
  get srtt8(): number {
    return this.w[this.r + T.SRTT8]!;
  }
  set srtt8(v: number) {
    this.w[this.r + T.SRTT8] = v;
  }
  get rttvar4(): number {
    return this.w[this.r + T.RTTVAR4]!;
  }
  set rttvar4(v: number) {
    this.w[this.r + T.RTTVAR4] = v;
  }
  get rto(): number {
    return this.w[this.r + T.RTO]!;
  }
  set rto(v: number) {
    this.w[this.r + T.RTO] = v;
  }
  /** Consecutive retransmissions of the same data (reset when new data is acked). */
  get retries(): number {
    return this.w[this.r + T.RETRIES]!;
  }
  set retries(v: number) {
    this.w[this.r + T.RETRIES] = v;
  }
  /** Karn's rule: the segment being timed ends at rttSeq; rttTiming false = none. */
  get rttTiming(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.RTT_TIMING) !== 0;
  }
  set rttTiming(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.RTT_TIMING : this.w[i]! & ~TF.RTT_TIMING;
  }
  get rttSeq(): number {
    return this.w[this.r + T.RTT_SEQ]!;
  }
  set rttSeq(v: number) {
    this.w[this.r + T.RTT_SEQ] = v;
  }
  /** Start timing at `now` (ms): kept in 1/16 ms, wrapping (T.RTT_START). */
  startRttClock(now: number): void {
    this.w[this.r + T.RTT_START] = Math.floor(now * 16) >>> 0;
  }
  /** Milliseconds since startRttClock(), to 1/16 ms (spans up to three days). */
  rttElapsed(now: number): number {
    return ((Math.floor(now * 16) - this.w[this.r + T.RTT_START]!) >>> 0) / 16;
  }

  // ---- RFC 5681 / 6582 congestion control ------------------------------------
  get cwnd(): number {
    return this.w[this.r + T.CWND]!;
  }
  set cwnd(v: number) {
    this.w[this.r + T.CWND] = v;
  }
  get ssthresh(): number {
    return this.w[this.r + T.SSTHRESH]!;
  }
  set ssthresh(v: number) {
    this.w[this.r + T.SSTHRESH] = v;
  }
  get dupAcks(): number {
    return this.w[this.r + T.DUP_ACKS]!;
  }
  set dupAcks(v: number) {
    this.w[this.r + T.DUP_ACKS] = v;
  }
  get inRecovery(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.IN_RECOVERY) !== 0;
  }
  set inRecovery(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.IN_RECOVERY : this.w[i]! & ~TF.IN_RECOVERY;
  }
  /** NewReno "recover": SND.MAX when loss was last detected. */
  get recover(): number {
    return this.w[this.r + T.RECOVER]!;
  }
  set recover(v: number) {
    this.w[this.r + T.RECOVER] = v;
  }

  // ---- Acknowledgement and sending policy -------------------------------------
  /** Bytes received since we last sent an ACK (delayed ACK, RFC 9293 3.8.6.3). */
  get unackedBytes(): number {
    return this.w[this.r + T.UNACKED_BYTES]!;
  }
  set unackedBytes(v: number) {
    this.w[this.r + T.UNACKED_BYTES] = v;
  }
  /** An ACK must go out at the end of this event. */
  get ackNow(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.ACK_NOW) !== 0;
  }
  set ackNow(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.ACK_NOW : this.w[i]! & ~TF.ACK_NOW;
  }
  /** Whether we answered an unacceptable pure ACK less than `interval` ms
   *  before `now` (the rate limit of input.ts; intervals up to 24 days). */
  oowAckedWithin(now: number, interval: number): boolean {
    if ((this.w[this.r + T.FLAGS]! & TF.OOW_ACKED) === 0) return false;
    return ((Math.floor(now) - this.w[this.r + T.LAST_OOW_ACK]!) >>> 0) < interval;
  }
  /** We answered an unacceptable pure ACK at `now`. */
  noteOowAck(now: number): void {
    this.w[this.r + T.LAST_OOW_ACK] = Math.floor(now) >>> 0;
    this.w[this.r + T.FLAGS] |= TF.OOW_ACKED;
  }
  get noDelay(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.NO_DELAY) !== 0;
  }
  set noDelay(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.NO_DELAY : this.w[i]! & ~TF.NO_DELAY;
  }
  /** Zero-window probes sent without an answer, and the probe backoff exponent. */
  get persistProbes(): number {
    return this.w[this.r + T.PROBES]! & 0xff;
  }
  set persistProbes(v: number) {
    this.setByte(T.PROBES, 0, v);
  }
  get persistBackoff(): number {
    return (this.w[this.r + T.PROBES]! >>> 8) & 0xff;
  }
  set persistBackoff(v: number) {
    this.setByte(T.PROBES, 8, v);
  }

  // ---- Keepalive (RFC 9293 3.8.4) --------------------------------------------
  get keepalive(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.KEEPALIVE) !== 0;
  }
  set keepalive(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.KEEPALIVE : this.w[i]! & ~TF.KEEPALIVE;
  }
  get keepaliveProbes(): number {
    return (this.w[this.r + T.PROBES]! >>> 16) & 0xff;
  }
  set keepaliveProbes(v: number) {
    this.setByte(T.PROBES, 16, v);
  }
  /** Monotonic time of the last segment received from the peer. */
  get lastHeard(): number {
    return this.f[(this.r + T.LAST_HEARD) >>> 1]!;
  }
  set lastHeard(v: number) {
    this.f[(this.r + T.LAST_HEARD) >>> 1] = v;
  }

  /** On the table's embryonic list (a passive open in SYN_RECEIVED). */
  get embryonic(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.EMBRYONIC) !== 0;
  }
  set embryonic(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.EMBRYONIC : this.w[i]! & ~TF.EMBRYONIC;
  }
  /** No Connection object: events go to its listener's handle callbacks. */
  get handleMode(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.HANDLES) !== 0;
  }
  set handleMode(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.HANDLES : this.w[i]! & ~TF.HANDLES;
  }
  /** (Handle mode) onEnd was called. */
  get eofTold(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.EOF_TOLD) !== 0;
  }
  set eofTold(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.EOF_TOLD : this.w[i]! & ~TF.EOF_TOLD;
  }
  /** (Handle mode) a write took less than offered: onWritable once room frees. */
  get wantWritable(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.WANT_WRITABLE) !== 0;
  }
  set wantWritable(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.WANT_WRITABLE : this.w[i]! & ~TF.WANT_WRITABLE;
  }

  /** (Handle mode) onData took less than offered: deliveries wait for resume(). */
  get readPaused(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.READ_PAUSED) !== 0;
  }
  set readPaused(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.READ_PAUSED : this.w[i]! & ~TF.READ_PAUSED;
  }
  /** The application's word (Tcp.userData). */
  get appWord(): number {
    return this.w[this.r + T.APP]!;
  }
  set appWord(v: number) {
    this.w[this.r + T.APP] = v;
  }

  /** A segment for this connection is being processed (its output follows). */
  get inInput(): boolean {
    return (this.w[this.r + T.FLAGS]! & TF.IN_INPUT) !== 0;
  }
  set inInput(on: boolean) {
    const i = this.r + T.FLAGS;
    this.w[i] = on ? this.w[i]! | TF.IN_INPUT : this.w[i]! & ~TF.IN_INPUT;
  }

  /** Mark it for the batch end with what the fast path asked (TF.BATCH_RTO,
   *  TF.BATCH_DELACK). Returns true when it was not marked yet. */
  markBatched(bits: number): boolean {
    const i = this.r + T.FLAGS;
    const was = this.w[i]!;
    this.w[i] = was | TF.BATCHED | bits;
    return (was & TF.BATCHED) === 0;
  }

  /** Clear the batch marks; returns the TF.BATCH_* bits they held. */
  takeBatched(): number {
    const i = this.r + T.FLAGS;
    const was = this.w[i]!;
    this.w[i] = was & ~(TF.BATCHED | TF.BATCH_RTO | TF.BATCH_DELACK);
    return was & (TF.BATCH_RTO | TF.BATCH_DELACK);
  }

  // ---- The out-of-order chunk (OooHost, for reassembly and the SACK board) ----
  oooWords(): number {
    const off = this.w[this.r + T.OOO]!;
    return off === 0 ? -1 : off >>> 2;
  }

  takeOoo(): number {
    const chunk = this.hot.alloc(ownerTag(OwnerKind.TcpReassembly, this.id));
    if (chunk === 0) return -1;
    const b = chunk >>> 2;
    this.w.fill(0, b, b + X.RANGE_SEQ); // list links, counts, SACK edges need no clearing beyond their counts
    this.w[this.r + T.OOO] = chunk;
    this.home.oooTaken(this.index, b);
    return b;
  }

  oooEmptied(): void {
    const b = this.oooWords();
    if (b < 0 || this.w[b + X.RANGES] !== 0 || this.w[b + X.SACK_COUNT] !== 0) return;
    this.home.oooGiven(this.index, b);
    this.w[this.r + T.OOO] = 0;
    this.hot.free(b << 2);
  }

  // ---- bits (flags are read and written in each accessor, not through a
  // helper: a getter that small is always inlined, the helper call was not) ----
  /** Set the byte at bit `shift` of word `word` to v (0..255). */
  private setByte(word: T, shift: number, v: number): void {
    const r = this.r + word;
    this.w[r] = ((this.w[r]! & ~(0xff << shift)) | ((v & 0xff) << shift)) >>> 0;
  }

  /** A segment arrived at `now`: the peer is heard from, which answers our
   *  keepalive probes (and, with `persistToo`, our zero-window probes).
   *  One write of the probe word, and usually none. */
  heardFrom(now: number, persistToo: boolean): void {
    const r = this.r;
    this.f[(r + T.LAST_HEARD) >>> 1] = now;
    const probes = persistToo ? 0xff00ff : 0xff0000;
    if ((this.w[r + T.PROBES]! & probes) !== 0) this.w[r + T.PROBES] = this.w[r + T.PROBES]! & ~probes;
  }
}

/** Key of a remote endpoint inside one local port's table: exact in 48 bits,
 *  so a plain number (no string, no allocation) indexes a Map. */
export function remoteKeyOf(remoteAddr: number, remotePort: number): number {
  return (remoteAddr >>> 0) * 65536 + remotePort;
}
