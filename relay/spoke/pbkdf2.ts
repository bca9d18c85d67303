// spoke's PBKDF2-HMAC-SHA256 (docs/bob-protocol.md §4.2). It differs from RFC 8018
// in one place: the block index is appended as a 32-bit LITTLE-endian integer,
// so no standard PBKDF2 API (WebCrypto, node:crypto) gives the same bytes and
// the HMAC iteration is written out here.
//
// A receiver runs one PBKDF2 per sender the relay advertises, with the count
// that sender chose (§4.6), so it also comes in a sliced form that gives the
// event loop back between slices: timers (--timeout), signals and the socket
// keep working while a costly count is derived, and an AbortSignal stops it.
import { type _HMAC, hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';

/** spoke always derives 4 SHA-256 blocks: M, N, h_K and h_L seeds (§4.3). */
export const SPOKE_PBKDF2_BYTES = 128;

/**
 * HMAC iterations per slice of `spokePbkdf2Sliced`: ≈ 1.3 µs each here, so a
 * slice holds the event loop for ≈ 1-3 ms, and a count of 16 is one slice.
 */
export const PBKDF2_SLICE_ITERATIONS = 1024;

const HASH_BYTES = 32;

export function spokePbkdf2(
  password: Uint8Array,
  salt: Uint8Array,
  count: number,
  length: number = SPOKE_PBKDF2_BYTES,
): Uint8Array {
  const run = pbkdf2Steps(password, salt, count, length, Number.POSITIVE_INFINITY);
  for (let step = run.next(); ; step = run.next()) if (step.done) return step.value;
}

export interface SlicedOptions {
  /** Stops the derivation at the next slice; the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** HMAC iterations between two yields (default PBKDF2_SLICE_ITERATIONS). */
  readonly sliceIterations?: number;
  readonly length?: number;
}

/** The same bytes as `spokePbkdf2`, computed in slices with a macrotask turn (setImmediate) after each. */
export async function spokePbkdf2Sliced(password: Uint8Array, salt: Uint8Array, count: number, options: SlicedOptions = {}): Promise<Uint8Array> {
  const slice = options.sliceIterations ?? PBKDF2_SLICE_ITERATIONS;
  if (!Number.isSafeInteger(slice) || slice < 1) throw new RangeError(`slice must be >= 1 iteration, got ${slice}`);
  options.signal?.throwIfAborted();
  const run = pbkdf2Steps(password, salt, count, options.length ?? SPOKE_PBKDF2_BYTES, slice);
  for (let step = run.next(); ; step = run.next()) {
    if (step.done) return step.value;
    await new Promise((resolve) => setImmediate(resolve));
    options.signal?.throwIfAborted();
  }
}

// noble types its HMAC by the hash it wraps; any SHA-256 HMAC state fits here.
type KeyedHmac = _HMAC<any>;

/** The derivation, pausing (yield) after every `slice` HMAC iterations of a block and between blocks. */
function* pbkdf2Steps(password: Uint8Array, salt: Uint8Array, count: number, length: number, slice: number): Generator<void, Uint8Array> {
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`PBKDF2 count must be >= 1, got ${count}`);
  if (!Number.isSafeInteger(length) || length < 1) throw new RangeError(`PBKDF2 length must be >= 1, got ${length}`);
  // The keyed HMAC state is computed once; each iteration clones it, which
  // saves re-hashing the padded password 2 × count times per block.
  const keyed: KeyedHmac = hmac.create(sha256, password);
  const out = new Uint8Array(length);
  for (let block = 1, pos = 0; pos < length; block++, pos += HASH_BYTES) {
    const le = new Uint8Array(4);
    new DataView(le.buffer).setUint32(0, block, true); // LITTLE-endian: spoke's quirk
    const u = keyed.clone().update(salt).update(le).digest();
    const t = u.slice();
    let scratch: KeyedHmac | undefined;
    // The inner loop stays free of slice bookkeeping: it is the whole cost.
    for (let j = 1; j < count; ) {
      const end = Math.min(count, j + slice);
      for (; j < end; j++) {
        const h: KeyedHmac = keyed._cloneInto(scratch);
        h.update(u).digestInto(u);
        scratch = h;
        for (let k = 0; k < HASH_BYTES; k++) t[k] ^= u[k];
      }
      if (j < count) yield;
    }
    out.set(t.subarray(0, Math.min(HASH_BYTES, length - pos)), pos);
    if (pos + HASH_BYTES < length) yield;
  }
  return out;
}
