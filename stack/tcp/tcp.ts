// TCP (RFC 9293) for one stack: the tables (control blocks, listeners,
// TIME_WAIT), segment demultiplexing, passive and active open, the socket API
// entry points (handles, and Connection objects built on them), stats(), and
// release(): the single function through which every connection ends
// (docs/architecture.md section 5).
//
// Control blocks are records in the arena (tcb-table.ts); code reaches one
// through a Tcb accessor taken from a small pool for the length of one entry
// point (a segment, a timer, an application call). Entry points nest (an
// application callback may write to another connection, or make a frame
// arrive), so each takes the pool's next accessor and gives back what it took
// when it returns: `const mark = this.top ... finally this.top = mark`.

import { formatIpv4, toIpv4, type Ipv4Input } from '../address.js';
import type { HotPath } from '../hotpath/engine.js';
import { OwnerKind } from '../hotpath/engine.js';
import { CHUNK_SIZE, D, F, FA, Kind, Slow, SLOW_NAMES, T, TCB_WORDS, TCP_ACK, TCP_RST, TCP_SYN, TF, X } from '../hotpath/layout.js';
import type { FastReceiver, TimerKind, TimerOwner, TransportHandler, TransportLower } from '../layers.js';
import type { TimerQueue } from '../time/timers.js';
import { ADMISSION_DEFAULTS, Admission } from '../admission.js';
import { takeRegion, type ArenaRegion } from '../arena-region.js';
import { ChunkLinks } from './chunk-links.js';
import { Connection, type ConnectionCore } from './connection.js';
import { NO_DSACK, type DsackNote, type TcpContext } from './context.js';
import type { IcmpErrorReport, IcmpErrorSink } from '../ip/icmp.js';
import { TcpError } from './errors.js';
import { applySynOptions, recordSack, segmentArrives, synSentArrives } from './input.js';
import { IsnGenerator, randomSecret, randomU32 } from './isn.js';
import { type HandleCallbacks, Listener, type ListenerCore, type ListenOptions } from './listener.js';
import { NO_WSCALE, resolveOptions, type TcpOptions, windowShiftFor } from './options.js';
import { output, restartRetransmit, sendCookieSynAck, sendReset, sendResetReply, sendSyn } from './output.js';
import { MAX_AGE as COOKIE_MAX_AGE_MIN, SynCookies } from './syn-cookies.js';
import { PortTable } from './ports.js';
import { Segment } from './segment.js';
import { State, STATE_NAMES, type StateName } from './state.js';
import { TcpCounters, type CloseInfo, type CloseReason, type TcpStats } from './stats.js';
import { Tcb, TcbEvent, type TcbHome } from './tcb.js';
import { TCB_BYTES, TcbTable } from './tcb-table.js';
import { TCB_TIMER_SLOTS, TCP_TIMER_COUNT, TCP_TIMER_NAMES, TcpTimer } from './timer-kinds.js';
import { onTcbTimer } from './timers.js';
import { NO_RECORD, timeWaitArrives, TimeWaitTable } from './time-wait.js';
import {
  userAbort, userClose, userCloseRead, userConsume, userEndWrite, userSetKeepAlive, userSetNoDelay, userWrite,
  writableSpace,
} from './user-calls.js';
import { seqAdd, seqLe, seqLt } from '../hotpath/ts-seq.js';

export type { HandleCallbacks };

export interface ConnectOptions {
  /** Give up if the handshake has not completed after this many ms. */
  timeout?: number;
  /** Use this local port instead of an ephemeral one. */
  localPort?: number;
  /** Our address for this connection, if not the interface's: only on a
   *  transparent stack (a proxy speaking for its clients, as the user-mode
   *  gateway does). With it, localPort is a preference: if that 4-tuple is
   *  taken (another of our addresses holds it), an ephemeral port is used. */
  localAddress?: Ipv4Input;
  /** Disable Nagle's algorithm from the start. */
  noDelay?: boolean;
}

/** What admitSyn decided for a SYN. */
const enum Admit {
  No,
  Yes,
  /** Answer with a SYN cookie and keep nothing. */
  Cookie,
}

/** What a handle call says about a handle that names no live connection. */
const STALE = 'connection closed';

export class Tcp implements TransportHandler, FastReceiver, TcpContext, ConnectionCore, ListenerCore, TcbHome, IcmpErrorSink {
  readonly hot: HotPath;
  readonly opts: TcpOptions;
  readonly counters = new TcpCounters();
  /** The control blocks: records in the arena, and the 4-tuple hash. */
  readonly table: TcbTable;
  /** Timer owner id of record 0 (record i's is timerBase + i). */
  readonly timerBase: number;
  /** The arena region of the TIME_WAIT records. */
  private readonly timeWaitRegion: ArenaRegion;

  private readonly ports: PortTable;
  private readonly links: ChunkLinks;
  /** Accessors, one per nesting level of entry points; `top` is the next free one. */
  private readonly pool: Tcb[] = [];
  private top = 0;
  /** Connection objects by record index: only for applications that asked for them. */
  private readonly conns = new Map<number, Connection>();
  /** Listeners by id (a control block records its listener's id). */
  private readonly listenerSlots: (Listener | null)[] = [];
  private readonly listeners = new Set<Listener>();
  /** Records holding an out-of-order chunk (index + 1; the links live in the
   *  chunks, layout X.PREV/NEXT): what is pruned first under arena pressure. */
  private oooHead = 0;
  /** The wildcard listener (listenAny): SYNs to ports without a listener of their own. */
  private anyListener: Listener | null = null;
  private readonly timeWait: TimeWaitTable;
  private readonly isnGen = new IsnGenerator();
  private readonly cookies = new SynCookies(Uint32Array.of(...randomSecret(), ...randomSecret()));
  /** When the last cookie went out: ACKs are checked as cookies only for a
   *  cookie's lifetime after it (a forged ACK has no chance otherwise). */
  private lastCookieAt = -Infinity;
  private readonly stateCounts = new Int32Array(State.Count);
  /** Segments the fast path left to the slow path, by Slow reason. */
  private readonly slowCounts = new Float64Array(Slow.COUNT);
  /** This TCP drives the engine's fast path (the first on an engine claims it). */
  readonly fastPath: boolean;
  private readonly scratch = new Segment();
  private depth = 0;
  private challengeWindowStart = -Infinity;
  private challengeCount = 0;
  private pressurePending = false;
  /** Fast-path segments wait for the device's batch end (setBatching). */
  private batching = false;
  /** Handles of the connections marked TF.BATCHED, in arrival order: each at
   *  most once per batch, so never more than the table's records. */
  private batchedHandles = new Float64Array(64);
  private batchedCount = 0;
  private batchedNext = 0;
  private shuttingDown = false;
  private down = false;

  /**
   * `timers` must have tcpTimerOwners(options) owner ids from `firstTimerId`
   * on, the last ids it has: one for the TIME_WAIT table, then one per
   * control block (record i's is firstTimerId + 1 + i), whose timers keep
   * their positions in the record (T.TIMERS). The control block table is taken from the arena here:
   * make the Tcp before traffic (arena-region.ts says why).
   */
  constructor(
    readonly lower: TransportLower,
    readonly timers: TimerQueue,
    options?: Partial<TcpOptions>,
    /** The stack's admission control; alone (tests), one watching no heap. */
    private readonly admission: Admission = new Admission({ ...ADMISSION_DEFAULTS, heap: null }, () => lower.clock.now()),
    firstTimerId = 0,
  ) {
    this.hot = lower.hot;
    this.opts = resolveOptions(options, this.hot.buffer.byteLength);
    const n = this.opts.maxConnections;
    this.table = new TcbTable(this.hot, n);
    this.links = new ChunkLinks(this.hot);
    this.timerBase = firstTimerId + 1;
    timers.placeInRecords(this.timerBase, new Int32Array(this.hot.buffer, 0, this.hot.buffer.byteLength >>> 2), this.table.at(0) + T.TIMERS, TCB_WORDS, TCB_TIMER_SLOTS);
    // The TIME_WAIT records are a table region too; if it does not fit, the control blocks' is given back.
    try {
      this.timeWaitRegion = takeRegion(this.hot, TimeWaitTable.bytesFor(this.opts.maxTimeWait), TIME_WAIT_REGION_ID);
    } catch (err) {
      this.table.release();
      throw err;
    }
    this.timeWait = new TimeWaitTable(timers, this.opts.maxTimeWait, 2 * this.opts.msl, randomU32(), firstTimerId, {
      buffer: this.hot.buffer,
      at: this.timeWaitRegion.offset,
    });
    this.ports = new PortTable(this.table, this.timeWait);
    this.fastPath = this.opts.fastPath && this.hot.fast[F.TABLE_BASE] === 0;
    if (this.fastPath) this.claimFastPath();
  }

  /** Describe the table and the options the engine's fast path needs (layout F). */
  private claimFastPath(): void {
    const f = this.hot.fast;
    this.table.describeTo(f);
    // A transparent proxy's connections use other local addresses: there the
    // lookup by the whole 4-tuple (local address included) is the filter.
    f[F.LOCAL_ADDR] = this.lower.transparent ? 0 : this.lower.localAddress;
    f[F.RCV_BUF] = this.opts.rcvBuf;
    f[F.MIN_RTO] = this.opts.minRto;
    f[F.MAX_RTO] = this.opts.maxRto;
    f[F.ARENA_RESERVE] = this.opts.arenaReserve;
    f[F.ENABLED] = 1;
  }

  /** The engine's fast path, when this TCP drives it (Ethernet hands it frames first). */
  get fastReceiver(): FastReceiver | null {
    return this.fastPath ? this : null;
  }

  now(): number {
    return this.lower.clock.now();
  }

  /** Arena chunks of TCP's fixed tables: the control blocks with their hash, and the TIME_WAIT records. */
  get tableChunks(): number {
    return this.table.chunks + this.timeWaitRegion.chunks;
  }

  // =========================================================================
  // Segment arrival (TransportHandler)

  input(): void {
    if (this.down) return;
    // A nested input (an application callback that makes a frame arrive) gets
    // its own scratch record; the outer one is still in use.
    const seg = this.depth === 0 ? this.scratch : new Segment();
    const mark = this.top;
    this.depth++;
    try {
      this.dispatch(seg);
    } finally {
      this.depth--;
      this.top = mark;
      this.afterEvent();
    }
  }

  private dispatch(seg: Segment): void {
    const d = this.hot.decoded;
    if (d[D.KIND] !== Kind.Tcp) return;
    seg.load(d);
    const c = this.counters;
    c.segmentsIn++;
    const local = this.lower.localAddress;
    if (local !== 0 && seg.dstAddr !== local) {
      // Broadcast or another host's: never answered (RFC 1122 4.2.3.10),
      // unless it belongs to one of a transparent proxy's connections.
      if (!this.lower.transparent || !this.knownInput(seg)) c.dropNotForUs++;
      return;
    }
    if (this.knownInput(seg)) return;
    const listener = this.ports.listener(seg.dstPort) ?? this.anyListener;
    if (listener && !listener.closed) {
      this.listenInput(listener, seg);
      return;
    }
    // RFC 9293 3.10.7.1: CLOSED. Everything is dropped; anything but a RST gets a RST.
    c.dropNoListener++;
    if ((seg.flags & TCP_RST) === 0) {
      c.rstSentClosedPort++;
      sendResetReply(this, seg);
    }
  }

  /** A segment for a live connection or a TIME_WAIT record of its 4-tuple:
   *  processed there (true), or false when there is neither. */
  private knownInput(seg: Segment): boolean {
    const index = this.table.find(seg.dstAddr, seg.dstPort, seg.srcAddr, seg.srcPort);
    if (index >= 0) {
      this.connectionInput(this.cursor(index), seg);
      return true;
    }
    const rec = this.timeWait.lookup(seg.dstPort, seg.srcAddr * 65536 + seg.srcPort, seg.dstAddr);
    return rec !== NO_RECORD && timeWaitArrives(this, this.timeWait, rec, seg);
  }

  private connectionInput(tcb: Tcb, seg: Segment): void {
    tcb.heardFrom(this.now(), false);
    tcb.inInput = true;
    if (tcb.state === State.SynSent) synSentArrives(this, tcb, seg);
    else segmentArrives(this, tcb, seg);
    this.afterSegment(tcb);
    // A D-SACK goes with the ACK this segment gets, or not at all.
    this.dsack.handle = NO_DSACK;
  }

  /** The application hears first (it may read, write or close), then one
   *  output() sends data, the ACK and any window update together. */
  private afterSegment(tcb: Tcb): void {
    if (!tcb.released) this.flushEvents(tcb);
    tcb.inInput = false;
    if (!tcb.released && tcb.state !== State.SynSent && tcb.state !== State.SynReceived) output(this, tcb);
  }

  // ---- the engine's fast path (FastReceiver) --------------------------------

  /** The engine processed a segment of record F.INDEX whole (input.ts's
   *  rules for an in-order segment of an ESTABLISHED connection); what is
   *  left is ours: the timers its FA bits name, the application, output. */
  fastInput(result: number): void {
    const c = this.counters;
    const f = this.hot.fast;
    c.segmentsIn++;
    c.fastPathSegments++;
    c.bytesIn += f[F.TAKEN]!;
    if (this.batching) return this.batchSegment(f[F.INDEX]!, result);
    const mark = this.top;
    this.depth++;
    try {
      const tcb = this.cursor(f[F.INDEX]!);
      if ((result & FA.SACK) !== 0) this.recordFastSack(tcb);
      if ((result & FA.RESTART_RTO) !== 0) restartRetransmit(this, tcb);
      if ((result & FA.ARM_DELACK) !== 0) this.timers.arm(tcb.timerId, TcpTimer.DelayedAck, this.now() + this.opts.delayedAckMs);
      tcb.inInput = true;
      this.afterSegment(tcb);
    } finally {
      this.depth--;
      this.top = mark;
      this.afterEvent();
    }
  }

  /** The fast path took a segment with SACK blocks (FA.SACK): they go on the
   *  scoreboard, as input.ts records them (its scoreboard was empty, and the
   *  ACK the engine applied is the segment's). */
  private recordFastSack(tcb: Tcb): void {
    const d = this.hot.decoded;
    recordSack(this, tcb, d[D.TCP_ACK]!, d[D.OPT_SACK_COUNT]!, d, D.OPT_SACK);
  }

  /**
   * The device delivers frames in batches and says when each ends (the
   * stack calls endBatch()): from now on what a fast-path segment leaves to
   * JS (its timers, the application, output) waits for that end, and is done
   * once per connection however many of its segments the batch held. Why:
   * a receiver then sends one ACK for the batch and its application hears
   * once; a sender takes all the batch's ACKs, is told once that there is
   * room, and sends one burst for everything they let go. The engine's work
   * (sequence numbers, windows, RTT, the received bytes) is done per segment
   * as before, so a segment that takes the slow path meanwhile sees a
   * record that is up to date.
   */
  setBatching(on: boolean): void {
    if (!on) this.endBatch();
    this.batching = on;
  }

  /** Mark the connection for the batch end, with the timers its segment asked for. */
  private batchSegment(index: number, result: number): void {
    const mark = this.top;
    try {
      const tcb = this.cursor(index);
      // The decoded record is the next frame's by the batch end: the blocks are kept now.
      if ((result & FA.SACK) !== 0) this.recordFastSack(tcb);
      const bits = ((result & FA.RESTART_RTO) !== 0 ? TF.BATCH_RTO : 0) | ((result & FA.ARM_DELACK) !== 0 ? TF.BATCH_DELACK : 0);
      if (tcb.markBatched(bits)) this.queueBatched(tcb.handle);
    } finally {
      this.top = mark;
    }
  }

  private queueBatched(handle: number): void {
    if (this.batchedCount === this.batchedHandles.length) {
      const grown = new Float64Array(this.batchedHandles.length * 2);
      grown.set(this.batchedHandles);
      this.batchedHandles = grown;
    }
    this.batchedHandles[this.batchedCount++] = handle;
  }

  /**
   * The batch ended: finish each connection its fast-path segments marked,
   * as fastInput does for one segment. A connection that ended meanwhile
   * has a stale handle and is skipped. If an application callback throws,
   * the connections after it stay queued for the next call.
   */
  endBatch(): void {
    while (this.batchedNext < this.batchedCount) {
      const index = this.table.indexOf(this.batchedHandles[this.batchedNext++]!);
      if (index >= 0) this.finishBatched(index);
    }
    this.batchedNext = 0;
    this.batchedCount = 0;
  }

  private finishBatched(index: number): void {
    const mark = this.top;
    this.depth++;
    try {
      const tcb = this.cursor(index);
      const bits = tcb.takeBatched();
      if ((bits & TF.BATCH_RTO) !== 0) restartRetransmit(this, tcb);
      tcb.inInput = true;
      this.afterSegment(tcb);
      // Armed only if the output did not carry the ACK (one timer, not an arm and a cancel).
      if ((bits & TF.BATCH_DELACK) !== 0 && !tcb.released && tcb.unackedBytes > 0 && !this.timers.isArmed(tcb.timerId, TcpTimer.DelayedAck)) {
        this.timers.arm(tcb.timerId, TcpTimer.DelayedAck, this.now() + this.opts.delayedAckMs);
      }
    } finally {
      this.depth--;
      this.top = mark;
      this.afterEvent();
    }
  }

  slowInput(reason: number): void {
    this.slowCounts[reason]++;
  }

  /** RFC 9293 3.10.7.2: LISTEN. */
  private listenInput(listener: Listener, seg: Segment): void {
    const c = this.counters;
    if ((seg.flags & TCP_RST) !== 0) {
      c.rstIgnored++;
      return;
    }
    if ((seg.flags & TCP_ACK) !== 0) {
      if ((seg.flags & TCP_SYN) === 0 && this.cookieAckArrives(listener, seg)) return;
      c.rstSentBadAck++;
      sendResetReply(this, seg);
      return;
    }
    if ((seg.flags & TCP_SYN) === 0) {
      c.dropNoAck++;
      return;
    }
    const admitted = this.admitSyn(listener);
    if (admitted === Admit.Cookie) this.sendCookie(seg);
    if (admitted !== Admit.Yes) return;
    if (seg.payloadLen > 0) c.dropSynData++; // no TCP Fast Open: the peer sends it again
    const tcb = this.newTcb(seg.dstAddr, seg.dstPort, seg.srcAddr, seg.srcPort, false);
    this.becomeEmbryonic(tcb, listener);
    tcb.irs = seg.seq;
    tcb.rcvNxt = seqAdd(seg.seq, 1);
    tcb.rcvAdvRight = tcb.rcvNxt;
    applySynOptions(tcb, seg.opts);
    tcb.sndWnd = seg.wnd; // RFC 7323: never scaled in a SYN
    tcb.maxSndWnd = seg.wnd;
    tcb.sndWl1 = seg.seq;
    this.setState(tcb, State.SynReceived);
    c.passiveOpens++;
    sendSyn(this, tcb, true);
  }

  /** Heap, backlog, connection limit and arena reserve for a new SYN (all counted).
   *  Under heap pressure a SYN is dropped, not refused: the peer's SYN
   *  retransmission (1 s, then 3 s...) brings it back once pressure is over. */
  private admitSyn(listener: Listener): Admit {
    const c = this.counters;
    if (!this.admission.admit()) {
      c.dropSynPressure++;
      return Admit.No;
    }
    if (listener.pending >= listener.backlog) {
      // A full backlog is what a SYN flood looks like: answer statelessly.
      if (this.opts.synCookies) return Admit.Cookie;
      c.dropSynBacklogFull++;
      return Admit.No;
    }
    if (!this.roomForConnection()) return Admit.No;
    return Admit.Yes;
  }

  /** The connection limit and the arena reserve, for any new control block (counted). */
  private roomForConnection(): boolean {
    const c = this.counters;
    if (this.table.count >= this.opts.maxConnections) {
      c.dropSynConnLimit++;
      return false;
    }
    if (this.spareChunks() <= 0 && this.pruneOutOfOrder() === 0) {
      c.dropSynNoMemory++;
      this.arenaPressure();
      return false;
    }
    return true;
  }

  /** SYN-ACK with a cookie for a SYN the full backlog cannot hold; no state kept. */
  private sendCookie(seg: Segment): void {
    const now = this.now();
    const local = seg.dstAddr;
    const peerMss = seg.opts.mss !== 0 ? seg.opts.mss : 536;
    const { iss } = this.cookies.make(now, local, seg.dstPort, seg.srcAddr, seg.srcPort, seg.seq, peerMss);
    this.lastCookieAt = now;
    if (sendCookieSynAck(this, seg, iss, this.ourMss(seg.srcAddr), Math.min(this.opts.rcvBuf, 65535))) {
      this.counters.synCookiesSent++;
    }
  }

  /**
   * An ACK in LISTEN: if it returns one of our cookies, the connection is made
   * now, as if its SYN had been kept in SYN_RECEIVED, and the ACK completes
   * the handshake. False: not a cookie (the caller resets, RFC 9293 3.10.7.2).
   * A valid cookie the stack cannot take now (heap, accept queue, arena) is
   * dropped without a reset: the peer retransmits and may find room later.
   */
  private cookieAckArrives(listener: Listener, seg: Segment): boolean {
    const c = this.counters;
    const now = this.now();
    if (!this.opts.synCookies || now - this.lastCookieAt > (COOKIE_MAX_AGE_MIN + 1) * 60_000) return false;
    const peerIsn = seqAdd(seg.seq, -1);
    const cookie = seqAdd(seg.ack, -1);
    const check = this.cookies.check(now, seg.dstAddr, seg.dstPort, seg.srcAddr, seg.srcPort, peerIsn, cookie);
    if (!check.ok) {
      if (check.why === 'expired') c.synCookiesExpired++;
      else c.synCookiesInvalid++;
      return false;
    }
    if (!this.admission.admit()) {
      c.dropSynPressure++;
      return true;
    }
    if (listener.queued >= listener.backlog) {
      c.synCookiesQueueFull++;
      return true;
    }
    if (!this.roomForConnection()) return true;
    c.synCookiesAccepted++;
    const tcb = this.newTcb(seg.dstAddr, seg.dstPort, seg.srcAddr, seg.srcPort, false);
    this.becomeEmbryonic(tcb, listener);
    tcb.iss = cookie;
    tcb.sndUna = cookie;
    tcb.sndNxt = seg.ack;
    tcb.sndMax = seg.ack;
    tcb.recover = cookie;
    tcb.irs = peerIsn;
    tcb.rcvNxt = seg.seq;
    tcb.rcvAdvRight = seqAdd(seg.seq, Math.min(this.opts.rcvBuf, 65535));
    tcb.sndMss = Math.min(check.mss, tcb.rcvMss);
    tcb.wscaleOffer = NO_WSCALE;
    tcb.sackOffer = false;
    tcb.sackOk = false;
    tcb.sndWnd = seg.wnd;
    tcb.maxSndWnd = seg.wnd;
    tcb.sndWl1 = peerIsn;
    this.setState(tcb, State.SynReceived);
    c.passiveOpens++;
    this.connectionInput(tcb, seg);
    return true;
  }

  /** Our MSS toward `remote`: MTU - 40, and never more than a TX chunk can carry. */
  private ourMss(remote: number): number {
    return Math.min(this.lower.maxTransportLength(remote) - 20, CHUNK_SIZE - 54);
  }

  // =========================================================================
  // Timers

  /** Called by the stack for an expired timer of kind TcpFirst..TcpLast. */
  onTimer(owner: TimerOwner, kind: number): void {
    if (this.down) return;
    const mark = this.top;
    try {
      if (owner === this.timeWait.timerId) {
        this.counters.timeWaitExpired += this.timeWait.expire(this.now());
        return;
      }
      const index = owner - this.timerBase;
      if (!this.table.isLive(index)) return;
      const tcb = this.cursor(index);
      onTcbTimer(this, tcb, kind);
      if (!tcb.released) this.flushEvents(tcb);
    } finally {
      this.top = mark;
      this.afterEvent();
    }
  }

  // =========================================================================
  // Application: listen and connect

  listen(port: number, options: ListenOptions = {}): Listener {
    this.checkUp();
    checkPort(port, 'listen');
    const backlog = options.backlog ?? this.opts.defaultBacklog;
    if (!(Number.isInteger(backlog) && backlog > 0)) {
      throw new TcpError('EINVAL', `listen backlog must be a positive integer, got ${backlog}`);
    }
    if (this.ports.listener(port)) throw new TcpError('EADDRINUSE', `port ${port} already has a listener`);
    const listener = this.newListener(port, backlog, options.handles);
    this.ports.setListener(port, listener);
    return listener;
  }

  /**
   * Accept connections to every port that has no listener of its own (a
   * gateway intercepting outbound connections, for instance). The accepted
   * connection's localPort says which port was asked for. Listener.port is 0.
   */
  listenAny(options: ListenOptions = {}): Listener {
    this.checkUp();
    const backlog = options.backlog ?? this.opts.defaultBacklog;
    if (!(Number.isInteger(backlog) && backlog > 0)) {
      throw new TcpError('EINVAL', `listen backlog must be a positive integer, got ${backlog}`);
    }
    if (this.anyListener) throw new TcpError('EADDRINUSE', 'a wildcard listener already exists');
    const listener = this.newListener(0, backlog, options.handles);
    this.anyListener = listener;
    return listener;
  }

  /** A listener with the lowest free id. */
  private newListener(port: number, backlog: number, handles: HandleCallbacks | undefined): Listener {
    if (handles !== undefined && (handles === null || typeof handles !== 'object')) {
      throw new TcpError('EINVAL', 'listen handles must be an object of callbacks');
    }
    let id = this.listenerSlots.indexOf(null);
    if (id < 0) id = this.listenerSlots.push(null) - 1;
    const listener = new Listener(this, id, port, backlog, handles ?? null);
    this.listenerSlots[id] = listener;
    this.listeners.add(listener);
    return listener;
  }

  /** TcbHome: the listener a record names. */
  listenerById(id: number): Listener | null {
    return this.listenerSlots[id] ?? null;
  }

  /** A closed listener's id is free once no connection names it any more. */
  private maybeFreeListenerId(listener: Listener): void {
    if (listener.closed && listener.handleConns === 0 && this.listenerSlots[listener.id] === listener && !this.namedByEmbryonic(listener)) {
      this.listenerSlots[listener.id] = null;
    }
  }

  private namedByEmbryonic(listener: Listener): boolean {
    return listener.synReceived > 0;
  }

  connect(address: Ipv4Input, port: number, options: ConnectOptions = {}): Promise<Connection> {
    try {
      return this.startConnect(address, port, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private startConnect(address: Ipv4Input, port: number, options: ConnectOptions): Promise<Connection> {
    this.checkUp();
    const remote = toIpv4(address);
    checkPort(port, 'connect');
    const localAddr = this.localAddressFor(options.localAddress);
    if (this.table.count >= this.opts.maxConnections) {
      throw new TcpError('EMFILE', `connection limit (${this.opts.maxConnections}) reached`);
    }
    if (!this.admission.admit()) {
      this.counters.connectRefusedPressure++;
      throw new TcpError('ENOBUFS', 'the heap is above its high-water mark: no new connection now');
    }
    const localPort = this.chooseLocalPort(localAddr, remote, port, options.localPort, localAddr !== this.lower.localAddress);
    const mark = this.top;
    try {
      const tcb = this.newTcb(localAddr, localPort, remote, port, true);
      if (options.noDelay !== undefined) tcb.noDelay = options.noDelay;
      tcb.rcvAdvRight = 0;
      this.setState(tcb, State.SynSent);
      this.counters.activeOpens++;
      const conn = this.newConnection(tcb);
      const promise = new Promise<Connection>((resolve, reject) => {
        conn.connectWaiter = { resolve, reject };
      });
      if (options.timeout !== undefined) this.timers.arm(tcb.timerId, TcpTimer.Connect, this.now() + options.timeout);
      sendSyn(this, tcb, true);
      return promise;
    } finally {
      this.top = mark;
      this.afterEvent();
    }
  }

  /** connect()'s localAddress: the interface's unless given, and only a
   *  transparent stack may be given another. */
  private localAddressFor(given: Ipv4Input | undefined): number {
    const ours = this.lower.localAddress;
    if (given === undefined) return ours;
    const addr = toIpv4(given);
    if (addr !== ours && !this.lower.transparent) {
      throw new TcpError('EINVAL', `connect localAddress ${formatIpv4(addr)} is not this interface's (${formatIpv4(ours)})`);
    }
    if (addr === 0) throw new TcpError('EINVAL', 'connect localAddress 0.0.0.0');
    return addr;
  }

  private chooseLocalPort(local: number, remote: number, port: number, wanted: number | undefined, preferOnly: boolean): number {
    if (wanted !== undefined) {
      checkPort(wanted, 'connect localPort');
      const free = this.ports.tupleFree(local, wanted, remote, port);
      if (!free && preferOnly) return this.ephemeralPort(local, remote, port);
      if (!free) {
        throw new TcpError('EADDRINUSE', `${formatIpv4(local)}:${wanted} -> ${formatIpv4(remote)}:${port} is in use`);
      }
      return wanted;
    }
    return this.ephemeralPort(local, remote, port);
  }

  private ephemeralPort(local: number, remote: number, port: number): number {
    const o = this.opts;
    const chosen = this.ports.ephemeral(local, remote, port, o.ephemeralLow, o.ephemeralHigh);
    if (chosen === 0) {
      this.counters.ephemeralExhausted++;
      throw new TcpError('EADDRINUSE',
        `no free ephemeral port in ${o.ephemeralLow}-${o.ephemeralHigh} for ${formatIpv4(remote)}:${port}`);
    }
    return chosen;
  }

  /** A record taken from the table and entered in the 4-tuple hash; the
   *  caller checked there is room (roomForConnection) and sets its state. */
  private newTcb(local: number, localPort: number, remoteAddr: number, remotePort: number, active: boolean): Tcb {
    const now = this.now();
    const index = this.table.take();
    if (index < 0) throw new TcpError('EMFILE', `connection limit (${this.opts.maxConnections}) reached`);
    const tcb = this.cursor(index);
    tcb.setEndpoints(local, localPort, remoteAddr, remotePort);
    tcb.active = active;
    tcb.lastHeard = now;
    tcb.rto = this.opts.initialRto;
    tcb.noDelay = this.opts.noDelay;
    tcb.keepalive = this.opts.keepalive;
    tcb.ssthresh = 0x7fffffff;
    const iss = this.isnGen.isn(now, local, localPort, remoteAddr, remotePort);
    tcb.iss = iss;
    tcb.sndUna = iss;
    tcb.sndNxt = seqAdd(iss, 1);
    tcb.sndMax = tcb.sndNxt;
    tcb.recover = iss;
    tcb.rcvMss = this.ourMss(remoteAddr);
    tcb.sndMss = Math.min(536, tcb.rcvMss);
    tcb.wscaleOffer = this.opts.windowScaling ? windowShiftFor(this.opts.rcvBuf) : NO_WSCALE;
    tcb.sackOffer = this.opts.sack;
    this.table.insert(index);
    this.admission.connections(this.table.count, this.opts.maxConnections);
    return tcb;
  }

  /** A passive open's record waits in SYN_RECEIVED, counted in its listener's backlog. */
  private becomeEmbryonic(tcb: Tcb, listener: Listener): void {
    tcb.listener = listener;
    listener.synReceived++;
    tcb.embryonic = true;
    this.table.pushEmbryonic(tcb.index);
  }

  /** It left SYN_RECEIVED (established or released); true if it was there. */
  private leaveEmbryonic(tcb: Tcb): boolean {
    if (!tcb.embryonic) return false;
    tcb.embryonic = false;
    this.table.unlinkEmbryonic(tcb.index);
    return true;
  }

  private newConnection(tcb: Tcb): Connection {
    const conn = new Connection(this, tcb, {
      localAddress: formatIpv4(tcb.localAddr),
      remoteAddress: formatIpv4(tcb.remoteAddr),
    });
    tcb.conn = conn;
    return conn;
  }

  // =========================================================================
  // Accessors (TcbHome)

  /** The pool's next accessor, pointed at record `index`. */
  private cursor(index: number): Tcb {
    let tcb = this.pool[this.top];
    if (tcb === undefined) {
      tcb = new Tcb(this, this.hot, this.links, this.top);
      this.pool.push(tcb);
    }
    this.top++;
    return tcb.point(index);
  }

  connOf(index: number): Connection | null {
    return this.conns.get(index) ?? null;
  }

  setConn(index: number, conn: Connection | null): void {
    if (conn) this.conns.set(index, conn);
    else this.conns.delete(index);
  }

  /** Words of record `index`'s out-of-order chunk. */
  private oooOf(index: number): number {
    return this.table.w[this.table.at(index) + T.OOO]! >>> 2;
  }

  oooTaken(index: number, b: number): void {
    const w = this.table.w;
    w[b + X.PREV] = 0;
    w[b + X.NEXT] = this.oooHead;
    if (this.oooHead !== 0) w[this.oooOf(this.oooHead - 1) + X.PREV] = index + 1;
    this.oooHead = index + 1;
  }

  oooGiven(_index: number, b: number): void {
    const w = this.table.w;
    const prev = w[b + X.PREV]!;
    const next = w[b + X.NEXT]!;
    if (prev !== 0) w[this.oooOf(prev - 1) + X.NEXT] = next;
    else this.oooHead = next;
    if (next !== 0) w[this.oooOf(next - 1) + X.PREV] = prev;
  }

  // =========================================================================
  // Application events

  /** Tell the application what the last segment or timer did to tcb. */
  private flushEvents(tcb: Tcb): void {
    const ev = tcb.events;
    if (ev === 0) return;
    tcb.events = 0;
    if ((ev & TcbEvent.Established) !== 0) this.handshakeDone(tcb);
    if (tcb.released) return;
    if (tcb.handleMode) this.handleEvents(tcb, ev);
    else tcb.conn?.events(ev, tcb);
  }

  private handshakeDone(tcb: Tcb): void {
    if (tcb.active) {
      tcb.conn?.established();
      return;
    }
    const listener = tcb.listener;
    const wasEmbryonic = this.leaveEmbryonic(tcb);
    if (!listener) {
      this.resetAndRelease(tcb, 'listenerClosed');
      return;
    }
    if (wasEmbryonic) listener.synReceived--;
    if (listener.handles) {
      // Handle mode: the record keeps naming its listener, whose callbacks it hears.
      tcb.handleMode = true;
      listener.handleConns++;
      listener.handles.onOpen?.(tcb.handle);
      return;
    }
    const conn = this.newConnection(tcb);
    if (listener.deliver(conn)) tcb.listener = null;
  }

  /** A handle listener's connection: hand its events to the listener's callbacks. */
  private handleEvents(tcb: Tcb, ev: number): void {
    const cb = tcb.listener!.handles!;
    if ((ev & (TcbEvent.Data | TcbEvent.Eof)) !== 0) this.deliverToHandle(tcb, cb);
    if (tcb.released) return;
    if ((ev & TcbEvent.Writable) !== 0 && tcb.wantWritable && writableSpace(this, tcb) > 0) {
      tcb.wantWritable = false;
      cb.onWritable?.(tcb.handle);
    }
  }

  /** Queued bytes to onData, run by run, until it takes less than offered;
   *  then, once nothing is queued, the peer's FIN to onEnd (once). */
  private deliverToHandle(tcb: Tcb, cb: HandleCallbacks): void {
    const handle = tcb.handle;
    const bytes = this.hot.bytes;
    while (tcb.recvBuf.length > 0 && !tcb.readPaused) {
      const run = tcb.recvBuf.headRun();
      const at = tcb.recvBuf.headOffset();
      const took = cb.onData ? cb.onData(handle, bytes.subarray(at, at + run)) : run;
      if (tcb.released) return;
      const n = typeof took === 'number' ? Math.max(0, Math.min(run, Math.floor(took))) : run;
      if (n < run) tcb.readPaused = true;
      if (n > 0) userConsume(this, tcb, n);
      if (tcb.released) return;
    }
    if (tcb.finReceived && !tcb.eofTold && tcb.recvBuf.length === 0) {
      tcb.eofTold = true;
      cb.onEnd?.(handle);
    }
  }

  /** (Handle mode) deliver again after onData took less than offered. */
  resume(handle: number): void {
    this.withTcb(handle, undefined, (tcb) => {
      if (!tcb.handleMode) return;
      tcb.readPaused = false;
      this.deliverToHandle(tcb, tcb.listener!.handles!);
    });
  }

  /** The application's word of a handle's connection (0 at first, and for a stale handle). */
  userData(handle: number): number {
    const r = this.recordOf(handle);
    return r < 0 ? 0 : this.table.w[r + T.APP]!;
  }

  /** Keep one u32 for a handle's connection (per-connection state without an object). */
  setUserData(handle: number, value: number): void {
    this.withTcb(handle, undefined, (tcb) => {
      tcb.appWord = value;
    });
  }

  /** The live connections of a handle listener (a walk over the table: for
   *  an application stopping, not for the data path). */
  handlesOf(listener: Listener): number[] {
    const out: number[] = [];
    const w = this.table.w;
    for (const i of this.table.liveIndexes()) {
      const r = this.table.at(i);
      if (w[r + T.LISTENER] === listener.id + 1 && (w[r + T.FLAGS]! & TF.HANDLES) !== 0) out.push(this.table.handleOf(i));
    }
    return out;
  }

  /** ListenerCore: the application took a queued connection. */
  taken(conn: Connection): void {
    const tcb = this.enter(conn.handle);
    if (!tcb) return;
    tcb.listener = null;
    this.top = tcb.slot;
  }

  // =========================================================================
  // Handle calls (ConnectionCore): each an entry point. A stale handle (its
  // connection ended) is EPIPE for write() and a no-op for the rest.

  enter(handle: number): Tcb | null {
    if (this.down) return null;
    const index = this.table.indexOf(handle);
    return index < 0 ? null : this.cursor(index);
  }

  leave(tcb: Tcb): void {
    this.top = tcb.slot;
    this.afterEvent();
  }

  /** Queue up to len bytes of src[off..]; returns how many were taken (the
   *  rest did not fit the send buffer: onWritable says when to come back). */
  write(handle: number, src: Uint8Array, off = 0, len = src.length - off): number {
    if (!(Number.isInteger(off) && Number.isInteger(len) && off >= 0 && len >= 0 && off + len <= src.length)) {
      throw new RangeError(`write: [${off}, ${off}+${len}) is outside the ${src.length}-byte source`);
    }
    const tcb = this.enter(handle);
    if (!tcb) throw new TcpError('EPIPE', STALE);
    try {
      const n = userWrite(this, tcb, src, off, len);
      if (n < len && !tcb.released) tcb.wantWritable = true;
      return n;
    } finally {
      this.leave(tcb);
    }
  }

  // The queries below only read the record: no accessor, no end-of-event work
  // (they run on every write and every delivery, so they allocate nothing).

  writableSpace(handle: number): number {
    const r = this.recordOf(handle);
    if (r < 0 || (this.table.w[r + T.FLAGS]! & TF.FIN_QUEUED) !== 0) return 0;
    return Math.max(0, this.opts.sndBuf - this.table.w[r + T.SEND_LEN]!);
  }

  recvQueued(handle: number): number {
    const r = this.recordOf(handle);
    return r < 0 ? 0 : this.table.w[r + T.RECV_LEN]!;
  }

  sendQueued(handle: number): number {
    const r = this.recordOf(handle);
    return r < 0 ? 0 : this.table.w[r + T.SEND_LEN]!;
  }

  /** Word index of a live handle's record, -1 if the handle is stale. */
  private recordOf(handle: number): number {
    const index = this.down ? -1 : this.table.indexOf(handle);
    return index < 0 ? -1 : this.table.at(index);
  }

  consume(tcb: Tcb, n: number): void {
    userConsume(this, tcb, n);
    this.afterEvent();
  }

  /** No more writes: FIN after the queued data (RFC 9293 3.10.4 CLOSE, write half). */
  end(handle: number): void {
    this.withTcb(handle, undefined, (tcb) => userEndWrite(this, tcb));
  }

  /** No more reads: what is queued and whatever arrives later is discarded. */
  closeRead(handle: number): void {
    this.withTcb(handle, undefined, (tcb) => userCloseRead(this, tcb));
  }

  /** closeRead() and end() together. */
  close(handle: number): void {
    this.withTcb(handle, undefined, (tcb) => userClose(this, tcb));
  }

  /** RST now and release everything (RFC 9293 3.10.5 ABORT). */
  abort(handle: number): void {
    this.withTcb(handle, undefined, (tcb) => userAbort(this, tcb));
  }

  setNoDelay(handle: number, on: boolean): void {
    this.withTcb(handle, undefined, (tcb) => userSetNoDelay(this, tcb, on));
  }

  setKeepAlive(handle: number, on: boolean): void {
    this.withTcb(handle, undefined, (tcb) => userSetKeepAlive(this, tcb, on));
  }

  /** Where a handle's connection runs, or null when the handle is stale. */
  endpoints(handle: number): { localAddress: string; localPort: number; remoteAddress: string; remotePort: number } | null {
    return this.withTcb(handle, null, (tcb) => ({
      localAddress: formatIpv4(tcb.localAddr),
      localPort: tcb.localPort,
      remoteAddress: formatIpv4(tcb.remoteAddr),
      remotePort: tcb.remotePort,
    }));
  }

  /** The state of a handle's connection; CLOSED when the handle is stale. */
  stateOf(handle: number): StateName {
    const r = this.recordOf(handle);
    return STATE_NAMES[r < 0 ? State.Closed : this.table.w[r + T.STATE]!] as StateName;
  }

  /** Diagnostics and tests: an accessor of its own (not the pool's) pointed
   *  at the handle's record, or null when the handle is stale. It reads the
   *  record as it is whenever it is read; once the connection ends its
   *  `released` is true and what it reads is no longer that connection's. */
  inspect(handle: number): Tcb | null {
    const index = this.down ? -1 : this.table.indexOf(handle);
    return index < 0 ? null : new Tcb(this, this.hot, this.links, -1).point(index);
  }

  private withTcb<R>(handle: number, stale: R, fn: (tcb: Tcb) => R): R {
    const tcb = this.enter(handle);
    if (!tcb) return stale;
    try {
      return fn(tcb);
    } finally {
      this.leave(tcb);
    }
  }

  // =========================================================================
  // Lifetimes

  setState(tcb: Tcb, state: State): void {
    if (tcb.state !== State.Closed) this.stateCounts[tcb.state]--;
    if (state !== State.Closed) this.stateCounts[state]++;
    tcb.state = state;
  }

  /**
   * The one way a connection ends (docs/architecture.md section 5): its record's
   * generation moves on (every handle and accessor of it is stale from the
   * first line, so nothing a callback below does can reach it again), its
   * timers are cancelled, it leaves every table, the application hears its
   * end (pending reads and writes settled, streams closed or errored, `closed`
   * resolved; or a handle listener's onClose), every arena chunk it holds is
   * freed and the record goes back to the table's free list.
   */
  release(tcb: Tcb, reason: CloseReason, detail?: string): void {
    if (tcb.released) return;
    const index = tcb.index;
    const handle = tcb.handle;
    this.table.retire(index);
    this.timers.cancelAll(tcb.timerId);
    this.table.remove(index);
    const embryonic = this.leaveEmbryonic(tcb);
    const listener = tcb.listener;
    const handleMode = tcb.handleMode;
    tcb.listener = null;
    const conn = tcb.conn;
    if (listener) {
      if (embryonic) listener.synReceived--;
      else if (handleMode) listener.handleConns--;
      else if (conn) listener.forget(conn);
    }
    this.setState(tcb, State.Closed);
    const by = this.counters.closedBy;
    by[reason] = (by[reason] ?? 0) + 1;
    const info: CloseInfo = detail === undefined ? { reason } : { reason, detail };
    tcb.conn = null;
    conn?.released(info, tcb);
    if (handleMode) listener?.handles?.onClose?.(handle, info);
    if (listener) this.maybeFreeListenerId(listener);
    tcb.sendBuf.clear();
    tcb.recvBuf.clear();
    tcb.reassembly.clear();
    tcb.sackBoard.clear();
    tcb.events = 0;
    this.table.give(index);
    this.admission.connections(this.table.count, this.opts.maxConnections);
  }

  /** Keep a compact record for 2*MSL and release the control block. */
  enterTimeWait(tcb: Tcb): void {
    this.counters.timeWaitEntered++;
    const recycled = this.timeWait.add(
      tcb.localAddr, tcb.localPort, tcb.remoteAddr, tcb.remotePort, tcb.rcvNxt, tcb.sndMax, this.now(),
    );
    if (recycled) this.counters.timeWaitRecycled++;
    this.release(tcb, 'closed');
  }

  /** ListenerCore: stop listening; reset what the application has not taken. */
  closeListener(listener: Listener, reason: CloseReason = 'listenerClosed'): void {
    if (listener.closed) return;
    listener.markClosed();
    this.listeners.delete(listener);
    if (this.anyListener === listener) this.anyListener = null;
    else this.ports.clearListener(listener.port, listener);
    const mark = this.top;
    try {
      for (const conn of listener.drainQueue()) {
        const tcb = this.enter(conn.handle);
        if (tcb) this.resetAndRelease(tcb, reason);
        this.top = mark;
      }
      for (let i = this.table.firstEmbryonic(); i >= 0; ) {
        const next = this.table.nextEmbryonic(i);
        const tcb = this.cursor(i);
        if (tcb.listener === listener) this.resetAndRelease(tcb, reason);
        this.top = mark;
        i = next;
      }
    } finally {
      this.top = mark;
    }
    this.maybeFreeListenerId(listener);
    this.afterEvent();
  }

  private resetAndRelease(tcb: Tcb, reason: CloseReason, detail?: string): void {
    if (tcb.state !== State.SynSent) sendReset(this, tcb);
    this.release(tcb, reason, detail);
  }

  /** End everything: listeners closed, every connection reset and released, TIME_WAIT dropped. */
  shutdown(): void {
    if (this.down || this.shuttingDown) return;
    this.shuttingDown = true;
    for (const listener of [...this.listeners]) this.closeListener(listener, 'shutdown');
    const mark = this.top;
    for (const index of this.table.liveIndexes()) {
      this.resetAndRelease(this.cursor(index), 'shutdown');
      this.top = mark;
    }
    this.timeWait.clear();
    this.down = true;
    if (this.fastPath) this.hot.fast.fill(0);
  }

  get isShutdown(): boolean {
    return this.down;
  }

  private checkUp(): void {
    if (this.down || this.shuttingDown) throw new TcpError('ESHUTDOWN', 'the stack shut down');
  }

  // =========================================================================
  // Defences and pressure

  readonly dsack: DsackNote = { handle: NO_DSACK, left: 0, right: 0 };

  /**
   * An ICMP error about a segment of ours (IcmpErrorSink). RFC 5927 4.1: only
   * one quoting a sequence number we sent and have not had acknowledged counts.
   * Protocol and port unreachable are hard errors (RFC 1122 4.2.3.9): they end
   * a connection still in SYN_SENT (ECONNREFUSED); once synchronized they are
   * noted only, as every other error is (RFC 5927 4.2: an established
   * connection is not torn down on an ICMP message).
   */
  icmpError(e: IcmpErrorReport): void {
    if (this.down) return;
    const c = this.counters;
    const index = this.table.find(e.localAddr, e.localPort, e.remoteAddr, e.remotePort);
    if (index < 0) {
      c.icmpNoConnection++;
      return;
    }
    const tcb = this.cursor(index);
    if (!(seqLe(tcb.sndUna, e.seq) && seqLt(e.seq, tcb.sndMax))) {
      c.icmpBadSequence++;
      return;
    }
    const hard = e.type === 3 && (e.code === 2 || e.code === 3);
    if (hard && tcb.state === State.SynSent) {
      c.icmpHardErrors++;
      this.depth++;
      try {
        this.release(tcb, 'refused', `ICMP destination unreachable, code ${e.code}`);
      } finally {
        this.depth--;
        this.afterEvent();
      }
      return;
    }
    if (e.type === 3 && e.code === 4) c.icmpFragNeeded++;
    c.icmpSoftErrors++;
  }

  challengeAckAllowed(): boolean {
    const now = this.now();
    if (now - this.challengeWindowStart >= 1000) {
      this.challengeWindowStart = now;
      this.challengeCount = 0;
    }
    if (this.challengeCount >= this.opts.challengeAckLimit) return false;
    this.challengeCount++;
    return true;
  }

  spareChunks(): number {
    return this.hot.chunkCount - this.hot.chunksInUse() - this.opts.arenaReserve;
  }

  arenaPressure(): void {
    this.pressurePending = true;
  }

  /**
   * Drop held out-of-order data, the cheapest thing to lose (its senders still
   * hold it and send it again; RFC 9293 3.10.7.4 lets a receiver drop it,
   * RFC 2018 section 8 renege on SACKed data), connection by connection until
   * a reserve's worth of chunks is spare again (spareChunks() counts above the
   * reserve: twice the reserve is free then). Before a new connection is refused for
   * want of memory, and before embryonic ones are reset. Returns the chunks freed.
   */
  private pruneOutOfOrder(): number {
    const before = this.hot.chunksInUse();
    const mark = this.top;
    for (let i = this.oooHead - 1; i >= 0; ) {
      const next = this.table.w[this.oooOf(i) + X.NEXT]! - 1; // before clear() may unlink i
      const tcb = this.cursor(i);
      if (tcb.reassembly.count > 0) {
        this.counters.reassemblyPrunedBytes += tcb.reassembly.clear();
        this.counters.reassemblyPrunes++;
      }
      this.top = mark;
      if (this.spareChunks() >= this.opts.arenaReserve) break;
      i = next;
    }
    return before - this.hot.chunksInUse();
  }

  /**
   * Runs at the end of every entry point (input, timer, application call), so
   * that a connection is never released under the feet of code working on it.
   * If the arena is still below half its reserve, drop held out-of-order data,
   * then, if that was not enough, reset the oldest embryonic connection
   * (docs/architecture.md section 4), one per event.
   */
  private afterEvent(): void {
    if (!this.pressurePending || this.depth > 0) return;
    this.pressurePending = false;
    if (this.hot.chunkCount - this.hot.chunksInUse() >= this.opts.arenaReserve >>> 1) return;
    this.pruneOutOfOrder();
    if (this.hot.chunkCount - this.hot.chunksInUse() >= this.opts.arenaReserve >>> 1) return;
    const oldest = this.table.firstEmbryonic();
    if (oldest < 0) return;
    this.counters.pressureResets++;
    const mark = this.top;
    try {
      this.resetAndRelease(this.cursor(oldest), 'pressure');
    } finally {
      this.top = mark;
    }
  }

  // =========================================================================
  // Stats

  stats(): TcpStats {
    const byState = {} as Record<StateName, number>;
    for (let s = 0; s < State.Count; s++) byState[STATE_NAMES[s]!] = this.stateCounts[s]!;
    byState.LISTEN = this.listeners.size;
    byState.TIME_WAIT = this.timeWait.size;
    const timers: Record<string, number> = {};
    for (let k = 0; k < TCP_TIMER_COUNT; k++) timers[TCP_TIMER_NAMES[k]!] = this.timers.countByKind(k as TimerKind);
    const backlog = [];
    for (const l of this.listeners) {
      backlog.push({ port: l.port, limit: l.backlog, synReceived: l.synReceived, acceptQueue: l.queued });
    }
    return {
      connections: this.table.count,
      byState,
      listeners: this.listeners.size,
      backlog,
      timeWait: this.timeWait.size,
      timers,
      chunks: {
        send: this.hot.chunksByKind(OwnerKind.TcpSend),
        recv: this.hot.chunksByKind(OwnerKind.TcpRecv),
        reassembly: this.hot.chunksByKind(OwnerKind.TcpReassembly),
      },
      counters: { ...this.counters, closedBy: { ...this.counters.closedBy }, slowPath: this.slowPathCounts() },
    };
  }

  private slowPathCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = Slow.DISABLED; i < Slow.COUNT; i++) out[SLOW_NAMES[i]!] = this.slowCounts[i]!;
    return out;
  }
}

/** Arena table region id of the TIME_WAIT records (the control blocks' is 1, the stack's timers' 2). */
const TIME_WAIT_REGION_ID = 3;

/** Timer owner ids a Tcp needs: one for its TIME_WAIT table, one per control
 *  block (the last ids of the queue: their positions live in the records). */
export function tcpTimerOwners(options: TcpOptions): number {
  return options.maxConnections + 1;
}

/** Arena bytes a Tcp's control block table takes for `maxConnections`. */
export function tcbTableBytes(maxConnections: number): number {
  return TcbTable.bytesFor(maxConnections);
}

export { TCB_BYTES };

function checkPort(port: number, what: string): void {
  if (!(Number.isInteger(port) && port > 0 && port <= 65535)) {
    throw new TcpError('EINVAL', `${what}: port must be 1-65535, got ${port}`);
  }
}
