// The memory split of `--mem`: sizes parse as documented, arena + heap is the
// budget, and V8 really gives a Worker with these resourceLimits the heap the
// split promises.

import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  APP_HEAP_PER_CONNECTION, BudgetError, CONNECTION_ARENA_BYTES, connectionCapacity, connectionsFitting, describeCapacity, describeSplit, formatBytes, maxConnectionCapacity, parseSize,
  splitBudget,
} from '../../host/budget.js';
import { TcbTable } from '../../stack/tcp/tcb-table.js';
import { gatewayConnections } from '../../host/net-backend.js';

const MIB = 1024 * 1024;

describe('parseSize', () => {
  it('reads bytes and K, M, G in either case, with an optional B or iB', () => {
    expect(parseSize('41943040')).toBe(40 * MIB);
    expect(parseSize('40M')).toBe(40 * MIB);
    expect(parseSize('64m')).toBe(64 * MIB);
    expect(parseSize('1G')).toBe(1024 * MIB);
    expect(parseSize('512KiB')).toBe(512 * 1024);
    expect(parseSize('48MB')).toBe(48 * MIB);
    expect(parseSize('1.5g')).toBe(1536 * MIB);
  });

  it('refuses anything else with a message naming the input', () => {
    for (const bad of ['', 'abc', '40X', '-5M', '40 M B', '1e9']) {
      expect(() => parseSize(bad)).toThrow(BudgetError);
    }
    expect(() => parseSize('40X')).toThrow(/invalid size '40X'/);
  });
});

describe('splitBudget', () => {
  it('gives 40M as arena 24M (384 pages) + heap 16M (old 13M, young 3M)', () => {
    const s = splitBudget(40 * MIB);
    expect(s).toMatchObject({
      arenaBytes: 24 * MIB,
      arenaPages: 384,
      heapBytes: 16 * MIB,
      maxOldGenerationSizeMb: 13,
      maxYoungGenerationSizeMb: 2,
      youngChargeMb: 3,
    });
    expect(describeSplit(s, 12223)).toBe('mem: 40M = arena 24M (384 pages, 12223 chunks) + heap 16M (old 13M, young 3M)');
  });

  it('adds up to the budget, to within a page, across sizes', () => {
    for (const mb of [16, 17, 32, 40, 64, 100, 256, 1024, 3072]) {
      const s = splitBudget(mb * MIB);
      expect(s.arenaBytes + s.heapBytes).toBeLessThanOrEqual(mb * MIB);
      expect(mb * MIB - (s.arenaBytes + s.heapBytes)).toBeLessThan(65536);
      expect(s.maxOldGenerationSizeMb + s.youngChargeMb).toBe(s.heapBytes / MIB);
      expect(s.maxOldGenerationSizeMb).toBeGreaterThan(s.youngChargeMb);
    }
  });

  it('refuses budgets too small to boot a guest, or too large for the arena', () => {
    expect(() => splitBudget(8 * MIB)).toThrow(/too small: at least 16M/);
    expect(() => splitBudget(8 * 1024 * MIB)).toThrow(/too large/);
  });

  it('matches what V8 gives a Worker: heap_size_limit is the heap share', async () => {
    for (const mb of [40, 64]) {
      const s = splitBudget(mb * MIB);
      const worker = new Worker(
        `require('node:worker_threads').parentPort.postMessage(require('node:v8').getHeapStatistics().heap_size_limit)`,
        {
          eval: true,
          resourceLimits: {
            maxOldGenerationSizeMb: s.maxOldGenerationSizeMb,
            maxYoungGenerationSizeMb: s.maxYoungGenerationSizeMb,
          },
        },
      );
      const limit = await new Promise<number>((resolve) => worker.once('message', resolve));
      await worker.terminate();
      expect(limit).toBe(s.heapBytes);
    }
  });
});

describe('--heap', () => {
  it('sets the heap share in whole MiB; the arena gets the rest', () => {
    const s = splitBudget(40 * MIB, 12 * MIB);
    expect(s).toMatchObject({ heapBytes: 12 * MIB, arenaBytes: 28 * MIB, maxOldGenerationSizeMb: 9, youngChargeMb: 3 });
    expect(splitBudget(40 * MIB, 12.5 * MIB).heapBytes).toBe(12 * MIB);
  });

  it('refuses a heap below 12M or one that leaves less than a 4M arena', () => {
    expect(() => splitBudget(40 * MIB, 8 * MIB)).toThrow(/heap 8M does not fit a 40M budget: between 12M/);
    expect(() => splitBudget(40 * MIB, 37 * MIB)).toThrow(BudgetError);
  });
});

describe('connection capacity', () => {
  it('fits half the arena by default and all but the rings and 2M at most, 256-byte records and their hash', () => {
    expect(CONNECTION_ARENA_BYTES).toBe(256);
    const cases: [number, number | undefined, number, number][] = [
      [16, undefined, 4032, 4032],
      [40, undefined, 44_032, 83_968],
      [40, 12, 52_224, 100_352],
      [128, undefined, 149_504, 294_912],
    ];
    for (const [mem, heap, byDefault, most] of cases) {
      const s = splitBudget(mem * MIB, heap === undefined ? undefined : heap * MIB);
      expect([connectionCapacity(s), maxConnectionCapacity(s)], `${mem}M`).toEqual([byDefault, most]);
      // What the stack then takes really fits (the timers' words are in the
      // records), and one more would not.
      expect(TcbTable.bytesFor(most)).toBeLessThanOrEqual(s.arenaBytes - MIB - 2 * MIB);
      expect(TcbTable.bytesFor(most + 1)).toBeGreaterThan(s.arenaBytes - MIB - 2 * MIB);
    }
  });

  it('an app that keeps objects per connection gets what the heap holds, if that is less', () => {
    const cases: [number, number][] = [[16, 64], [40, 696], [128, 4464]];
    for (const [mem, byHeap] of cases) {
      const s = splitBudget(mem * MIB);
      expect(connectionCapacity(s, APP_HEAP_PER_CONNECTION), `${mem}M`).toBe(Math.min(byHeap, connectionCapacity(s)));
    }
    // A heap-light app (none kept) is not limited by the heap at all.
    expect(connectionCapacity(splitBudget(40 * MIB), 0)).toBe(44_032);
    expect(describeCapacity(splitBudget(40 * MIB), 696, false, APP_HEAP_PER_CONNECTION)).toBe(
      'tcp: up to 696 connections (the app keeps about 5K of heap each: old generation 13M x 80% high-water - 7M at boot; ' +
        'the arena holds 44032, --max-connections up to 83968); no new connection while the old generation holds more than 10.4M',
    );
  });

  it('says where the number comes from at boot', () => {
    const s = splitBudget(40 * MIB);
    expect(describeCapacity(s, connectionCapacity(s), false)).toBe(
      'tcp: up to 44032 connections (arena 24M - 1M rings - 12M for data, 256 bytes each and the hash; --max-connections up to 83968); ' +
        'no new connection while the old generation holds more than 10.4M',
    );
    expect(describeCapacity(s, 1000, true)).toMatch(/^tcp: up to 1000 connections \(as given: arena 24M - 1M rings - 22\.8M for data/);
  });
});

describe('formatBytes', () => {
  it('uses the largest binary unit with one decimal at most', () => {
    expect(formatBytes(40 * MIB)).toBe('40M');
    expect(formatBytes(1536 * MIB)).toBe('1.5G');
    expect(formatBytes(12 * 1024)).toBe('12K');
    expect(formatBytes(100)).toBe('100');
  });
});

describe('the user-mode gateway\'s connection table', () => {
  it('takes a quarter of its arena, at most 16,384', () => {
    expect(gatewayConnections(16 * MIB)).toBe(16_128);
    expect(TcbTable.bytesFor(16_128)).toBeLessThanOrEqual(4 * MIB);
    expect(TcbTable.bytesFor(16_129)).toBeGreaterThan(4 * MIB);
    expect(gatewayConnections(28 * MIB)).toBe(16_384);
    expect(connectionsFitting(0)).toBe(64);
  });
});
