// The TCP control blocks of one stack: a table of fixed-size records in the
// arena (layout.ts T, TCB_WORDS words each), sized when the stack is made.
// Its capacity is maxConnections.
//
// - A connection is a record index; the application holds a handle, the index
//   and the record's generation in one number, so a handle kept after its
//   connection ended is recognised as stale instead of reaching the record's
//   next tenant.
// - Free records are chained through their T.EMB_NEXT word (index + 1): take
//   and give back are O(1), and nothing is allocated on the JS heap.
// - The 4-tuple lookup is a hash table in the same region: buckets of record
//   index + 1, chained through T.HASH_NEXT, keyed with a per-stack secret so
//   peers cannot aim their tuples at one chain.
// - An intrusive list runs through the records: embryonic connections
//   (SYN_RECEIVED, oldest first: who gives way under arena pressure).

import { takeRegion, releaseRegion, type ArenaRegion } from '../arena-region.js';
import type { HotPath } from '../hotpath/engine.js';
import { F, T, TCB_WORDS } from '../hotpath/layout.js';
import { keyedHash, randomSecret } from './isn.js';

/** Bytes of one record. */
export const TCB_BYTES = TCB_WORDS * 4;
/** Handles are generation * GEN_SCALE + index: indexes stay below it. */
const GEN_SCALE = 2 ** 24;
/** Generations wrap here (handles stay exact integers). */
const GEN_LIMIT = 2 ** 28;


/** A handle: a record's index and its generation in one exact integer. */
export function handleFor(gen: number, index: number): number {
  return gen * GEN_SCALE + index;
}

export class TcbTable {
  /** The arena as words: record i starts at word base + i * TCB_WORDS. */
  readonly w: Uint32Array;
  readonly base: number;
  /** Live records. */
  count = 0;
  /** The record take() gave last (-1 before the first): diagnostics. */
  lastTaken = -1;
  /** The engine's fast-path record (layout F): the record find() found last
   *  lives there (F.LAST_FOUND, index + 1), shared with the engine's lookup. */
  private readonly fast: Uint32Array;
  private freeHead = 0; // index + 1
  private readonly region: ArenaRegion;
  private readonly bucketBase: number; // word index of bucket 0
  private readonly bucketMask: number;
  private readonly secret = randomSecret();
  private embHead = 0; // embryonic list: first index + 1
  private embTail = 0;

  constructor(
    private readonly hot: HotPath,
    readonly capacity: number,
  ) {
    if (!(Number.isInteger(capacity) && capacity >= 1 && capacity < GEN_SCALE)) {
      throw new RangeError(`TCB table capacity must be 1..${GEN_SCALE - 1}, got ${capacity}`);
    }
    let buckets = 1;
    while (buckets < capacity) buckets *= 2;
    this.region = takeRegion(hot, TcbTable.bytesFor(capacity), 1);
    this.w = new Uint32Array(hot.buffer, 0, hot.buffer.byteLength >>> 2);
    this.base = this.region.offset >>> 2;
    this.bucketBase = this.base + capacity * TCB_WORDS;
    this.bucketMask = buckets - 1;
    this.fast = hot.fast;
    // Every record free, chained in index order (the lowest is taken first).
    for (let i = 0; i < capacity; i++) this.w[this.at(i) + T.EMB_NEXT] = i + 1 < capacity ? i + 2 : 0;
    this.freeHead = 1;
  }

  /** Arena bytes a table of `capacity` records takes: the records and the hash buckets. */
  static bytesFor(capacity: number): number {
    let buckets = 1;
    while (buckets < capacity) buckets *= 2;
    return capacity * TCB_BYTES + buckets * 4;
  }

  /** Chunks of the arena the table holds. */
  get chunks(): number {
    return this.region.chunks;
  }

  /** Word index of record i. */
  at(index: number): number {
    return this.base + index * TCB_WORDS;
  }

  /** A free record, zeroed, its generation kept; -1 when the table is full. */
  take(): number {
    if (this.freeHead === 0) return -1;
    const index = this.freeHead - 1;
    const r = this.at(index);
    this.freeHead = this.w[r + T.EMB_NEXT]!;
    const gen = this.w[r + T.GEN]!;
    this.w.fill(0, r, r + TCB_WORDS);
    this.w[r + T.GEN] = gen;
    this.count++;
    this.lastTaken = index;
    return index;
  }

  /** Record `index` is ending: its generation moves on, so every handle to
   *  it (and every accessor pointed at it) is stale from now on. */
  retire(index: number): void {
    const r = this.at(index);
    this.w[r + T.GEN] = (this.w[r + T.GEN]! + 1) % GEN_LIMIT;
  }

  /** Give retired record `index` back to the free list. */
  give(index: number): void {
    const r = this.at(index);
    this.w[r + T.STATE] = 0;
    this.w[r + T.EMB_NEXT] = this.freeHead;
    this.freeHead = index + 1;
    this.count--;
  }

  /** Is record `index` (any number) a live connection's? */
  isLive(index: number): boolean {
    return index >= 0 && index < this.capacity && this.w[this.at(index) + T.STATE] !== 0;
  }

  /** The handle of the live record `index`. */
  handleOf(index: number): number {
    return handleFor(this.w[this.at(index) + T.GEN]!, index);
  }

  /** The record a handle names, or -1 when the handle is stale or malformed.
   *  The low 24 bits survive ToInt32 for any integer below 2^53; the exact
   *  comparison with the live handle then rejects everything else (another
   *  generation, a fraction, a negative number, NaN). */
  indexOf(handle: number): number {
    const index = handle & (GEN_SCALE - 1);
    if (index >= this.capacity) return -1;
    const r = this.at(index);
    return handle === handleFor(this.w[r + T.GEN]!, index) && this.w[r + T.STATE] !== 0 ? index : -1;
  }

  // ---- the 4-tuple hash -------------------------------------------------------

  private bucket(localAddr: number, localPort: number, remoteAddr: number, remotePort: number): number {
    const h = keyedHash(this.secret, (localAddr ^ Math.imul(remoteAddr, 0x9e3779b1)) >>> 0, ((localPort << 16) | remotePort) >>> 0);
    return this.bucketBase + (h & this.bucketMask);
  }

  /** The record of (local, remote), -1 if none. The record found last is
   *  tried first: segments come in trains for one connection, and the check
   *  costs three compares where the hash costs a keyed mix. */
  find(localAddr: number, localPort: number, remoteAddr: number, remotePort: number): number {
    const w = this.w;
    const ports = ((localPort << 16) | remotePort) >>> 0;
    const last = this.fast[F.LAST_FOUND]! - 1;
    if (last >= 0 && last < this.capacity && this.holds(this.at(last), localAddr, ports, remoteAddr)) return last;
    for (let i = w[this.bucket(localAddr, localPort, remoteAddr, remotePort)]!; i !== 0; ) {
      const r = this.at(i - 1);
      if (this.holds(r, localAddr, ports, remoteAddr)) {
        this.fast[F.LAST_FOUND] = i;
        return i - 1;
      }
      i = w[r + T.HASH_NEXT]!;
    }
    return -1;
  }

  private holds(r: number, localAddr: number, ports: number, remoteAddr: number): boolean {
    const w = this.w;
    return w[r + T.PORTS] === ports && w[r + T.REMOTE_ADDR] === remoteAddr >>> 0 && w[r + T.LOCAL_ADDR] === localAddr >>> 0;
  }

  /** Enter record `index` (its addresses and ports set) in the hash. */
  insert(index: number): void {
    const w = this.w;
    const r = this.at(index);
    const ports = w[r + T.PORTS]!;
    const b = this.bucket(w[r + T.LOCAL_ADDR]!, ports >>> 16, w[r + T.REMOTE_ADDR]!, ports & 0xffff);
    w[r + T.HASH_NEXT] = w[b]!;
    w[b] = index + 1;
  }

  /** Take record `index` out of the hash (no effect if it is not there). */
  remove(index: number): void {
    if (this.fast[F.LAST_FOUND] === index + 1) this.fast[F.LAST_FOUND] = 0;
    const w = this.w;
    const r = this.at(index);
    const ports = w[r + T.PORTS]!;
    let link = this.bucket(w[r + T.LOCAL_ADDR]!, ports >>> 16, w[r + T.REMOTE_ADDR]!, ports & 0xffff);
    while (w[link] !== 0) {
      if (w[link] === index + 1) {
        w[link] = w[r + T.HASH_NEXT]!;
        w[r + T.HASH_NEXT] = 0;
        return;
      }
      link = this.at(w[link]! - 1) + T.HASH_NEXT;
    }
  }

  /** Describe this table to the engine's fast path (layout F): where the
   *  records and the hash are, and the hash's key. */
  describeTo(f: Uint32Array): void {
    f[F.TABLE_BASE] = this.base;
    f[F.CAPACITY] = this.capacity;
    f[F.BUCKET_BASE] = this.bucketBase;
    f[F.BUCKET_MASK] = this.bucketMask;
    f.set(this.secret, F.SECRET);
    f[F.LAST_FOUND] = 0;
  }

  // ---- the embryonic list ------------------------------------------------------

  /** Append record `index` to the embryonic list (it must not be on it). */
  pushEmbryonic(index: number): void {
    const w = this.w;
    const r = this.at(index);
    w[r + T.EMB_PREV] = this.embTail;
    w[r + T.EMB_NEXT] = 0;
    if (this.embTail !== 0) w[this.at(this.embTail - 1) + T.EMB_NEXT] = index + 1;
    else this.embHead = index + 1;
    this.embTail = index + 1;
  }

  /** Unlink record `index` from the embryonic list (it must be on it). */
  unlinkEmbryonic(index: number): void {
    const w = this.w;
    const r = this.at(index);
    const prev = w[r + T.EMB_PREV]!;
    const next = w[r + T.EMB_NEXT]!;
    if (prev !== 0) w[this.at(prev - 1) + T.EMB_NEXT] = next;
    else this.embHead = next;
    if (next !== 0) w[this.at(next - 1) + T.EMB_PREV] = prev;
    else this.embTail = prev;
    w[r + T.EMB_PREV] = 0;
    w[r + T.EMB_NEXT] = 0;
  }

  /** The oldest embryonic record, -1 when there is none. */
  firstEmbryonic(): number {
    return this.embHead - 1;
  }

  /** The embryonic record after `index`, -1 at the end. */
  nextEmbryonic(index: number): number {
    return this.w[this.at(index) + T.EMB_NEXT]! - 1;
  }

  /** Every live record's index, lowest first (a walk over the table: shutdown only). */
  liveIndexes(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.capacity; i++) if (this.w[this.at(i) + T.STATE] !== 0) out.push(i);
    return out;
  }

  /** Give the table's arena back (stack shutdown). */
  release(): void {
    releaseRegion(this.hot, this.region);
  }
}
