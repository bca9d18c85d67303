// Streaming encoder for the single-file PACK stream (docs/bob-protocol.md §6),
// segmented exactly as bob segments it, one record per segment:
//
//   PACK header (12) | object-1 header | zlib(name) | object-2 header |
//   zlib(file) in 2047-byte pieces, the last shorter | SHA-1 trailer (20)
//
// The trailer MUST travel alone in the last record and nothing may follow it:
// a bob receiver hashes whole records up to the one that completes the file's
// inflation and takes the next record as the trailer. Node-only (node:zlib,
// node:crypto); it runs in the host-side clients.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { createDeflate, deflateSync } from 'node:zlib';
import { OBJECT_BLOB, OBJECT_NAME, nameProblem, objectHeader, packHeader } from './format.js';

/** bob's default zlib level; 0 with --no-compression. */
export const BOB_LEVEL = 4;
/** Size of bob's deflate output buffer, hence of its file-data records. */
export const BOB_SEGMENT_BYTES = 2047;

export interface PackFile {
  /** A basename: no "/", not empty, ".", or "..", no NUL. */
  readonly name: string;
  /** Exact byte length of `data`, declared in the object header before the data. */
  readonly size: number;
  readonly data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

export interface PackEncoderOptions {
  /** zlib level 0..9 (default 4), for both objects. */
  readonly level?: number;
}

export class PackEncodeError extends Error {
  override readonly name = 'PackEncodeError';
}

/**
 * Yields the payload of each record in order. Throws PackEncodeError on a bad
 * name or when `data` does not hold exactly `size` bytes (then the stream
 * must be abandoned: the receiver will reject it).
 */
export async function* encodePack(file: PackFile, options: PackEncoderOptions = {}): AsyncGenerator<Uint8Array> {
  const level = options.level ?? BOB_LEVEL;
  const problem = nameProblem(file.name);
  if (problem !== null) throw new PackEncodeError(problem);
  if (!Number.isSafeInteger(file.size) || file.size < 0) throw new PackEncodeError(`invalid file size ${file.size}`);
  const hash = createHash('sha1');
  const hashed = (segment: Uint8Array) => {
    hash.update(segment);
    return segment;
  };
  const nameBytes = new TextEncoder().encode(file.name);
  yield hashed(packHeader());
  yield hashed(objectHeader(OBJECT_NAME, nameBytes.length));
  yield hashed(new Uint8Array(deflateSync(nameBytes, { level })));
  yield hashed(objectHeader(OBJECT_BLOB, file.size));
  for await (const segment of deflateInSegments(exactly(file.data, file.size), level)) yield hashed(segment);
  yield new Uint8Array(hash.digest());
}

/** Passes `data` through, failing as soon as it is longer than `size` or ends shorter. */
async function* exactly(data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  let seen = 0;
  for await (const chunk of data) {
    seen += chunk.length;
    if (seen > size) throw new PackEncodeError(`file data is longer than the declared ${size} bytes`);
    if (chunk.length > 0) yield chunk;
  }
  if (seen !== size) throw new PackEncodeError(`file data is ${seen} bytes, declared ${size}`);
}

/** One zlib stream over `data`, re-cut into BOB_SEGMENT_BYTES pieces. */
async function* deflateInSegments(data: AsyncIterable<Uint8Array>, level: number): AsyncGenerator<Uint8Array> {
  const deflate = createDeflate({ level });
  const source = Readable.from(data, { objectMode: false });
  source.on('error', (error) => deflate.destroy(error));
  source.pipe(deflate);
  const segment = new Uint8Array(BOB_SEGMENT_BYTES);
  let fill = 0;
  try {
    for await (const out of deflate as AsyncIterable<Uint8Array>) {
      for (let pos = 0; pos < out.length; ) {
        const take = Math.min(BOB_SEGMENT_BYTES - fill, out.length - pos);
        segment.set(out.subarray(pos, pos + take), fill);
        fill += take;
        pos += take;
        if (fill === BOB_SEGMENT_BYTES) {
          yield segment.slice();
          fill = 0;
        }
      }
    }
    if (fill > 0) yield segment.slice(0, fill);
  } finally {
    source.destroy();
    deflate.destroy();
  }
}
