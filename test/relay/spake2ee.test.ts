import { describe, expect, it } from 'vitest';
import { SpokeFailure, type SpokeResult } from '../../relay/spoke/failure.js';
import { BOB_COUNT, MAX_COUNT, SALT_BYTES, encodePublic, parsePublic } from '../../relay/spoke/public.js';
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
import { ascii } from './vectors.js';

const ids: Identities = { clientIdentity: ascii('10.0.0.2:51000'), serverIdentity: ascii('10.0.0.1:50000') };

function value<T>(result: SpokeResult<T>): T {
  if (!result.ok) throw new Error(`unexpected Spoke_failure ${result.code}: ${result.message}`);
  return result.value;
}

function codeOf(result: SpokeResult<unknown>): number | 'ok' {
  return result.ok ? 'ok' : result.code;
}

/** Runs the exchange up to the receiver's clientCompute. */
function exchange(senderPassword: string, receiverPassword: string) {
  const init = serverInit(senderPassword, { count: BOB_COUNT });
  const hello = value(clientHello(receiverPassword, init.public));
  const server = value(serverCompute(init.secret, hello.X, ids));
  const client = clientCompute(hello.state, server.Y, server.serverValidator, ids);
  return { init, hello, server, client };
}

describe('SPAKE2+EE exchange in memory', () => {
  it('the same password gives the same shared keys on both sides', () => {
    const { server, client } = exchange('correct-horse', 'correct-horse');
    const receiver = value(client);
    const sender = value(serverFinish(server.state, receiver.clientValidator));
    expect(sender.k0).toEqual(receiver.sharedKeys.k0);
    expect(sender.k1).toEqual(receiver.sharedKeys.k1);
    expect(sender.k0).not.toEqual(sender.k1);
    expect(sender.k0).toHaveLength(64);
    expect(sender.ciphers).toEqual([0, 2]);
  });

  it('fresh randomness: two runs give different publics and keys', () => {
    const a = exchange('pw-pw-pw', 'pw-pw-pw');
    const b = exchange('pw-pw-pw', 'pw-pw-pw');
    expect(a.init.public).not.toEqual(b.init.public);
    expect(value(a.client).sharedKeys.k0).not.toEqual(value(b.client).sharedKeys.k0);
  });

  it('a wrong password is Spoke_failure 01 at the receiver', () => {
    expect(codeOf(exchange('right-password', 'wrong-password').client)).toBe(SpokeFailure.InvalidClientValidator);
  });

  it('different identities on the two sides also fail with 01 (they are in the transcript)', () => {
    const init = serverInit('pw-pw-pw', { count: BOB_COUNT });
    const hello = value(clientHello('pw-pw-pw', init.public));
    const server = value(serverCompute(init.secret, hello.X, ids));
    const other = { ...ids, serverIdentity: ascii('10.0.0.9:50000') };
    expect(codeOf(clientCompute(hello.state, server.Y, server.serverValidator, other))).toBe(1);
  });

  it('a tampered receiver validator is Spoke_failure 02 at the sender', () => {
    const { server, client } = exchange('pw-pw-pw', 'pw-pw-pw');
    const tampered = value(client).clientValidator.slice();
    tampered[17] ^= 0x01;
    expect(codeOf(serverFinish(server.state, tampered))).toBe(SpokeFailure.InvalidServerValidator);
    expect(codeOf(serverFinish(server.state, tampered.subarray(0, 63)))).toBe(2);
  });

  it('a tampered sender validator is 01 at the receiver', () => {
    const { hello, server } = exchange('pw-pw-pw', 'pw-pw-pw');
    const tampered = server.serverValidator.slice();
    tampered[0] ^= 0x80;
    expect(codeOf(clientCompute(hello.state, server.Y, tampered, ids))).toBe(1);
  });

  it('invalid points are Spoke_failure 00, never exceptions', () => {
    const init = serverInit('pw-pw-pw', { count: BOB_COUNT });
    const hello = value(clientHello('pw-pw-pw', init.public));
    const M = passwordKeys('pw-pw-pw', value(parsePublic(init.public))).M;
    const notOnCurve = Uint8Array.from([2, ...new Array(31).fill(0)]);
    const smallOrder = new Uint8Array(32); // y = 0: a point of order 4, outside the prime-order subgroup
    for (const X of [notOnCurve, smallOrder, M /* X − M = identity */, new Uint8Array(31)]) {
      expect(codeOf(serverCompute(init.secret, X, ids))).toBe(SpokeFailure.PointNotOnPrimeOrderSubgroup);
    }
    const server = value(serverCompute(init.secret, hello.X, ids));
    for (const Y of [notOnCurve, smallOrder, new Uint8Array(33)]) {
      expect(codeOf(clientCompute(hello.state, Y, server.serverValidator, ids))).toBe(0);
    }
  });

  it('a bad secret packet is Spoke_failure 04', () => {
    const init = serverInit('pw-pw-pw', { count: BOB_COUNT });
    const hello = value(clientHello('pw-pw-pw', init.public));
    expect(codeOf(serverCompute(init.secret.subarray(1), hello.X, ids))).toBe(SpokeFailure.InvalidSecretPacket);
    const badPublic = init.secret.slice();
    badPublic[3] = 9; // algorithm
    expect(codeOf(serverCompute(badPublic, hello.X, ids))).toBe(4);
  });
});

describe('public packet validation (Spoke_failure 03)', () => {
  const salt = new Uint8Array(SALT_BYTES).fill(0xa5);
  const good = encodePublic({ count: 16, ciphers: [0, 2], salt });
  const patched = (at: number, bytes: number[]) => {
    const p = good.slice();
    p.set(bytes, at);
    return p;
  };
  const count = (n: bigint) => {
    const p = good.slice();
    new DataView(p.buffer).setBigUint64(4, n);
    return p;
  };

  it('accepts bob\'s public (count 16, ciphers 0 and 2) and any version', () => {
    expect(value(parsePublic(good))).toEqual({ count: 16, ciphers: [0, 2], salt });
    expect(parsePublic(patched(0, [0x12, 0x34])).ok).toBe(true);
  });

  it('refuses counts outside [1, MAX_COUNT]', () => {
    expect(parsePublic(count(1n)).ok).toBe(true);
    expect(parsePublic(count(BigInt(MAX_COUNT))).ok).toBe(true);
    for (const n of [0n, BigInt(MAX_COUNT) + 1n, 1n << 62n, (1n << 64n) - 1n]) {
      expect(codeOf(parsePublic(count(n)))).toBe(SpokeFailure.InvalidPublicPacket);
      expect(codeOf(clientHello('pw', count(n)))).toBe(3);
    }
  });

  it('honours a lower cap given by the caller', () => {
    expect(codeOf(parsePublic(good, 15))).toBe(3);
  });

  it('refuses another algorithm, hash, cipher or length', () => {
    expect(codeOf(parsePublic(patched(2, [0, 1])))).toBe(3);
    expect(codeOf(parsePublic(patched(16, [0, 3])))).toBe(3);
    expect(codeOf(parsePublic(patched(12, [0, 3])))).toBe(3);
    expect(codeOf(parsePublic(patched(14, [1, 0])))).toBe(3);
    expect(codeOf(parsePublic(good.subarray(0, 33)))).toBe(3);
    expect(codeOf(parsePublic(new Uint8Array(35)))).toBe(3);
  });

  it('serverInit refuses counts our own receivers would refuse', () => {
    expect(() => serverInit('pw', { count: 0 })).toThrow(RangeError);
    expect(() => serverInit('pw', { count: MAX_COUNT + 1 })).toThrow(new RangeError(`PBKDF2 count ${MAX_COUNT + 1} exceeds MAX_COUNT ${MAX_COUNT}`));
  });
});

describe('random scalars', () => {
  it('are clamped like spoke\'s (byte0 & 0xf8, byte31 & 0x7f)', () => {
    const s = randomScalar(() => new Uint8Array(32).fill(0xff));
    expect(s[0]).toBe(0xf8);
    expect(s[31]).toBe(0x7f);
  });
  it('are redrawn when zero', () => {
    let calls = 0;
    const s = randomScalar(() => (calls++ === 0 ? new Uint8Array(32) : new Uint8Array(32).fill(8)));
    expect(calls).toBe(2);
    expect(s[0]).toBe(8);
  });
});
