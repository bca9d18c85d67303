// The arena allocator of both hot-path engines: layout, validation of frees,
// exact counters, exhaustion, and random operation sequences checked against a
// model that predicts every result, with both engines run side by side and
// their metadata compared byte for byte.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../../host/hotpath.js';
import type { HotPath } from '../../stack/hotpath/engine.js';
import { OwnerKind, ownerTag } from '../../stack/hotpath/engine.js';
import { ARENA_META_BASE, CHUNK_SIZE } from '../../stack/hotpath/layout.js';
import { TsArena } from '../../stack/hotpath/ts-arena.js';

const MEM = 1 << 20; // the smallest memory the stack uses; 493 chunks
const HEADER_BYTES = (8 + 256) * 4;
const ENTRIES_BASE = ARENA_META_BASE + HEADER_BYTES;
const BAD_FREES_WORD = 4;

async function pair(memoryBytes = MEM): Promise<[HotPath, HotPath]> {
  return [await createEngine('wasm', memoryBytes), await createEngine('ts', memoryBytes)];
}

/** Arena metadata: header, per-chunk entries and the padding before chunk 0. */
function metadata(hp: HotPath): Uint8Array {
  return hp.bytes.slice(ARENA_META_BASE, hp.chunksBase);
}

function headerWord(hp: HotPath, word: number): number {
  return new DataView(hp.buffer).getUint32(ARENA_META_BASE + word * 4, true);
}

/** Runs a check once per engine, naming the engine when it fails. */
async function eachEngine(check: (hp: HotPath) => void, memoryBytes = MEM): Promise<void> {
  for (const hp of await pair(memoryBytes)) {
    try {
      check(hp);
    } catch (err) {
      throw new Error(`engine ${hp.name}: ${(err as Error).message}`, { cause: err });
    }
  }
}

const rx = (id: number) => ownerTag(OwnerKind.Rx, id);
const tcpRecv = (id: number) => ownerTag(OwnerKind.TcpRecv, id);

describe('arena layout', () => {
  it('places entries after the header and 64-aligned chunks after them, filling memory', async () => {
    for (const size of [65536, MEM, 40 * 2 ** 20, 17 * 65536]) {
      const [w, t] = await pair(size);
      for (const hp of [w!, t!]) {
        const n = hp.chunkCount;
        const base = hp.chunksBase;
        expect(n).toBeGreaterThan(0);
        expect(base % 64).toBe(0);
        expect(base).toBeGreaterThanOrEqual(ENTRIES_BASE + 8 * n);
        expect(base - (ENTRIES_BASE + 8 * n)).toBeLessThan(64);
        expect(base + n * CHUNK_SIZE).toBeLessThanOrEqual(size);
        // One more chunk (and its entry) would not fit.
        const nextBase = Math.ceil((ENTRIES_BASE + 8 * (n + 1)) / 64) * 64;
        expect(nextBase + (n + 1) * CHUNK_SIZE).toBeGreaterThan(size);
        expect([0, 1, 2, 3, 4].map((i) => headerWord(hp, i))).toEqual([n, base, base, 0, 0]);
      }
      expect(t!.chunkCount).toBe(w!.chunkCount);
      expect(t!.chunksBase).toBe(w!.chunksBase);
      expect(metadata(t!)).toEqual(metadata(w!));
    }
  });

  it('hands out the lowest chunks first, in ascending order', async () => {
    await eachEngine((hp) => {
      for (let i = 0; i < 5; i++) expect(hp.alloc(rx(i + 1))).toBe(hp.chunksBase + i * CHUNK_SIZE);
    });
  });
});

describe('arena operations', () => {
  it('alloc tags the chunk and counts it by kind; free undoes both', async () => {
    await eachEngine((hp) => {
      const a = hp.alloc(rx(7));
      const b = hp.alloc(tcpRecv(9));
      expect(hp.ownerOf(a)).toBe(rx(7));
      expect(hp.ownerOf(b)).toBe(tcpRecv(9));
      expect(hp.chunksInUse()).toBe(2);
      expect(hp.chunksByKind(OwnerKind.Rx)).toBe(1);
      expect(hp.chunksByKind(OwnerKind.TcpRecv)).toBe(1);
      expect(hp.free(a)).toBe(0);
      expect(hp.ownerOf(a)).toBe(0);
      expect(hp.chunksInUse()).toBe(1);
      expect(hp.chunksByKind(OwnerKind.Rx)).toBe(0);
      // The chunk freed last is the next one handed out.
      expect(hp.alloc(rx(8))).toBe(a);
    });
  });

  it('refuses owner 0', async () => {
    await eachEngine((hp) => {
      expect(hp.alloc(0)).toBe(0);
      expect(hp.chunksInUse()).toBe(0);
      const a = hp.alloc(rx(1));
      expect(hp.setOwner(a, 0)).toBe(false);
      expect(hp.ownerOf(a)).toBe(rx(1));
    });
  });

  it('setOwner moves a chunk between kinds, only when allocated', async () => {
    await eachEngine((hp) => {
      const a = hp.alloc(rx(1));
      expect(hp.setOwner(a, tcpRecv(42))).toBe(true);
      expect(hp.ownerOf(a)).toBe(tcpRecv(42));
      expect(hp.chunksByKind(OwnerKind.Rx)).toBe(0);
      expect(hp.chunksByKind(OwnerKind.TcpRecv)).toBe(1);
      expect(hp.chunksInUse()).toBe(1);
      const freeChunk = hp.chunksBase + 5 * CHUNK_SIZE;
      expect(hp.setOwner(freeChunk, rx(2))).toBe(false);
      expect(hp.setOwner(a + 1, rx(2))).toBe(false);
      expect(hp.setOwner(0, rx(2))).toBe(false);
      expect(hp.ownerOf(freeChunk)).toBe(0);
      expect(hp.chunksByKind(OwnerKind.Rx)).toBe(0);
    });
  });

  it('counts every owner kind 0..255 and nothing beyond', async () => {
    await eachEngine((hp) => {
      hp.alloc(ownerTag(255 as OwnerKind, 1));
      hp.alloc(0x00000005); // kind 0 with a nonzero id is still an owner
      expect(hp.chunksByKind(255)).toBe(1);
      expect(hp.chunksByKind(0)).toBe(1);
      expect(hp.chunksByKind(256)).toBe(0);
      expect(hp.chunksByKind(0xffffffff)).toBe(0);
    });
  });

  it('rejects foreign, misaligned and double frees, counts them, changes nothing', async () => {
    await eachEngine((hp) => {
      const a = hp.alloc(rx(1));
      const b = hp.alloc(rx(2));
      expect(hp.free(b)).toBe(0);
      const end = hp.chunksBase + hp.chunkCount * CHUNK_SIZE;
      const before = metadata(hp);
      const foreign = [0, 1, ARENA_META_BASE, ENTRIES_BASE, hp.chunksBase - CHUNK_SIZE, hp.chunksBase - 1, end, end + CHUNK_SIZE, 0xffffffff];
      const misaligned = [a + 1, a + 4, a + CHUNK_SIZE / 2, a + CHUNK_SIZE - 1];
      for (const off of [...foreign, ...misaligned]) expect(hp.free(off), `free(${off})`).toBe(2);
      expect(hp.free(b)).toBe(1); // double free
      expect(hp.free(hp.chunksBase + 9 * CHUNK_SIZE)).toBe(1); // never allocated
      expect(hp.badFrees()).toBe(foreign.length + misaligned.length + 2);
      // Only the bad-free counter moved.
      const after = metadata(hp);
      const counter = BAD_FREES_WORD * 4;
      expect(after.subarray(counter + 4)).toEqual(before.subarray(counter + 4));
      expect(after.subarray(0, counter)).toEqual(before.subarray(0, counter));
      expect(hp.ownerOf(a)).toBe(rx(1));
      expect(hp.chunksInUse()).toBe(1);
      for (const off of [...foreign, ...misaligned]) expect(hp.ownerOf(off)).toBe(0);
    });
  });

  it('returns 0 when exhausted and recovers after a free', async () => {
    await eachEngine((hp) => {
      const seen = new Set<number>();
      for (let i = 0; i < hp.chunkCount; i++) {
        const off = hp.alloc(rx(i + 1));
        expect(off).not.toBe(0);
        seen.add(off);
      }
      expect(seen.size).toBe(hp.chunkCount);
      expect(hp.alloc(rx(1))).toBe(0);
      expect(hp.alloc(rx(1))).toBe(0);
      expect(hp.chunksInUse()).toBe(hp.chunkCount);
      const victim = hp.chunksBase + 17 * CHUNK_SIZE;
      expect(hp.free(victim)).toBe(0);
      expect(hp.alloc(tcpRecv(3))).toBe(victim);
      expect(hp.alloc(tcpRecv(3))).toBe(0);
      for (const off of seen) expect(hp.free(off)).toBe(0);
      expect(hp.chunksInUse()).toBe(0);
      expect(hp.chunksByKind(OwnerKind.Rx)).toBe(0);
      expect(hp.chunksByKind(OwnerKind.TcpRecv)).toBe(0);
      expect(hp.badFrees()).toBe(0);
    });
  });

  it('never throws on arbitrary u32 arguments', async () => {
    const [w, t] = await pair();
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    fc.assert(
      fc.property(u32, u32, (x, y) => {
        for (const hp of [w!, t!]) {
          hp.ownerOf(x);
          hp.setOwner(x, y);
          hp.chunksByKind(x);
          hp.free(x);
          hp.alloc(y);
        }
        expect(t!.chunksInUse()).toBe(w!.chunksInUse());
      }),
      { numRuns: 500 },
    );
    expect(metadata(t!)).toEqual(metadata(w!));
  });
});

describe('TsArena edge cases (memories no engine is built with)', () => {
  it('gives 0 chunks, and stays inert, when memory is too small', () => {
    for (const [bufferBytes, memBytes] of [[0, 0], [4096, MEM], [ENTRIES_BASE - 4, MEM], [MEM, 0], [MEM, ENTRIES_BASE + 2000]]) {
      const arena = new TsArena(new ArrayBuffer(bufferBytes!));
      expect(arena.init(memBytes!)).toBe(0);
      expect(arena.alloc(rx(1))).toBe(0);
      expect(arena.free(arena.chunksBase)).toBe(2);
      expect(arena.setOwner(arena.chunksBase, rx(1))).toBe(false);
      expect(arena.ownerOf(arena.chunksBase)).toBe(0);
      expect(arena.inUse()).toBe(0);
    }
  });

  it('caps memBytes at the buffer, and fits exactly one chunk when that is all there is', () => {
    const oneChunk = Math.ceil((ENTRIES_BASE + 8) / 64) * 64 + CHUNK_SIZE;
    const arena = new TsArena(new ArrayBuffer(oneChunk));
    expect(arena.init(0xffffffff)).toBe(1);
    const a = arena.alloc(rx(1));
    expect(a + CHUNK_SIZE).toBe(oneChunk);
    expect(arena.alloc(rx(2))).toBe(0);
    expect(new TsArena(new ArrayBuffer(oneChunk - 1)).init(oneChunk)).toBe(0);
  });

  it('init again resets to the freshly initialised bytes', () => {
    const used = new ArrayBuffer(MEM);
    const arena = new TsArena(used);
    arena.init(MEM);
    for (let i = 0; i < 50; i++) arena.alloc(rx(i + 1));
    for (let i = 0; i < 50; i += 3) arena.free(arena.chunksBase + i * CHUNK_SIZE);
    arena.free(1);
    arena.init(MEM);
    const fresh = new ArrayBuffer(MEM);
    new TsArena(fresh).init(MEM);
    const end = arena.chunksBase;
    expect(new Uint8Array(used, ARENA_META_BASE, end - ARENA_META_BASE)).toEqual(new Uint8Array(fresh, ARENA_META_BASE, end - ARENA_META_BASE));
  });
});

// ---- Model-based random sequences ----------------------------------------

type Op =
  | { op: 'alloc'; owner: number }
  | { op: 'fill'; owner: number } // alloc until the arena is full
  | { op: 'free'; pick: number } // a chunk the model holds
  | { op: 'double'; pick: number } // a chunk the model has freed before
  | { op: 'bad'; off: number } // anything that is not a chunk start
  | { op: 'setOwner'; pick: number; owner: number }
  | { op: 'freeAll' };

/** Predicts every result: the free list is a stack that starts in address order. */
class Model {
  readonly held = new Map<number, number>(); // offset -> owner
  readonly freed: number[] = []; // offsets freed at least once
  readonly free: number[]; // top of the stack at the end
  badFrees = 0;

  constructor(readonly base: number, readonly count: number) {
    this.free = Array.from({ length: count }, (_, i) => base + (count - 1 - i) * CHUNK_SIZE);
  }

  byKind(kind: number): number {
    let n = 0;
    for (const owner of this.held.values()) if (owner >>> 24 === kind) n++;
    return n;
  }

  heldAt(pick: number): number | undefined {
    const offsets = [...this.held.keys()];
    return offsets.length === 0 ? undefined : offsets[pick % offsets.length];
  }

  isChunkStart(off: number): boolean {
    const rel = off - this.base;
    return rel >= 0 && rel % CHUNK_SIZE === 0 && rel / CHUNK_SIZE < this.count;
  }
}

const owner = fc.oneof(
  { weight: 1, arbitrary: fc.constant(0) },
  { weight: 8, arbitrary: fc.tuple(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 0, max: 0xffffff })).map(([k, id]) => ownerTag(k, id)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 0xffffffff }) },
);

function badOffsets(base: number, count: number): fc.Arbitrary<number> {
  const end = base + count * CHUNK_SIZE;
  return fc.oneof(
    fc.integer({ min: 0, max: base - 1 }),
    fc.integer({ min: end, max: 0xffffffff }),
    fc.tuple(fc.integer({ min: 0, max: count - 1 }), fc.integer({ min: 1, max: CHUNK_SIZE - 1 })).map(([i, d]) => base + i * CHUNK_SIZE + d),
  );
}

function ops(base: number, count: number): fc.Arbitrary<Op[]> {
  const pick = fc.nat();
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 10, arbitrary: owner.map((o) => ({ op: 'alloc' as const, owner: o })) },
    { weight: 1, arbitrary: owner.map((o) => ({ op: 'fill' as const, owner: o })) },
    { weight: 8, arbitrary: pick.map((p) => ({ op: 'free' as const, pick: p })) },
    { weight: 2, arbitrary: pick.map((p) => ({ op: 'double' as const, pick: p })) },
    { weight: 2, arbitrary: badOffsets(base, count).map((o) => ({ op: 'bad' as const, off: o })) },
    { weight: 4, arbitrary: fc.tuple(pick, owner).map(([p, o]) => ({ op: 'setOwner' as const, pick: p, owner: o })) },
    { weight: 1, arbitrary: fc.constant({ op: 'freeAll' as const }) },
  );
  return fc.array(op, { maxLength: 200, size: 'max' });
}

/** Applies one op to the model and both engines; every result must be the one
 *  the model predicts. */
function step(m: Model, engines: HotPath[], o: Op): void {
  const all = <T>(f: (hp: HotPath) => T, want: T, what: string) => {
    for (const hp of engines) expect(f(hp), `${hp.name} ${what}`).toBe(want);
  };
  const alloc = (tag: number) => {
    const want = tag === 0 ? 0 : (m.free.pop() ?? 0);
    expect(m.held.has(want)).toBe(false); // never handed out twice
    all((hp) => hp.alloc(tag), want, `alloc(${tag})`);
    if (want !== 0) m.held.set(want, tag);
    return want;
  };
  const free = (off: number) => {
    all((hp) => hp.free(off), 0, `free(${off})`);
    m.held.delete(off);
    m.free.push(off);
    m.freed.push(off);
  };
  switch (o.op) {
    case 'alloc':
      alloc(o.owner);
      break;
    case 'fill':
      if (o.owner !== 0) while (alloc(o.owner) !== 0);
      break;
    case 'free': {
      const off = m.heldAt(o.pick);
      if (off !== undefined) free(off);
      break;
    }
    case 'double': {
      const off = m.freed.length === 0 ? undefined : m.freed[o.pick % m.freed.length]!;
      if (off === undefined || m.held.has(off)) break;
      all((hp) => hp.free(off), 1, `double free(${off})`);
      m.badFrees++;
      break;
    }
    case 'bad':
      expect(m.isChunkStart(o.off)).toBe(false);
      all((hp) => hp.free(o.off), 2, `bad free(${o.off})`);
      m.badFrees++;
      break;
    case 'setOwner': {
      const off = m.heldAt(o.pick);
      if (off === undefined) break;
      all((hp) => hp.setOwner(off, o.owner), o.owner !== 0, `setOwner(${off}, ${o.owner})`);
      if (o.owner !== 0) m.held.set(off, o.owner);
      break;
    }
    case 'freeAll':
      for (const off of [...m.held.keys()]) free(off);
      break;
  }
}

function checkInvariants(m: Model, engines: HotPath[]): void {
  const kinds = new Set([0, 1, 2, 3, 4, 5, 10, 255, ...[...m.held.values()].map((t) => t >>> 24)]);
  for (const hp of engines) {
    expect(hp.chunksInUse(), `${hp.name} in use`).toBe(m.held.size);
    expect(hp.badFrees(), `${hp.name} bad frees`).toBe(m.badFrees);
    for (const k of kinds) expect(hp.chunksByKind(k), `${hp.name} kind ${k}`).toBe(m.byKind(k));
    for (const [off, tag] of m.held) expect(hp.ownerOf(off)).toBe(tag);
  }
}

describe('arena under random operation sequences', () => {
  // One page (15 chunks) runs out often; 1 MiB (493 chunks) runs out through 'fill'.
  it.each([65536, MEM])('matches the model after every step, and the engines match byte for byte (%i bytes)', async (size) => {
    const [w0] = await pair(size);
    const base = w0!.chunksBase;
    const count = w0!.chunkCount;
    await fc.assert(
      fc.asyncProperty(ops(base, count), async (list) => {
        const engines = await pair(size);
        const m = new Model(base, count);
        for (const o of list) {
          step(m, engines, o);
          for (const hp of engines) expect(hp.chunksInUse()).toBe(m.held.size);
        }
        checkInvariants(m, engines);
        expect(metadata(engines[1]!)).toEqual(metadata(engines[0]!));
      }),
      { numRuns: 100 },
    );
  });
});
