// TCP (RFC 9293) for one stack: the tables (ports, connections, listeners,
// TIME_WAIT), segment demultiplexing, passive and active open, the socket API
// entry points, stats(), and release(): the single function through which every
// connection ends (docs/architecture.md section 5).

import { formatIpv4, toIpv4, type Ipv4Input } from '../address.js';
import type { HotPath } from '../hotpath/engine.js';
import { OwnerKind } from '../hotpath/engine.js';
import { CHUNK_SIZE, D, Kind, TCP_ACK, TCP_RST, TCP_SYN } from '../hotpath/layout.js';
import type { TimerKind, TimerOwner, TransportHandler, TransportLower } from '../layers.js';
import type { TimerQueue } from '../time/timers.js';
import { ADMISSION_DEFAULTS, Admission } from '../admission.js';
import { Connection, type ConnectionCore } from './connection.js';
import type { TcpContext } from './context.js';
import { TcpError } from './errors.js';
import { applySynOptions, segmentArrives, synSentArrives } from './input.js';
import { IsnGenerator, randomSecret, randomU32 } from './isn.js';
import { Listener, type ListenerCore, type ListenOptions } from './listener.js';
import { NO_WSCALE, resolveOptions, type TcpOptions, windowShiftFor } from './options.js';
import { output, sendCookieSynAck, sendReset, sendResetReply, sendSyn } from './output.js';
import { MAX_AGE as COOKIE_MAX_AGE_MIN, SynCookies } from './syn-cookies.js';
import { PortTable } from './ports.js';
import { Segment } from './segment.js';
import { State, STATE_NAMES, type StateName } from './state.js';
import { TcpCounters, type CloseReason, type TcpStats } from './stats.js';
import { remoteKeyOf, Tcb, TcbEvent } from './tcb.js';
import { TCP_TIMER_COUNT, TCP_TIMER_NAMES, TcpTimer } from './timer-kinds.js';
import { onTcbTimer } from './timers.js';
import { NO_RECORD, timeWaitArrives, TimeWaitTable } from './time-wait.js';
import {
  userAbort, userClose, userCloseRead, userConsume, userEndWrite, userSetKeepAlive, userSetNoDelay, userWrite,
  writableSpace,
} from './user-calls.js';

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

/** Largest id of an arena owner (24 bits, see ownerTag). */
const MAX_OWNER_ID = 0xffffff;

export class Tcp implements TransportHandler, TcpContext, ConnectionCore, ListenerCore {
  readonly hot: HotPath;
  readonly opts: TcpOptions;
  readonly counters = new TcpCounters();

  private readonly ports = new PortTable();
  /** Every live control block by owner id (iteration order = age). */
  private readonly byId = new Map<number, Tcb>();
  /** Passive opens in SYN_RECEIVED, oldest first (arena-pressure victims). */
  private readonly embryonic = new Set<Tcb>();
  /** Connections that may hold out-of-order data (pruned first under arena
   *  pressure); some may have drained since, which prune finds out. */
  private readonly reassembling = new Set<Tcb>();
  private readonly listeners = new Set<Listener>();
  /** The wildcard listener (listenAny): SYNs to ports without a listener of their own. */
  private anyListener: Listener | null = null;
  private readonly timeWait: TimeWaitTable;
  private readonly isnGen = new IsnGenerator();
  private readonly cookies = new SynCookies(Uint32Array.of(...randomSecret(), ...randomSecret()));
  /** When the last cookie went out: ACKs are checked as cookies only for a
   *  cookie's lifetime after it (a forged ACK has no chance otherwise). */
  private lastCookieAt = -Infinity;
  private readonly stateCounts = new Int32Array(State.Count);
  /** Live control blocks by timer id - timerBase (their slot in TCP's id range). */
  private readonly byTimer: (Tcb | undefined)[];
  /** Free timer ids of that range, a stack of them. */
  private readonly freeTimerIds: Int32Array;
  private freeTimerCount: number;
  private nextId = 1;
  private readonly scratch = new Segment();
  private depth = 0;
  private challengeWindowStart = -Infinity;
  private challengeCount = 0;
  private pressurePending = false;
  private down = false;

  /**
   * `timers` must have tcpTimerOwners(options) owner ids from `timerBase` on:
   * one per control block (maxConnections) and one for the TIME_WAIT table.
   */
  constructor(
    readonly lower: TransportLower,
    readonly timers: TimerQueue,
    options?: Partial<TcpOptions>,
    /** The stack's admission control; alone (tests), one watching no heap. */
    private readonly admission: Admission = new Admission({ ...ADMISSION_DEFAULTS, heap: null }, () => lower.clock.now()),
    private readonly timerBase = 0,
  ) {
    this.hot = lower.hot;
    this.opts = resolveOptions(options);
    const n = this.opts.maxConnections;
    this.byTimer = new Array<Tcb | undefined>(n).fill(undefined);
    this.freeTimerIds = new Int32Array(n);
    for (let i = 0; i < n; i++) this.freeTimerIds[i] = timerBase + n - 1 - i; // lowest first
    this.freeTimerCount = n;
    this.timeWait = new TimeWaitTable(timers, this.opts.maxTimeWait, 2 * this.opts.msl, randomU32(), timerBase + n);
  }

  now(): number {
    return this.lower.clock.now();
  }

  // =========================================================================
  // Segment arrival (TransportHandler)

  input(): void {
    // A nested input (an application callback that makes a frame arrive) gets
    // its own scratch record; the outer one is still in use.
    const seg = this.depth === 0 ? this.scratch : new Segment();
    this.depth++;
    try {
      this.dispatch(seg);
    } finally {
      this.depth--;
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
    const key = remoteKeyOf(seg.srcAddr, seg.srcPort);
    const entry = this.ports.get(seg.dstPort);
    if (local !== 0 && seg.dstAddr !== local) {
      // Broadcast or another host's: never answered (RFC 1122 4.2.3.10),
      // unless it belongs to one of a transparent proxy's connections.
      if (!this.lower.transparent || !this.transparentInput(entry?.conns.get(key), seg, key)) c.dropNotForUs++;
      return;
    }
    const tcb = entry?.conns.get(key);
    if (tcb && tcb.localAddr === seg.dstAddr) {
      this.connectionInput(tcb, seg);
      return;
    }
    const rec = this.timeWait.lookup(seg.dstPort, key, seg.dstAddr);
    if (rec !== NO_RECORD && timeWaitArrives(this, this.timeWait, rec, seg)) return;
    const listener = entry?.listener ?? this.anyListener;
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

  /** A segment to another address than ours: only a live connection or
   *  TIME_WAIT record of that address takes it. True if one did. */
  private transparentInput(tcb: Tcb | undefined, seg: Segment, key: number): boolean {
    if (tcb && tcb.localAddr === seg.dstAddr) {
      this.connectionInput(tcb, seg);
      return true;
    }
    const rec = this.timeWait.lookup(seg.dstPort, key, seg.dstAddr);
    return rec !== NO_RECORD && timeWaitArrives(this, this.timeWait, rec, seg);
  }

  private connectionInput(tcb: Tcb, seg: Segment): void {
    tcb.lastHeard = this.now();
    tcb.keepaliveProbes = 0;
    tcb.inInput = true;
    if (tcb.state === State.SynSent) synSentArrives(this, tcb, seg);
    else segmentArrives(this, tcb, seg);
    // The application hears first (it may read, write or close), then one
    // output() sends data, the ACK and any window update together.
    if (!tcb.released) this.flushEvents(tcb);
    tcb.inInput = false;
    if (!tcb.released && tcb.state !== State.SynSent && tcb.state !== State.SynReceived) output(this, tcb);
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
    const tcb = this.newTcb(seg.dstPort, seg.srcAddr, seg.srcPort, false);
    tcb.listener = listener;
    listener.synReceived++;
    this.embryonic.add(tcb);
    tcb.irs = seg.seq;
    tcb.rcvNxt = this.hot.seqAdd(seg.seq, 1);
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
    if (this.byId.size >= this.opts.maxConnections) {
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
    const hot = this.hot;
    const peerIsn = hot.seqAdd(seg.seq, -1);
    const cookie = hot.seqAdd(seg.ack, -1);
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
    const tcb = this.newTcb(seg.dstPort, seg.srcAddr, seg.srcPort, false);
    tcb.listener = listener;
    listener.synReceived++;
    this.embryonic.add(tcb);
    tcb.iss = cookie;
    tcb.sndUna = cookie;
    tcb.sndNxt = seg.ack;
    tcb.sndMax = seg.ack;
    tcb.recover = cookie;
    tcb.irs = peerIsn;
    tcb.rcvNxt = seg.seq;
    tcb.rcvAdvRight = hot.seqAdd(seg.seq, Math.min(this.opts.rcvBuf, 65535));
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
    try {
      if (owner === this.timeWait.timerId) {
        this.counters.timeWaitExpired += this.timeWait.expire(this.now());
        return;
      }
      const tcb = this.byTimer[owner - this.timerBase];
      if (!tcb || tcb.released) return;
      onTcbTimer(this, tcb, kind);
      if (!tcb.released) this.flushEvents(tcb);
    } finally {
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
    if (this.ports.get(port)?.listener) throw new TcpError('EADDRINUSE', `port ${port} already has a listener`);
    const listener = new Listener(this, port, backlog);
    this.ports.setListener(port, listener);
    this.listeners.add(listener);
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
    const listener = new Listener(this, 0, backlog);
    this.anyListener = listener;
    this.listeners.add(listener);
    return listener;
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
    if (this.byId.size >= this.opts.maxConnections) {
      throw new TcpError('EMFILE', `connection limit (${this.opts.maxConnections}) reached`);
    }
    if (!this.admission.admit()) {
      this.counters.connectRefusedPressure++;
      throw new TcpError('ENOBUFS', 'the heap is above its high-water mark: no new connection now');
    }
    const localPort = this.chooseLocalPort(remote, port, options.localPort, localAddr !== this.lower.localAddress);
    const tcb = this.newTcb(localPort, remote, port, true, localAddr);
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
    this.afterEvent();
    return promise;
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

  private chooseLocalPort(remote: number, port: number, wanted: number | undefined, preferOnly: boolean): number {
    const key = remoteKeyOf(remote, port);
    if (wanted !== undefined) {
      checkPort(wanted, 'connect localPort');
      const free = this.ports.tupleFree(wanted, key, this.timeWait);
      if (!free && preferOnly) return this.ephemeralPort(remote, port, key);
      if (!free) {
        throw new TcpError('EADDRINUSE', `${formatIpv4(this.lower.localAddress)}:${wanted} -> ${formatIpv4(remote)}:${port} is in use`);
      }
      return wanted;
    }
    return this.ephemeralPort(remote, port, key);
  }

  private ephemeralPort(remote: number, port: number, key: number): number {
    const o = this.opts;
    const chosen = this.ports.ephemeral(key, o.ephemeralLow, o.ephemeralHigh, this.timeWait);
    if (chosen === 0) {
      this.counters.ephemeralExhausted++;
      throw new TcpError('EADDRINUSE',
        `no free ephemeral port in ${o.ephemeralLow}-${o.ephemeralHigh} for ${formatIpv4(remote)}:${port}`);
    }
    return chosen;
  }

  /** A control block registered in every table; the caller sets its state. */
  private newTcb(
    localPort: number, remoteAddr: number, remotePort: number, active: boolean, local = this.lower.localAddress,
  ): Tcb {
    const now = this.now();
    const tcb = new Tcb(this.hot, {
      id: this.allocId(),
      timerId: this.freeTimerIds[--this.freeTimerCount]!,
      localAddr: local,
      localPort,
      remoteAddr,
      remotePort,
      now,
      active,
      rto: this.opts.initialRto,
      noDelay: this.opts.noDelay,
      keepalive: this.opts.keepalive,
    });
    const iss = this.isnGen.isn(now, local, localPort, remoteAddr, remotePort);
    tcb.iss = iss;
    tcb.sndUna = iss;
    tcb.sndNxt = this.hot.seqAdd(iss, 1);
    tcb.sndMax = tcb.sndNxt;
    tcb.recover = iss;
    tcb.rcvMss = this.ourMss(remoteAddr);
    tcb.sndMss = Math.min(536, tcb.rcvMss);
    tcb.wscaleOffer = this.opts.windowScaling ? windowShiftFor(this.opts.rcvBuf) : NO_WSCALE;
    tcb.sackOffer = this.opts.sack;
    this.byId.set(tcb.id, tcb);
    this.byTimer[tcb.timerId - this.timerBase] = tcb;
    this.ports.addConn(tcb);
    this.admission.connections(this.byId.size, this.opts.maxConnections);
    return tcb;
  }

  /** A 24-bit owner id not used by a live connection. Bounded: at most byId.size + 1 tries. */
  private allocId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = id >= MAX_OWNER_ID ? 1 : id + 1;
      if (!this.byId.has(id)) return id;
    }
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
  // Application events

  /** Tell the application what the last segment or timer did to tcb. */
  private flushEvents(tcb: Tcb): void {
    const ev = tcb.events;
    if (ev === 0) return;
    tcb.events = 0;
    if ((ev & TcbEvent.Established) !== 0) this.handshakeDone(tcb);
    if (tcb.released || !tcb.conn) return;
    tcb.conn.events(ev);
  }

  private handshakeDone(tcb: Tcb): void {
    if (tcb.active) {
      tcb.conn?.established();
      return;
    }
    const listener = tcb.listener;
    const wasEmbryonic = this.embryonic.delete(tcb);
    const conn = this.newConnection(tcb);
    if (!listener) return;
    if (wasEmbryonic) listener.synReceived--;
    if (listener.deliver(conn)) tcb.listener = null;
  }

  /** ListenerCore: the application took a queued connection. */
  taken(conn: Connection): void {
    if (conn.tcb) conn.tcb.listener = null;
  }

  // =========================================================================
  // ConnectionCore: calls from Connection (user-calls.ts), each an entry point

  write(tcb: Tcb, src: Uint8Array, off: number, len: number): number {
    try {
      return userWrite(this, tcb, src, off, len);
    } finally {
      this.afterEvent();
    }
  }

  writableSpace(tcb: Tcb): number {
    return writableSpace(this, tcb);
  }

  consume(tcb: Tcb, n: number): void {
    userConsume(this, tcb, n);
    this.afterEvent();
  }

  endWrite(tcb: Tcb): void {
    userEndWrite(this, tcb);
    this.afterEvent();
  }

  closeRead(tcb: Tcb): void {
    userCloseRead(this, tcb);
    this.afterEvent();
  }

  close(tcb: Tcb): void {
    userClose(this, tcb);
    this.afterEvent();
  }

  abort(tcb: Tcb): void {
    userAbort(this, tcb);
    this.afterEvent();
  }

  setNoDelay(tcb: Tcb, on: boolean): void {
    userSetNoDelay(this, tcb, on);
    this.afterEvent();
  }

  setKeepAlive(tcb: Tcb, on: boolean): void {
    userSetKeepAlive(this, tcb, on);
  }

  // =========================================================================
  // Lifetimes

  setState(tcb: Tcb, state: State): void {
    if (tcb.state !== State.Closed) this.stateCounts[tcb.state]--;
    if (state !== State.Closed) this.stateCounts[state]++;
    tcb.state = state;
  }

  /**
   * The one way a connection ends (docs/architecture.md section 5): cancel its timers,
   * remove it from every table, hand the application its end (pending reads
   * and writes settled, streams closed or errored, `closed` resolved), free
   * every arena chunk, and cut the links between control block and Connection.
   */
  release(tcb: Tcb, reason: CloseReason, detail?: string): void {
    if (tcb.released) return;
    tcb.released = true;
    this.timers.cancelAll(tcb.timerId);
    this.byTimer[tcb.timerId - this.timerBase] = undefined;
    this.freeTimerIds[this.freeTimerCount++] = tcb.timerId;
    this.ports.removeConn(tcb);
    this.byId.delete(tcb.id);
    this.admission.connections(this.byId.size, this.opts.maxConnections);
    this.reassembling.delete(tcb);
    const embryonic = this.embryonic.delete(tcb);
    const listener = tcb.listener;
    tcb.listener = null;
    if (listener) {
      if (embryonic) listener.synReceived--;
      else if (tcb.conn) listener.forget(tcb.conn);
    }
    this.setState(tcb, State.Closed);
    const by = this.counters.closedBy;
    by[reason] = (by[reason] ?? 0) + 1;
    const conn = tcb.conn;
    tcb.conn = null;
    conn?.released(detail === undefined ? { reason } : { reason, detail });
    tcb.sendBuf.clear();
    tcb.recvBuf.clear();
    tcb.reassembly.clear();
    tcb.events = 0;
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
    for (const conn of listener.drainQueue()) {
      const tcb = conn.tcb;
      if (tcb) this.resetAndRelease(tcb, reason);
    }
    for (const tcb of [...this.embryonic]) {
      if (tcb.listener === listener) this.resetAndRelease(tcb, reason);
    }
    this.afterEvent();
  }

  private resetAndRelease(tcb: Tcb, reason: CloseReason, detail?: string): void {
    if (tcb.state !== State.SynSent) sendReset(this, tcb);
    this.release(tcb, reason, detail);
  }

  /** End everything: listeners closed, every connection reset and released, TIME_WAIT dropped. */
  shutdown(): void {
    if (this.down) return;
    this.down = true;
    for (const listener of [...this.listeners]) this.closeListener(listener, 'shutdown');
    for (const tcb of [...this.byId.values()]) this.resetAndRelease(tcb, 'shutdown');
    this.timeWait.clear();
  }

  get isShutdown(): boolean {
    return this.down;
  }

  private checkUp(): void {
    if (this.down) throw new TcpError('ESHUTDOWN', 'the stack shut down');
  }

  // =========================================================================
  // Defences and pressure

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

  holdsOutOfOrder(tcb: Tcb): void {
    this.reassembling.add(tcb);
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
    for (const tcb of this.reassembling) {
      this.reassembling.delete(tcb);
      if (tcb.reassembly.count === 0) continue;
      this.counters.reassemblyPrunedBytes += tcb.reassembly.clear();
      this.counters.reassemblyPrunes++;
      if (this.spareChunks() >= this.opts.arenaReserve) break;
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
    const oldest = this.embryonic.values().next();
    if (oldest.done) return;
    this.counters.pressureResets++;
    this.resetAndRelease(oldest.value, 'pressure');
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
      connections: this.byId.size,
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
      counters: { ...this.counters, closedBy: { ...this.counters.closedBy } },
    };
  }
}

/** Timer owner ids a Tcp needs: one per control block, one for its TIME_WAIT table. */
export function tcpTimerOwners(options: TcpOptions): number {
  return options.maxConnections + 1;
}

function checkPort(port: number, what: string): void {
  if (!(Number.isInteger(port) && port > 0 && port <= 65535)) {
    throw new TcpError('EINVAL', `${what}: port must be 1-65535, got ${port}`);
  }
}
