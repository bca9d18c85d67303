// Compact TIME_WAIT records (RFC 9293 3.4.2 and 3.10.7.4, TIME-WAIT state).
//
// When a connection enters TIME_WAIT its control block is released at once
// (chunks, streams, timers: docs/architecture.md section 5) and only this record stays:
// the 4-tuple, the sequence numbers needed to re-ACK a retransmitted FIN and to
// judge a new SYN, and the expiry time. The table is bounded; when full, the
// oldest record is recycled (counted). All records last 2*MSL, so insertion
// order is expiry order and one timer (on the table itself) covers them all.
//
// Records live in typed arrays made once with the table (about 44-52 bytes
// per record of maxTimeWait, TimeWaitTable.bytesFor), indexed by an
// open-addressing hash; in a stack they are views of an arena region taken
// beside the control block table, so closing connections never allocates
// and the memory closed connections hold is a constant of the arena, not a
// function of traffic (issue #499 was exactly that function).
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../hotpath/layout.js';
import type { TimerQueue } from '../time/timers.js';
import type { TcpContext } from './context.js';
import { MAX_TIME_WAIT_RECORDS } from './options.js';
import { sendBareAck } from './output.js';
import type { Segment } from './segment.js';
import { TcpTimer } from './timer-kinds.js';
import { seqGt } from '../hotpath/ts-seq.js';

/** Hash buckets for `limit` records: at most half full, so probe runs stay short. */
function bucketsFor(limit: number): number {
  let buckets = 2;
  while (buckets < 2 * limit) buckets *= 2;
  return buckets;
}

/** A record's handle: its slot in the table. */
export type TimeWaitSlot = number;
export const NO_RECORD: TimeWaitSlot = -1;

export class TimeWaitTable {
  size = 0;

  // One record per slot, struct of arrays.
  /** Our address: the interface's, or a transparent connection's own (tcp.ts). */
  private readonly localAddr: Uint32Array;
  private readonly localPort: Uint16Array;
  private readonly remotePort: Uint16Array;
  private readonly remoteAddr: Uint32Array;
  /** Our RCV.NXT: the peer's FIN already counted. */
  private readonly rcvNxt: Uint32Array;
  /** Our SND.NXT: our FIN already counted. */
  private readonly sndNxt: Uint32Array;
  private readonly expiry: Float64Array;
  /** Expiry order, a doubly linked list; `newer` also chains the free slots. */
  private readonly older: Int32Array;
  private readonly newer: Int32Array;
  private oldest = NO_RECORD;
  private newest = NO_RECORD;
  private free = NO_RECORD;

  /** Open addressing, linear probing: slot + 1 per bucket, 0 when empty. */
  private readonly buckets: Int32Array;
  private readonly mask: number;

  constructor(
    private readonly timers: TimerQueue,
    private readonly limit: number,
    /** 2 * MSL, ms. */
    private readonly duration: number,
    /** Secret mixed into the hash so peers cannot aim their 4-tuples at one bucket run. */
    private readonly hashSeed: number,
    /** The table's one timer's owner id. */
    readonly timerId: number,
    /** Zeroed memory for the records, bytesFor(limit) bytes from `at` (8-byte aligned); its own when absent. */
    memory?: { buffer: ArrayBufferLike; at: number },
  ) {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_TIME_WAIT_RECORDS) {
      throw new RangeError(`TIME_WAIT table size must be a whole number in 1..${MAX_TIME_WAIT_RECORDS}, got ${limit}`);
    }
    const buckets = bucketsFor(limit);
    const bytes = TimeWaitTable.bytesFor(limit);
    const buffer = memory?.buffer ?? new ArrayBuffer(bytes);
    let at = memory?.at ?? 0;
    if (at % 8 !== 0 || at + bytes > buffer.byteLength) throw new RangeError(`TIME_WAIT table: ${bytes} bytes at ${at} do not fit`);
    // Widest first, so every array is aligned.
    const take = <A>(make: (b: ArrayBufferLike, o: number, n: number) => A, width: number, n: number): A => {
      const view = make(buffer, at, n);
      at += width * n;
      return view;
    };
    this.expiry = take((b, o, n) => new Float64Array(b, o, n), 8, limit);
    this.localAddr = take((b, o, n) => new Uint32Array(b, o, n), 4, limit);
    this.remoteAddr = take((b, o, n) => new Uint32Array(b, o, n), 4, limit);
    this.rcvNxt = take((b, o, n) => new Uint32Array(b, o, n), 4, limit);
    this.sndNxt = take((b, o, n) => new Uint32Array(b, o, n), 4, limit);
    this.older = take((b, o, n) => new Int32Array(b, o, n), 4, limit);
    this.newer = take((b, o, n) => new Int32Array(b, o, n), 4, limit);
    this.buckets = take((b, o, n) => new Int32Array(b, o, n), 4, buckets);
    this.localPort = take((b, o, n) => new Uint16Array(b, o, n), 2, limit);
    this.remotePort = take((b, o, n) => new Uint16Array(b, o, n), 2, limit);
    for (let i = 0; i < limit; i++) this.newer[i] = i + 1 < limit ? i + 1 : NO_RECORD;
    this.free = 0;
    this.mask = buckets - 1;
  }

  /** Bytes a table of `limit` records takes: 36 a record, a 4-byte bucket for
   *  every half record (a power of two). */
  static bytesFor(limit: number): number {
    return limit * 36 + bucketsFor(limit) * 4;
  }

  /** The record of (localAddr, localPort, remote), or with localAddr
   *  undefined, of (any local address, localPort, remote). */
  lookup(localPort: number, remoteKey: number, localAddr?: number): TimeWaitSlot {
    const remotePort = remoteKey % 65536;
    const remoteAddr = (remoteKey - remotePort) / 65536;
    for (let b = this.home(localPort, remoteAddr, remotePort); ; b = (b + 1) & this.mask) {
      const slot = this.buckets[b] - 1;
      if (slot === NO_RECORD) return NO_RECORD;
      if (
        this.localPort[slot] === localPort && this.remotePort[slot] === remotePort && this.remoteAddr[slot] === remoteAddr &&
        (localAddr === undefined || this.localAddr[slot] === localAddr)
      ) {
        return slot;
      }
    }
  }

  /** Is (localPort, remote) held by a record, whatever our address? (port choice) */
  has(localPort: number, remoteKey: number): boolean {
    return this.lookup(localPort, remoteKey) !== NO_RECORD;
  }

  /** Add a record; returns true if the oldest had to be recycled to make room. */
  add(localAddr: number, localPort: number, remoteAddr: number, remotePort: number,
      rcvNxt: number, sndNxt: number, now: number): boolean {
    const existing = this.lookup(localPort, remoteAddr * 65536 + remotePort, localAddr);
    if (existing !== NO_RECORD) this.remove(existing);
    let recycled = false;
    if (this.free === NO_RECORD) {
      this.remove(this.oldest);
      recycled = true;
    }
    const slot = this.free;
    this.free = this.newer[slot];
    this.localAddr[slot] = localAddr;
    this.localPort[slot] = localPort;
    this.remotePort[slot] = remotePort;
    this.remoteAddr[slot] = remoteAddr;
    this.rcvNxt[slot] = rcvNxt;
    this.sndNxt[slot] = sndNxt;
    this.expiry[slot] = now + this.duration;
    let b = this.home(localPort, remoteAddr, remotePort);
    while (this.buckets[b] !== 0) b = (b + 1) & this.mask;
    this.buckets[b] = slot + 1;
    this.append(slot);
    this.size++;
    this.armTimer();
    return recycled;
  }

  /** RFC 9293: a retransmitted FIN restarts the 2*MSL wait. */
  restart(slot: TimeWaitSlot, now: number): void {
    this.unlink(slot);
    this.expiry[slot] = now + this.duration;
    this.append(slot);
    this.armTimer();
  }

  remove(slot: TimeWaitSlot): void {
    this.unbucket(slot);
    this.unlink(slot);
    this.newer[slot] = this.free;
    this.free = slot;
    this.size--;
    this.armTimer();
  }

  /** Drop expired records; returns how many. */
  expire(now: number): number {
    let n = 0;
    while (this.oldest !== NO_RECORD && this.expiry[this.oldest] <= now) {
      this.remove(this.oldest);
      n++;
    }
    this.armTimer();
    return n;
  }

  /** Drop every record (stack shutdown). */
  clear(): void {
    while (this.oldest !== NO_RECORD) this.remove(this.oldest);
  }

  localAddrOf(slot: TimeWaitSlot): number {
    return this.localAddr[slot];
  }
  localPortOf(slot: TimeWaitSlot): number {
    return this.localPort[slot];
  }
  remoteAddrOf(slot: TimeWaitSlot): number {
    return this.remoteAddr[slot];
  }
  remotePortOf(slot: TimeWaitSlot): number {
    return this.remotePort[slot];
  }
  rcvNxtOf(slot: TimeWaitSlot): number {
    return this.rcvNxt[slot];
  }
  sndNxtOf(slot: TimeWaitSlot): number {
    return this.sndNxt[slot];
  }
  expiryOf(slot: TimeWaitSlot): number {
    return this.expiry[slot];
  }

  private home(localPort: number, remoteAddr: number, remotePort: number): number {
    let h = Math.imul(remoteAddr ^ this.hashSeed, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 15) ^ ((localPort << 16) | remotePort), 0x85ebca6b);
    return (h ^ (h >>> 13)) & this.mask;
  }

  /** Take `slot` out of the index, shifting later members of its probe run back (no tombstones). */
  private unbucket(slot: TimeWaitSlot): void {
    let hole = this.home(this.localPort[slot], this.remoteAddr[slot], this.remotePort[slot]);
    while (this.buckets[hole] !== slot + 1) hole = (hole + 1) & this.mask;
    for (let b = (hole + 1) & this.mask; this.buckets[b] !== 0; b = (b + 1) & this.mask) {
      const other = this.buckets[b] - 1;
      const want = this.home(this.localPort[other], this.remoteAddr[other], this.remotePort[other]);
      // `other` may fill the hole unless its home lies cyclically in (hole, b].
      if (((b - want) & this.mask) >= ((b - hole) & this.mask)) {
        this.buckets[hole] = other + 1;
        hole = b;
      }
    }
    this.buckets[hole] = 0;
  }

  private append(slot: TimeWaitSlot): void {
    this.older[slot] = this.newest;
    this.newer[slot] = NO_RECORD;
    if (this.newest !== NO_RECORD) this.newer[this.newest] = slot;
    else this.oldest = slot;
    this.newest = slot;
  }

  private unlink(slot: TimeWaitSlot): void {
    const older = this.older[slot];
    const newer = this.newer[slot];
    if (older !== NO_RECORD) this.newer[older] = newer;
    else this.oldest = newer;
    if (newer !== NO_RECORD) this.older[newer] = older;
    else this.newest = older;
  }

  /** One timer, at the oldest record's expiry. */
  private armTimer(): void {
    if (this.oldest !== NO_RECORD) {
      const expiry = this.expiry[this.oldest];
      if (this.timers.deadlineOf(this.timerId, TcpTimer.TimeWait) !== expiry) {
        this.timers.arm(this.timerId, TcpTimer.TimeWait, expiry);
      }
    } else if (this.timers.isArmed(this.timerId, TcpTimer.TimeWait)) {
      this.timers.cancel(this.timerId, TcpTimer.TimeWait);
    }
  }
}

/**
 * A segment for a compact TIME_WAIT record (RFC 9293 3.10.7.4, TIME-WAIT).
 * Returns false when the record gave way to a new SYN, which the caller then
 * hands to the listener as for any new connection.
 */
export function timeWaitArrives(ctx: TcpContext, table: TimeWaitTable, rec: TimeWaitSlot, seg: Segment): boolean {
  const c = ctx.counters;
  const flags = seg.flags;
  if ((flags & TCP_RST) !== 0) {
    // RFC 1337: a RST must not cut TIME_WAIT short (TIME-WAIT assassination).
    c.rstIgnored++;
    return true;
  }
  if ((flags & (TCP_SYN | TCP_ACK)) === TCP_SYN && seqGt(seg.seq, table.rcvNxtOf(rec))) {
    // RFC 1122 4.2.2.13: a new SYN above the old incarnation's sequence space reopens the 4-tuple.
    c.timeWaitReused++;
    table.remove(rec);
    return false;
  }
  if ((flags & TCP_FIN) !== 0) {
    // The peer did not get our last ACK: ACK again and restart the 2*MSL wait.
    c.timeWaitReacked++;
    table.restart(rec, ctx.now());
  } else if (seg.segLen === 0 && seg.seq === table.rcvNxtOf(rec)) {
    return true; // a late ACK: nothing to answer
  }
  sendBareAck(
    ctx, table.localAddrOf(rec), table.localPortOf(rec), table.remoteAddrOf(rec), table.remotePortOf(rec),
    table.sndNxtOf(rec), table.rcvNxtOf(rec),
  );
  return true;
}
