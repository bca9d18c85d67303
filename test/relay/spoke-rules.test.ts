// The rules of relay/spoke beyond the recorded vectors (spoke-vectors.test.ts):
// spoke's PBKDF2 variant against a model written from docs/bob-protocol.md §4.2,
// the checks on public and secret packets (§4.1, §7), the SPAKE2+EE inputs the
// exchange refuses, and the Spoke_failure codes and messages peers and users see.
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { SpokeFailure, type SpokeResult, isSpokeFailureCode } from '../../relay/spoke/failure.js';
import { PBKDF2_SLICE_ITERATIONS, SPOKE_PBKDF2_BYTES, spokePbkdf2, spokePbkdf2Sliced } from '../../relay/spoke/pbkdf2.js';
import {
  BOB_COUNT,
  Cipher,
  type CipherId,
  MAX_COUNT,
  PUBLIC_BYTES,
  SALT_BYTES,
  SECRET_BYTES,
  encodePublic,
  encodeSecret,
  parsePublic,
  parseSecret,
} from '../../relay/spoke/public.js';
import {
  type Identities,
  clientCompute,
  clientHello,
  passwordKeys,
  randomScalar,
  serverCompute,
  serverFinish,
  serverInit,
} from '../../relay/spoke/spake2ee.js';
import { ascii, hex, unhex, vectorJson } from './vectors.js';

const ids: Identities = { clientIdentity: ascii('10.0.0.2:51000'), serverIdentity: ascii('10.0.0.1:50000') };
const salt = new Uint8Array(SALT_BYTES).fill(0x3c);

function failure(result: SpokeResult<unknown>): { code: number; message: string } {
  if (result.ok) throw new Error('expected a Spoke_failure, got a result');
  return { code: result.code, message: result.message };
}

function value<T>(result: SpokeResult<T>): T {
  if (!result.ok) throw new Error(`unexpected Spoke_failure ${result.code}: ${result.message}`);
  return result.value;
}

/**
 * §4.2 written out with node:crypto's HMAC: T_i = U_1 ^ ... ^ U_count, where
 * U_1 = HMAC-SHA256(P, S ‖ i as u32 LITTLE-endian) and U_j = HMAC(P, U_{j-1});
 * the output is T_1 ‖ T_2 ‖ ... cut to `length`.
 */
function modelPbkdf2(password: Uint8Array, saltBytes: Uint8Array, count: number, length: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(length / 32) * 32);
  for (let i = 1; (i - 1) * 32 < length; i++) {
    const index = Buffer.alloc(4);
    index.writeUInt32LE(i);
    let u = createHmac('sha256', password).update(saltBytes).update(index).digest();
    const t = Buffer.from(u);
    for (let j = 1; j < count; j++) {
      u = createHmac('sha256', password).update(u).digest();
      for (let k = 0; k < 32; k++) t[k]! ^= u[k]!;
    }
    out.set(t, (i - 1) * 32);
  }
  return out.subarray(0, length);
}

describe('spoke PBKDF2 (little-endian block index, §4.2)', () => {
  const kdf = vectorJson<{ values: Record<string, string> }>('spoke/pbkdf2-le.json').values;

  it('matches the model for any password, salt, count and length', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 80 }),
        fc.uint8Array({ maxLength: 24 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 200 }),
        (password, s, count, length) => {
          expect(hex(spokePbkdf2(password, s, count, length))).toBe(hex(modelPbkdf2(password, s, count, length)));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('the model agrees with the recorded vector, so both describe spoke', () => {
    const pw = ascii(String(kdf.password));
    expect(hex(modelPbkdf2(pw, unhex(String(kdf.salt)), 16, SPOKE_PBKDF2_BYTES))).toBe(kdf.spoke_le_count16_len128);
  });

  it('a one-byte output is the first byte of the first block', () => {
    const pw = ascii(String(kdf.password));
    const one = spokePbkdf2(pw, unhex(String(kdf.salt)), 16, 1);
    expect(hex(one)).toBe(String(kdf.spoke_le_count16_len128).slice(0, 2));
  });

  it('refuses counts and lengths that are not whole numbers of at least 1, naming the value', () => {
    const pw = ascii('pw');
    for (const count of [0, -1, 1.5, Number.NaN, 2 ** 53]) {
      expect(() => spokePbkdf2(pw, salt, count)).toThrow(RangeError);
      expect(() => spokePbkdf2(pw, salt, count)).toThrow(`count must be >= 1, got ${count}`);
    }
    for (const length of [0, -32, 2.5, Number.POSITIVE_INFINITY]) {
      expect(() => spokePbkdf2(pw, salt, 1, length)).toThrow(RangeError);
      expect(() => spokePbkdf2(pw, salt, 1, length)).toThrow(`length must be >= 1, got ${length}`);
    }
  });
});

describe('spoke PBKDF2 in slices (a receiver keeps its event loop)', () => {
  /** Turns of the event loop a derivation should give back: after every slice
   *  of a block but its last, and between blocks. */
  const expectedTurns = (count: number, slice: number, length: number): number => {
    const blocks = Math.ceil(length / 32);
    return blocks * Math.max(0, Math.ceil((count - 1) / slice) - 1) + (blocks - 1);
  };

  it('gives the same bytes as in one go, yielding after each slice and between blocks', async () => {
    const pw = ascii('pw-pw');
    const spy = vi.spyOn(globalThis, 'setImmediate');
    try {
      for (const [count, slice, length] of [[1, 1, 32], [2, 1, 32], [5, 2, 33], [16, 3, 128], [17, 16, 64], [40, 1024, 128], [3, 1, 1]] as const) {
        spy.mockClear();
        const sliced = await spokePbkdf2Sliced(pw, salt, count, { sliceIterations: slice, length });
        expect(hex(sliced), `count ${count} slice ${slice} length ${length}`).toBe(hex(spokePbkdf2(pw, salt, count, length)));
        expect(spy.mock.calls.length, `turns for count ${count} slice ${slice} length ${length}`).toBe(expectedTurns(count, slice, length));
      }
    } finally {
      spy.mockRestore();
    }
    // The default: bob's count of 16 is one slice a block, 128 bytes by default.
    expect(PBKDF2_SLICE_ITERATIONS).toBe(1024);
    expect(hex(await spokePbkdf2Sliced(pw, salt, 16))).toBe(hex(spokePbkdf2(pw, salt, 16)));
  });

  it('refuses a slice that is not a whole number of at least 1, naming it', async () => {
    for (const slice of [0, -1, 0.5, Number.NaN]) {
      await expect(spokePbkdf2Sliced(ascii('pw'), salt, 4, { sliceIterations: slice })).rejects.toThrow(
        new RangeError(`slice must be >= 1 iteration, got ${slice}`),
      );
    }
  });

  it('stops at the next slice when its signal aborts, and does not start when already aborted', async () => {
    const before = new AbortController();
    before.abort(new Error('gone'));
    await expect(spokePbkdf2Sliced(ascii('pw'), salt, 4, { signal: before.signal })).rejects.toThrow('gone');
    const during = new AbortController();
    const run = spokePbkdf2Sliced(ascii('pw'), salt, 100_000, { signal: during.signal, sliceIterations: 10 });
    setImmediate(() => during.abort(new Error('timeout')));
    await expect(run).rejects.toThrow('timeout');
  });
});

describe('public packet (§4.1): encoding refuses what a peer would refuse', () => {
  const ciphers: CipherId[] = [Cipher.AES_256_GCM, Cipher.AES_CCM16, Cipher.CHACHA20_POLY1305];

  it('every pair of the three AEADs round-trips, in both positions', () => {
    for (const c0 of ciphers) {
      for (const c1 of ciphers) {
        const bytes = encodePublic({ count: BOB_COUNT, ciphers: [c0, c1], salt });
        expect(bytes).toHaveLength(PUBLIC_BYTES);
        expect(value(parsePublic(bytes))).toEqual({ count: BOB_COUNT, ciphers: [c0, c1], salt });
      }
    }
  });

  it('throws RangeError for a bad count, an unknown cipher or a salt of the wrong size', () => {
    for (const count of [0, -5, 2.5, 2 ** 53]) {
      expect(() => encodePublic({ count, ciphers: [0, 2], salt })).toThrow(`count must be >= 1, got ${count}`);
    }
    const bad = 3 as CipherId;
    expect(() => encodePublic({ count: 16, ciphers: [bad, 2], salt })).toThrow('unknown cipher in 3,2');
    expect(() => encodePublic({ count: 16, ciphers: [0, bad], salt })).toThrow('unknown cipher in 0,3');
    expect(() => encodePublic({ count: 16, ciphers: [0, 2], salt: salt.subarray(1) })).toThrow('salt must be 16 bytes, got 15');
    expect(() => encodePublic({ count: 16, ciphers: [0, 2], salt: new Uint8Array(17) })).toThrow(RangeError);
  });

  it('a refused public says which field is wrong (Spoke_failure 03)', () => {
    const good = encodePublic({ count: 16, ciphers: [0, 2], salt });
    const patched = (at: number, bytes: number[]) => {
      const p = good.slice();
      p.set(bytes, at);
      return p;
    };
    const cases: [Uint8Array, string][] = [
      [good.subarray(0, 33), 'invalid public packet: length 33, expected 34'],
      [patched(2, [0, 7]), 'invalid public packet: algorithm 7 is not PBKDF2'],
      [patched(4, [0, 0, 0, 0, 0, 0, 0, 0]), `invalid public packet: PBKDF2 count 0 outside [1, ${MAX_COUNT}]`],
      [patched(12, [0, 9]), 'invalid public packet: unknown cipher (9, 2)'],
      [patched(16, [0, 5]), 'invalid public packet: hash 5 is not SHA-256'],
    ];
    for (const [bytes, message] of cases) {
      expect(failure(parsePublic(bytes))).toEqual({ code: SpokeFailure.InvalidPublicPacket, message });
    }
  });
});

describe('secret packet (§4.1): public ‖ M ‖ N ‖ h_K ‖ L, 162 bytes', () => {
  const init = serverInit('pw-pw-pw', { count: BOB_COUNT, salt });

  it('is the public followed by the four 32-byte values', () => {
    const s = value(parseSecret(init.secret));
    expect(init.secret).toHaveLength(SECRET_BYTES);
    expect(s.publicBytes).toEqual(init.public);
    const keys = passwordKeys('pw-pw-pw', s.params);
    expect([s.M, s.N, s.hK, s.L]).toEqual([keys.M, keys.N, keys.hK, keys.L]);
    expect(encodeSecret(init.public, keys)).toEqual(init.secret);
  });

  it('encodeSecret refuses a public of the wrong size and parts that do not add up', () => {
    const keys = passwordKeys('pw-pw-pw', value(parsePublic(init.public)));
    expect(() => encodeSecret(init.public.subarray(1), keys)).toThrow('public must be 34 bytes');
    expect(() => encodeSecret(new Uint8Array(35), keys)).toThrow(RangeError);
    expect(() => encodeSecret(init.public, { ...keys, L: keys.L.subarray(1) }))
      .toThrow('secret parts add up to 161 bytes, expected 162');
  });

  it('a secret one byte short or long is Spoke_failure 04 even when its public is valid', () => {
    const longer = new Uint8Array(SECRET_BYTES + 1);
    longer.set(init.secret);
    expect(failure(parseSecret(longer))).toEqual({
      code: SpokeFailure.InvalidSecretPacket,
      message: 'invalid secret packet: length 163, expected 162',
    });
    expect(failure(parseSecret(init.secret.subarray(0, SECRET_BYTES - 1))).code).toBe(SpokeFailure.InvalidSecretPacket);
    const hello = value(clientHello('pw-pw-pw', init.public));
    expect(failure(serverCompute(longer, hello.X, ids)).code).toBe(SpokeFailure.InvalidSecretPacket);
  });

  it('a bad public inside the secret is 04, with the public\'s reason', () => {
    const bad = init.secret.slice();
    bad[17] = 9; // hash
    expect(failure(parseSecret(bad))).toEqual({
      code: SpokeFailure.InvalidSecretPacket,
      message: 'invalid secret packet: invalid public packet: hash 9 is not SHA-256',
    });
  });

  it('serverCompute applies the caller\'s count cap to its own secret', () => {
    const hello = value(clientHello('pw-pw-pw', init.public));
    expect(failure(serverCompute(init.secret, hello.X, ids, { maxCount: BOB_COUNT - 1 })).code)
      .toBe(SpokeFailure.InvalidSecretPacket);
    expect(serverCompute(init.secret, hello.X, ids, { maxCount: BOB_COUNT }).ok).toBe(true);
  });
});

describe('SPAKE2+EE inputs', () => {
  it('a password given as bytes is the same password as its UTF-8 text', () => {
    const text = 'pässwörd €';
    const fromText = serverInit(text, { count: BOB_COUNT, salt });
    const fromBytes = serverInit(new TextEncoder().encode(text), { count: BOB_COUNT, salt });
    expect(hex(fromBytes.secret)).toBe(hex(fromText.secret));
    // And a receiver holding the bytes completes the exchange with a sender holding the text.
    const hello = value(clientHello(new TextEncoder().encode(text), fromText.public));
    const server = value(serverCompute(fromText.secret, hello.X, ids));
    const client = value(clientCompute(hello.state, server.Y, server.serverValidator, ids));
    expect(value(serverFinish(server.state, client.clientValidator)).k0).toEqual(client.sharedKeys.k0);
  });

  it('random scalars: a source of the wrong size is refused; a source of zeros gives up after 64 draws', () => {
    expect(() => randomScalar(() => new Uint8Array(31))).toThrow('random source returned 31 bytes, expected 32');
    let draws = 0;
    expect(() => randomScalar(() => (draws++, new Uint8Array(32)))).toThrow('random source keeps returning zero scalars');
    expect(draws).toBe(64);
    // Bits the clamping clears count as zero: 0x07 in byte 0 and 0x80 in byte 31 leave nothing.
    draws = 0;
    const cleared = () => {
      draws++;
      const s = new Uint8Array(32);
      s[0] = 0x07;
      s[31] = 0x80;
      return s;
    };
    expect(() => randomScalar(cleared)).toThrow(Error);
    expect(draws).toBe(64);
  });

  it('failures carry the messages the clients log', () => {
    const init = serverInit('right', { count: BOB_COUNT, salt });
    const hello = value(clientHello('wrong', init.public));
    const server = value(serverCompute(init.secret, hello.X, ids));
    expect(failure(clientCompute(hello.state, server.Y, server.serverValidator, ids))).toEqual({
      code: SpokeFailure.InvalidClientValidator,
      message: 'the sender\'s validator does not match (wrong password?)',
    });
    expect(failure(serverFinish(server.state, new Uint8Array(64)))).toEqual({
      code: SpokeFailure.InvalidServerValidator,
      message: 'the receiver\'s validator does not match',
    });
    const smallOrder = new Uint8Array(32);
    expect(failure(serverCompute(init.secret, smallOrder, ids))).toEqual({
      code: SpokeFailure.PointNotOnPrimeOrderSubgroup,
      message: 'invalid point: X (or Y, Z, V derived from it)',
    });
    expect(failure(clientCompute(hello.state, smallOrder, server.serverValidator, ids))).toEqual({
      code: SpokeFailure.PointNotOnPrimeOrderSubgroup,
      message: 'invalid point: Y',
    });
  });
});

describe('Spoke_failure codes (packet 0d)', () => {
  it('are exactly the bytes 0 to 4', () => {
    for (const n of [0, 1, 2, 3, 4]) expect(isSpokeFailureCode(n)).toBe(true);
    for (const n of [-1, 5, 255, 1.5, Number.NaN]) expect(isSpokeFailureCode(n)).toBe(false);
    expect(Object.values(SpokeFailure).sort()).toEqual([0, 1, 2, 3, 4]);
  });
});
