// What a guest's arena holds, read by the tender straight from the shared
// memory: it works while the guest runs and after its isolate is gone (the
// out-of-memory report). The arena metadata is the layout documented in
// stack/hotpath/ts-arena.ts and assembly/arena.ts (a chunk count and base in
// the header, then one 8-byte entry per chunk whose first word is the owner
// tag, 0 when free); test/host/arena-report.test.ts checks this reader
// against both engines.

import { OWNER_KIND_NAMES, ARENA_META_BASE, ARENA_META_BYTES_PER_CHUNK, CHUNK_SIZE } from '../stack/index.js';
import { formatBytes } from './budget.js';

/** Header words before the entries: 8 fields and 256 per-kind counters. */
const HEADER_WORDS = 8 + 256;
const ENTRIES_BASE = ARENA_META_BASE + HEADER_WORDS * 4;

export interface ArenaOwner {
  tag: number;
  kind: string;
  id: number;
  chunks: number;
}

export interface ArenaScan {
  chunks: number;
  inUse: number;
  byKind: Record<string, number>;
  /** Owners by chunks held, largest first. */
  owners: ArenaOwner[];
}

export function kindName(kind: number): string {
  return OWNER_KIND_NAMES[kind] ?? `kind${kind}`;
}

/** Count every chunk's owner. O(chunks); for reports, not for each frame. */
export function scanArena(buffer: ArrayBufferLike): ArenaScan {
  const words = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
  const count = words[ARENA_META_BASE >>> 2]!;
  const perOwner = new Map<number, number>();
  const byKind: Record<string, number> = {};
  let inUse = 0;
  const stride = ARENA_META_BYTES_PER_CHUNK >>> 2;
  for (let i = 0, w = ENTRIES_BASE >>> 2; i < count; i++, w += stride) {
    const tag = words[w]!;
    if (tag === 0) continue;
    inUse++;
    perOwner.set(tag, (perOwner.get(tag) ?? 0) + 1);
    const kind = kindName(tag >>> 24);
    byKind[kind] = (byKind[kind] ?? 0) + 1;
  }
  const owners = [...perOwner]
    .map(([tag, chunks]) => ({ tag, kind: kindName(tag >>> 24), id: tag & 0xffffff, chunks }))
    .sort((a, b) => b.chunks - a.chunks || a.tag - b.tag);
  return { chunks: count, inUse, byKind, owners };
}

/** Report lines: the total, chunks by owner kind, the largest owners. */
export function describeArena(scan: ArenaScan, top = 8): string[] {
  const kib = (chunks: number) => formatBytes(chunks * CHUNK_SIZE);
  const kinds = Object.entries(scan.byKind)
    .sort((a, b) => b[1] - a[1])
    .map(([kind, n]) => `${kind} ${n} (${kib(n)})`);
  const owners = scan.owners.slice(0, top).map((o) => `${o.kind}#${o.id} ${o.chunks} (${kib(o.chunks)})`);
  return [
    `arena: ${scan.inUse} of ${scan.chunks} chunks in use (${kib(scan.inUse)} of ${kib(scan.chunks)})`,
    `  by owner kind: ${kinds.length > 0 ? kinds.join(', ') : 'none'}`,
    `  largest owners: ${owners.length > 0 ? owners.join(', ') : 'none'}`,
  ];
}
