// Arena allocator: fixed-size chunks, each with an owner tag, all bookkeeping in
// linear memory. stack/hotpath/ts-arena.ts is the TypeScript twin: same
// algorithm, same bytes, so the two engines can be compared byte for byte.
//
// Layout (every field a little-endian u32 word; constants mirror
// stack/hotpath/layout.ts):
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
//                               before the memory size given to arenaInit.
//
// Chunk offsets are never 0, so 0 is free to mean "none" in links and results.
// A chunk is allocated exactly when its owner tag is nonzero, which is why an
// owner of 0 is refused. The free list starts in ascending address order, so
// after init alloc hands out the lowest chunks first and both engines stay in
// step. Every function is total: no u32 argument makes it trap.

import {
  ARENA_H_BAD_FREES, ARENA_H_BASE, ARENA_H_BY_KIND, ARENA_H_COUNT, ARENA_H_HEAD, ARENA_H_IN_USE, ARENA_HEADER_WORDS,
  ARENA_META_BASE, ARENA_META_BYTES_PER_CHUNK, CHUNK_ALIGN, CHUNK_SHIFT, CHUNK_SIZE,
} from './layout.generated';

const ENTRY_BYTES: u32 = ARENA_META_BYTES_PER_CHUNK;
// Byte addresses of the header fields (layout.ts ArenaHeader: word indexes).
const H_COUNT: u32 = ARENA_META_BASE + ARENA_H_COUNT * 4;
const H_BASE: u32 = ARENA_META_BASE + ARENA_H_BASE * 4;
const H_HEAD: u32 = ARENA_META_BASE + ARENA_H_HEAD * 4;
const H_IN_USE: u32 = ARENA_META_BASE + ARENA_H_IN_USE * 4;
const H_BAD_FREES: u32 = ARENA_META_BASE + ARENA_H_BAD_FREES * 4;
const H_BY_KIND: u32 = ARENA_META_BASE + ARENA_H_BY_KIND * 4; // 256 words
const ENTRIES_BASE: u32 = ARENA_META_BASE + ARENA_HEADER_WORDS * 4;

// Set once arenaInit has written a header. Until then (or when the memory is too
// small to hold the header) the arena is empty and inert: nothing reads or writes
// memory, so nothing can trap.
let ready: bool = false;

/** Offset of chunk 0 when there are n chunks. */
function baseFor(n: u32): u32 {
  const entriesEnd = ENTRIES_BASE + n * ENTRY_BYTES;
  return (entriesEnd + CHUNK_ALIGN - 1) & ~(CHUNK_ALIGN - 1);
}

/** Largest chunk count whose metadata and chunks fit in [0, limit). */
function chunksFitting(limit: u32): u32 {
  if (limit <= ENTRIES_BASE) return 0;
  // Each chunk costs its bytes plus its entry; alignment padding may cost one more.
  let n = (limit - ENTRIES_BASE) / (CHUNK_SIZE + ENTRY_BYTES);
  while (n > 0 && <u64>baseFor(n) + <u64>n * CHUNK_SIZE > <u64>limit) n--;
  return n;
}

/** Entry address of the chunk starting at off, or 0 if off is not a chunk start. */
function entryOf(off: u32): u32 {
  if (!ready) return 0;
  const base = load<u32>(H_BASE);
  if (off < base) return 0;
  const rel = off - base;
  if ((rel & (CHUNK_SIZE - 1)) != 0) return 0;
  const index = rel >> CHUNK_SHIFT;
  if (index >= load<u32>(H_COUNT)) return 0;
  return ENTRIES_BASE + index * ENTRY_BYTES;
}

function kindSlot(owner: u32): u32 {
  return H_BY_KIND + (owner >>> 24) * 4;
}

function bump(addr: u32, delta: i32): void {
  store<u32>(addr, load<u32>(addr) + <u32>delta);
}

/** Lay out the arena over [0, memBytes) (capped at the real memory size).
 *  Resets every chunk to free. Returns the chunk count. */
export function arenaInit(memBytes: u32): u32 {
  const real = <u64>memory.size() << 16;
  const limit = <u32>min<u64>(<u64>memBytes, real);
  ready = real >= <u64>ENTRIES_BASE;
  if (!ready) return 0;
  const n = chunksFitting(limit);
  const base = baseFor(n);
  memory.fill(ARENA_META_BASE, 0, ENTRIES_BASE - ARENA_META_BASE);
  store<u32>(H_COUNT, n);
  store<u32>(H_BASE, base);
  store<u32>(H_HEAD, n > 0 ? base : 0);
  // Chain every chunk to the next one up; the last ends the list.
  for (let i: u32 = 0; i < n; i++) {
    const entry = ENTRIES_BASE + i * ENTRY_BYTES;
    store<u32>(entry, 0);
    store<u32>(entry + 4, i + 1 < n ? base + (i + 1) * CHUNK_SIZE : 0);
  }
  const entriesEnd = ENTRIES_BASE + n * ENTRY_BYTES;
  if (n > 0) memory.fill(entriesEnd, 0, base - entriesEnd);
  return n;
}

export function arenaChunksBase(): u32 {
  return ready ? load<u32>(H_BASE) : 0;
}

/** Pop the free list. 0 when the arena is full or owner is 0. */
export function arenaAlloc(owner: u32): u32 {
  if (!ready || owner == 0) return 0;
  const off = load<u32>(H_HEAD);
  if (off == 0) return 0;
  const entry = entryOf(off);
  if (entry == 0) return 0; // a damaged head must not become a wild store
  store<u32>(H_HEAD, load<u32>(entry + 4));
  store<u32>(entry, owner);
  store<u32>(entry + 4, 0);
  bump(H_IN_USE, 1);
  bump(kindSlot(owner), 1);
  return off;
}

/** Push a chunk back. 0 freed, 1 already free, 2 not a chunk start of this arena.
 *  Rejected frees are counted and change nothing else. */
export function arenaFree(off: u32): u32 {
  if (!ready) return 2;
  const entry = entryOf(off);
  if (entry == 0) {
    bump(H_BAD_FREES, 1);
    return 2;
  }
  const owner = load<u32>(entry);
  if (owner == 0) {
    bump(H_BAD_FREES, 1);
    return 1;
  }
  store<u32>(entry, 0);
  store<u32>(entry + 4, load<u32>(H_HEAD));
  store<u32>(H_HEAD, off);
  bump(H_IN_USE, -1);
  bump(kindSlot(owner), -1);
  return 0;
}

/** Owner tag of the chunk at off; 0 when free or not a chunk start. */
export function arenaOwnerOf(off: u32): u32 {
  const entry = entryOf(off);
  return entry == 0 ? 0 : load<u32>(entry);
}

/** Re-tag an allocated chunk. 1 done, 0 when not allocated or owner is 0. */
export function arenaSetOwner(off: u32, owner: u32): u32 {
  if (owner == 0) return 0;
  const entry = entryOf(off);
  if (entry == 0) return 0;
  const old = load<u32>(entry);
  if (old == 0) return 0;
  store<u32>(entry, owner);
  bump(kindSlot(old), -1);
  bump(kindSlot(owner), 1);
  return 1;
}

export function arenaInUse(): u32 {
  return ready ? load<u32>(H_IN_USE) : 0;
}

/** Chunks in use whose owner tag has this kind (owner >>> 24); 0 for kind > 255. */
export function arenaByKind(kind: u32): u32 {
  if (!ready || kind > 255) return 0;
  return load<u32>(H_BY_KIND + kind * 4);
}

export function arenaBadFrees(): u32 {
  return ready ? load<u32>(H_BAD_FREES) : 0;
}
