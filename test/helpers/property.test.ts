// The fast-check plumbing (test/helpers/property.ts): the seed a test file
// runs with, and recorded regressions tried before the random runs.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkProperty, seedFrom } from './property.js';
import type { Regression } from '../regressions/fast-check.js';

const FOUND = { found: '2025-01-01', why: 'a case of this test' };

describe('seedFrom', () => {
  it('takes FC_SEED when set, as fast-check prints seeds', () => {
    expect(seedFrom({ FC_SEED: '123' })).toBe(123);
    expect(seedFrom({ FC_SEED: '-1770905065' })).toBe(-1770905065);
    expect(seedFrom({ FC_SEED: ' 42 ' })).toBe(42);
  });

  it('refuses an FC_SEED that is not a 32-bit integer, rather than run with another seed', () => {
    for (const bad of ['abc', '1.5', '1e3', '0x10', '99999999999', '-2147483649']) {
      expect(() => seedFrom({ FC_SEED: bad }), bad).toThrow(/FC_SEED/);
    }
  });

  it('picks a 32-bit integer from the random source when FC_SEED is unset or empty', () => {
    expect(seedFrom({}, () => 0)).toBe(0);
    expect(seedFrom({ FC_SEED: '' }, () => 0.25)).toBe(0x4000_0000);
    expect(seedFrom({}, () => 0.75)).toBe(0xc000_0000 | 0);
    for (const r of [0.1, 0.5, 0.999999]) {
      const seed = seedFrom({}, () => r);
      expect(Number.isInteger(seed) && seed >= -0x8000_0000 && seed <= 0x7fff_ffff).toBe(true);
    }
  });
});

describe('checkProperty', () => {
  /** A property over 0..10 that records what it is called with and fails on `bad`. */
  function recording(bad: (v: number) => boolean) {
    const calls: number[] = [];
    const property = fc.property(fc.integer({ min: 0, max: 10 }), (v) => {
      calls.push(v);
      return !bad(v);
    });
    return { calls, property };
  }

  it('tries a recorded example before any random run', () => {
    const { calls, property } = recording(() => false);
    const registry: Record<string, Regression[]> = { p: [{ ...FOUND, example: [1234] }] };
    checkProperty('p', property, { numRuns: 5 }, registry);
    expect(calls[0]).toBe(1234); // outside the arbitrary's range: only the record can give it
    expect(calls.slice(1).every((v) => v >= 0 && v <= 10)).toBe(true);
  });

  it('fails on a recorded example that still fails, reporting it', () => {
    const { property } = recording((v) => v === 1234);
    const registry: Record<string, Regression[]> = { p: [{ ...FOUND, example: [1234] }] };
    expect(() => checkProperty('p', property, { numRuns: 5 }, registry)).toThrow(/Counterexample: \[1234\]/);
    // Another id's records are not tried.
    expect(() => checkProperty('q', property, { numRuns: 5 }, registry)).not.toThrow();
  });

  it('replays a recorded seed and path: the recorded case comes first', () => {
    // Find a failure the ordinary way, as a report would give it.
    const failing = fc.property(fc.integer({ min: 0, max: 1_000_000 }), (v) => v < 500_000);
    const out = fc.check(failing, { seed: 7 });
    expect(out.failed).toBe(true);
    const [value] = out.counterexample!;
    const calls: number[] = [];
    const property = fc.property(fc.integer({ min: 0, max: 1_000_000 }), (v) => {
      calls.push(v);
      return true;
    });
    const registry: Record<string, Regression[]> = { p: [{ ...FOUND, seed: out.seed, path: out.counterexamplePath! }] };
    checkProperty('p', property, { numRuns: 3 }, registry);
    expect(calls[0]).toBe(value);
  });

  it('does the same for async properties, and returns their promise', async () => {
    const calls: number[] = [];
    const property = fc.asyncProperty(fc.integer({ min: 0, max: 10 }), async (v) => {
      calls.push(v);
      return v !== 99;
    });
    const registry: Record<string, Regression[]> = { p: [{ ...FOUND, example: [99] }] };
    const result = checkProperty('p', property, { numRuns: 3 }, registry);
    expect(result).toBeInstanceOf(Promise);
    await expect(result).rejects.toThrow(/Counterexample: \[99\]/);
    expect(calls[0]).toBe(99);
  });

  it('keeps the examples given in params, before the recorded ones', () => {
    const { calls, property } = recording(() => false);
    const registry: Record<string, Regression[]> = { p: [{ ...FOUND, example: [2000] }] };
    checkProperty('p', property, { numRuns: 4, examples: [[1000]] }, registry);
    expect(calls.slice(0, 2)).toEqual([1000, 2000]);
  });
});
