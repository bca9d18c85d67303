// Streaming decoder for the single-file PACK stream (docs/bob-protocol.md §6). It
// treats the decrypted records as one byte stream cut anywhere, and checks
// what bob's receiver does not: PACK, version 2, two objects, type 4 then 3,
// inflated sizes equal to the declared ones, a safe file name, and the SHA-1
// trailer. The file's bytes go to a sink as they are inflated (≤ 64 KiB at a
// time, each awaited), so memory stays bounded whatever the file size. The
// sink sees bytes before the trailer is verified: write them to a temporary
// file and rename it only once the decoder reports 'complete' (§6).
import { sha1 } from '@noble/hashes/legacy.js';
import {
  MAX_NAME_BYTES,
  MAX_OBJECT_HEADER_BYTES,
  OBJECT_BLOB,
  OBJECT_NAME,
  type ObjectHeader,
  PACK_HEADER_BYTES,
  PACK_TRAILER_BYTES,
  escapeUnsafe,
  nameProblem,
  packHeaderProblem,
  parseObjectHeader,
} from './format.js';
import { ZlibInflater } from './inflate.js';

export type PackResult =
  | { readonly status: 'incomplete' }
  | { readonly status: 'complete'; readonly name: string; readonly size: number }
  /** `tooLarge`: the blob's declared size exceeds `maxFileBytes` (a refusal, not a broken stream). */
  | { readonly status: 'invalid'; readonly reason: string; readonly tooLarge?: boolean };

/** What the stream announces before the file's first byte. */
export interface FileAnnouncement {
  readonly name: string;
  /** The blob's declared size: inflating stops with an error past it. */
  readonly size: number;
}

export interface PackDecoderOptions {
  /** Called once with the validated file name, before any file byte. */
  readonly onName?: (name: string) => void | Promise<void>;
  /**
   * Called once the blob's header gives the file's size (within
   * `maxFileBytes`), before any file byte is inflated; awaited, so a caller
   * can ask its user there, and can throw to stop.
   */
  readonly onFile?: (file: FileAnnouncement) => void | Promise<void>;
  /** Receives the file's bytes in order; awaited before decoding goes on. */
  readonly onData: (chunk: Uint8Array) => void | Promise<void>;
  /**
   * Largest declared file size accepted (default: no limit). As inflating
   * stops one byte past the declared size, it also bounds what a stream
   * that lies about its size can make us write.
   */
  readonly maxFileBytes?: number;
}

type Phase = 'packHeader' | 'nameHeader' | 'name' | 'blobHeader' | 'blob' | 'trailer' | 'complete' | 'invalid';

export class PackDecoder {
  readonly #options: PackDecoderOptions;
  readonly #hash = sha1.create();
  #phase: Phase = 'packHeader';
  #result: PackResult = { status: 'incomplete' };
  /** Bytes of the fixed-size or header field being gathered. */
  #field: number[] = [];
  #inflater: ZlibInflater | null = null;
  #nameBytes: Uint8Array[] = [];
  #name = '';
  #size = 0;

  constructor(options: PackDecoderOptions) {
    this.#options = options;
  }

  /** Feed the next bytes of the stream. Do not call again before the promise settles. */
  async push(bytes: Uint8Array): Promise<PackResult> {
    let rest = bytes;
    while (rest.length > 0 && this.#result.status === 'incomplete') {
      rest = await this.#consume(rest);
    }
    if (rest.length > 0 && this.#result.status === 'complete') {
      this.#invalid('bytes after the PACK trailer');
    }
    return this.#result;
  }

  /** The stream ended: anything short of a verified trailer is invalid. */
  finish(): PackResult {
    if (this.#result.status === 'incomplete') this.#invalid(`stream ended early (while reading ${this.#phase})`);
    return this.#result;
  }

  /** Consumes a prefix of `bytes` for the current phase and returns the rest. */
  async #consume(bytes: Uint8Array): Promise<Uint8Array> {
    switch (this.#phase) {
      case 'packHeader':
      case 'trailer':
        return this.#gatherFixed(bytes);
      case 'nameHeader':
      case 'blobHeader':
        return await this.#gatherObjectHeader(bytes);
      case 'name':
      case 'blob':
        return this.#inflate(bytes);
      default:
        return bytes;
    }
  }

  #gatherFixed(bytes: Uint8Array): Uint8Array {
    const length = this.#phase === 'packHeader' ? PACK_HEADER_BYTES : PACK_TRAILER_BYTES;
    const take = Math.min(length - this.#field.length, bytes.length);
    for (let i = 0; i < take; i++) this.#field.push(bytes[i]);
    if (this.#field.length === length) {
      const field = Uint8Array.from(this.#field);
      this.#field = [];
      if (this.#phase === 'packHeader') this.#onPackHeader(field);
      else this.#onTrailer(field);
    }
    return bytes.subarray(take);
  }

  #onPackHeader(header: Uint8Array): void {
    const problem = packHeaderProblem(header);
    if (problem !== null) return this.#invalid(problem);
    this.#hash.update(header);
    this.#phase = 'nameHeader';
  }

  #onTrailer(trailer: Uint8Array): void {
    const digest = this.#hash.digest();
    if (!digest.every((b, i) => b === trailer[i])) return this.#invalid('SHA-1 trailer does not match the stream (corrupted)');
    this.#phase = 'complete';
    this.#result = { status: 'complete', name: this.#name, size: this.#size };
  }

  /** Object header bytes run until one has bit 7 clear. */
  async #gatherObjectHeader(bytes: Uint8Array): Promise<Uint8Array> {
    let i = 0;
    while (i < bytes.length) {
      const byte = bytes[i++];
      this.#field.push(byte);
      if (this.#field.length > MAX_OBJECT_HEADER_BYTES) {
        this.#invalid('object header too long');
        return EMPTY;
      }
      if ((byte & 0x80) === 0) {
        await this.#onObjectHeader(Uint8Array.from(this.#field));
        this.#field = [];
        break;
      }
    }
    return bytes.subarray(i);
  }

  async #onObjectHeader(bytes: Uint8Array): Promise<void> {
    const header = parseObjectHeader(bytes);
    if (typeof header === 'string') return this.#invalid(header);
    const blob = this.#phase === 'blobHeader';
    if (blob && header.type !== OBJECT_BLOB) return this.#invalid(`second object has type ${header.type}, expected a blob (3)`);
    const problem = blob ? null : nameHeaderProblem(header);
    if (problem !== null) return this.#invalid(problem);
    const max = this.#options.maxFileBytes ?? Number.MAX_SAFE_INTEGER;
    if (blob && header.size > max) {
      return this.#invalid(`"${escapeUnsafe(this.#name)}" (${header.size} bytes) exceeds the limit of ${max} bytes`, true);
    }
    this.#hash.update(bytes);
    // The declared size caps the inflater; for the blob it is within maxFileBytes.
    this.#inflater = new ZlibInflater(header.size);
    this.#size = header.size;
    this.#phase = blob ? 'blob' : 'name';
    if (blob) await this.#options.onFile?.({ name: this.#name, size: header.size });
  }

  /** Runs the current object's inflater over `bytes`; returns what follows its zlib stream. */
  async #inflate(bytes: Uint8Array): Promise<Uint8Array> {
    const inflater = this.#inflater!;
    inflater.feed(bytes);
    for (;;) {
      const step = inflater.run();
      if (step.kind === 'output') {
        await this.#output(step.data);
        if (this.#result.status !== 'incomplete') return EMPTY;
      } else if (step.kind === 'need-input') {
        this.#hash.update(bytes);
        return EMPTY;
      } else if (step.kind === 'error') {
        this.#invalid(`${this.#phase === 'name' ? 'file name' : 'file'} data: ${step.message}`);
        return EMPTY;
      } else {
        const rest = inflater.remainingInput;
        this.#hash.update(bytes.subarray(0, bytes.length - rest.length));
        await this.#objectDone(inflater.totalOut);
        return rest;
      }
    }
  }

  async #output(data: Uint8Array): Promise<void> {
    if (this.#phase === 'name') this.#nameBytes.push(data);
    else await this.#options.onData(data);
  }

  async #objectDone(inflated: number): Promise<void> {
    this.#inflater = null;
    if (inflated !== this.#size) return this.#invalid(`${this.#phase} inflates to ${inflated} bytes, header says ${this.#size}`);
    if (this.#phase === 'blob') {
      this.#phase = 'trailer';
      return;
    }
    const name = decodeName(this.#nameBytes);
    this.#nameBytes = [];
    if (typeof name !== 'string') return this.#invalid(name.problem);
    this.#name = name;
    await this.#options.onName?.(name);
    this.#phase = 'blobHeader';
  }

  #invalid(reason: string, tooLarge = false): void {
    this.#phase = 'invalid';
    this.#result = tooLarge ? { status: 'invalid', reason, tooLarge } : { status: 'invalid', reason };
  }
}

const EMPTY = new Uint8Array(0);

function nameHeaderProblem(header: ObjectHeader): string | null {
  if (header.type !== OBJECT_NAME) {
    return `first object has type ${header.type}: only a single file (type 4) is supported, not a directory`;
  }
  return header.size > MAX_NAME_BYTES ? `file name of ${header.size} bytes exceeds ${MAX_NAME_BYTES}` : null;
}

function decodeName(parts: Uint8Array[]): string | { problem: string } {
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const part of parts) {
    bytes.set(part, pos);
    pos += part.length;
  }
  let name: string;
  try {
    name = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { problem: 'file name is not valid UTF-8' };
  }
  const problem = nameProblem(name);
  return problem === null ? name : { problem };
}
