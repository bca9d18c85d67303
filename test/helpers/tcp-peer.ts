// A scripted TCP peer in the spirit of packetdrill: one Tcp instance over a
// fake IPv4 layer, on a real hot-path engine, a real TimerQueue and a virtual
// clock. The test injects segments (built with the engine's encodeTcp, decoded
// with hot.decode, then handed to tcp.input()), reads the segments TCP sent
// (each frame decoded again, checksums verified), and advances virtual time,
// firing due timers in order.
//
//   const p = await TcpPeer.create('wasm');
//   const listener = p.tcp.listen(80);
//   p.inject({ flags: SYN, seq: 1000, mss: 1460 });
//   const synAck = p.expect({ flags: SYN | ACK, ack: 1001 });
//   p.inject({ flags: ACK, seq: 1001, ack: synAck.seq + 1 });

import { expect } from 'vitest';
import { createEngine } from '../../host/hotpath.js';
import type { EngineName, HotPath } from '../../stack/hotpath/engine.js';
import { OwnerKind, ownerTag } from '../../stack/hotpath/engine.js';
import { D, E, ETH_HLEN, F, IPV4_HLEN, Kind, Slow, TCP_ACK, TCP_FIN, TCP_PSH, TCP_URG, TCP_RST, TCP_SYN } from '../../stack/hotpath/layout.js';
import type { TransportLower } from '../../stack/layers.js';
import { TimerQueue } from '../../stack/time/timers.js';
import { VirtualClock } from '../../stack/time/virtual-clock.js';
import { parseIpv4 } from '../../stack/address.js';
import { Tcp, tcpTimerOwners } from '../../stack/tcp/tcp.js';
import { resolveOptions, type TcpOptions } from '../../stack/tcp/options.js';
import type { Connection } from '../../stack/tcp/connection.js';
import type { Listener } from '../../stack/tcp/listener.js';
import type { Tcb } from '../../stack/tcp/tcb.js';

export const SYN = TCP_SYN;
export const ACK = TCP_ACK;
export const FIN = TCP_FIN;
export const RST = TCP_RST;
export const PSH = TCP_PSH;
export const URG = TCP_URG;

export const LOCAL_IP = '10.0.0.1';
export const REMOTE_IP = '10.0.0.2';
export const REMOTE_PORT = 40000;

const LOCAL_MAC = [0x0200, 0x0000_0001] as const;
const REMOTE_MAC = [0x0200, 0x0000_0002] as const;

/** An established connection and both sides' next sequence numbers. */
export interface Established {
  conn: Connection;
  listener?: Listener;
  /** Our SND.NXT. */
  ours: number;
  /** The peer's next sequence number (our RCV.NXT). */
  theirs: number;
  /** The peer's port (source of injected segments). */
  sport: number;
  /** Our port. */
  dport: number;
}

/** A segment TCP sent, decoded from the wire bytes. */
export interface Sent {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** MSS option, 0 when absent. */
  mss: number;
  /** Window-scale option, 0xff when absent. */
  wscale: number;
  sackOk: boolean;
  /** SACK blocks as [left0, right0, left1, right1, ...] (empty when none). */
  sack: number[];
  ts: boolean;
  payload: Uint8Array;
  /** Virtual time it was sent at. */
  at: number;
}

/** A segment to inject; unset fields take the defaults noted. */
export interface Inject {
  flags: number;
  seq: number;
  /** default 0 */
  ack?: number;
  /** raw window field, default 65535 */
  window?: number;
  /** default TcpPeer.peerPort (REMOTE_PORT, or the port an open() connected to) */
  sport?: number;
  /** default TcpPeer.port (80, or our port after open()) */
  dport?: number;
  /** default REMOTE_IP */
  src?: string;
  /** default LOCAL_IP */
  dst?: string;
  /** MSS option (0/undefined: absent) */
  mss?: number;
  wscale?: number;
  sackOk?: boolean;
  /** SACK blocks as [left0, right0, left1, right1, ...] (at most 4 blocks). */
  sack?: number[];
  /** The urgent pointer field (meaningful with URG). */
  urgent?: number;
  payload?: Uint8Array;
}

/** A field-by-field expectation; flags must match exactly when given. */
export type Expect = Partial<Pick<Sent, 'flags' | 'seq' | 'ack' | 'window' | 'mss' | 'sport' | 'dport' | 'dst'>> & {
  /** Payload length. */
  len?: number;
  payload?: Uint8Array;
};

export interface PeerOptions {
  tcp?: Partial<TcpOptions>;
  /** IP MTU of the fake link (default 1500). */
  mtu?: number;
  memoryBytes?: number;
}

/** The fake IPv4 layer: fills the IPv4/Ethernet words, encodes, and records the frame. */
class FakeLower implements TransportLower {
  readonly localAddress = parseIpv4(LOCAL_IP);
  readonly transportAt = ETH_HLEN + IPV4_HLEN;
  /** Set to make allocTx() fail (arena pressure). */
  failTx = false;
  readonly frames: { bytes: Uint8Array; at: number }[] = [];

  constructor(
    readonly hot: HotPath,
    readonly clock: VirtualClock,
    private readonly mtu: number,
  ) {}

  maxTransportLength(_dst: number): number {
    return this.mtu - 20;
  }

  allocTx(): number {
    if (this.failTx) return 0;
    return this.hot.alloc(ownerTag(OwnerKind.Tx, 0));
  }

  freeTx(slot: number): void {
    this.hot.free(slot);
  }

  /** The same words as sendTcp's, for a burst the engine builds (unless TX fails). */
  routeBurst(dst: number): boolean {
    if (this.failTx) return false;
    this.fillRoute(dst);
    return true;
  }

  sendBurst(count: number): void {
    const f = this.hot.fast;
    for (let i = 0; i < count; i++) this.record(f[F.BURST_SLOTS + i]!, f[F.BURST_LENS + i]!);
  }

  sendTcp(slot: number, payloadLen: number, dst: number): boolean {
    this.fillRoute(dst);
    const len = this.hot.encodeTcp(slot, payloadLen);
    this.record(slot, len);
    return len > 0;
  }

  private record(slot: number, len: number): void {
    this.frames.push({ bytes: this.hot.bytes.slice(slot, slot + len), at: this.clock.now() });
    this.hot.free(slot);
  }

  private fillRoute(dst: number): void {
    const r = this.hot.request;
    r[E.DST_MAC_HI] = REMOTE_MAC[0];
    r[E.DST_MAC_LO] = REMOTE_MAC[1];
    r[E.SRC_MAC_HI] = LOCAL_MAC[0];
    r[E.SRC_MAC_LO] = LOCAL_MAC[1];
    r[E.IP_SRC] = this.localAddress;
    r[E.IP_DST] = dst;
    r[E.IP_TTL] = 64;
    r[E.IP_TOS] = 0;
    r[E.IP_ID] = 0;
    r[E.IP_FRAG] = 0x4000;
  }

  sendUdp(): boolean {
    throw new Error('FakeLower: no UDP');
  }

  sendUnreachable(): void {}
}

export class TcpPeer {
  /** Port injected segments go to unless `dport` is given. */
  port = 80;
  /** Port injected segments come from unless `sport` is given. */
  peerPort = REMOTE_PORT;
  private readCursor = 0;

  private constructor(
    readonly hot: HotPath,
    readonly clock: VirtualClock,
    readonly timers: TimerQueue,
    readonly lower: FakeLower,
    readonly tcp: Tcp,
  ) {}

  static async create(engine: EngineName, opts: PeerOptions = {}): Promise<TcpPeer> {
    const hot = await createEngine(engine, opts.memoryBytes ?? 2 * 1024 * 1024);
    const clock = new VirtualClock();
    const tcpOptions = resolveOptions(opts.tcp, hot.buffer.byteLength);
    const timers = new TimerQueue(tcpTimerOwners(tcpOptions));
    const lower = new FakeLower(hot, clock, opts.mtu ?? 1500);
    const tcp = new Tcp(lower, timers, tcpOptions);
    return new TcpPeer(hot, clock, timers, lower, tcp);
  }

  now(): number {
    return this.clock.now();
  }

  // ---- inject --------------------------------------------------------------

  /** Build the segment in an RX chunk with the engine, decode it, and hand it to TCP. */
  inject(s: Inject): void {
    const hot = this.hot;
    const slot = hot.alloc(ownerTag(OwnerKind.Rx, 0));
    if (slot === 0) throw new Error('TcpPeer.inject: arena full');
    try {
      const r = hot.request;
      r[E.DST_MAC_HI] = LOCAL_MAC[0];
      r[E.DST_MAC_LO] = LOCAL_MAC[1];
      r[E.SRC_MAC_HI] = REMOTE_MAC[0];
      r[E.SRC_MAC_LO] = REMOTE_MAC[1];
      r[E.IP_SRC] = parseIpv4(s.src ?? REMOTE_IP);
      r[E.IP_DST] = parseIpv4(s.dst ?? LOCAL_IP);
      r[E.IP_TTL] = 64;
      r[E.IP_TOS] = 0;
      r[E.IP_ID] = 1;
      r[E.IP_FRAG] = 0;
      r[E.SPORT] = s.sport ?? this.peerPort;
      r[E.DPORT] = s.dport ?? this.port;
      r[E.TCP_SEQ] = s.seq >>> 0;
      r[E.TCP_ACK] = (s.ack ?? 0) >>> 0;
      r[E.TCP_FLAGS] = s.flags;
      r[E.TCP_WINDOW] = s.window ?? 65535;
      r[E.TCP_URG] = s.urgent ?? 0;
      r[E.OPT_MSS] = s.mss ?? 0;
      r[E.OPT_WSCALE] = s.wscale ?? 0xff;
      r[E.OPT_SACK_OK] = s.sackOk ? 1 : 0;
      r[E.OPT_TS] = 0;
      const sack = s.sack ?? [];
      r[E.OPT_SACK_COUNT] = sack.length >>> 1;
      sack.forEach((edge, i) => (r[E.OPT_SACK + i] = edge >>> 0));
      const payload = s.payload ?? new Uint8Array(0);
      hot.bytes.set(payload, slot + 34 + hot.tcpHeaderLen());
      const len = hot.encodeTcp(slot, payload.length);
      // As Ethernet does: the engine's fast path first, the layers after.
      const fast = this.tcp.fastReceiver;
      const result = fast ? hot.tcpInput(slot, len, this.clock.now()) : 0;
      if (fast && (result & 0xff) === Slow.FAST) return fast.fastInput(result);
      if (fast && (result & 0xff) !== Slow.NOT_TCP) fast.slowInput(result & 0xff);
      const reason = fast ? hot.decoded[D.REASON]! : hot.decode(slot, len);
      if (reason !== 0) throw new Error(`TcpPeer.inject: decode rejected the segment (reason ${reason})`);
      this.tcp.input();
    } finally {
      hot.free(slot);
    }
  }

  // ---- scripted handshakes ---------------------------------------------------

  /**
   * Passive open on `port` (a listener is created if needed): SYN from the
   * peer at `peerIss`, our SYN-ACK, the peer's ACK. Returns the connection and
   * both sides' next sequence numbers.
   */
  async accept(o: { peerIss?: number; mss?: number; window?: number; sport?: number; listener?: Listener; wscale?: number; sackOk?: boolean } = {}):
    Promise<Established> {
    const listener = o.listener ?? this.tcp.listen(this.port);
    const peerIss = o.peerIss ?? 1000;
    const sport = o.sport ?? this.peerPort;
    this.inject({ flags: SYN, seq: peerIss, mss: o.mss ?? 1460, window: o.window, sport, wscale: o.wscale, sackOk: o.sackOk });
    const synAck = this.expect({ flags: SYN | ACK, ack: add(peerIss, 1) });
    const next = listener.next();
    this.inject({ flags: ACK, seq: add(peerIss, 1), ack: add(synAck.seq, 1), window: o.window, sport });
    const r = await next;
    if (r.done) throw new Error('TcpPeer.accept: listener closed');
    return { conn: r.value, listener, ours: add(synAck.seq, 1), theirs: add(peerIss, 1), sport, dport: this.port };
  }

  /** Active open to REMOTE_IP:`dport`: our SYN, the peer's SYN-ACK, our ACK. */
  async open(o: { peerIss?: number; mss?: number; window?: number; dport?: number; noDelay?: boolean } = {}):
    Promise<Established> {
    const dport = o.dport ?? 80;
    const pending = this.tcp.connect(REMOTE_IP, dport, { noDelay: o.noDelay });
    const syn = this.expect({ flags: SYN, dport });
    const peerIss = o.peerIss ?? 5000;
    this.inject({
      flags: SYN | ACK, seq: peerIss, ack: add(syn.seq, 1), sport: dport, dport: syn.sport,
      mss: o.mss ?? 1460, window: o.window,
    });
    this.expect({ flags: ACK, ack: add(peerIss, 1) });
    const conn = await pending;
    // Segments from the peer now come from dport to our ephemeral port.
    this.port = syn.sport;
    this.peerPort = dport;
    return { conn, ours: add(syn.seq, 1), theirs: add(peerIss, 1), sport: dport, dport: syn.sport };
  }

  // ---- observe ---------------------------------------------------------------

  /** Segments sent since the last read, decoded; marks them read. */
  drain(): Sent[] {
    const out: Sent[] = [];
    while (this.readCursor < this.lower.frames.length) out.push(this.decodeFrame(this.lower.frames[this.readCursor++]!));
    return out;
  }

  /** The next unread segment, or undefined. */
  next(): Sent | undefined {
    if (this.readCursor >= this.lower.frames.length) return undefined;
    return this.decodeFrame(this.lower.frames[this.readCursor++]!);
  }

  /** Take the next unread segment and check it against `e`. */
  expect(e: Expect): Sent {
    const s = this.next();
    expect(s, `expected a segment ${describe(e)} but TCP sent nothing`).toBeDefined();
    expectSegment(s!, e);
    return s!;
  }

  /** Nothing unread was sent. */
  expectNone(): void {
    const s = this.next();
    expect(s, s ? `unexpected segment ${describeSent(s)}` : '').toBeUndefined();
  }

  /** Number of segments sent so far (read or not). */
  get sentCount(): number {
    return this.lower.frames.length;
  }

  private decodeFrame(f: { bytes: Uint8Array; at: number }): Sent {
    const hot = this.hot;
    const slot = hot.alloc(ownerTag(OwnerKind.App, 0));
    if (slot === 0) throw new Error('TcpPeer: arena full');
    try {
      hot.bytes.set(f.bytes, slot);
      const reason = hot.decode(slot, f.bytes.length);
      if (reason !== 0) throw new Error(`TcpPeer: TCP sent a frame the decoder rejects (reason ${reason})`);
      const d = hot.decoded;
      if (d[D.KIND] !== Kind.Tcp) throw new Error('TcpPeer: not a TCP frame');
      const po = d[D.PAYLOAD_OFF]!;
      return {
        src: d[D.IP_SRC]!,
        dst: d[D.IP_DST]!,
        sport: d[D.SPORT]!,
        dport: d[D.DPORT]!,
        seq: d[D.TCP_SEQ]!,
        ack: d[D.TCP_ACK]!,
        flags: d[D.TCP_FLAGS]!,
        window: d[D.TCP_WINDOW]!,
        mss: d[D.OPT_MSS]!,
        wscale: d[D.OPT_WSCALE]!,
        sackOk: d[D.OPT_SACK_OK] === 1,
        sack: Array.from(d.subarray(D.OPT_SACK, D.OPT_SACK + 2 * d[D.OPT_SACK_COUNT]!)),
        ts: d[D.OPT_TS] === 1,
        payload: hot.bytes.slice(po, po + d[D.PAYLOAD_LEN]!),
        at: f.at,
      };
    } finally {
      hot.free(slot);
    }
  }

  // ---- time ---------------------------------------------------------------------

  /** Let `ms` of virtual time pass, firing every due timer at its deadline. */
  advance(ms: number): void {
    this.advanceTo(this.clock.now() + ms);
  }

  advanceTo(target: number): void {
    for (;;) {
      const next = this.timers.nextDeadline();
      if (next > target) break;
      if (next > this.clock.now()) this.clock.advanceTo(next);
      this.timers.expire(next, (owner, kind) => this.tcp.onTimer(owner, kind));
    }
    if (target > this.clock.now()) this.clock.advanceTo(target);
  }

  /** Jump to the next timer deadline and fire it; returns the time, or Infinity if none. */
  fireNext(): number {
    const next = this.timers.nextDeadline();
    if (next === Infinity) return next;
    this.advanceTo(next);
    return next;
  }

  // ---- leak checks -----------------------------------------------------------------

  /** The live control blocks (reads Tcp's private table; for leak tests only). */
  liveTcbs(): Tcb[] {
    const table = this.tcp.table;
    return table.liveIndexes().map((i) => this.tcp.inspect(table.handleOf(i))!);
  }

  /**
   * Everything TCP holds is back to nothing: no control block, no TIME_WAIT
   * record, no timer, no TCP chunk, no backlog entry, and no arena chunk at all.
   */
  expectNothingHeld(): void {
    const s = this.tcp.stats();
    expect(s.connections, 'connections').toBe(0);
    expect(s.timeWait, 'TIME_WAIT records').toBe(0);
    expect(Object.values(s.timers).every((n) => n === 0), `timers ${JSON.stringify(s.timers)}`).toBe(true);
    expect(this.timers.size, 'timer queue size').toBe(0);
    expect(s.chunks).toEqual({ send: 0, recv: 0, reassembly: 0 });
    for (const b of s.backlog) expect([b.synReceived, b.acceptQueue]).toEqual([0, 0]);
    const live = Object.entries(s.byState).filter(([name, n]) => n !== 0 && name !== 'LISTEN');
    expect(live).toEqual([]);
    // The control block table is the only thing left: the chunks it took at boot.
    expect(this.hot.chunksByKind(OwnerKind.Table), 'table chunks').toBe(this.tcp.tableChunks);
    expect(this.hot.chunksInUse() - this.tcp.tableChunks, 'arena chunks in use').toBe(0);
    expect(this.hot.badFrees(), 'bad frees').toBe(0);
  }

  /** Arena chunks held by TCP, by purpose. */
  tcpChunks(): { send: number; recv: number; reassembly: number } {
    return {
      send: this.hot.chunksByKind(OwnerKind.TcpSend),
      recv: this.hot.chunksByKind(OwnerKind.TcpRecv),
      reassembly: this.hot.chunksByKind(OwnerKind.TcpReassembly),
    };
  }
}

/** Check a sent segment against an expectation. */
export function expectSegment(s: Sent, e: Expect): void {
  const where = describeSent(s);
  if (e.flags !== undefined) expect(flagNames(s.flags), `flags of ${where}`).toBe(flagNames(e.flags));
  if (e.seq !== undefined) expect(s.seq, `seq of ${where}`).toBe(e.seq >>> 0);
  if (e.ack !== undefined) expect(s.ack, `ack of ${where}`).toBe(e.ack >>> 0);
  if (e.window !== undefined) expect(s.window, `window of ${where}`).toBe(e.window);
  if (e.mss !== undefined) expect(s.mss, `mss of ${where}`).toBe(e.mss);
  if (e.sport !== undefined) expect(s.sport, `sport of ${where}`).toBe(e.sport);
  if (e.dport !== undefined) expect(s.dport, `dport of ${where}`).toBe(e.dport);
  if (e.dst !== undefined) expect(s.dst, `dst of ${where}`).toBe(e.dst);
  if (e.len !== undefined) expect(s.payload.length, `payload length of ${where}`).toBe(e.len);
  if (e.payload !== undefined) expect(Array.from(s.payload), `payload of ${where}`).toEqual(Array.from(e.payload));
}

export function flagNames(flags: number): string {
  const names: string[] = [];
  if (flags & TCP_SYN) names.push('SYN');
  if (flags & TCP_FIN) names.push('FIN');
  if (flags & TCP_RST) names.push('RST');
  if (flags & TCP_PSH) names.push('PSH');
  if (flags & TCP_ACK) names.push('ACK');
  return names.join('|') || '(none)';
}

function describe(e: Expect): string {
  return JSON.stringify({ ...e, flags: e.flags === undefined ? undefined : flagNames(e.flags), payload: undefined });
}

export function describeSent(s: Sent): string {
  return `[${flagNames(s.flags)} seq=${s.seq} ack=${s.ack} win=${s.window} len=${s.payload.length}` +
    `${s.mss ? ` mss=${s.mss}` : ''} t=${s.at}]`;
}

/** Let promise callbacks and one macrotask run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Force a GC after a few macrotask turns; true when `ref` was collected. */
export async function collected(ref: WeakRef<object>): Promise<boolean> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run vitest with --expose-gc');
  for (let i = 0; i < 5; i++) {
    await settle();
    gc();
    if (ref.deref() === undefined) return true;
  }
  return ref.deref() === undefined;
}

/** seq + n mod 2^32. */
export function add(seq: number, n: number): number {
  return (seq + n) >>> 0;
}
