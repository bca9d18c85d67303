import { randomBytes } from 'node:crypto';
import { constants, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ZlibInflater } from '../../relay/pack/inflate.js';

interface Outcome {
  output: Buffer;
  rest: Buffer;
  done: boolean;
  error?: string;
  largestChunk: number;
}

/** Inflates `stream` fed in pieces cut at sorted offsets. */
function inflateInPieces(stream: Uint8Array, cuts: number[] = [], maxOutput = Number.MAX_SAFE_INTEGER): Outcome {
  const inflater = new ZlibInflater(maxOutput);
  const chunks: Uint8Array[] = [];
  const bounds = [0, ...cuts, stream.length];
  let largestChunk = 0;
  for (let i = 0; i + 1 < bounds.length; i++) {
    inflater.feed(stream.subarray(bounds[i], bounds[i + 1]));
    for (;;) {
      const step = inflater.run();
      if (step.kind === 'output') {
        chunks.push(step.data);
        largestChunk = Math.max(largestChunk, step.data.length);
        continue;
      }
      const output = Buffer.concat(chunks);
      if (step.kind === 'error') return { output, rest: Buffer.alloc(0), done: false, error: step.message, largestChunk };
      if (step.kind === 'done') {
        const rest = Buffer.concat([inflater.remainingInput, stream.subarray(bounds[i + 1])]);
        return { output, rest, done: true, largestChunk };
      }
      break;
    }
  }
  return { output: Buffer.concat(chunks), rest: Buffer.alloc(0), done: false, largestChunk };
}

const cutsOf = (length: number) =>
  fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, length - 1) }), { maxLength: 30 }).map((c) => c.sort((a, b) => a - b));

function compressible(n: number, seed = 1): Buffer {
  const words = ['alpha ', 'beta ', 'gamma ', 'delta\n', 'PACK', '\0\0\0'];
  let s = seed;
  let text = '';
  while (text.length < n) {
    s = (s * 1103515245 + 12345) >>> 0;
    text += words[s % words.length];
  }
  return Buffer.from(text.slice(0, n), 'latin1');
}

function adler32(data: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (const byte of data) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return (b * 65536 + a) >>> 0;
}

describe('ZlibInflater against node:zlib', () => {
  const samples: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from([0x42])],
    ['random 100 KB', randomBytes(100_000)],
    ['text 300 KB', compressible(300_000)],
    ['one repeated byte, 200 KB (overlapping matches)', Buffer.alloc(200_000, 0x61)],
  ];
  const period = randomBytes(32768);
  samples.push(['repeat at distance 32768', Buffer.concat([period, period, period])]);

  for (const [label, data] of samples) {
    it(`${label}: every level and strategy, followed by trailing bytes`, () => {
      const trailing = Buffer.from('trailing-bytes-after-the-stream');
      const strategies = [constants.Z_DEFAULT_STRATEGY, constants.Z_FILTERED, constants.Z_FIXED, constants.Z_HUFFMAN_ONLY, constants.Z_RLE];
      for (let level = 0; level <= 9; level++) {
        for (const strategy of strategies) {
          const stream = Buffer.concat([deflateSync(data, { level, strategy }), trailing]);
          const got = inflateInPieces(stream, [], data.length);
          expect(got.error).toBeUndefined();
          expect(got.done).toBe(true);
          expect(got.output.equals(data)).toBe(true);
          expect(got.rest.equals(trailing)).toBe(true);
          expect(got.largestChunk).toBeLessThanOrEqual(65536);
        }
      }
    });
  }

  it('resumes at any input boundary', () => {
    fc.assert(
      fc.property(
        fc.record({ size: fc.integer({ min: 0, max: 20_000 }), level: fc.integer({ min: 0, max: 9 }), seed: fc.nat() }).chain((p) => {
          const data = p.seed % 2 ? compressible(p.size, p.seed) : randomBytes(p.size);
          const stream = Buffer.concat([deflateSync(data, { level: p.level }), Buffer.from('tail')]);
          return fc.tuple(fc.constant(data), fc.constant(stream), cutsOf(stream.length));
        }),
        ([data, stream, cuts]) => {
          const got = inflateInPieces(stream, cuts);
          expect(got.output.equals(data)).toBe(true);
          expect(got.rest.toString()).toBe('tail');
        },
      ),
      { numRuns: 80 },
    );
  });

  it('byte by byte, across several blocks including an empty stored one (sync flush)', () => {
    const a = compressible(5000, 7);
    const b = randomBytes(3000);
    const adler = Buffer.alloc(4);
    adler.writeUInt32BE(adler32(Buffer.concat([a, b])));
    const stream = Buffer.concat([
      Buffer.from([0x78, 0x9c]),
      deflateRawSync(a, { finishFlush: constants.Z_SYNC_FLUSH }),
      deflateRawSync(b, { level: 0 }),
      adler,
    ]);
    const got = inflateInPieces(stream, Array.from({ length: stream.length - 1 }, (_, i) => i + 1));
    expect(got.error).toBeUndefined();
    expect(got.output.equals(Buffer.concat([a, b]))).toBe(true);
  });
});

describe('ZlibInflater rejects bad streams', () => {
  const data = compressible(10_000);
  const good = deflateSync(data);

  it('a bad header', () => {
    expect(inflateInPieces(Buffer.from([0x78, 0x00, 0, 0])).error).toMatch(/header check/);
    // Valid header checks, but method 9, a 64 KiB window, a preset dictionary (id 1), gzip.
    expect(inflateInPieces(Buffer.from([0x79, 0x18])).error).toMatch(/unknown compression method/);
    expect(inflateInPieces(Buffer.from([0x88, 0x98])).error).toMatch(/invalid window size/);
    expect(inflateInPieces(Buffer.from([0x78, 0xbb, 0, 0, 0, 1])).error).toMatch(/dictionar/);
    expect(inflateInPieces(gzipSync(data)).error).toMatch(/header check/);
  });

  it('a bad checksum', () => {
    const bad = Buffer.from(good);
    bad[bad.length - 1] ^= 1;
    expect(inflateInPieces(bad).error).toMatch(/incorrect data check/);
  });

  it('more output than allowed, without producing it all', () => {
    const got = inflateInPieces(deflateSync(Buffer.alloc(10_000_000)), [], 1000);
    expect(got.error).toMatch(/more than the declared 1000/);
    expect(got.output.length).toBeLessThanOrEqual(1000);
    // Exactly the declared size passes; one byte less is refused.
    expect(inflateInPieces(good, [], data.length).done).toBe(true);
    expect(inflateInPieces(good, [], data.length - 1).error).toMatch(/more than the declared 9999/);
  });

  it('block type 3 and a distance before the start', () => {
    expect(inflateInPieces(Buffer.from([0x78, 0x9c, 0x07])).error).toMatch(/invalid block type/);
    // Fixed block: length symbol 257 (3 bytes) with distance 1 and no output yet.
    expect(inflateInPieces(Buffer.from([0x78, 0x9c, 0x03, 0x02, 0x00])).error).toMatch(/too far back/);
  });

  it('refuses new input while zlib still holds unread input', () => {
    const inflater = new ZlibInflater(Number.MAX_SAFE_INTEGER);
    inflater.feed(deflateSync(Buffer.alloc(1_000_000)));
    expect(inflater.run().kind).toBe('output'); // a full 64 KiB buffer, most of the input still unread
    expect(() => inflater.feed(Buffer.from('more'))).toThrow(/used up/);
  });

  it('a truncated stream just waits for more input', () => {
    const got = inflateInPieces(good.subarray(0, good.length - 3));
    expect(got.done).toBe(false);
    expect(got.error).toBeUndefined();
  });

  it('random corruption never throws and never yields wrong output as done', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: good.length * 8 - 1 }), (bit) => {
        const bad = Buffer.from(good);
        bad[bit >> 3] ^= 1 << (bit & 7);
        const got = inflateInPieces(bad, [], data.length);
        // A flip in the padding before the checksum changes nothing; any other is caught.
        if (got.done) expect(got.output.equals(data)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
