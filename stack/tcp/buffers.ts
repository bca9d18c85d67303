// Byte queues over arena chunks (docs/architecture.md sections 2 and 4).
//
// A connection's send and receive buffers are FIFOs of CHUNK_SIZE-byte arena
// chunks tagged with the connection as owner. Bytes are packed: a queue of
// small writes or small segments fills each chunk before taking another, so
// memory use follows the byte count, not the segment count. No ArrayBuffer is
// allocated on the data path; copies are memory-to-memory inside the arena.

import { CHUNK_SIZE } from '../hotpath/layout.js';
import type { HotPath } from '../hotpath/engine.js';

export class ChunkQueue {
  /** Arena offsets of the chunks, oldest first. */
  private chunks: number[] = [];
  /** Offset of the first byte inside chunks[0]. */
  private head = 0;
  /** Bytes queued. */
  length = 0;

  constructor(
    private readonly hot: HotPath,
    /** Owner tag of every chunk this queue allocates. */
    private readonly owner: number,
  ) {}

  /** Chunks held (for stats and tests). */
  get chunkCount(): number {
    return this.chunks.length;
  }

  /** Room left in the last chunk before another must be allocated. */
  tailRoom(): number {
    if (this.chunks.length === 0) return 0;
    return this.chunks.length * CHUNK_SIZE - this.head - this.length;
  }

  /**
   * Append up to n bytes found at arena offset src (src may be anywhere in the
   * engine's memory, including an RX slot). Returns the bytes appended, fewer
   * than n only when the arena is out of chunks.
   */
  appendFromArena(src: number, n: number): number {
    const bytes = this.hot.bytes;
    let done = 0;
    while (done < n) {
      const at = this.reserveTail();
      if (at < 0) break;
      const room = CHUNK_SIZE - ((this.head + this.length) % CHUNK_SIZE);
      const k = Math.min(room, n - done);
      bytes.copyWithin(at, src + done, src + done + k);
      this.length += k;
      done += k;
    }
    return done;
  }

  /** Append up to n bytes of a JS array (an application write). Same contract. */
  appendFromArray(src: Uint8Array, srcOff: number, n: number): number {
    const bytes = this.hot.bytes;
    let done = 0;
    while (done < n) {
      const at = this.reserveTail();
      if (at < 0) break;
      const room = CHUNK_SIZE - ((this.head + this.length) % CHUNK_SIZE);
      const k = Math.min(room, n - done);
      bytes.set(src.subarray(srcOff + done, srcOff + done + k), at);
      this.length += k;
      done += k;
    }
    return done;
  }

  /** Arena offset where the next byte goes, allocating a chunk if the last is
   *  full; -1 when the arena has none left. */
  private reserveTail(): number {
    const end = this.head + this.length;
    if (end < this.chunks.length * CHUNK_SIZE) {
      return this.chunks[(end / CHUNK_SIZE) | 0]! + (end % CHUNK_SIZE);
    }
    const chunk = this.hot.alloc(this.owner);
    if (chunk === 0) return -1;
    this.chunks.push(chunk);
    return chunk + (end % CHUNK_SIZE);
  }

  /**
   * Copy n bytes starting at logical position pos (0 = oldest byte) to arena
   * offset dst. A range that spans chunks is copied piece by piece, so a TCP
   * segment built from two chunks lands contiguous in its TX slot.
   */
  copyToArena(pos: number, n: number, dst: number): void {
    const bytes = this.hot.bytes;
    let at = this.head + pos;
    let done = 0;
    while (done < n) {
      const chunk = this.chunks[(at / CHUNK_SIZE) | 0]!;
      const inChunk = at % CHUNK_SIZE;
      const k = Math.min(CHUNK_SIZE - inChunk, n - done);
      bytes.copyWithin(dst + done, chunk + inChunk, chunk + inChunk + k);
      done += k;
      at += k;
    }
  }

  /** Copy n bytes from position pos into a JS array (a stream read). */
  copyToArray(pos: number, n: number, dst: Uint8Array, dstOff: number): void {
    const bytes = this.hot.bytes;
    let at = this.head + pos;
    let done = 0;
    while (done < n) {
      const chunk = this.chunks[(at / CHUNK_SIZE) | 0]!;
      const inChunk = at % CHUNK_SIZE;
      const k = Math.min(CHUNK_SIZE - inChunk, n - done);
      dst.set(bytes.subarray(chunk + inChunk, chunk + inChunk + k), dstOff + done);
      done += k;
      at += k;
    }
  }

  /** Length of the contiguous run of bytes at the head (at most one chunk). */
  headRun(): number {
    if (this.length === 0) return 0;
    return Math.min(this.length, CHUNK_SIZE - this.head);
  }

  /** Arena offset of the oldest byte (valid when length > 0). */
  headOffset(): number {
    return this.chunks[0]! + this.head;
  }

  /** Drop n bytes from the head; chunks that become empty go back to the arena at once. */
  consume(n: number): void {
    const k = Math.min(n, this.length);
    this.length -= k;
    this.head += k;
    if (this.length === 0) {
      // Everything consumed: free every chunk, including a partly used tail.
      this.clear();
      return;
    }
    while (this.head >= CHUNK_SIZE) {
      this.hot.free(this.chunks.shift()!);
      this.head -= CHUNK_SIZE;
    }
  }

  /** Free every chunk. */
  clear(): void {
    for (const chunk of this.chunks) this.hot.free(chunk);
    this.chunks.length = 0;
    this.head = 0;
    this.length = 0;
  }
}

/**
 * Out-of-order data waiting for a hole to fill (RFC 9293 3.10.7.4, seventh:
 * "segments with higher beginning sequence numbers ... may be held").
 *
 * Ranges [seq, seq+len) are kept sorted by sequence number in parallel arrays
 * (no object per segment); overlapping data is trimmed on insertion, so
 * stored ranges never overlap. Their bytes are packed into arena chunks in
 * arrival order (a slab: each write goes where the last one ended), so many
 * small segments share a chunk and the memory held follows the bytes held,
 * not the segment count: a peer sending tiny out-of-order segments pays for
 * bytes, not for 2 KiB chunks. A segment that crosses a chunk boundary is
 * stored as two adjacent ranges; a segment that continues the previous range
 * both in sequence and in the slab extends it.
 *
 * A chunk goes back to the arena once no range lives in it. Bounds: ranges
 * (maxSegments, the CPU an insertion costs) and chunks (maxChunks: the
 * window's worth of bytes plus slack for chunks that drains left partly
 * used); anything beyond is dropped, and the peer retransmits it. Under arena
 * pressure the whole of it may be dropped (clear(), from Tcp.pruneOutOfOrder): SACKed data may be
 * reneged on (RFC 2018 section 8), the sender keeps it until acknowledged.
 */
export class Reassembly {
  private seqs: number[] = [];
  private lens: number[] = [];
  private offs: number[] = []; // arena offset of each range's first byte
  /** Slab chunks, oldest first, and the bytes of live ranges in each. */
  private slab: number[] = [];
  private live: number[] = [];
  /** Where the next byte goes in the last slab chunk (its offset in the chunk). */
  private tailUsed = 0;
  /** Bytes held. */
  bytes = 0;

  constructor(
    private readonly hot: HotPath,
    private readonly owner: number,
  ) {}

  get count(): number {
    return this.seqs.length;
  }

  /** Arena chunks held. */
  get chunkCount(): number {
    return this.slab.length;
  }

  /** First held sequence number (valid when count > 0). */
  firstSeq(): number {
    return this.seqs[0]!;
  }

  /**
   * Keep [seq, seq+len) whose bytes are at arena offset src. Parts already held
   * are not stored twice. Returns false when nothing new was stored because
   * the segment is a duplicate, a bound is reached, or the arena has no chunk.
   */
  insert(seq: number, len: number, src: number, maxSegments: number, maxChunks: number): boolean {
    const hot = this.hot;
    // Find the first stored range that ends after seq.
    let i = 0;
    while (i < this.seqs.length && hot.seqLe(hot.seqAdd(this.seqs[i]!, this.lens[i]!), seq)) i++;
    // Trim the front against range i-1 (ends at or before seq: no overlap) and i.
    if (i < this.seqs.length && hot.seqLe(this.seqs[i]!, seq)) {
      const cut = hot.seqDiff(hot.seqAdd(this.seqs[i]!, this.lens[i]!), seq);
      if (cut >= len) return false; // fully held already
      seq = hot.seqAdd(seq, cut);
      src += cut;
      len -= cut;
      i++;
    }
    // Trim the back against the next stored range.
    if (i < this.seqs.length) {
      const gap = hot.seqDiff(this.seqs[i]!, seq);
      if (gap < len) len = gap;
    }
    if (len <= 0) return false;
    let stored = false;
    while (len > 0) {
      const k = this.store(i, seq, len, src, maxSegments, maxChunks);
      if (k === 0) break;
      stored = true;
      if (this.seqs[i] === seq) i++; // a new range was made at i (not merged into i-1)
      seq = hot.seqAdd(seq, k);
      src += k;
      len -= k;
    }
    return stored;
  }

  /** Store up to len bytes as range i (or as the end of range i-1); returns
   *  the bytes stored: what fits in the slab's tail chunk, or in a new one. */
  private store(i: number, seq: number, len: number, src: number, maxSegments: number, maxChunks: number): number {
    let room = this.slab.length === 0 ? 0 : CHUNK_SIZE - this.tailUsed;
    if (room === 0) {
      if (this.slab.length >= maxChunks) return 0;
      const chunk = this.hot.alloc(this.owner);
      if (chunk === 0) return 0;
      this.slab.push(chunk);
      this.live.push(0);
      this.tailUsed = 0;
      room = CHUNK_SIZE;
    }
    const k = Math.min(room, len);
    const last = this.slab.length - 1;
    const at = this.slab[last]! + this.tailUsed;
    const prev = i - 1;
    // Only within the tail chunk: a range never spans two chunks, even two
    // that happen to be neighbours in the arena.
    const extends_ = prev >= 0 && this.tailUsed > 0 && this.offs[prev]! + this.lens[prev]! === at &&
      this.hot.seqAdd(this.seqs[prev]!, this.lens[prev]!) === seq;
    if (!extends_) {
      if (this.seqs.length >= maxSegments) return 0;
      this.seqs.splice(i, 0, seq);
      this.lens.splice(i, 0, k);
      this.offs.splice(i, 0, at);
    } else {
      this.lens[prev] = this.lens[prev]! + k;
    }
    this.hot.bytes.copyWithin(at, src, src + k);
    this.tailUsed += k;
    this.live[last] = this.live[last]! + k;
    this.bytes += k;
    return k;
  }

  /**
   * Move every held byte that is now in order (starting at rcvNxt) into the
   * receive queue, dropping what lies before rcvNxt. Returns the new rcvNxt.
   */
  drainInto(rcvNxt: number, queue: ChunkQueue): number {
    const hot = this.hot;
    while (this.seqs.length > 0 && hot.seqLe(this.seqs[0]!, rcvNxt)) {
      const seq = this.seqs[0]!;
      const len = this.lens[0]!;
      const skip = hot.seqDiff(rcvNxt, seq);
      if (skip < len) {
        const taken = queue.appendFromArena(this.offs[0]! + skip, len - skip);
        rcvNxt = hot.seqAdd(rcvNxt, taken);
        if (taken < len - skip) {
          // The arena is full: keep the rest for later.
          this.release(this.offs[0]!, skip + taken);
          this.seqs[0] = rcvNxt;
          this.offs[0] = this.offs[0]! + skip + taken;
          this.lens[0] = len - skip - taken;
          return rcvNxt;
        }
      }
      this.removeFirst();
    }
    return rcvNxt;
  }

  private removeFirst(): void {
    const off = this.offs.shift()!;
    const len = this.lens.shift()!;
    this.seqs.shift();
    this.release(off, len);
  }

  /** `len` bytes at `off` no longer live: free their chunk when it holds no
   *  range any more (the tail chunk is reused from its start instead, unless
   *  nothing at all is held). */
  private release(off: number, len: number): void {
    this.bytes -= len;
    const base = off - ((off - this.hot.chunksBase) % CHUNK_SIZE);
    const j = this.slab.indexOf(base);
    this.live[j] = this.live[j]! - len;
    if (this.live[j] !== 0) return;
    if (this.seqs.length === 0) {
      this.clear();
      return;
    }
    if (j === this.slab.length - 1) {
      this.tailUsed = 0;
      return;
    }
    this.hot.free(base);
    this.slab.splice(j, 1);
    this.live.splice(j, 1);
  }

  /**
   * Write up to `max` blocks of contiguous held data as [left, right) word
   * pairs into out[at...] (SACK, RFC 2018): first the block containing
   * `latest`, then the others in sequence order. Returns how many it wrote.
   */
  writeBlocks(out: Uint32Array, at: number, max: number, latest: number): number {
    const hot = this.hot;
    let written = 0;
    let firstLeft = -1;
    // The block holding `latest` goes first.
    for (let i = 0; i < this.seqs.length; ) {
      const next = this.scanBlock(i);
      if (hot.seqLe(this.blockLeft, latest) && hot.seqLt(latest, this.blockRight)) {
        out[at] = this.blockLeft;
        out[at + 1] = this.blockRight;
        written = 1;
        firstLeft = this.blockLeft;
        break;
      }
      i = next;
    }
    for (let i = 0; i < this.seqs.length && written < max; ) {
      const next = this.scanBlock(i);
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
  private scanBlock(i: number): number {
    const hot = this.hot;
    this.blockLeft = this.seqs[i]!;
    let right = hot.seqAdd(this.blockLeft, this.lens[i]!);
    let j = i + 1;
    while (j < this.seqs.length && this.seqs[j] === right) {
      right = hot.seqAdd(right, this.lens[j]!);
      j++;
    }
    this.blockRight = right;
    return j;
  }

  /** Drop everything held and free every chunk; returns the bytes dropped. */
  clear(): number {
    const dropped = this.bytes;
    for (const chunk of this.slab) this.hot.free(chunk);
    this.slab.length = 0;
    this.live.length = 0;
    this.seqs.length = 0;
    this.lens.length = 0;
    this.offs.length = 0;
    this.tailUsed = 0;
    this.bytes = 0;
    return dropped;
  }
}
