// spoke's key schedule (docs/bob-protocol.md §4.5): one BLAKE2b-512 over the
// transcript gives the main key, and four keyed BLAKE2b-512 calls give the
// subkeys: 0 and 1 are the shared keys, 2 and 3 the validators.
import { sodium } from './sodium.js';

export const SUBKEY_BYTES = 64;

export interface TranscriptParts {
  /** The receiver's identity (bob's "client"), raw bytes. */
  readonly clientIdentity: Uint8Array;
  /** The sender's identity (bob's "server"), raw bytes. */
  readonly serverIdentity: Uint8Array;
  readonly X: Uint8Array;
  readonly Y: Uint8Array;
  readonly Z: Uint8Array;
  readonly hK: Uint8Array;
  readonly V: Uint8Array;
}

export interface Subkeys {
  /** subkey 0: sender→receiver record key (§5). */
  readonly k0: Uint8Array;
  /** subkey 1: receiver→sender record key. */
  readonly k1: Uint8Array;
  /** subkey 2: sent by the sender in packet 06. */
  readonly serverValidator: Uint8Array;
  /** subkey 3: sent by the receiver in packet 05. */
  readonly clientValidator: Uint8Array;
}

/**
 * `01 00` ‖ cid ‖ sid ‖ X ‖ Y ‖ Z ‖ h_K ‖ V. The leading version 1 is stored
 * little-endian (unlike the `00 01` of the public packet), and the identities
 * have no length or separator: both are spoke's choices and must be copied.
 */
export function transcript(p: TranscriptParts): Uint8Array {
  const parts = [Uint8Array.of(0x01, 0x00), p.clientIdentity, p.serverIdentity, p.X, p.Y, p.Z, p.hK, p.V];
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let pos = 0;
  for (const part of parts) {
    out.set(part, pos);
    pos += part.length;
  }
  return out;
}

export function mainKey(transcriptBytes: Uint8Array): Uint8Array {
  return sodium.crypto_generichash(SUBKEY_BYTES, transcriptBytes, null);
}

/** BLAKE2b-512 keyed with main over "SPOKE" padded to 16 bytes ‖ u64 LE i ‖ 8 zero bytes. */
export function subkey(main: Uint8Array, index: number): Uint8Array {
  const input = new Uint8Array(32);
  input.set(new TextEncoder().encode('SPOKE'), 0);
  new DataView(input.buffer).setBigUint64(16, BigInt(index), true);
  return sodium.crypto_generichash(SUBKEY_BYTES, input, main);
}

export function subkeys(main: Uint8Array): Subkeys {
  return {
    k0: subkey(main, 0),
    k1: subkey(main, 1),
    serverValidator: subkey(main, 2),
    clientValidator: subkey(main, 3),
  };
}
