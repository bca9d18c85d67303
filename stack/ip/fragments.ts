// IPv4 fragment reassembly (RFC 791 section 3.2, RFC 815).
//
// Limit, by design: a reassembled datagram must fit one arena chunk, IPv4
// header included (total length <= CHUNK_SIZE = 2048 bytes, i.e. at most
// MAX_PAYLOAD = 2028 bytes of transport data). The hot path decodes a transport
// only over contiguous bytes, the arena has no multi-chunk allocation, and no
// buffer outside the arena may carry packet data (docs/architecture.md section 4). So each
// datagram in progress owns exactly one chunk (owner kind Fragments) laid out
// as the finished datagram: a 20-byte IPv4 header at +0, payload at +20; each
// fragment is copied straight to its place, and completion needs no copy. A
// fragment that would reach past the chunk drops its datagram (fragTooBig).
// Larger datagrams would need a chunk-list decode API.
//
// Which bytes have arrived is the RFC 791 "fragment block bit table": one bit
// per 8-byte block. Rules (each dropped fragment is counted by reason):
// - a fragment wholly covered by bytes already held is a duplicate: dropped
//   alone, the first copy wins (fragDuplicate);
// - a fragment partly overlapping held bytes drops the whole datagram
//   (fragOverlap, the safe choice: overlaps are how reassembly attacks work);
// - a non-final fragment whose length is not a multiple of 8, or fragments that
//   disagree on where the datagram ends, drop it (fragBadLength).
// A dropped datagram keeps its table slot, without a chunk, until its timer
// ends, so its remaining fragments are discarded (fragDiscarded) rather than
// starting a new reassembly that could never complete.
//
// Bounds: fragDatagrams entries (so at most that many chunks), each expiring
// fragTimeoutMs after its first fragment (fragTimeout frees everything). When
// the table is full the oldest entry is evicted (fragEvicted): under a flood of
// stray fragments, new traffic still gets through.

import type { HotPath } from '../hotpath/engine.js';
import { OwnerKind, ownerTag } from '../hotpath/engine.js';
import { CHUNK_SIZE, D, IPV4_HLEN } from '../hotpath/layout.js';
import type { Clock } from '../clock.js';
import { TimerKind, type TimerOwner } from '../layers.js';
import type { TimerQueue } from '../time/timers.js';
import { Drop, type DropCounters } from '../stats.js';

export interface FragmentLimits {
  /** Datagrams in reassembly at once (each holds at most one chunk). */
  fragDatagrams: number;
  /** Time allowed from the first fragment to the last (ms). */
  fragTimeoutMs: number;
}

export const FRAGMENT_DEFAULTS: FragmentLimits = { fragDatagrams: 16, fragTimeoutMs: 30_000 };

/** Largest reassembled transport payload: one chunk minus the IPv4 header. */
export const MAX_PAYLOAD = CHUNK_SIZE - IPV4_HLEN;
const BLOCK_WORDS = Math.ceil(MAX_PAYLOAD / 8 / 32);
const MORE_FRAGMENTS = 0x2000;
const OFFSET_MASK = 0x1fff;

/** Where a finished datagram goes: IPv4 at `ipOff` (header + payload, one chunk). */
export interface ReassemblyTarget {
  deliverDatagram(ipOff: number): void;
}

class Reassembly {
  readonly blocks = new Uint32Array(BLOCK_WORDS);
  active = false;
  src = 0;
  dst = 0;
  id = 0;
  proto = 0;
  chunk = 0; // 0 once the datagram was dropped (entry kept to discard the rest)
  total = -1; // payload length, known once the final fragment arrived
  received = 0; // payload bytes held
  fragments = 0; // fragments held (for drop counts)
  startedAt = 0;

  constructor(
    readonly index: number,
    /** Its timer's owner id. */
    readonly timerId: number,
  ) {}
}

export class Fragments {
  /** Entries in the table, dropped ones awaiting expiry included (gauge). */
  datagrams = 0;
  /** Chunks held by reassemblies (gauge). */
  chunks = 0;

  private readonly table: Reassembly[] = [];

  constructor(
    private readonly hot: HotPath,
    private readonly timers: TimerQueue,
    private readonly clock: Clock,
    private readonly drops: DropCounters,
    private readonly limits: FragmentLimits,
    private readonly target: ReassemblyTarget,
    /** The first of limits.fragDatagrams timer owner ids reserved for the table. */
    private readonly timerBase: number,
  ) {
    for (let i = 0; i < limits.fragDatagrams; i++) this.table.push(new Reassembly(i + 1, timerBase + i));
  }

  /** A fragment for us in hot.decoded (KIND Ipv4Fragment). */
  input(): void {
    const d = this.hot.decoded;
    const frag = d[D.IP_FRAG]!;
    const offset = (frag & OFFSET_MASK) * 8;
    const len = d[D.L4_LEN]!;
    const more = (frag & MORE_FRAGMENTS) !== 0;
    const entry = this.find(d[D.IP_SRC]!, d[D.IP_DST]!, d[D.IP_ID]!, d[D.IP_PROTO]!) ?? this.start();
    if (entry === null) return;
    if (entry.chunk === 0) return this.drops.count(Drop.FragDiscarded);
    const end = offset + len;
    if (end > MAX_PAYLOAD) return this.drop(entry, Drop.FragTooBig);
    if (more && (len === 0 || (len & 7) !== 0)) return this.drop(entry, Drop.FragBadLength);
    if (!more && entry.total >= 0 && entry.total !== end) return this.drop(entry, Drop.FragBadLength);
    if (entry.total >= 0 && end > entry.total) return this.drop(entry, Drop.FragBadLength);
    const held = this.heldBlocks(entry, offset, end);
    if (held > 0 && held === blockCount(offset, end)) return this.drops.count(Drop.FragDuplicate);
    if (held > 0) return this.drop(entry, Drop.FragOverlap);
    if (!more) entry.total = end;
    this.store(entry, offset, len);
    if (entry.received === entry.total) this.complete(entry);
  }

  /** FragmentExpire: the datagram did not complete in time. */
  onTimer(owner: TimerOwner): void {
    const entry = this.table[owner - this.timerBase]!;
    if (entry.chunk !== 0) this.drops.count(Drop.FragTimeout, entry.fragments);
    this.release(entry);
  }

  /** Free every reassembly (stack shutdown). */
  clear(): void {
    for (const entry of this.table) if (entry.active) this.release(entry);
  }

  private find(src: number, dst: number, id: number, proto: number): Reassembly | null {
    for (const e of this.table) {
      if (e.active && e.id === id && e.src === src && e.dst === dst && e.proto === proto) return e;
    }
    return null;
  }

  /** Take a free entry (evicting the oldest if none) with a fresh chunk; null if the arena is full. */
  private start(): Reassembly | null {
    const entry = this.freeEntry() ?? this.evictOldest();
    const chunk = this.hot.alloc(ownerTag(OwnerKind.Fragments, entry.index));
    if (chunk === 0) {
      this.drops.count(Drop.FragArenaFull);
      return null;
    }
    const d = this.hot.decoded;
    entry.active = true;
    entry.src = d[D.IP_SRC]!;
    entry.dst = d[D.IP_DST]!;
    entry.id = d[D.IP_ID]!;
    entry.proto = d[D.IP_PROTO]!;
    entry.chunk = chunk;
    entry.total = -1;
    entry.received = 0;
    entry.fragments = 0;
    entry.blocks.fill(0);
    entry.startedAt = this.clock.now();
    this.datagrams++;
    this.chunks++;
    this.timers.arm(entry.timerId, TimerKind.FragmentExpire, entry.startedAt + this.limits.fragTimeoutMs);
    return entry;
  }

  private freeEntry(): Reassembly | null {
    for (const e of this.table) if (!e.active) return e;
    return null;
  }

  private evictOldest(): Reassembly {
    let oldest = this.table[0]!;
    for (const e of this.table) if (e.startedAt < oldest.startedAt) oldest = e;
    if (oldest.chunk !== 0) this.drops.count(Drop.FragEvicted, oldest.fragments);
    this.release(oldest);
    return oldest;
  }

  /** Copy the fragment's payload (and, for the first, its header) into place. */
  private store(entry: Reassembly, offset: number, len: number): void {
    const d = this.hot.decoded;
    const bytes = this.hot.bytes;
    const l4 = d[D.L4_OFF]!;
    bytes.copyWithin(entry.chunk + IPV4_HLEN + offset, l4, l4 + len);
    if (offset === 0) bytes.copyWithin(entry.chunk, d[D.IP_OFF]!, d[D.IP_OFF]! + IPV4_HLEN);
    const last = (offset + len - 1) >> 3;
    for (let b = offset >> 3; len > 0 && b <= last; b++) entry.blocks[b >> 5]! |= 1 << (b & 31);
    entry.received += len;
    entry.fragments++;
  }

  /** How many of the 8-byte blocks covering [offset, end) are already held. */
  private heldBlocks(entry: Reassembly, offset: number, end: number): number {
    let held = 0;
    const last = (end - 1) >> 3;
    for (let b = offset >> 3; b <= last; b++) {
      if ((entry.blocks[b >> 5]! & (1 << (b & 31))) !== 0) held++;
    }
    return held;
  }

  /** All bytes present: make the header describe the whole datagram, hand it on, free it. */
  private complete(entry: Reassembly): void {
    const chunk = entry.chunk;
    const totalLength = IPV4_HLEN + entry.total;
    entry.chunk = 0; // the chunk now belongs to this call, not to the entry
    this.chunks--;
    this.release(entry);
    this.finishHeader(chunk, totalLength);
    try {
      this.target.deliverDatagram(chunk);
    } finally {
      this.hot.free(chunk);
    }
  }

  /** The first fragment's header, without options, as an unfragmented datagram. */
  private finishHeader(ip: number, totalLength: number): void {
    const bytes = this.hot.bytes;
    bytes[ip] = 0x45;
    bytes[ip + 2] = totalLength >>> 8;
    bytes[ip + 3] = totalLength & 0xff;
    bytes[ip + 6] = 0;
    bytes[ip + 7] = 0;
    bytes[ip + 10] = 0;
    bytes[ip + 11] = 0;
    const sum = this.hot.checksum(ip, IPV4_HLEN, 0);
    bytes[ip + 10] = sum >>> 8;
    bytes[ip + 11] = sum & 0xff;
  }

  /** Drop the datagram: free its chunk, keep the entry to discard its other fragments. */
  private drop(entry: Reassembly, why: Drop): void {
    this.drops.count(why, entry.fragments + 1);
    this.hot.free(entry.chunk);
    entry.chunk = 0;
    this.chunks--;
  }

  /** The one way an entry ends: timer cancelled, chunk (if any) freed, slot free. */
  private release(entry: Reassembly): void {
    this.timers.cancelAll(entry.timerId);
    if (entry.chunk !== 0) {
      this.hot.free(entry.chunk);
      entry.chunk = 0;
      this.chunks--;
    }
    entry.active = false;
    this.datagrams--;
  }
}

function blockCount(offset: number, end: number): number {
  return end > offset ? ((end - 1) >> 3) - (offset >> 3) + 1 : 0;
}
