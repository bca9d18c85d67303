// Fixed tables in the arena: a run of consecutive chunks taken once, when a
// stack is made, and kept for its whole life (owner kind Table). The TCP
// control-block table, its 4-tuple hash and the timers' positions live in
// such regions, so what grows with connections is arena memory, exact and
// bounded, sized at boot.
//
// Why consecutive chunks are there to take: a fresh arena hands out its
// chunks in ascending address order (stack/hotpath/ts-arena.ts and
// assembly/arena.ts both start their free list that way), and a stack takes
// its regions before any traffic. If the chunks taken are not consecutive
// (an arena already in use), they are given back and the region is refused.

import { CHUNK_SIZE } from './hotpath/layout.js';
import { OwnerKind, ownerTag, type HotPath } from './hotpath/engine.js';

export interface ArenaRegion {
  /** Byte offset of the region's first byte. */
  readonly offset: number;
  readonly bytes: number;
  /** Chunks it holds. */
  readonly chunks: number;
}

export class ArenaRegionError extends Error {
  override readonly name = 'ArenaRegionError';
}

/** Take `bytes` (rounded up to whole chunks) of consecutive arena memory, zeroed. */
export function takeRegion(hot: HotPath, bytes: number, id: number): ArenaRegion {
  const chunks = Math.max(1, Math.ceil(bytes / CHUNK_SIZE));
  const owner = ownerTag(OwnerKind.Table, id);
  const taken: number[] = [];
  const giveBack = (why: string): never => {
    for (const c of taken) hot.free(c);
    throw new ArenaRegionError(`arena: ${why} for a table of ${bytes} bytes (${chunks} chunks)`);
  };
  for (let i = 0; i < chunks; i++) {
    const c = hot.alloc(owner);
    if (c === 0) giveBack(`no room (${hot.chunkCount - hot.chunksInUse()} chunks free)`);
    if (taken.length > 0 && c !== taken[taken.length - 1]! + CHUNK_SIZE) {
      taken.push(c);
      giveBack('no run of consecutive chunks');
    }
    taken.push(c);
  }
  const offset = taken[0]!;
  hot.bytes.fill(0, offset, offset + chunks * CHUNK_SIZE);
  return { offset, bytes: chunks * CHUNK_SIZE, chunks };
}

/** Give a region's chunks back (stack shutdown). */
export function releaseRegion(hot: HotPath, region: ArenaRegion): void {
  for (let i = 0; i < region.chunks; i++) hot.free(region.offset + i * CHUNK_SIZE);
}
