// SPAKE2+EE exactly as spoke computes it (docs/bob-protocol.md §4.3-4.5). bob calls
// the sender "server" and the receiver "client"; the names here follow bob.
//
//   sender                              receiver
//   serverInit(pw) → public (in 00/04)  clientHello(pw, public) → X (in 07)
//   serverCompute(secret, X) → Y, v2 (in 06)
//                                       clientCompute(state, Y, v2) → v3 (in 05), keys
//   serverFinish(state, v3) → keys
//
// Every failure is a SpokeError carrying its Spoke_failure byte (packet 0d).
import * as ed from './ed25519.js';
import { type SpokeResult, SpokeFailure, spokeError, spokeOk } from './failure.js';
import { type Subkeys, mainKey, subkeys, transcript } from './keyschedule.js';
import { type SlicedOptions, spokePbkdf2, spokePbkdf2Sliced } from './pbkdf2.js';
import {
  BOB_CIPHERS,
  type CipherId,
  MAX_COUNT,
  type PublicParams,
  SALT_BYTES,
  encodePublic,
  encodeSecret,
  parsePublic,
  parseSecret,
} from './public.js';
import { sodium } from './sodium.js';

export type Password = Uint8Array | string;
/** Returns `length` random bytes. Production code uses a CSPRNG; tests inject fixed bytes. */
export type RandomSource = (length: number) => Uint8Array;

export const cryptoRandom: RandomSource = (length) => crypto.getRandomValues(new Uint8Array(length));

/** Both identities enter the transcript (§4.5): the receiver's, then the sender's. */
export interface Identities {
  /** The receiver's identity as the relay gave it (packet 03 / 07). */
  readonly clientIdentity: Uint8Array;
  /** The sender's identity as the relay gave it (packet 02 / 04). */
  readonly serverIdentity: Uint8Array;
}

/** The outcome of a successful exchange: record keys and the AEADs from the public packet (§5). */
export interface SharedKeys {
  /** subkey 0: sender→receiver, used with ciphers[0]. */
  readonly k0: Uint8Array;
  /** subkey 1: receiver→sender, used with ciphers[1]. */
  readonly k1: Uint8Array;
  readonly ciphers: readonly [CipherId, CipherId];
}

/** Values both sides derive from the password and the public packet (§4.3). */
export interface PasswordKeys {
  readonly M: Uint8Array;
  readonly N: Uint8Array;
  readonly hK: Uint8Array;
  readonly hL: Uint8Array;
  readonly L: Uint8Array;
}

export interface ClientState {
  readonly params: PublicParams;
  readonly keys: PasswordKeys;
  readonly x: Uint8Array;
  readonly X: Uint8Array;
}

export interface ServerState {
  readonly expectedClientValidator: Uint8Array;
  readonly sharedKeys: SharedKeys;
}

function passwordBytes(password: Password): Uint8Array {
  return typeof password === 'string' ? new TextEncoder().encode(password) : password;
}

/** Splits the 128 PBKDF2 bytes into M, N, h_K, h_L and L = clamped(h_L)·B. */
export function deriveKeys(pbkdf2Output: Uint8Array): PasswordKeys {
  const block = (i: number) => pbkdf2Output.slice(32 * i, 32 * (i + 1));
  const hL = block(3);
  const L = ed.baseClamped(hL);
  // A clamped scalar is a non-zero multiple of 8 below 2^255: never 0 mod the group order.
  if (L === null) throw new Error('clamped base multiplication failed');
  return { M: ed.fromUniform(block(0)), N: ed.fromUniform(block(1)), hK: block(2), hL, L };
}

export function passwordKeys(password: Password, params: PublicParams): PasswordKeys {
  return deriveKeys(spokePbkdf2(passwordBytes(password), params.salt, params.count));
}

/** `passwordKeys` with the PBKDF2 in slices that give the event loop back (and stop on `signal`). */
export async function passwordKeysSliced(
  password: Password,
  params: PublicParams,
  options: Pick<SlicedOptions, 'signal' | 'sliceIterations'> = {},
): Promise<PasswordKeys> {
  return deriveKeys(await spokePbkdf2Sliced(passwordBytes(password), params.salt, params.count, options));
}

/** spoke's random_scalar: 32 bytes, byte0 &= 0xf8, byte31 &= 0x7f, not all zero. */
export function randomScalar(random: RandomSource): Uint8Array {
  for (let attempt = 0; attempt < 64; attempt++) {
    const s = random(32);
    if (s.length !== 32) throw new RangeError(`random source returned ${s.length} bytes, expected 32`);
    s[0] &= 0xf8;
    s[31] &= 0x7f;
    if (s.some((b) => b !== 0)) return s;
  }
  throw new Error('random source keeps returning zero scalars');
}

export interface ServerInitOptions {
  /** PBKDF2 count; within [1, MAX_COUNT] so our own receivers accept it. */
  readonly count: number;
  readonly ciphers?: readonly [CipherId, CipherId];
  /** Fixed salt (tests); otherwise 16 bytes from `random`. */
  readonly salt?: Uint8Array;
  readonly random?: RandomSource;
}

/** Sender: the public packet to advertise and the secret to keep (§4.1). Bad options throw RangeError. */
export function serverInit(password: Password, options: ServerInitOptions): { public: Uint8Array; secret: Uint8Array } {
  if (options.count > MAX_COUNT) throw new RangeError(`PBKDF2 count ${options.count} exceeds MAX_COUNT ${MAX_COUNT}`);
  const salt = options.salt ?? (options.random ?? cryptoRandom)(SALT_BYTES);
  const params: PublicParams = { count: options.count, ciphers: options.ciphers ?? BOB_CIPHERS, salt };
  const publicBytes = encodePublic(params);
  const keys = passwordKeys(password, params);
  return { public: publicBytes, secret: encodeSecret(publicBytes, keys) };
}

export interface HelloOptions {
  readonly maxCount?: number;
  readonly random?: RandomSource;
}

/** Receiver, on a New_server (04): X = x·B + M, to send in packet 07. A bad public is 03. */
export function clientHello(
  password: Password,
  publicBytes: Uint8Array,
  options: HelloOptions = {},
): SpokeResult<{ X: Uint8Array; state: ClientState }> {
  const params = parsePublic(publicBytes, options.maxCount ?? MAX_COUNT);
  if (!params.ok) return params;
  return helloFromKeys(params.value, passwordKeys(password, params.value), options.random);
}

/**
 * The part of `clientHello` after the PBKDF2, for a receiver that parsed the
 * public itself (parsePublic) and derived the keys in slices.
 */
export function helloFromKeys(
  params: PublicParams,
  keys: PasswordKeys,
  random: RandomSource = cryptoRandom,
): SpokeResult<{ X: Uint8Array; state: ClientState }> {
  const x = randomScalar(random);
  const xB = ed.baseNoclamp(x);
  const X = xB && ed.add(xB, keys.M);
  if (X === null) return pointError('X = x·B + M');
  return spokeOk({ X, state: { params, keys, x, X } });
}

/** Sender side: Y = y·B + N, Z = y·(X − M), V = y·L. */
export function serverPoints(
  y: Uint8Array,
  X: Uint8Array,
  secret: { M: Uint8Array; N: Uint8Array; L: Uint8Array },
): { Y: Uint8Array; Z: Uint8Array; V: Uint8Array } | null {
  if (X.length !== ed.POINT_BYTES) return null;
  const yB = ed.baseNoclamp(y);
  const Y = yB && ed.add(yB, secret.N);
  // spoke ignores a failed X − M and multiplies garbage (§7); we refuse it.
  const XminusM = ed.sub(X, secret.M);
  const Z = XminusM && ed.mulNoclamp(y, XminusM);
  const V = ed.mulNoclamp(y, secret.L);
  return Y && Z && V ? { Y, Z, V } : null;
}

/** Receiver side: Z = x·(Y − N), V = clamped(h_L)·(Y − N). */
export function clientPoints(x: Uint8Array, Y: Uint8Array, keys: PasswordKeys): { Z: Uint8Array; V: Uint8Array } | null {
  if (Y.length !== ed.POINT_BYTES) return null;
  const YminusN = ed.sub(Y, keys.N);
  if (YminusN === null) return null;
  const Z = ed.mulNoclamp(x, YminusN);
  const V = ed.mulClamped(keys.hL, YminusN);
  return Z && V ? { Z, V } : null;
}

export interface ComputeOptions {
  readonly maxCount?: number;
  readonly random?: RandomSource;
}

/** Sender, on X_and_client_identity (07): Y and the server validator for packet 06. */
export function serverCompute(
  secretBytes: Uint8Array,
  X: Uint8Array,
  ids: Identities,
  options: ComputeOptions = {},
): SpokeResult<{ Y: Uint8Array; serverValidator: Uint8Array; state: ServerState }> {
  const secret = parseSecret(secretBytes, options.maxCount ?? MAX_COUNT);
  if (!secret.ok) return secret;
  const y = randomScalar(options.random ?? cryptoRandom);
  const points = serverPoints(y, X, secret.value);
  if (points === null) return pointError('X (or Y, Z, V derived from it)');
  const keys = scheduleKeys(ids, X, points.Y, points.Z, secret.value.hK, points.V);
  const sharedKeys = { k0: keys.k0, k1: keys.k1, ciphers: secret.value.params.ciphers };
  return spokeOk({
    Y: points.Y,
    serverValidator: keys.serverValidator,
    state: { expectedClientValidator: keys.clientValidator, sharedKeys },
  });
}

/** Receiver, on Y_and_server_validator (06): checks the sender's validator (01 on mismatch) and returns its own for 05. */
export function clientCompute(
  state: ClientState,
  Y: Uint8Array,
  serverValidator: Uint8Array,
  ids: Identities,
): SpokeResult<{ clientValidator: Uint8Array; sharedKeys: SharedKeys }> {
  const points = clientPoints(state.x, Y, state.keys);
  if (points === null) return pointError('Y');
  const keys = scheduleKeys(ids, state.X, Y, points.Z, state.keys.hK, points.V);
  if (!sameBytes(serverValidator, keys.serverValidator)) {
    return spokeError(SpokeFailure.InvalidClientValidator, 'the sender\'s validator does not match (wrong password?)');
  }
  return spokeOk({
    clientValidator: keys.clientValidator,
    sharedKeys: { k0: keys.k0, k1: keys.k1, ciphers: state.params.ciphers },
  });
}

/** Sender, on Client_validator (05): 02 on mismatch, else the shared keys. */
export function serverFinish(state: ServerState, clientValidator: Uint8Array): SpokeResult<SharedKeys> {
  if (!sameBytes(clientValidator, state.expectedClientValidator)) {
    return spokeError(SpokeFailure.InvalidServerValidator, 'the receiver\'s validator does not match');
  }
  return spokeOk(state.sharedKeys);
}

function scheduleKeys(
  ids: Identities,
  X: Uint8Array,
  Y: Uint8Array,
  Z: Uint8Array,
  hK: Uint8Array,
  V: Uint8Array,
): Subkeys {
  const t = transcript({ clientIdentity: ids.clientIdentity, serverIdentity: ids.serverIdentity, X, Y, Z, hK, V });
  return subkeys(mainKey(t));
}

/** Constant-time for equal lengths; validators have a public, fixed length. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && sodium.memcmp(a, b);
}

function pointError(what: string) {
  return spokeError(SpokeFailure.PointNotOnPrimeOrderSubgroup, `invalid point: ${what}`);
}
