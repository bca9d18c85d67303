// The memory split of `--mem`: sizes parse as documented, arena + heap is the
// budget, and V8 really gives a Worker with these resourceLimits the heap the
// split promises.

import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { BudgetError, describeSplit, formatBytes, parseSize, splitBudget } from '../../host/budget.js';

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

describe('formatBytes', () => {
  it('uses the largest binary unit with one decimal at most', () => {
    expect(formatBytes(40 * MIB)).toBe('40M');
    expect(formatBytes(1536 * MIB)).toBe('1.5G');
    expect(formatBytes(12 * 1024)).toBe('12K');
    expect(formatBytes(100)).toBe('100');
  });
});
