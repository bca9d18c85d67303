// The spoke public packet (34 bytes, sent in handshake packets 00 and 04) and
// the sender's secret packet (public ‖ M ‖ N ‖ h_K ‖ L, 162 bytes), §4.1.
import { type SpokeResult, SpokeFailure, spokeError, spokeOk } from './failure.js';

export const PUBLIC_BYTES = 34;
export const SECRET_BYTES = 162;
export const SALT_BYTES = 16;

/** AEAD identifiers of the public packet. Only AES-256-GCM works with bob's
 *  20-byte IVs (§5), but the others are valid in a public packet. */
export const Cipher = {
  AES_256_GCM: 0,
  AES_CCM16: 1,
  CHACHA20_POLY1305: 2,
} as const;
export type CipherId = (typeof Cipher)[keyof typeof Cipher];

/** What `bob send` advertises (§4.1); keep it for fidelity (§5). */
export const BOB_CIPHERS: readonly [CipherId, CipherId] = [Cipher.AES_256_GCM, Cipher.CHACHA20_POLY1305];
/** The PBKDF2 count `bob send` uses; we must accept it from bob senders (§7). */
export const BOB_COUNT = 16;
/**
 * Largest PBKDF2 count we accept in a peer's public packet (§7: an unbounded
 * count is a CPU DoS), and the most our senders may advertise. A receiver
 * runs one PBKDF2 per advertised sender, 4 blocks of `count` HMACs each
 * (§4.6): ≈ 5.1 µs per unit of count here, so ≈ 0.1 s of a receiver's CPU
 * at the cap. 20 000 was our senders' default before it became bob's 16, so
 * every sender of ours or bob's that kept its default is accepted.
 */
export const MAX_COUNT = 20_000;

const VERSION = 1;
const ALGORITHM_PBKDF2 = 2;
const HASH_SHA256 = 4;

export interface PublicParams {
  readonly count: number;
  readonly ciphers: readonly [CipherId, CipherId];
  readonly salt: Uint8Array;
}

/** The sender-only values kept beside its public packet (§4.3). */
export interface SecretValues {
  readonly M: Uint8Array;
  readonly N: Uint8Array;
  readonly hK: Uint8Array;
  readonly L: Uint8Array;
}

export interface Secret extends SecretValues {
  readonly publicBytes: Uint8Array;
  readonly params: PublicParams;
}

function isCipherId(n: number): n is CipherId {
  return n === Cipher.AES_256_GCM || n === Cipher.AES_CCM16 || n === Cipher.CHACHA20_POLY1305;
}

/** Layout: version u16 · algorithm u16 · count u64 · cipher0 u16 · cipher1 u16 · hash u16 · salt[16], all BE. */
export function encodePublic(params: PublicParams): Uint8Array {
  const { count, ciphers, salt } = params;
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`PBKDF2 count must be >= 1, got ${count}`);
  if (!isCipherId(ciphers[0]) || !isCipherId(ciphers[1])) throw new RangeError(`unknown cipher in ${ciphers.join(',')}`);
  if (salt.length !== SALT_BYTES) throw new RangeError(`salt must be ${SALT_BYTES} bytes, got ${salt.length}`);
  const out = new Uint8Array(PUBLIC_BYTES);
  const view = new DataView(out.buffer);
  view.setUint16(0, VERSION);
  view.setUint16(2, ALGORITHM_PBKDF2);
  view.setBigUint64(4, BigInt(count));
  view.setUint16(12, ciphers[0]);
  view.setUint16(14, ciphers[1]);
  view.setUint16(16, HASH_SHA256);
  out.set(salt, 18);
  return out;
}

/**
 * Parses and checks a peer's public packet. Failures are Spoke_failure 03.
 * The version is not checked, as in spoke; counts outside [1, maxCount] are
 * refused (§7), which spoke does not do.
 */
export function parsePublic(bytes: Uint8Array, maxCount: number = MAX_COUNT): SpokeResult<PublicParams> {
  const invalid = (why: string) => spokeError(SpokeFailure.InvalidPublicPacket, `invalid public packet: ${why}`);
  if (bytes.length !== PUBLIC_BYTES) return invalid(`length ${bytes.length}, expected ${PUBLIC_BYTES}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(2) !== ALGORITHM_PBKDF2) return invalid(`algorithm ${view.getUint16(2)} is not PBKDF2`);
  const count = view.getBigUint64(4);
  if (count < 1n || count > BigInt(maxCount)) return invalid(`PBKDF2 count ${count} outside [1, ${maxCount}]`);
  const c0 = view.getUint16(12);
  const c1 = view.getUint16(14);
  if (!isCipherId(c0) || !isCipherId(c1)) return invalid(`unknown cipher (${c0}, ${c1})`);
  if (view.getUint16(16) !== HASH_SHA256) return invalid(`hash ${view.getUint16(16)} is not SHA-256`);
  return spokeOk({ count: Number(count), ciphers: [c0, c1], salt: bytes.slice(18, 18 + SALT_BYTES) });
}

export function encodeSecret(publicBytes: Uint8Array, values: SecretValues): Uint8Array {
  if (publicBytes.length !== PUBLIC_BYTES) throw new RangeError(`public must be ${PUBLIC_BYTES} bytes`);
  const parts = [publicBytes, values.M, values.N, values.hK, values.L];
  const out = new Uint8Array(SECRET_BYTES);
  let pos = 0;
  for (const part of parts) {
    out.set(part, pos);
    pos += part.length;
  }
  if (pos !== SECRET_BYTES) throw new RangeError(`secret parts add up to ${pos} bytes, expected ${SECRET_BYTES}`);
  return out;
}

/** Splits the sender's secret packet. Any problem (including in its embedded public) is Spoke_failure 04. */
export function parseSecret(bytes: Uint8Array, maxCount: number = MAX_COUNT): SpokeResult<Secret> {
  if (bytes.length !== SECRET_BYTES) {
    return spokeError(SpokeFailure.InvalidSecretPacket, `invalid secret packet: length ${bytes.length}, expected ${SECRET_BYTES}`);
  }
  const publicBytes = bytes.slice(0, PUBLIC_BYTES);
  const params = parsePublic(publicBytes, maxCount);
  if (!params.ok) return spokeError(SpokeFailure.InvalidSecretPacket, `invalid secret packet: ${params.message}`);
  const at = (i: number) => bytes.slice(PUBLIC_BYTES + 32 * i, PUBLIC_BYTES + 32 * (i + 1));
  return spokeOk({ publicBytes, params: params.value, M: at(0), N: at(1), hK: at(2), L: at(3) });
}
