import { createHash, randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PackDecoder, type PackResult } from '../../relay/pack/decoder.js';
import { BOB_SEGMENT_BYTES, PackEncodeError, encodePack } from '../../relay/pack/encoder.js';
import { objectHeader, packHeader } from '../../relay/pack/format.js';
import { RecordReader, RecordWriter } from '../../relay/records.js';

async function collect(gen: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const segment of gen) out.push(segment);
  return out;
}

function chunked(data: Uint8Array, size = 65536): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

async function encode(name: string, data: Uint8Array, level?: number): Promise<Uint8Array[]> {
  return collect(encodePack({ name, size: data.length, data: chunked(data) }, { level }));
}

interface Decoded {
  result: PackResult;
  name?: string;
  data: Buffer;
  largestChunk: number;
}

/** Decodes `pieces` in order, then signals the end of the stream. */
async function decode(pieces: Uint8Array[], options: { maxFileBytes?: number } = {}): Promise<Decoded> {
  const chunks: Uint8Array[] = [];
  let name: string | undefined;
  const decoder = new PackDecoder({
    onName: (n) => {
      name = n;
    },
    onData: (chunk) => {
      chunks.push(chunk);
    },
    ...options,
  });
  let result: PackResult = { status: 'incomplete' };
  for (const piece of pieces) {
    result = await decoder.push(piece);
    if (result.status !== 'incomplete') break;
  }
  if (result.status === 'incomplete') result = decoder.finish();
  return { result, name, data: Buffer.concat(chunks), largestChunk: Math.max(0, ...chunks.map((c) => c.length)) };
}

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function cutAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const bounds = [0, ...cuts, bytes.length];
  return bounds.slice(1).map((end, i) => bytes.subarray(bounds[i], end));
}

const cutsOf = (length: number) =>
  fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, length - 1) }), { maxLength: 40 }).map((c) => c.sort((a, b) => a - b));

/** A pack built by hand (correct trailer) so the decoder's own checks can be exercised. */
function handmadePack(parts: { header?: Uint8Array; objects: Array<[type: number, size: number, content: Uint8Array]> }): Uint8Array {
  const body = [parts.header ?? packHeader()];
  for (const [type, size, content] of parts.objects) body.push(objectHeader(type, size), new Uint8Array(deflateSync(content)));
  const bytes = concat(body);
  return concat([bytes, new Uint8Array(createHash('sha1').update(bytes).digest())]);
}

const ascii = (s: string) => new TextEncoder().encode(s);

describe('PACK round trip', () => {
  const files: Array<[string, Uint8Array]> = [
    ['empty.bin', new Uint8Array(0)],
    ['one.bin', Uint8Array.of(0x2a)],
    ['random-1MB.bin', new Uint8Array(randomBytes(1_000_003))],
    ['texte accentué.txt', ascii('hello world\n'.repeat(50_000))],
  ];

  for (const [name, data] of files) {
    for (const level of [4, 0]) {
      it(`${name} (${data.length} bytes) at level ${level}: bob's segmentation, decoded under random re-chunking`, async () => {
        const segments = await encode(name, data, level);
        // 12-byte header, object-1 header, zlib(name), object-2 header, file data…, trailer alone.
        expect(segments[0]).toHaveLength(12);
        expect(Buffer.from(segments[0].subarray(0, 4)).toString()).toBe('PACK');
        const fileSegments = segments.slice(4, -1);
        fileSegments.slice(0, -1).forEach((s) => expect(s).toHaveLength(BOB_SEGMENT_BYTES));
        expect(fileSegments.at(-1)!.length).toBeLessThanOrEqual(BOB_SEGMENT_BYTES);
        expect(fileSegments.at(-1)!.length).toBeGreaterThan(0);
        const trailer = segments.at(-1)!;
        expect(trailer).toHaveLength(20);
        expect(Buffer.from(trailer).equals(createHash('sha1').update(concat(segments.slice(0, -1))).digest())).toBe(true);

        const bySegment = await decode(segments);
        expect(bySegment.result).toEqual({ status: 'complete', name, size: data.length });
        expect(bySegment.name).toBe(name);
        expect(bySegment.data.equals(data)).toBe(true);
        expect(bySegment.largestChunk).toBeLessThanOrEqual(65536);

        const whole = concat(segments);
        await fc.assert(
          fc.asyncProperty(cutsOf(whole.length), async (cuts) => {
            const decoded = await decode(cutAt(whole, cuts));
            expect(decoded.result.status).toBe('complete');
            expect(decoded.data.equals(data)).toBe(true);
          }),
          { numRuns: data.length > 100_000 ? 3 : 25 },
        );
      });
    }
  }

  it('level 0 stores, level 4 compresses', async () => {
    const text = ascii('abc'.repeat(10_000));
    const stored = concat(await encode('t', text, 0));
    const compressed = concat(await encode('t', text, 4));
    expect(stored.length).toBeGreaterThan(text.length);
    expect(compressed.length).toBeLessThan(text.length / 10);
  });

  it('travels through the record layer, one record per segment, read back in random TCP chunks', async () => {
    const subkey = new Uint8Array(randomBytes(64));
    const data = new Uint8Array(randomBytes(100_000));
    const writer = new RecordWriter(subkey, 0);
    const wire = concat((await encode('f.bin', data)).map((s) => writer.seal(s)));
    const reader = new RecordReader(subkey, 0);
    const plaintexts = cutAt(wire, [7, 100, 5000, 5001, 60_000]).flatMap((c) => reader.push(c).plaintexts);
    const decoded = await decode(plaintexts);
    expect(decoded.result.status).toBe('complete');
    expect(decoded.data.equals(data)).toBe(true);
  });
});

describe('PACK decoder rejects', () => {
  const data = ascii('some file content\n'.repeat(100));
  const reasonOf = async (pieces: Uint8Array[]) => {
    const { result } = await decode(pieces);
    return result.status === 'invalid' ? result.reason : result.status;
  };

  it('a corrupted trailer', async () => {
    const segments = await encode('a.txt', data);
    const bad = segments.map((s) => s.slice());
    bad.at(-1)![0] ^= 1;
    expect(await reasonOf(bad)).toMatch(/SHA-1 trailer/);
  });

  it('a corrupted file byte', async () => {
    const whole = concat(await encode('a.txt', data, 0));
    whole[whole.length - 40] ^= 0x10; // inside the stored file data
    expect(await reasonOf([whole])).toMatch(/incorrect data check|SHA-1/);
  });

  it('a declared size that differs from the inflated one', async () => {
    expect(await reasonOf([handmadePack({ objects: [[4, 1, ascii('a')], [3, 10, ascii('123456789')]] })])).toMatch(
      /inflates to 9 bytes, header says 10/,
    );
    expect(await reasonOf([handmadePack({ objects: [[4, 1, ascii('a')], [3, 8, ascii('123456789')]] })])).toMatch(
      /more than the declared 8/,
    );
    expect(await reasonOf([handmadePack({ objects: [[4, 2, ascii('a')], [3, 1, ascii('x')]] })])).toMatch(/name inflates to 1/);
  });

  it('unsafe or malformed file names', async () => {
    for (const name of ['', '.', '..', 'a/b', '/etc/passwd', '../x', 'a\0b']) {
      const bytes = ascii(name);
      expect(await reasonOf([handmadePack({ objects: [[4, bytes.length, bytes], [3, 1, ascii('x')]] })])).toMatch(/name/);
      await expect(encode(name, data)).rejects.toThrow(PackEncodeError);
    }
    const notUtf8 = Uint8Array.of(0x66, 0xff, 0x66);
    expect(await reasonOf([handmadePack({ objects: [[4, 3, notUtf8], [3, 1, ascii('x')]] })])).toMatch(/UTF-8/);
  });

  it('anything but PACK v2 with a name then a blob', async () => {
    const header = (version: number, count: number) => {
      const h = packHeader();
      new DataView(h.buffer).setUint32(4, version);
      new DataView(h.buffer).setUint32(8, count);
      return h;
    };
    const objects: Array<[number, number, Uint8Array]> = [[4, 1, ascii('a')], [3, 1, ascii('x')]];
    expect(await reasonOf([handmadePack({ objects })])).toBe('complete');
    expect(await reasonOf([ascii('PACX'), new Uint8Array(8)])).toMatch(/signature/);
    expect(await reasonOf([handmadePack({ header: header(3, 2), objects })])).toMatch(/version 3/);
    expect(await reasonOf([handmadePack({ header: header(2, 3), objects })])).toMatch(/single file/);
    expect(await reasonOf([handmadePack({ objects: [[1, 1, ascii('a')], [3, 1, ascii('x')]] })])).toMatch(/directory/);
    expect(await reasonOf([handmadePack({ objects: [[4, 1, ascii('a')], [2, 1, ascii('x')]] })])).toMatch(/blob/);
  });

  it('bytes after the trailer, and a stream that ends early', async () => {
    const whole = concat(await encode('a.txt', data));
    expect(await reasonOf([concat([whole, Uint8Array.of(0)])])).toMatch(/after the PACK trailer/);
    for (const cut of [5, 12, 14, whole.length - 21, whole.length - 1]) {
      expect(await reasonOf([whole.subarray(0, cut)])).toMatch(/ended early/);
    }
  });

  it('a file larger than the caller allows, before reading it', async () => {
    const { result, data: got } = await decode(await encode('a.txt', data), { maxFileBytes: 100 });
    expect(result.status === 'invalid' && result.reason).toMatch(/exceeds the limit/);
    expect(got.length).toBe(0);
  });
});

describe('PACK encoder refuses', () => {
  it('data shorter or longer than declared', async () => {
    await expect(collect(encodePack({ name: 'a', size: 5, data: [Uint8Array.of(1, 2)] }))).rejects.toThrow(/declared 5/);
    await expect(collect(encodePack({ name: 'a', size: 1, data: [Uint8Array.of(1, 2)] }))).rejects.toThrow(/longer/);
  });
});
