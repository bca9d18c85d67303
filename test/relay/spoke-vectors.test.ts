// Every value of test/fixtures/bob/spoke reproduced byte for byte.
import { pbkdf2Sync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as ed from '../../relay/spoke/ed25519.js';
import { mainKey, subkey, subkeys, transcript } from '../../relay/spoke/keyschedule.js';
import { spokePbkdf2 } from '../../relay/spoke/pbkdf2.js';
import { encodePublic, parsePublic, parseSecret } from '../../relay/spoke/public.js';
import {
  clientCompute,
  clientHello,
  clientPoints,
  deriveKeys,
  passwordKeys,
  serverCompute,
  serverFinish,
  serverInit,
  serverPoints,
} from '../../relay/spoke/spake2ee.js';
import { ascii, hex, unhex, vectorJson } from './vectors.js';

interface Values {
  values: Record<string, string | number>;
}
const prim = vectorJson<Values>('spoke/ed25519-primitives.json').values;
const kdf = vectorJson<Values>('spoke/pbkdf2-le.json').values;
const ex = vectorJson<Values>('spoke/spake2ee-exchange.json').values;
const b = (v: Record<string, string | number>, key: string) => unhex(String(v[key]));

describe('ed25519 primitives (spoke/ed25519-primitives.json)', () => {
  const s = b(prim, 'scalar_s');
  const p = ed.fromUniform(b(prim, 'r'));
  const q = ed.fromUniform(b(prim, 'r2'));

  it('from_uniform', () => {
    expect(hex(p)).toBe(prim.from_uniform_r);
    expect(hex(q)).toBe(prim.from_uniform_r2);
  });
  it('base multiplication, unclamped and clamped (clamping changes this scalar)', () => {
    expect(hex(ed.baseNoclamp(s)!)).toBe(prim.scalarmult_base_noclamp_s);
    expect(hex(ed.baseClamped(s)!)).toBe(prim.scalarmult_base_clamped_s);
    expect(prim.scalarmult_base_noclamp_s).not.toBe(prim.scalarmult_base_clamped_s);
  });
  it('add and sub', () => {
    expect(hex(ed.add(p, q)!)).toBe(prim.add_p_q);
    expect(hex(ed.sub(p, q)!)).toBe(prim.sub_p_q);
  });
  it('variable-base multiplication, unclamped and clamped', () => {
    expect(prim.scalarmult_noclamp_s_p_rc).toBe(0);
    expect(hex(ed.mulNoclamp(s, p)!)).toBe(prim.scalarmult_noclamp_s_p);
    expect(prim.scalarmult_clamped_s_p_rc).toBe(0);
    expect(hex(ed.mulClamped(s, p)!)).toBe(prim.scalarmult_clamped_s_p);
  });
  it('rejects the identity point (rc -1 → null)', () => {
    expect(prim.scalarmult_noclamp_s_identity_rc).toBe(-1);
    const identity = new Uint8Array(32);
    identity[0] = 1;
    expect(ed.mulNoclamp(s, identity)).toBeNull();
  });
});

describe('PBKDF2 with a little-endian block index (spoke/pbkdf2-le.json)', () => {
  const pw = ascii(String(kdf.password));
  const salt = b(kdf, 'salt');
  it('count 1 and 16, 128 bytes', () => {
    expect(hex(spokePbkdf2(pw, salt, 1))).toBe(kdf.spoke_le_count1_len128);
    expect(hex(spokePbkdf2(pw, salt, 16))).toBe(kdf.spoke_le_count16_len128);
  });
  it('differs from standard (big-endian) PBKDF2, which the vector also records', () => {
    const standard = new Uint8Array(pbkdf2Sync(pw, salt, 16, 128, 'sha256'));
    expect(hex(standard)).toBe(kdf.standard_be_count16_len128_NOT_USED_BY_SPOKE);
    expect(hex(standard)).not.toBe(kdf.spoke_le_count16_len128);
  });
  it('honours shorter lengths', () => {
    expect(hex(spokePbkdf2(pw, salt, 16, 40))).toBe(String(kdf.spoke_le_count16_len128).slice(0, 80));
  });
});

describe('one SPAKE2+EE exchange (spoke/spake2ee-exchange.json)', () => {
  const password = String(ex.password);
  const salt = b(ex, 'salt');
  const ids = { clientIdentity: ascii(String(ex.client_identity)), serverIdentity: ascii(String(ex.server_identity)) };
  const fixed = (bytes: Uint8Array) => () => bytes.slice();
  const params = { count: Number(ex.pbkdf2_count), ciphers: [0, 2] as const, salt };

  it('PBKDF2 output and the derived M, N, h_K, h_L, L', () => {
    const P = spokePbkdf2(ascii(password), salt, params.count);
    expect(hex(P)).toBe(ex.pbkdf2_output_128);
    const keys = deriveKeys(P);
    expect(hex(keys.M)).toBe(ex.M);
    expect(hex(keys.N)).toBe(ex.N);
    expect(hex(keys.hK)).toBe(ex.h_K);
    expect(hex(keys.hL)).toBe(ex.h_L);
    expect(hex(keys.L)).toBe(ex.L);
  });

  it('public and secret packets', () => {
    const init = serverInit(password, { count: params.count, salt });
    expect(hex(init.public)).toBe(ex.public_34);
    expect(hex(init.secret)).toBe(ex.secret_162);
    expect(hex(encodePublic(params))).toBe(ex.public_34);
    const parsed = parsePublic(b(ex, 'public_34'));
    expect(parsed.ok && parsed.value.count).toBe(16);
    expect(parsed.ok && parsed.value.ciphers).toEqual([0, 2]);
    const secret = parseSecret(b(ex, 'secret_162'));
    expect(secret.ok && hex(secret.value.L)).toBe(ex.L);
  });

  it('X, Y, Z, V, transcript, main key and subkeys 0-3', () => {
    const keys = passwordKeys(password, params);
    const x = b(ex, 'x');
    const y = b(ex, 'y');
    const hello = clientHello(password, b(ex, 'public_34'), { random: fixed(x) });
    if (!hello.ok) throw new Error(hello.message);
    expect(hex(hello.value.X)).toBe(ex.X);

    const server = serverPoints(y, hello.value.X, keys)!;
    expect(hex(server.Y)).toBe(ex.Y);
    expect(hex(server.Z)).toBe(ex.Z);
    expect(hex(server.V)).toBe(ex.V);
    const client = clientPoints(x, server.Y, keys)!;
    expect(hex(client.Z)).toBe(ex.Z);
    expect(hex(client.V)).toBe(ex.V);

    const t = transcript({ ...ids, X: hello.value.X, Y: server.Y, Z: server.Z, hK: keys.hK, V: server.V });
    expect(hex(t)).toBe(ex.transcript);
    const main = mainKey(t);
    expect(hex(main)).toBe(ex.main_key);
    const sk = subkeys(main);
    expect(hex(sk.k0)).toBe(ex.subkey0_client_sk);
    expect(hex(sk.k1)).toBe(ex.subkey1_server_sk);
    expect(hex(sk.serverValidator)).toBe(ex.subkey2_sent_by_server_in_packet_06);
    expect(hex(sk.clientValidator)).toBe(ex.subkey3_sent_by_client_in_packet_05);
    expect(hex(subkey(main, 0).subarray(0, 32))).toBe(ex.sender_to_receiver_aes256gcm_key);
    expect(hex(subkey(main, 0).subarray(32, 44))).toBe(ex.sender_to_receiver_nonce_base);
    expect(hex(subkey(main, 1).subarray(0, 32))).toBe(ex.receiver_to_sender_chacha20_key);
    expect(hex(subkey(main, 1).subarray(32, 44))).toBe(ex.receiver_to_sender_nonce_base);
  });

  it('the full API with the fixed salt, x and y gives the vector values on both sides', () => {
    const init = serverInit(password, { count: params.count, salt });
    const hello = clientHello(password, init.public, { random: fixed(b(ex, 'x')) });
    if (!hello.ok) throw new Error(hello.message);
    const computed = serverCompute(init.secret, hello.value.X, ids, { random: fixed(b(ex, 'y')) });
    if (!computed.ok) throw new Error(computed.message);
    expect(hex(computed.value.Y)).toBe(ex.Y);
    expect(hex(computed.value.serverValidator)).toBe(ex.subkey2_sent_by_server_in_packet_06);
    const client = clientCompute(hello.value.state, computed.value.Y, computed.value.serverValidator, ids);
    if (!client.ok) throw new Error(client.message);
    expect(hex(client.value.clientValidator)).toBe(ex.subkey3_sent_by_client_in_packet_05);
    expect(hex(client.value.sharedKeys.k0)).toBe(ex.subkey0_client_sk);
    expect(hex(client.value.sharedKeys.k1)).toBe(ex.subkey1_server_sk);
    const done = serverFinish(computed.value.state, client.value.clientValidator);
    if (!done.ok) throw new Error(done.message);
    expect(hex(done.value.k0)).toBe(ex.subkey0_client_sk);
    expect(hex(done.value.k1)).toBe(ex.subkey1_server_sk);
    expect(done.value.ciphers).toEqual([0, 2]);
  });
});
