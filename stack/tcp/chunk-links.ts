// Chains of arena chunks. Every chunk has an 8-byte metadata entry in the
// arena (owner tag, free-list link); the link word of a chunk in use is free
// for its owner, and a byte queue uses it to chain its chunks: the queue's
// whole state is a few words (head, tail, length) wherever its owner keeps
// them (a control block's record), and no JS array grows with its chunks.
// Both engines leave the link of an allocated chunk alone (alloc writes 0,
// free overwrites it), so the chain survives until the queue frees the chunk.

import type { HotPath } from '../hotpath/engine.js';
import { ARENA_HEADER_WORDS, ARENA_META_BASE, CHUNK_SHIFT, CHUNK_SIZE } from '../hotpath/layout.js';

/** Word index of chunk entry 0's link word (entries are two words: owner, link). */
const FIRST_LINK = (ARENA_META_BASE >>> 2) + ARENA_HEADER_WORDS + 1;

export class ChunkLinks {
  /** The whole arena as words. */
  readonly w: Uint32Array;
  /** The arena as bytes. */
  readonly bytes: Uint8Array;
  /** Arena offset of chunk 0 (hot.chunksBase, read once: it is fixed). */
  readonly base: number;

  constructor(readonly hot: HotPath) {
    this.w = new Uint32Array(hot.buffer, 0, hot.buffer.byteLength >>> 2);
    this.bytes = hot.bytes;
    this.base = hot.chunksBase;
  }

  /** The chunk after `chunk` in its chain (0 at the end). */
  next(chunk: number): number {
    return this.w[FIRST_LINK + (((chunk - this.base) >>> CHUNK_SHIFT) << 1)]!;
  }

  setNext(chunk: number, next: number): void {
    this.w[FIRST_LINK + (((chunk - this.base) >>> CHUNK_SHIFT) << 1)] = next;
  }

  /** Start of the chunk holding arena offset `off`. */
  chunkOf(off: number): number {
    return off - ((off - this.base) & (CHUNK_SIZE - 1));
  }
}
