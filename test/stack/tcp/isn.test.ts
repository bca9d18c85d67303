// Initial sequence numbers (stack/tcp/isn.ts, RFC 6528): ISN = M + F(4-tuple,
// secret), M a clock of 4 µs ticks; and the batched random words.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { IsnGenerator, keyedHash, randomSecret, randomU32 } from '../../../stack/tcp/isn.js';

const SECRET = Uint32Array.of(0x01234567, 0x89abcdef, 0xdeadbeef, 0x0badf00d);
const TUPLE = [0x0a000001, 8080, 0x0a000002, 40000] as const;

describe('ISN (RFC 6528)', () => {
  it('is F(4-tuple) at time zero, and the clock M moves it by 250 ticks per millisecond', () => {
    const g = new IsnGenerator(SECRET);
    const f = g.hash(...TUPLE);
    expect(g.isn(0, ...TUPLE)).toBe(f);
    expect((g.isn(1, ...TUPLE) - g.isn(0, ...TUPLE)) >>> 0).toBe(250);
    expect((g.isn(1000.004, ...TUPLE) - g.isn(0, ...TUPLE)) >>> 0).toBe(250_001);
    // Fractions of a tick do not count: 4 µs is the resolution.
    expect(g.isn(0.003, ...TUPLE)).toBe(f);
  });

  it('wraps modulo 2^32 as the clock passes 2^32 ticks (about 4.77 hours)', () => {
    const g = new IsnGenerator(SECRET);
    const wrapMs = 0x100000000 / 250;
    expect(g.isn(wrapMs, ...TUPLE)).toBe(g.isn(0, ...TUPLE));
    expect(g.isn(wrapMs + 2, ...TUPLE)).toBe((g.hash(...TUPLE) + 500) >>> 0);
    for (const t of [wrapMs - 1, wrapMs * 3 + 7]) {
      const v = g.isn(t, ...TUPLE);
      expect(Number.isInteger(v) && v >= 0 && v < 0x100000000).toBe(true);
    }
  });

  it('differs by 4-tuple and by secret, so another connection\'s ISN does not tell this one\'s', () => {
    const g = new IsnGenerator(SECRET);
    const base = g.isn(5, ...TUPLE);
    const variants: [number, number, number, number][] = [
      [TUPLE[0] + 1, TUPLE[1], TUPLE[2], TUPLE[3]],
      [TUPLE[0], TUPLE[1] + 1, TUPLE[2], TUPLE[3]],
      [TUPLE[0], TUPLE[1], TUPLE[2] + 1, TUPLE[3]],
      [TUPLE[0], TUPLE[1], TUPLE[2], TUPLE[3] + 1],
    ];
    for (const v of variants) expect(g.isn(5, ...v), v.join(' ')).not.toBe(base);
    for (let word = 0; word < 4; word++) {
      const other = SECRET.slice();
      other[word]! ^= 1;
      expect(new IsnGenerator(other).isn(5, ...TUPLE), `secret word ${word}`).not.toBe(base);
    }
  });

  it('keyedHash depends on each input word and each secret word', () => {
    const h = keyedHash(SECRET, 1, 2);
    expect(keyedHash(SECRET, 1, 2)).toBe(h);
    expect(keyedHash(SECRET, 3, 2)).not.toBe(h);
    expect(keyedHash(SECRET, 1, 3)).not.toBe(h);
    for (let word = 0; word < 4; word++) {
      const other = SECRET.slice();
      other[word]! ^= 0x80000000;
      expect(keyedHash(other, 1, 2), `secret word ${word}`).not.toBe(h);
    }
  });

  it('randomSecret gives four fresh random words', () => {
    const a = randomSecret();
    const b = randomSecret();
    expect(a).toHaveLength(4);
    expect(Array.from(a)).not.toEqual(Array.from(b));
  });
});

describe('randomU32', () => {
  afterEach(() => vi.restoreAllMocks());

  it('gives u32 values, drawn from the host 64 at a time', () => {
    const draws = vi.spyOn(globalThis.crypto, 'getRandomValues');
    const values = Array.from({ length: 640 }, () => randomU32());
    for (const v of values) expect(Number.isInteger(v) && v >= 0 && v < 0x100000000, String(v)).toBe(true);
    expect(new Set(values).size).toBeGreaterThan(600);
    // 640 words: ten batches (eleven if a batch was already under way).
    expect(draws.mock.calls.length).toBeGreaterThanOrEqual(9);
    expect(draws.mock.calls.length).toBeLessThanOrEqual(11);
  });
});
