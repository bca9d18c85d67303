// Byte queues over arena chunks (docs/architecture.md sections 2 and 4).
//
// A connection's send and receive buffers are FIFOs of CHUNK_SIZE-byte arena
// chunks tagged with the connection as owner, chained through the chunks'
// arena links (chunk-links.ts). Bytes are packed: a queue of small writes or
// small segments fills each chunk before taking another, so memory use
// follows the byte count, not the segment count. A queue's whole state is a
// few u32 words kept by its owner (a control block's record: T.SEND_*,
// T.RECV_*), so a connection's queues cost no JS object; one ChunkQueue
// accessor is pointed at whichever record is being worked on. No ArrayBuffer
// is allocated on the data path; copies are memory-to-memory inside the arena.

import { CHUNK_SIZE, Q, X } from '../hotpath/layout.js';
import type { HotPath } from '../hotpath/engine.js';
import { ChunkLinks } from './chunk-links.js';
import { seqAdd, seqDiff, seqLe, seqLt } from '../hotpath/ts-seq.js';

/** State words of a queue, from its first (layout.ts Q, which the engines' fast path reads too). */
const HEAD = Q.HEAD;
const TAIL = Q.TAIL;
const LEN = Q.LEN;
const CUR_POS = Q.CUR_POS;
const CUR_CHUNK = Q.CUR_CHUNK;

export class ChunkQueue {
  private readonly bytes: Uint8Array;

  /**
   * A queue whose state lives in words s[at..at+2] (and s[at+3..at+4] with a
   * cursor, which makes sequential random access, copyToArena(pos) for the
   * next segment, O(1) instead of a walk from the head).
   */
  constructor(
    private readonly links: ChunkLinks,
    /** Owner tag of every chunk this queue allocates. */
    private owner: number,
    private s: Uint32Array,
    private at: number,
    private readonly cursor: boolean,
  ) {
    this.bytes = links.bytes;
  }

  /** A queue with state of its own (an application's: one object per queue). */
  static standalone(hot: HotPath, owner: number): ChunkQueue {
    return new ChunkQueue(new ChunkLinks(hot), owner, new Uint32Array(5), 0, true);
  }

  /** Point this accessor at another queue's state. */
  rebind(owner: number, s: Uint32Array, at: number): void {
    this.owner = owner;
    this.s = s;
    this.at = at;
  }

  /** Bytes queued. */
  get length(): number {
    return this.s[this.at + LEN]!;
  }

  /** Offset of the first byte inside the head chunk. */
  private headInChunk(): number {
    const head = this.s[this.at + HEAD]!;
    return head - this.links.chunkOf(head);
  }

  /** Chunks held (for stats and tests). */
  get chunkCount(): number {
    const len = this.length;
    return len === 0 ? 0 : ((this.headInChunk() + len - 1) >>> 11) + 1;
  }

  /** Room left in the last chunk before another must be allocated. */
  tailRoom(): number {
    const len = this.length;
    if (len === 0) return 0;
    const end = this.headInChunk() + len;
    return end % CHUNK_SIZE === 0 ? 0 : CHUNK_SIZE - (end % CHUNK_SIZE);
  }

  /**
   * Append up to n bytes found at arena offset src (src may be anywhere in the
   * engine's memory, including an RX slot). Returns the bytes appended, fewer
   * than n only when the arena is out of chunks.
   */
  appendFromArena(src: number, n: number): number {
    const bytes = this.bytes;
    let done = 0;
    while (done < n) {
      const at = this.reserveTail();
      if (at < 0) break;
      const k = Math.min(CHUNK_SIZE - ((at - this.links.base) % CHUNK_SIZE), n - done);
      bytes.copyWithin(at, src + done, src + done + k);
      this.s[this.at + LEN] += k;
      done += k;
    }
    return done;
  }

  /** Append up to n bytes of a JS array (an application write). Same contract. */
  appendFromArray(src: Uint8Array, srcOff: number, n: number): number {
    const bytes = this.bytes;
    let done = 0;
    while (done < n) {
      const at = this.reserveTail();
      if (at < 0) break;
      const k = Math.min(CHUNK_SIZE - ((at - this.links.base) % CHUNK_SIZE), n - done);
      bytes.set(src.subarray(srcOff + done, srcOff + done + k), at);
      this.s[this.at + LEN] += k;
      done += k;
    }
    return done;
  }

  /** Arena offset where the next byte goes, chaining a new chunk if the last
   *  is full; -1 when the arena has none left. */
  private reserveTail(): number {
    const s = this.s;
    const a = this.at;
    const len = s[a + LEN]!;
    if (len > 0) {
      const room = this.tailRoom();
      if (room > 0) return s[a + TAIL]! + CHUNK_SIZE - room;
    }
    const chunk = this.links.hot.alloc(this.owner);
    if (chunk === 0) return -1;
    this.links.setNext(chunk, 0);
    if (len === 0) {
      s[a + HEAD] = chunk;
      if (this.cursor) this.resetCursor(chunk);
    } else {
      this.links.setNext(s[a + TAIL]!, chunk);
    }
    s[a + TAIL] = chunk;
    return chunk;
  }

  /** The chunk holding logical position `logical` (bytes from the head chunk's
   *  start), walking from the cursor when it is not past it. Moves the cursor there. */
  private chunkAt(logical: number): number {
    const s = this.s;
    const a = this.at;
    let chunk = this.links.chunkOf(s[a + HEAD]!);
    let start = 0;
    if (this.cursor && s[a + CUR_POS]! <= logical) {
      chunk = s[a + CUR_CHUNK]!;
      start = s[a + CUR_POS]!;
    }
    while (logical - start >= CHUNK_SIZE) {
      chunk = this.links.next(chunk);
      start += CHUNK_SIZE;
    }
    if (this.cursor) {
      s[a + CUR_POS] = start;
      s[a + CUR_CHUNK] = chunk;
    }
    return chunk;
  }

  /**
   * Copy n bytes starting at logical position pos (0 = oldest byte) to arena
   * offset dst. A range that spans chunks is copied piece by piece, so a TCP
   * segment built from two chunks lands contiguous in its TX slot.
   */
  copyToArena(pos: number, n: number, dst: number): void {
    const bytes = this.bytes;
    let logical = this.headInChunk() + pos;
    let done = 0;
    while (done < n) {
      const chunk = this.chunkAt(logical);
      const inChunk = logical % CHUNK_SIZE;
      const k = Math.min(CHUNK_SIZE - inChunk, n - done);
      bytes.copyWithin(dst + done, chunk + inChunk, chunk + inChunk + k);
      done += k;
      logical += k;
    }
  }

  /** Copy n bytes from position pos into a JS array (a stream read). */
  copyToArray(pos: number, n: number, dst: Uint8Array, dstOff: number): void {
    const bytes = this.bytes;
    let logical = this.headInChunk() + pos;
    let done = 0;
    while (done < n) {
      const chunk = this.chunkAt(logical);
      const inChunk = logical % CHUNK_SIZE;
      const k = Math.min(CHUNK_SIZE - inChunk, n - done);
      dst.set(bytes.subarray(chunk + inChunk, chunk + inChunk + k), dstOff + done);
      done += k;
      logical += k;
    }
  }

  /** Length of the contiguous run of bytes at the head (at most one chunk). */
  headRun(): number {
    const len = this.length;
    if (len === 0) return 0;
    return Math.min(len, CHUNK_SIZE - this.headInChunk());
  }

  /** Arena offset of the oldest byte (valid when length > 0). */
  headOffset(): number {
    return this.s[this.at + HEAD]!;
  }

  /** Drop n bytes from the head; chunks that become empty go back to the arena at once. */
  consume(n: number): void {
    const s = this.s;
    const a = this.at;
    const k = Math.min(n, s[a + LEN]!);
    if (k === 0) return;
    const len = s[a + LEN]! - k;
    if (len === 0) {
      // Everything consumed: free every chunk, including a partly used tail.
      this.clear();
      return;
    }
    let chunk = this.links.chunkOf(s[a + HEAD]!);
    let inChunk = this.headInChunk() + k;
    let freed = 0;
    while (inChunk >= CHUNK_SIZE) {
      const next = this.links.next(chunk);
      this.links.hot.free(chunk);
      chunk = next;
      inChunk -= CHUNK_SIZE;
      freed++;
    }
    s[a + HEAD] = chunk + inChunk;
    s[a + LEN] = len;
    if (this.cursor && freed > 0) {
      const pos = s[a + CUR_POS]! - freed * CHUNK_SIZE;
      if (pos < 0) this.resetCursor(chunk);
      else s[a + CUR_POS] = pos;
    }
  }

  /** Free every chunk. */
  clear(): void {
    const s = this.s;
    const a = this.at;
    if (s[a + LEN] !== 0) {
      for (let chunk = this.links.chunkOf(s[a + HEAD]!); chunk !== 0; ) {
        const next = this.links.next(chunk);
        this.links.hot.free(chunk);
        chunk = next;
      }
    }
    s[a + HEAD] = 0;
    s[a + TAIL] = 0;
    s[a + LEN] = 0;
    if (this.cursor) this.resetCursor(0);
  }

  private resetCursor(chunk: number): void {
    this.s[this.at + CUR_POS] = 0;
    this.s[this.at + CUR_CHUNK] = chunk;
  }
}

/** What Reassembly needs from its connection: the out-of-order chunk (X
 *  layout), taken and given back with the connection's bookkeeping. */
export interface OooHost {
  /** Word index of the chunk, -1 without one. */
  oooWords(): number;
  /** Take the chunk (and join the out-of-order list); -1 when the arena has none. */
  takeOoo(): number;
  /** The chunk holds nothing any more: give it back unless the SACK board still uses it. */
  oooEmptied(): void;
}

/** An out-of-order chunk with no control block around it: for a Reassembly
 *  or SackScoreboard used on its own (tests, tools). */
export class OwnOoo implements OooHost {
  private chunk = 0;
  private readonly w: Uint32Array;

  constructor(
    private readonly hot: HotPath,
    private readonly owner: number,
  ) {
    this.w = new Uint32Array(hot.buffer, 0, hot.buffer.byteLength >>> 2);
  }

  oooWords(): number {
    return this.chunk === 0 ? -1 : this.chunk >>> 2;
  }

  takeOoo(): number {
    const c = this.hot.alloc(this.owner);
    if (c === 0) return -1;
    const b = c >>> 2;
    this.w.fill(0, b, b + X.RANGE_SEQ);
    this.chunk = c;
    return b;
  }

  oooEmptied(): void {
    const b = this.oooWords();
    if (b < 0 || this.w[b + X.RANGES] !== 0 || this.w[b + X.SACK_COUNT] !== 0) return;
    this.hot.free(this.chunk);
    this.chunk = 0;
  }
}

/**
 * Out-of-order data waiting for a hole to fill (RFC 9293 3.10.7.4, seventh:
 * "segments with higher beginning sequence numbers ... may be held").
 *
 * Ranges [seq, seq+len) are kept sorted by sequence number in the
 * connection's out-of-order chunk (layout.ts X: no object per segment);
 * overlapping data is trimmed on insertion, so stored ranges never overlap.
 * Their bytes are packed into arena chunks in arrival order (a slab: each
 * write goes where the last one ended), so many small segments share a chunk
 * and the memory held follows the bytes held, not the segment count: a peer
 * sending tiny out-of-order segments pays for bytes, not for 2 KiB chunks. A
 * segment that crosses a chunk boundary is stored as two adjacent ranges; a
 * segment that continues the previous range both in sequence and in the slab
 * extends it.
 *
 * A chunk goes back to the arena once no range lives in it. Bounds: ranges
 * (maxSegments, at most OOO_MAX_RANGES: the CPU an insertion costs) and slab
 * chunks (maxChunks, at most OOO_MAX_SLAB: the window's worth of bytes plus
 * slack for chunks that drains left partly used); anything beyond is
 * dropped, and the peer retransmits it. Under arena pressure the whole of it
 * may be dropped (clear(), from Tcp.pruneOutOfOrder): SACKed data may be
 * reneged on (RFC 2018 section 8), the sender keeps it until acknowledged.
 * The chunk itself exists only while something is held.
 */
export class Reassembly {
  private readonly w: Uint32Array;
  private host: OooHost | null = null;

  constructor(
    private readonly links: ChunkLinks,
    private owner: number,
  ) {
    this.w = links.w;
  }

  /** Point this accessor at a connection. */
  rebind(owner: number, host: OooHost): void {
    this.owner = owner;
    this.host = host;
  }

  /** A Reassembly with a chunk of its own (tests, tools). */
  static standalone(hot: HotPath, owner: number): Reassembly {
    const r = new Reassembly(new ChunkLinks(hot), owner);
    r.rebind(owner, new OwnOoo(hot, owner));
    return r;
  }

  private base(): number {
    return this.host!.oooWords();
  }

  get count(): number {
    const b = this.base();
    return b < 0 ? 0 : this.w[b + X.RANGES]!;
  }

  /** The sequence number of a FIN that came right after held data (Tcb.finHeld says whether there is one). */
  get finSeq(): number {
    const b = this.base();
    return b < 0 ? 0 : this.w[b + X.FIN_SEQ]!;
  }
  set finSeq(seq: number) {
    const b = this.base();
    if (b >= 0) this.w[b + X.FIN_SEQ] = seq;
  }

  /** Whether a held range ends right before `seq`. */
  endsAt(seq: number): boolean {
    const b = this.base();
    if (b < 0) return false;
    const w = this.w;
    for (let i = 0; i < w[b + X.RANGES]!; i++) if (seqAdd(w[b + X.RANGE_SEQ + i]!, w[b + X.RANGE_LEN + i]!) === seq) return true;
    return false;
  }

  /** Bytes held. */
  get bytes(): number {
    const b = this.base();
    return b < 0 ? 0 : this.w[b + X.BYTES]!;
  }

  /** Arena chunks held for data (the out-of-order chunk itself not counted). */
  get chunkCount(): number {
    const b = this.base();
    return b < 0 ? 0 : this.w[b + X.SLAB]!;
  }

  /** First held sequence number (valid when count > 0). */
  firstSeq(): number {
    return this.w[this.base() + X.RANGE_SEQ]!;
  }

  /**
   * Keep [seq, seq+len) whose bytes are at arena offset src. Parts already held
   * are not stored twice. Returns false when nothing new was stored because
   * the segment is a duplicate, a bound is reached, or the arena has no chunk.
   */
  insert(seq: number, len: number, src: number, maxSegments: number, maxChunks: number): boolean {
    let b = this.base();
    const w = this.w;
    const n = b < 0 ? 0 : w[b + X.RANGES]!;
    // Find the first stored range that ends after seq.
    let i = 0;
    while (i < n && seqLe(seqAdd(w[b + X.RANGE_SEQ + i]!, w[b + X.RANGE_LEN + i]!), seq)) i++;
    // Trim the front against range i-1 (ends at or before seq: no overlap) and i.
    if (i < n && seqLe(w[b + X.RANGE_SEQ + i]!, seq)) {
      const cut = seqDiff(seqAdd(w[b + X.RANGE_SEQ + i]!, w[b + X.RANGE_LEN + i]!), seq);
      if (cut >= len) return false; // fully held already
      seq = seqAdd(seq, cut);
      src += cut;
      len -= cut;
      i++;
    }
    // Trim the back against the next stored range.
    if (i < n) {
      const gap = seqDiff(w[b + X.RANGE_SEQ + i]!, seq);
      if (gap < len) len = gap;
    }
    if (len <= 0) return false;
    if (b < 0) {
      b = this.host!.takeOoo();
      if (b < 0) return false;
    }
    const ranges = Math.min(maxSegments, OOO_RANGES);
    const chunks = Math.min(maxChunks, OOO_SLAB);
    let stored = false;
    while (len > 0) {
      const k = this.store(b, i, seq, len, src, ranges, chunks);
      if (k === 0) break;
      stored = true;
      if (w[b + X.RANGE_SEQ + i] === seq) i++; // a new range was made at i (not merged into i-1)
      seq = seqAdd(seq, k);
      src += k;
      len -= k;
    }
    if (!stored && w[b + X.RANGES] === 0) this.host!.oooEmptied();
    return stored;
  }

  /** Store up to len bytes as range i (or as the end of range i-1); returns
   *  the bytes stored: what fits in the slab's tail chunk, or in a new one. */
  private store(b: number, i: number, seq: number, len: number, src: number, maxRanges: number, maxChunks: number): number {
    const w = this.w;
    const slab = w[b + X.SLAB]!;
    let room = slab === 0 ? 0 : CHUNK_SIZE - w[b + X.TAIL_USED]!;
    if (room === 0) {
      if (slab >= maxChunks) return 0;
      const chunk = this.links.hot.alloc(this.owner);
      if (chunk === 0) return 0;
      w[b + X.SLAB_CHUNK + slab] = chunk;
      w[b + X.SLAB_LIVE + slab] = 0;
      w[b + X.SLAB] = slab + 1;
      w[b + X.TAIL_USED] = 0;
      room = CHUNK_SIZE;
    }
    const k = Math.min(room, len);
    const last = w[b + X.SLAB]! - 1;
    const tailUsed = w[b + X.TAIL_USED]!;
    const at = w[b + X.SLAB_CHUNK + last]! + tailUsed;
    const n = w[b + X.RANGES]!;
    const prev = i - 1;
    // Only within the tail chunk: a range never spans two chunks, even two
    // that happen to be neighbours in the arena.
    const extends_ = prev >= 0 && tailUsed > 0 && w[b + X.RANGE_OFF + prev]! + w[b + X.RANGE_LEN + prev]! === at &&
      seqAdd(w[b + X.RANGE_SEQ + prev]!, w[b + X.RANGE_LEN + prev]!) === seq;
    if (!extends_) {
      if (n >= maxRanges) return 0;
      for (const field of RANGE_FIELDS) w.copyWithin(b + field + i + 1, b + field + i, b + field + n);
      w[b + X.RANGE_SEQ + i] = seq;
      w[b + X.RANGE_LEN + i] = k;
      w[b + X.RANGE_OFF + i] = at;
      w[b + X.RANGES] = n + 1;
    } else {
      w[b + X.RANGE_LEN + prev] = w[b + X.RANGE_LEN + prev]! + k;
    }
    this.links.bytes.copyWithin(at, src, src + k);
    w[b + X.TAIL_USED] = tailUsed + k;
    w[b + X.SLAB_LIVE + last] = w[b + X.SLAB_LIVE + last]! + k;
    w[b + X.BYTES] = w[b + X.BYTES]! + k;
    return k;
  }

  /**
   * Move every held byte that is now in order (starting at rcvNxt) into the
   * receive queue, dropping what lies before rcvNxt. Returns the new rcvNxt.
   */
  drainInto(rcvNxt: number, queue: ChunkQueue): number {
    const w = this.w;
    const b = this.base();
    if (b < 0) return rcvNxt;
    while (w[b + X.RANGES]! > 0 && seqLe(w[b + X.RANGE_SEQ]!, rcvNxt)) {
      const seq = w[b + X.RANGE_SEQ]!;
      const len = w[b + X.RANGE_LEN]!;
      const off = w[b + X.RANGE_OFF]!;
      const skip = seqDiff(rcvNxt, seq);
      if (skip < len) {
        const taken = queue.appendFromArena(off + skip, len - skip);
        rcvNxt = seqAdd(rcvNxt, taken);
        if (taken < len - skip) {
          // The arena is full: keep the rest for later.
          this.release(b, off, skip + taken);
          w[b + X.RANGE_SEQ] = rcvNxt;
          w[b + X.RANGE_OFF] = off + skip + taken;
          w[b + X.RANGE_LEN] = len - skip - taken;
          return rcvNxt;
        }
      }
      this.removeFirst(b);
    }
    if (w[b + X.RANGES] === 0) this.emptied(b);
    return rcvNxt;
  }

  private removeFirst(b: number): void {
    const w = this.w;
    const off = w[b + X.RANGE_OFF]!;
    const len = w[b + X.RANGE_LEN]!;
    const n = w[b + X.RANGES]! - 1;
    for (const field of RANGE_FIELDS) w.copyWithin(b + field, b + field + 1, b + field + n + 1);
    w[b + X.RANGES] = n;
    this.release(b, off, len);
  }

  /** `len` bytes at `off` no longer live: free their chunk when it holds no
   *  range any more (the tail chunk is reused from its start instead). */
  private release(b: number, off: number, len: number): void {
    const w = this.w;
    w[b + X.BYTES] = w[b + X.BYTES]! - len;
    const chunk = this.links.chunkOf(off);
    const slab = w[b + X.SLAB]!;
    let j = 0;
    while (j < slab && w[b + X.SLAB_CHUNK + j] !== chunk) j++;
    const live = w[b + X.SLAB_LIVE + j]! - len;
    w[b + X.SLAB_LIVE + j] = live;
    if (live !== 0) return;
    if (j === slab - 1) {
      w[b + X.TAIL_USED] = 0;
      if (w[b + X.RANGES] !== 0) return;
    }
    this.links.hot.free(chunk);
    w.copyWithin(b + X.SLAB_CHUNK + j, b + X.SLAB_CHUNK + j + 1, b + X.SLAB_CHUNK + slab);
    w.copyWithin(b + X.SLAB_LIVE + j, b + X.SLAB_LIVE + j + 1, b + X.SLAB_LIVE + slab);
    w[b + X.SLAB] = slab - 1;
  }

  /** No range left: the slab's chunks go back, then the chunk itself if unused. */
  private emptied(b: number): void {
    const w = this.w;
    for (let j = 0; j < w[b + X.SLAB]!; j++) this.links.hot.free(w[b + X.SLAB_CHUNK + j]!);
    w[b + X.SLAB] = 0;
    w[b + X.TAIL_USED] = 0;
    w[b + X.BYTES] = 0;
    this.host!.oooEmptied();
  }

  /**
   * Write up to `max` blocks of contiguous held data as [left, right) word
   * pairs into out[at...] (SACK, RFC 2018): first the block containing
   * `latest`, then the others in sequence order. Returns how many it wrote.
   */
  writeBlocks(out: Uint32Array, at: number, max: number, latest: number): number {
    const b = this.base();
    if (b < 0) return 0;
    const n = this.w[b + X.RANGES]!;
    let written = 0;
    let firstLeft = -1;
    // The block holding `latest` goes first.
    for (let i = 0; i < n; ) {
      const next = this.scanBlock(b, i, n);
      if (seqLe(this.blockLeft, latest) && seqLt(latest, this.blockRight)) {
        out[at] = this.blockLeft;
        out[at + 1] = this.blockRight;
        written = 1;
        firstLeft = this.blockLeft;
        break;
      }
      i = next;
    }
    for (let i = 0; i < n && written < max; ) {
      const next = this.scanBlock(b, i, n);
      if (this.blockLeft !== firstLeft) {
        out[at + 2 * written] = this.blockLeft;
        out[at + 2 * written + 1] = this.blockRight;
        written++;
      }
      i = next;
    }
    return written;
  }

  // Edges of the block scanBlock() found last (fields, so no object per call).
  private blockLeft = 0;
  private blockRight = 0;

  /** The contiguous block starting at range i into blockLeft/blockRight; returns the index after it. */
  private scanBlock(b: number, i: number, n: number): number {
    const w = this.w;
    this.blockLeft = w[b + X.RANGE_SEQ + i]!;
    let right = seqAdd(this.blockLeft, w[b + X.RANGE_LEN + i]!);
    let j = i + 1;
    while (j < n && w[b + X.RANGE_SEQ + j] === right) {
      right = seqAdd(right, w[b + X.RANGE_LEN + j]!);
      j++;
    }
    this.blockRight = right;
    return j;
  }

  /** Drop everything held and free its chunks; returns the bytes dropped. */
  clear(): number {
    const b = this.base();
    if (b < 0) return 0;
    const dropped = this.w[b + X.BYTES]!;
    this.w[b + X.RANGES] = 0;
    this.emptied(b);
    return dropped;
  }
}

/** The three parallel range arrays of the out-of-order chunk. */
const RANGE_FIELDS = [X.RANGE_SEQ, X.RANGE_LEN, X.RANGE_OFF] as const;
/** Bounds the chunk's layout sets. */
const OOO_RANGES = X.RANGE_LEN - X.RANGE_SEQ;
const OOO_SLAB = X.SLAB_LIVE - X.SLAB_CHUNK;
