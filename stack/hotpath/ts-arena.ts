// Arena allocator: fixed-size chunks, each with an owner tag, all bookkeeping in
// the engine's memory. The TypeScript twin of assembly/arena.ts: same algorithm,
// same bytes, so the two engines can be compared byte for byte.
//
// Layout (every field a little-endian u32 word):
//
//   ARENA_META_BASE (32768)     header, HEADER_WORDS words:
//     word 0        chunk count
//     word 1        chunks base (offset of chunk 0)
//     word 2        free-list head: offset of the first free chunk, 0 = none
//     word 3        chunks in use
//     word 4        bad frees (rejected free calls)
//     words 5..7    reserved, 0
//     words 8..263  chunks in use per owner kind (kind = owner >>> 24)
//   ENTRIES_BASE (33824)        one 8-byte entry per chunk i, at ENTRIES_BASE + 8*i:
//     +0 owner tag (0 = free), +4 next free chunk's offset (0 = end; 0 while allocated)
//   chunks base                 first multiple of 64 at or after the entries' end
//                               (bytes in between are zeroed); chunk i is at
//                               chunksBase + i*CHUNK_SIZE, and the last one ends at or
//                               before the memory size given to init.
//
// Chunk offsets are never 0, so 0 is free to mean "none" in links and results.
// A chunk is allocated exactly when its owner tag is nonzero, which is why an
// owner of 0 is refused. The free list starts in ascending address order, so
// after init alloc hands out the lowest chunks first and both engines stay in
// step. Arguments are coerced as a Wasm u32 parameter would be (mod 2^32), and
// no argument makes a method throw.

import {
  ARENA_HEADER_WORDS, ARENA_META_BASE, ARENA_META_BYTES_PER_CHUNK, ArenaHeader, CHUNK_ALIGN, CHUNK_SHIFT, CHUNK_SIZE,
} from './layout.js';

const ENTRIES_BASE = ARENA_META_BASE + ARENA_HEADER_WORDS * 4;

// Word indexes of the header fields in a Uint32Array over the whole memory.
const W_COUNT = (ARENA_META_BASE >>> 2) + ArenaHeader.COUNT;
const W_BASE = (ARENA_META_BASE >>> 2) + ArenaHeader.BASE;
const W_HEAD = (ARENA_META_BASE >>> 2) + ArenaHeader.HEAD;
const W_IN_USE = (ARENA_META_BASE >>> 2) + ArenaHeader.IN_USE;
const W_BAD_FREES = (ARENA_META_BASE >>> 2) + ArenaHeader.BAD_FREES;
const W_BY_KIND = (ARENA_META_BASE >>> 2) + ArenaHeader.BY_KIND;
const W_ENTRIES = ENTRIES_BASE >>> 2;

/** Offset of chunk 0 when there are n chunks. */
function baseFor(n: number): number {
  const entriesEnd = ENTRIES_BASE + n * ARENA_META_BYTES_PER_CHUNK;
  return Math.ceil(entriesEnd / CHUNK_ALIGN) * CHUNK_ALIGN;
}

/** Largest chunk count whose metadata and chunks fit in [0, limit). */
function chunksFitting(limit: number): number {
  if (limit <= ENTRIES_BASE) return 0;
  // Each chunk costs its bytes plus its entry; alignment padding may cost one more.
  let n = Math.floor((limit - ENTRIES_BASE) / (CHUNK_SIZE + ARENA_META_BYTES_PER_CHUNK));
  while (n > 0 && baseFor(n) + n * CHUNK_SIZE > limit) n--;
  return n;
}

export class TsArena {
  private readonly words: Uint32Array;
  private readonly memBytes: number;
  // Set once init has written a header. Until then (or when the memory is too
  // small to hold the header) the arena is empty and inert.
  private ready = false;

  constructor(buffer: ArrayBuffer | SharedArrayBuffer) {
    this.memBytes = buffer.byteLength;
    this.words = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
  }

  /** Lay out the arena over [0, memBytes) (capped at the buffer's size).
   *  Resets every chunk to free. Returns the chunk count. */
  init(memBytes: number): number {
    const w = this.words;
    const limit = Math.min(memBytes >>> 0, this.memBytes);
    this.ready = this.memBytes >= ENTRIES_BASE;
    if (!this.ready) return 0;
    const n = chunksFitting(limit);
    const base = baseFor(n);
    w.fill(0, W_COUNT, W_ENTRIES);
    w[W_COUNT] = n;
    w[W_BASE] = base;
    w[W_HEAD] = n > 0 ? base : 0;
    // Chain every chunk to the next one up; the last ends the list.
    for (let i = 0; i < n; i++) {
      const e = W_ENTRIES + i * 2;
      w[e] = 0;
      w[e + 1] = i + 1 < n ? base + (i + 1) * CHUNK_SIZE : 0;
    }
    if (n > 0) w.fill(0, W_ENTRIES + n * 2, base >>> 2);
    return n;
  }

  get chunksBase(): number {
    return this.ready ? this.words[W_BASE] : 0;
  }

  /** Pop the free list. 0 when the arena is full or owner is 0. */
  alloc(owner: number): number {
    const tag = owner >>> 0;
    if (!this.ready || tag === 0) return 0;
    const w = this.words;
    const off = w[W_HEAD];
    if (off === 0) return 0;
    const e = this.entryOf(off);
    if (e < 0) return 0; // a damaged head must not become a wild store
    w[W_HEAD] = w[e + 1];
    w[e] = tag;
    w[e + 1] = 0;
    w[W_IN_USE]++;
    w[W_BY_KIND + (tag >>> 24)]++;
    return off;
  }

  /** Push a chunk back. 0 freed, 1 already free, 2 not a chunk start of this arena.
   *  Rejected frees are counted and change nothing else. */
  free(off: number): number {
    if (!this.ready) return 2;
    const w = this.words;
    const at = off >>> 0;
    const e = this.entryOf(at);
    if (e < 0) {
      w[W_BAD_FREES]++;
      return 2;
    }
    const owner = w[e];
    if (owner === 0) {
      w[W_BAD_FREES]++;
      return 1;
    }
    w[e] = 0;
    w[e + 1] = w[W_HEAD];
    w[W_HEAD] = at;
    w[W_IN_USE]--;
    w[W_BY_KIND + (owner >>> 24)]--;
    return 0;
  }

  /** Owner tag of the chunk at off; 0 when free or not a chunk start. */
  ownerOf(off: number): number {
    const e = this.entryOf(off >>> 0);
    return e < 0 ? 0 : this.words[e];
  }

  /** Re-tag an allocated chunk. False when not allocated or owner is 0. */
  setOwner(off: number, owner: number): boolean {
    const tag = owner >>> 0;
    if (tag === 0) return false;
    const e = this.entryOf(off >>> 0);
    if (e < 0) return false;
    const w = this.words;
    const old = w[e];
    if (old === 0) return false;
    w[e] = tag;
    w[W_BY_KIND + (old >>> 24)]--;
    w[W_BY_KIND + (tag >>> 24)]++;
    return true;
  }

  inUse(): number {
    return this.ready ? this.words[W_IN_USE] : 0;
  }

  /** Chunks in use whose owner tag has this kind (owner >>> 24); 0 for kind > 255. */
  byKind(kind: number): number {
    const k = kind >>> 0;
    if (!this.ready || k > 255) return 0;
    return this.words[W_BY_KIND + k];
  }

  badFrees(): number {
    return this.ready ? this.words[W_BAD_FREES] : 0;
  }

  /** Word index of the entry of the chunk starting at off (a u32), or -1 if off
   *  is not a chunk start of this arena. */
  private entryOf(off: number): number {
    if (!this.ready) return -1;
    const w = this.words;
    const base = w[W_BASE];
    if (off < base) return -1;
    const rel = off - base;
    if ((rel & (CHUNK_SIZE - 1)) !== 0) return -1;
    const index = rel >>> CHUNK_SHIFT;
    if (index >= w[W_COUNT]) return -1;
    return W_ENTRIES + index * 2;
  }
}
