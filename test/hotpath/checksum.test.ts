// Internet checksum on both engines: the RFC 1071 worked example, the
// reference loop at any offset and length, SIMD against scalar, the IPv4
// pseudo-header and the RFC 1624 incremental update.

import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../host/hotpath.js';
import type { HotPath } from '../../stack/hotpath/engine.js';
import { CHECKSUM_OUT_OF_RANGE } from '../../stack/hotpath/index.js';
import { refChecksum, refPseudoSum, refSum } from '../helpers/frames.js';

const MEMORY = 1 << 20;
/** Where the random test data lives: past the fixed records and arena metadata. */
const DATA = 128 * 1024;
const DATA_LEN = 256 * 1024;

/** Deterministic bytes (xorshift32), so failures replay. */
function fillRandom(bytes: Uint8Array, seed: number): void {
  let x = seed | 1;
  for (let i = 0; i < bytes.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
}

const engines: Record<'wasm' | 'ts', HotPath> = {} as Record<'wasm' | 'ts', HotPath>;

beforeAll(async () => {
  engines.wasm = await createEngine('wasm', MEMORY);
  engines.ts = await createEngine('ts', MEMORY);
  const data = new Uint8Array(DATA_LEN);
  fillRandom(data, 0x1071);
  for (const hot of Object.values(engines)) hot.bytes.set(data, DATA);
});

describe.each(['wasm', 'ts'] as const)('checksum (%s engine)', (name) => {
  const hot = () => engines[name];

  it('gives the RFC 1071 worked example: sum ddf2, checksum 220d, at even and odd offsets', () => {
    const example = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    for (const off of [DATA, DATA + 1, DATA + 2, DATA + 3]) {
      hot().bytes.set(example, off);
      expect(hot().sum16(off, 8, 0)).toBe(0xddf2);
      expect(hot().checksum(off, 8, 0)).toBe(0x220d);
      expect(hot().checksumScalar(off, 8, 0)).toBe(0x220d);
    }
  });

  it('pads an odd length with a zero byte', () => {
    hot().bytes.set([0x12, 0x34, 0x56], DATA);
    expect(hot().sum16(DATA, 3, 0)).toBe(0x1234 + 0x5600);
    hot().bytes.set([0xab], DATA + 1);
    expect(hot().sum16(DATA + 1, 1, 0)).toBe(0xab00);
  });

  it('sums an empty range to `initial`, and checksums it to ~initial', () => {
    expect(hot().sum16(DATA, 0, 0)).toBe(0);
    expect(hot().sum16(DATA, 0, 0x1234)).toBe(0x1234);
    expect(hot().checksum(DATA, 0, 0)).toBe(0xffff);
    expect(hot().checksum(DATA, 0, 0x1234)).toBe(0xedcb);
  });

  it('equals the reference loop at random offsets and lengths up to 64 KiB + 1 KiB', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4096 }),
        fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 65536 + 1024 })),
        fc.integer({ min: 0, max: 0xffff }),
        (start, len, initial) => {
          const off = DATA + start;
          const data = hot().bytes.subarray(off, off + len);
          expect(hot().sum16(off, len, initial)).toBe(refSum(data, initial));
          expect(hot().checksum(off, len, initial)).toBe(refChecksum(data, initial));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gives the same result from the SIMD and the scalar loops', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4096 }),
        fc.integer({ min: 0, max: 70000 }),
        fc.integer({ min: 0, max: 0xffff }),
        (start, len, initial) => {
          const off = DATA + start;
          expect(hot().checksum(off, len, initial)).toBe(hot().checksumScalar(off, len, initial));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('sums long runs of 0xff bytes without losing a carry', () => {
    const off = DATA + 3;
    hot().bytes.fill(0xff, off, off + 200_001);
    const data = hot().bytes.subarray(off, off + 200_001);
    expect(hot().sum16(off, 200_001, 0xffff)).toBe(refSum(data, 0xffff));
    expect(hot().checksumScalar(off, 200_001, 0)).toBe(refChecksum(data));
    fillRandom(hot().bytes.subarray(DATA, DATA + DATA_LEN), 0x1071); // restore for later tests
  });

  it('verifies to 0 over data that includes its own checksum', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 1, max: 3000 }), (start, words) => {
        const off = DATA + start;
        const len = words * 2;
        const saved = hot().bytes.slice(off, off + 2);
        hot().bytes.fill(0, off, off + 2);
        const sum = hot().checksum(off, len, 0);
        hot().bytes[off] = sum >>> 8;
        hot().bytes[off + 1] = sum & 0xff;
        expect(hot().checksum(off, len, 0)).toBe(0);
        hot().bytes.set(saved, off);
      }),
    );
  });

  it('accepts any u32 `initial` and folds it in', () => {
    expect(hot().sum16(DATA, 0, 0x1ffff)).toBe(1);
    expect(hot().sum16(DATA, 0, 0xffffffff)).toBe(0xffff);
    const data = hot().bytes.subarray(DATA, DATA + 100);
    expect(hot().sum16(DATA, 100, 0x12345678)).toBe(refSum(data, 0x12345678));
  });

  it('returns CHECKSUM_OUT_OF_RANGE for a range outside memory, never throwing', () => {
    const size = hot().bytes.length;
    for (const [off, len] of [
      [size, 1],
      [size - 1, 2],
      [0, size + 1],
      [-1, 4],
      [DATA, -1],
      [0xffffffff, 2],
      [0x80000000, 0x80000000],
    ]) {
      expect(hot().sum16(off, len, 0)).toBe(CHECKSUM_OUT_OF_RANGE);
      expect(hot().checksum(off, len, 0)).toBe(CHECKSUM_OUT_OF_RANGE);
      expect(hot().checksumScalar(off, len, 0)).toBe(CHECKSUM_OUT_OF_RANGE);
    }
    // The very end of memory is still inside.
    expect(hot().checksum(size - 2, 2, 0)).toBe(refChecksum(hot().bytes.subarray(size - 2)));
    expect(hot().checksum(size, 0, 0)).toBe(0xffff);
  });

  it('computes the IPv4 pseudo-header sum', () => {
    expect(hot().pseudoHeaderSumV4(0x0a000001, 0x0a000002, 6, 40)).toBe(refPseudoSum(0x0a000001, 0x0a000002, 6, 40));
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffffffff }),
        fc.nat({ max: 0xffffffff }),
        fc.nat({ max: 255 }),
        fc.nat({ max: 0xffff }),
        (src, dst, proto, len) => {
          expect(hot().pseudoHeaderSumV4(src, dst, proto, len)).toBe(refPseudoSum(src, dst, proto, len));
        },
      ),
    );
  });

  it('updates a checksum incrementally as RFC 1624 eqn. 3 says, matching a recomputation', () => {
    // RFC 1624 section 4's example: a header word 0x5555 becomes 0x3285 under checksum 0xdd2f.
    expect(hot().checksumUpdate16(0xdd2f, 0x5555, 0x3285)).toBe(0x0000);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4, maxLength: 60 }),
        fc.nat(),
        fc.nat({ max: 0xffff }),
        (raw, at, newWord) => {
          const data = raw.slice(0, raw.length & ~1);
          data[0] = 0x45; // like an IPv4 header: never all zeros, where ~0 and 0 differ
          const i = 2 + 2 * (at % ((data.length - 2) / 2));
          const oldWord = (data[i] << 8) | data[i + 1];
          const before = refChecksum(data);
          data[i] = newWord >>> 8;
          data[i + 1] = newWord & 0xff;
          expect(hot().checksumUpdate16(before, oldWord, newWord)).toBe(refChecksum(data));
        },
      ),
    );
  });
});
