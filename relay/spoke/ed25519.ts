// The Edwards25519 operations spoke uses (docs/bob-protocol.md §4.4, §4.6), as
// libsodium calls that return null instead of throwing. libsodium rejects
// points that are not on the curve, have small order or are outside the
// prime-order subgroup, and results that are the identity; spoke reports those
// as Spoke_failure 00, so callers map null to that code.
import { sodium } from './sodium.js';

export const POINT_BYTES = 32;
export const SCALAR_BYTES = 32;

function attempt(op: () => Uint8Array): Uint8Array | null {
  try {
    return op();
  } catch {
    return null;
  }
}

/** Hash-to-curve of 32 uniform bytes (spoke's from_uniform, Elligator 2). */
export function fromUniform(r: Uint8Array): Uint8Array {
  return sodium.crypto_core_ed25519_from_uniform(r);
}

/** s·B with the scalar used as is. */
export function baseNoclamp(s: Uint8Array): Uint8Array | null {
  return attempt(() => sodium.crypto_scalarmult_ed25519_base_noclamp(s));
}

/** s·B with the scalar clamped first (X25519-style). */
export function baseClamped(s: Uint8Array): Uint8Array | null {
  return attempt(() => sodium.crypto_scalarmult_ed25519_base(s));
}

/** s·P with the scalar used as is. */
export function mulNoclamp(s: Uint8Array, p: Uint8Array): Uint8Array | null {
  return attempt(() => sodium.crypto_scalarmult_ed25519_noclamp(s, p));
}

/** s·P with the scalar clamped first. */
export function mulClamped(s: Uint8Array, p: Uint8Array): Uint8Array | null {
  return attempt(() => sodium.crypto_scalarmult_ed25519(s, p));
}

export function add(p: Uint8Array, q: Uint8Array): Uint8Array | null {
  return attempt(() => sodium.crypto_core_ed25519_add(p, q));
}

export function sub(p: Uint8Array, q: Uint8Array): Uint8Array | null {
  return attempt(() => sodium.crypto_core_ed25519_sub(p, q));
}
