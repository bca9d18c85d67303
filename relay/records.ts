// The record layer of the 9001 stream (docs/bob-protocol.md §5).
//
//   record = u16 BE L (1..0x7fff) ‖ ciphertext (L) ‖ tag (16)
//   IV     = nonce base (12) ‖ u64 BE sequence   — 20 bytes, no XOR
//   AAD    = 00 01 ‖ u16 BE L
//
// From a 64-byte spoke subkey: key = [0, 32), nonce base = [32, 44). Each
// direction counts records from 0. The raw bytes ff ff ff ff end the stream.
// Only AES-256-GCM accepts a 20-byte IV in bob's crypto library (ChaCha20 and
// CCM raise), so only cipher 0 is usable; the sender→receiver direction uses
// subkey 0 with cipher 0.
//
// The AEAD itself is behind `RecordAead`; the node:crypto implementation at
// the bottom is the only Node-specific code here (WebCrypto's AES-GCM also
// takes 20-byte IVs, but is asynchronous).
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { Cipher, type CipherId } from './spoke/public.js';

export const RECORD_HEADER_BYTES = 2;
export const RECORD_TAG_BYTES = 16;
/** bob's max_packet: the largest plaintext one record carries. */
export const MAX_RECORD_PLAINTEXT = 0x7fff;
export const MAX_RECORD_BYTES = RECORD_HEADER_BYTES + MAX_RECORD_PLAINTEXT + RECORD_TAG_BYTES;
export const RECORD_IV_BYTES = 20;
export const RECORD_KEY_BYTES = 32;
export const NONCE_BASE_BYTES = 12;
/** Sent unencrypted to end a stream; a reader stops at a length of ffff. */
export const CLOSE_MARKER: Readonly<Uint8Array> = Uint8Array.of(0xff, 0xff, 0xff, 0xff);

/** An AEAD taking 20-byte IVs and 16-byte tags. `open` returns null when authentication fails. */
export interface RecordAead {
  seal(iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): { ciphertext: Uint8Array; tag: Uint8Array };
  open(iv: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array): Uint8Array | null;
}

export type RecordAeadFactory = (key: Uint8Array) => RecordAead;

export interface DirectionKeys {
  readonly key: Uint8Array;
  readonly nonceBase: Uint8Array;
}

export function directionKeys(subkey: Uint8Array): DirectionKeys {
  if (subkey.length < RECORD_KEY_BYTES + NONCE_BASE_BYTES) throw new RangeError(`subkey is ${subkey.length} bytes, expected 64`);
  return {
    key: subkey.slice(0, RECORD_KEY_BYTES),
    nonceBase: subkey.slice(RECORD_KEY_BYTES, RECORD_KEY_BYTES + NONCE_BASE_BYTES),
  };
}

/** Why records cannot use `cipher`, or null. */
export function recordCipherProblem(cipher: CipherId): string | null {
  if (cipher === Cipher.AES_256_GCM) return null;
  return `cipher ${cipher} cannot carry bob's 20-byte record IVs (docs/bob-protocol.md §5); only 0 (AES-256-GCM) can`;
}

/** The file direction of a finished exchange (§5): subkey 0 with cipher 0, both from the spoke result. */
export function senderToReceiver(keys: { readonly k0: Uint8Array; readonly ciphers: readonly [CipherId, CipherId] }): {
  subkey: Uint8Array;
  cipher: CipherId;
} {
  return { subkey: keys.k0, cipher: keys.ciphers[0] };
}

export function recordIv(nonceBase: Uint8Array, sequence: number): Uint8Array {
  const iv = new Uint8Array(RECORD_IV_BYTES);
  iv.set(nonceBase, 0);
  new DataView(iv.buffer).setBigUint64(NONCE_BASE_BYTES, BigInt(sequence));
  return iv;
}

export function recordAad(plaintextLength: number): Uint8Array {
  return Uint8Array.of(0x00, 0x01, plaintextLength >> 8, plaintextLength & 0xff);
}

function makeAead(subkey: Uint8Array, cipher: CipherId, factory: RecordAeadFactory) {
  const problem = recordCipherProblem(cipher);
  if (problem !== null) throw new RangeError(problem);
  const keys = directionKeys(subkey);
  return { aead: factory(keys.key), nonceBase: keys.nonceBase };
}

/** Seals one direction's records. Throws RangeError for an unusable cipher (check recordCipherProblem first). */
export class RecordWriter {
  readonly #aead: RecordAead;
  readonly #nonceBase: Uint8Array;
  #sequence = 0;

  constructor(subkey: Uint8Array, cipher: CipherId, factory: RecordAeadFactory = nodeAes256Gcm) {
    ({ aead: this.#aead, nonceBase: this.#nonceBase } = makeAead(subkey, cipher, factory));
  }

  /** Sequence number of the next record. */
  get sequence(): number {
    return this.#sequence;
  }

  /** One record carrying `plaintext` (1..0x7fff bytes: bob never sends empty records). */
  seal(plaintext: Uint8Array): Uint8Array {
    const length = plaintext.length;
    if (length < 1 || length > MAX_RECORD_PLAINTEXT) throw new RangeError(`record plaintext must be 1..${MAX_RECORD_PLAINTEXT} bytes, got ${length}`);
    const iv = recordIv(this.#nonceBase, this.#sequence++);
    const { ciphertext, tag } = this.#aead.seal(iv, recordAad(length), plaintext);
    const record = new Uint8Array(RECORD_HEADER_BYTES + length + RECORD_TAG_BYTES);
    record[0] = length >> 8;
    record[1] = length & 0xff;
    record.set(ciphertext, RECORD_HEADER_BYTES);
    record.set(tag, RECORD_HEADER_BYTES + length);
    return record;
  }
}

export type ReadStatus = 'open' | 'end' | 'corrupted';

export interface ReadResult {
  /** Plaintexts completed by this call, in order. */
  readonly plaintexts: Uint8Array[];
  /** 'end' after the close marker or EOF between records; 'corrupted' is final too. */
  readonly status: ReadStatus;
  /** Why the stream is corrupted. */
  readonly reason?: string;
}

/**
 * Opens one direction's records from a byte stream cut anywhere. It buffers
 * at most one record, and after 'end' or 'corrupted' ignores further input.
 */
export class RecordReader {
  readonly #aead: RecordAead;
  readonly #nonceBase: Uint8Array;
  readonly #buf = new Uint8Array(MAX_RECORD_BYTES);
  #fill = 0;
  #length = 0;
  #sequence = 0;
  #status: ReadStatus = 'open';
  #reason: string | undefined;

  constructor(subkey: Uint8Array, cipher: CipherId, factory: RecordAeadFactory = nodeAes256Gcm) {
    ({ aead: this.#aead, nonceBase: this.#nonceBase } = makeAead(subkey, cipher, factory));
  }

  get bufferedBytes(): number {
    return this.#fill;
  }

  push(chunk: Uint8Array): ReadResult {
    const plaintexts: Uint8Array[] = [];
    let pos = 0;
    while (this.#status === 'open' && pos < chunk.length) {
      const target = this.#fill < RECORD_HEADER_BYTES ? RECORD_HEADER_BYTES : RECORD_HEADER_BYTES + this.#length + RECORD_TAG_BYTES;
      const take = Math.min(target - this.#fill, chunk.length - pos);
      this.#buf.set(chunk.subarray(pos, pos + take), this.#fill);
      this.#fill += take;
      pos += take;
      if (this.#fill !== target) break;
      if (target === RECORD_HEADER_BYTES) this.#readHeader();
      else this.#openRecord(plaintexts);
    }
    return this.#result(plaintexts);
  }

  /** The peer closed: a clean end between records, corruption inside one. */
  end(): ReadResult {
    if (this.#status === 'open') {
      if (this.#fill === 0) this.#status = 'end';
      else this.#fail(`stream ended inside a record (${this.#fill} bytes buffered)`);
    }
    return this.#result([]);
  }

  #readHeader(): void {
    const length = (this.#buf[0] << 8) | this.#buf[1];
    if (length === 0xffff) {
      this.#status = 'end'; // the close marker's first half is enough (§5)
      this.#fill = 0;
    } else if (length === 0 || length > MAX_RECORD_PLAINTEXT) {
      this.#fail(`record length ${length} outside 1..${MAX_RECORD_PLAINTEXT}`);
    } else {
      this.#length = length;
    }
  }

  #openRecord(plaintexts: Uint8Array[]): void {
    const length = this.#length;
    const ciphertext = this.#buf.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + length);
    const tag = this.#buf.subarray(RECORD_HEADER_BYTES + length, RECORD_HEADER_BYTES + length + RECORD_TAG_BYTES);
    const plaintext = this.#aead.open(recordIv(this.#nonceBase, this.#sequence), recordAad(length), ciphertext, tag);
    if (plaintext === null) return this.#fail(`record ${this.#sequence} failed authentication`);
    plaintexts.push(plaintext);
    this.#sequence++;
    this.#fill = 0;
  }

  #fail(reason: string): void {
    this.#status = 'corrupted';
    this.#reason = reason;
    this.#fill = 0;
  }

  #result(plaintexts: Uint8Array[]): ReadResult {
    return this.#reason === undefined ? { plaintexts, status: this.#status } : { plaintexts, status: this.#status, reason: this.#reason };
  }
}

/** AES-256-GCM from node:crypto, which accepts 20-byte IVs (J0 from GHASH). */
export function nodeAes256Gcm(key: Uint8Array): RecordAead {
  if (key.length !== RECORD_KEY_BYTES) throw new RangeError(`AES-256-GCM key must be 32 bytes, got ${key.length}`);
  const options = { authTagLength: RECORD_TAG_BYTES };
  return {
    seal(iv, aad, plaintext) {
      const cipher = createCipheriv('aes-256-gcm', key, iv, options);
      cipher.setAAD(aad);
      const ciphertext = cipher.update(plaintext);
      cipher.final();
      return { ciphertext: new Uint8Array(ciphertext), tag: new Uint8Array(cipher.getAuthTag()) };
    },
    open(iv, aad, ciphertext, tag) {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, options);
      decipher.setAAD(aad);
      decipher.setAuthTag(tag);
      const plaintext = decipher.update(ciphertext);
      try {
        decipher.final();
      } catch {
        return null;
      }
      return new Uint8Array(plaintext);
    },
  };
}
