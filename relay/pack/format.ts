// The single-file Git PACK v2 stream bob sends (docs/bob-protocol.md §6):
//
//   "PACK" · u32 BE 2 (version) · u32 BE 2 (objects)
//   object 1, type 4 (reused Git tag number): header(size = name length) · zlib(basename)
//   object 2, type 3 (blob):                  header(size = file length) · zlib(file)
//   SHA-1 of every preceding byte (20)
//
// This file holds the layout shared by the encoder and the decoder.

export const PACK_HEADER_BYTES = 12;
export const PACK_TRAILER_BYTES = 20;
export const PACK_VERSION = 2;
/** A single file is two objects: its name, then its content. */
export const PACK_OBJECTS = 2;
export const OBJECT_NAME = 4;
export const OBJECT_BLOB = 3;
/** Longest file name accepted or sent, in UTF-8 bytes (NAME_MAX is 255 on Linux; leave room for others). */
export const MAX_NAME_BYTES = 1024;
/** An object header for a size below 2^53 takes at most 8 bytes; more is refused. */
export const MAX_OBJECT_HEADER_BYTES = 8;

const SIGNATURE = [0x50, 0x41, 0x43, 0x4b]; // "PACK"

export function packHeader(): Uint8Array {
  const out = new Uint8Array(PACK_HEADER_BYTES);
  out.set(SIGNATURE, 0);
  const view = new DataView(out.buffer);
  view.setUint32(4, PACK_VERSION);
  view.setUint32(8, PACK_OBJECTS);
  return out;
}

/** Why a 12-byte PACK header is not one we accept, or null. */
export function packHeaderProblem(header: Uint8Array): string | null {
  if (!SIGNATURE.every((b, i) => header[i] === b)) return 'not a PACK stream (bad signature)';
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  if (view.getUint32(4) !== PACK_VERSION) return `PACK version ${view.getUint32(4)} is not 2`;
  if (view.getUint32(8) !== PACK_OBJECTS) {
    return `PACK with ${view.getUint32(8)} objects: only a single file (2 objects) is supported`;
  }
  return null;
}

/**
 * Git's object header: byte 0 = more(1) · type(3) · size & 15(4), then the
 * rest of the size in 7-bit groups, least significant first, bit 7 = more.
 * Arithmetic, not bit operators: sizes may exceed 32 bits.
 */
export function objectHeader(type: number, size: number): Uint8Array {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`object size ${size} is not a safe non-negative integer`);
  const bytes = [(type << 4) | (size % 16)];
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes[bytes.length - 1] |= 0x80;
    bytes.push(rest % 128);
    rest = Math.floor(rest / 128);
  }
  return Uint8Array.from(bytes);
}

export interface ObjectHeader {
  readonly type: number;
  readonly size: number;
}

/** Parses a complete header (its last byte has bit 7 clear). */
export function parseObjectHeader(bytes: Uint8Array): ObjectHeader | string {
  let size = bytes[0] & 0x0f;
  let scale = 16;
  for (let i = 1; i < bytes.length; i++) {
    size += (bytes[i] & 0x7f) * scale;
    scale *= 128;
  }
  if (!Number.isSafeInteger(size)) return 'object size does not fit in 53 bits';
  return { type: (bytes[0] >> 4) & 0x07, size };
}

/** Why `name` is not a safe plain file name (§7: basename only), or null. */
export function nameProblem(name: string): string | null {
  if (name === '' || name === '.' || name === '..') return `file name "${name}" is not a file name`;
  if (name.includes('/')) return `file name "${name}" contains "/"`;
  if (name.includes('\0')) return 'file name contains a NUL byte';
  if (new TextEncoder().encode(name).length > MAX_NAME_BYTES) return `file name longer than ${MAX_NAME_BYTES} bytes`;
  return null;
}
