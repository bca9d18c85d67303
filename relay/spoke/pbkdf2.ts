// spoke's PBKDF2-HMAC-SHA256 (docs/bob-protocol.md §4.2). It differs from RFC 8018
// in one place: the block index is appended as a 32-bit LITTLE-endian integer,
// so no standard PBKDF2 API (WebCrypto, node:crypto) gives the same bytes and
// the HMAC iteration is written out here.
import { type _HMAC, hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';

/** spoke always derives 4 SHA-256 blocks: M, N, h_K and h_L seeds (§4.3). */
export const SPOKE_PBKDF2_BYTES = 128;

const HASH_BYTES = 32;

export function spokePbkdf2(
  password: Uint8Array,
  salt: Uint8Array,
  count: number,
  length: number = SPOKE_PBKDF2_BYTES,
): Uint8Array {
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`PBKDF2 count must be >= 1, got ${count}`);
  if (!Number.isSafeInteger(length) || length < 1) throw new RangeError(`PBKDF2 length must be >= 1, got ${length}`);
  // The keyed HMAC state is computed once; each iteration clones it, which
  // saves re-hashing the padded password 2 × count times per block.
  const keyed: KeyedHmac = hmac.create(sha256, password);
  const out = new Uint8Array(length);
  for (let block = 1, pos = 0; pos < length; block++, pos += HASH_BYTES) {
    const t = pbkdf2Block(keyed, salt, block, count);
    out.set(t.subarray(0, Math.min(HASH_BYTES, length - pos)), pos);
  }
  return out;
}

// noble types its HMAC by the hash it wraps; any SHA-256 HMAC state fits here.
type KeyedHmac = _HMAC<any>;

function pbkdf2Block(keyed: KeyedHmac, salt: Uint8Array, index: number, count: number): Uint8Array {
  const le = new Uint8Array(4);
  new DataView(le.buffer).setUint32(0, index, true); // LITTLE-endian: spoke's quirk
  const u = keyed.clone().update(salt).update(le).digest();
  const t = u.slice();
  let scratch: KeyedHmac | undefined;
  for (let j = 1; j < count; j++) {
    const h: KeyedHmac = keyed._cloneInto(scratch);
    h.update(u).digestInto(u);
    scratch = h;
    for (let k = 0; k < HASH_BYTES; k++) t[k] ^= u[k];
  }
  return t;
}
