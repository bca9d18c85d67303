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
/**
 * Longest file name accepted or sent, in UTF-8 bytes: NAME_MAX, the longest
 * path component Linux (and APFS) can create. A longer name could never
 * become the output file, so the decoder refuses it at the name object's
 * header, before any of the file arrives.
 */
export const MAX_NAME_BYTES = 255;
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

/**
 * Characters a peer could use to rewrite a terminal or forge a log line when
 * its text is printed: C0 controls (NUL, ESC, CR, LF…), DEL, C1 controls
 * (U+0080-U+009F, CSI among them) and the bidi embeddings and overrides
 * (U+202A-U+202E) and isolates (U+2066-U+2069), which reorder what follows
 * them on screen ("txt.exe" shown as "exe.txt").
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'gu');

/** `text` with every unsafe character written as `\xNN` (below U+0100) or `\uNNNN`: safe to print. */
export function escapeUnsafe(text: string): string {
  return text.replace(UNSAFE_ALL, (c) => {
    const code = c.codePointAt(0)!;
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** The first unsafe character of `text` as `U+XXXX`, or null. */
export function unsafeCharacter(text: string): string | null {
  const found = UNSAFE.exec(text);
  return found === null ? null : `U+${found[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Why `name` is not a safe plain file name, or null (§7: basename only).
 * Names with unsafe characters are refused rather than shown escaped: they
 * would also become the output file's name, where `ls` and shells print
 * them raw. Problems quote the name escaped.
 */
export function nameProblem(name: string): string | null {
  const shown = escapeUnsafe(name);
  if (name === '' || name === '.' || name === '..') return `file name "${shown}" is not a file name`;
  if (name.includes('/')) return `file name "${shown}" contains "/"`;
  if (name.includes('\0')) return `file name "${shown}" contains a NUL byte`;
  const unsafe = unsafeCharacter(name);
  if (unsafe !== null) return `file name "${shown}" contains the control character ${unsafe}`;
  if (new TextEncoder().encode(name).length > MAX_NAME_BYTES) return `file name longer than ${MAX_NAME_BYTES} bytes`;
  return null;
}
