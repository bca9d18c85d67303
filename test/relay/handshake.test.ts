import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DecodeResult, HandshakeDecoder } from '../../relay/handshake/decoder.js';
import {
  type Frame,
  MAX_IDENTITY_BYTES,
  type Packet,
  PACKET_NAMES,
  encodeFrame,
  frameProblem,
  maxPacketBytes,
  packetType,
} from '../../relay/handshake/packet.js';
import { ascii, vectorBytes, vectorJson } from './vectors.js';

type Expected = Record<string, Array<Record<string, string | number>>>;
const expected = vectorJson<Expected>('bob-handshake/expected.json');
const streams = Object.keys(expected);

/** Feeds `bytes` cut at `cuts` (sorted offsets) and gathers everything. */
function decodeInPieces(bytes: Uint8Array, cuts: number[]): { frames: Frame[]; error: DecodeResult['error'] } {
  const decoder = new HandshakeDecoder();
  const frames: Frame[] = [];
  const bounds = [0, ...cuts, bytes.length];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const result = decoder.push(bytes.slice(bounds[i], bounds[i + 1]));
    frames.push(...result.frames);
    if (result.error) return { frames, error: result.error };
  }
  return { frames, error: decoder.end() };
}

function decodeAll(bytes: Uint8Array) {
  return decodeInPieces(bytes, []);
}

function everyByte(length: number): number[] {
  return Array.from({ length: Math.max(0, length - 1) }, (_, i) => i + 1);
}

const cutsOf = (length: number) =>
  fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, length - 1) }), { maxLength: 12 }).map((cuts) => cuts.sort((a, b) => a - b));

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** The expected.json view of a frame. */
function summary(frame: Frame): Record<string, string | number> {
  const p = frame.packet as Packet & Partial<Record<'identity' | 'X' | 'Y' | 'validator', Uint8Array>>;
  const out: Record<string, string | number> = {
    uid: frame.uid.toString(16).padStart(4, '0'),
    type: packetType(p.name).toString(16).padStart(2, '0'),
    name: p.name,
  };
  if (p.identity) out.identity = new TextDecoder().decode(p.identity);
  if (p.X) out.x_len = p.X.length;
  if (p.Y) out.y_len = p.Y.length;
  if (p.validator) out.validator_len = p.validator.length;
  return out;
}

describe('captured bob streams (bob-handshake/)', () => {
  for (const name of streams) {
    const bytes = vectorBytes(`bob-handshake/${name}`);
    const want = expected[name].map((e) => sortKeys(e));

    it(`${name}: decodes to expected.json in one piece and byte by byte`, () => {
      for (const cuts of [[], everyByte(bytes.length)]) {
        const { frames, error } = decodeInPieces(bytes, cuts);
        expect(error).toBeNull();
        expect(frames.map((f) => sortKeys(summary(f)))).toEqual(want);
      }
    });

    it(`${name}: decodes identically under random splits`, () => {
      const whole = decodeAll(bytes);
      fc.assert(
        fc.property(cutsOf(bytes.length), (cuts) => {
          expect(decodeInPieces(bytes, cuts)).toEqual(whole);
        }),
      );
    });

    it(`${name}: re-encodes to the same bytes`, () => {
      const { frames } = decodeAll(bytes);
      expect(Buffer.from(concat(frames.map(encodeFrame)))).toEqual(Buffer.from(bytes));
    });
  }

  it('stream2: the second X contains a 00 byte and still decodes (the NUL is searched after the prefix)', () => {
    const { frames } = decodeAll(vectorBytes('bob-handshake/stream2.bin'));
    const second = frames[1].packet;
    expect(second.name === 'X_and_client_identity' && second.X.includes(0)).toBe(true);
  });
});

function sortKeys(o: Record<string, string | number>) {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

const bytesOf = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const uid = fc.integer({ min: 0, max: 0xffff });
const identity = fc
  .uint8Array({ minLength: 5, maxLength: MAX_IDENTITY_BYTES })
  .map((b) => b.map((x) => (x === 0 ? 1 : x)));

const packetArb: fc.Arbitrary<Packet> = fc.oneof(
  bytesOf(34).map((pub) => ({ name: 'Hello_as_a_server', public: pub }) as const),
  identity.map((id) => ({ name: 'Server_identity', identity: id }) as const),
  identity.map((id) => ({ name: 'Client_identity', identity: id }) as const),
  fc.tuple(uid, bytesOf(34), identity).map(([u, pub, id]) => ({ name: 'New_server', uid: u, public: pub, identity: id }) as const),
  bytesOf(64).map((v) => ({ name: 'Client_validator', validator: v }) as const),
  fc.tuple(bytesOf(32), bytesOf(64)).map(([Y, v]) => ({ name: 'Y_and_server_validator', Y, validator: v }) as const),
  fc.tuple(bytesOf(32), identity).map(([X, id]) => ({ name: 'X_and_client_identity', X, identity: id }) as const),
  uid.map((u) => ({ name: 'Closed', uid: u }) as const),
  fc.tuple(fc.constantFrom('C', 'S', 'H', 'N' as const), uid).map(([letter, u]) => ({ name: 'Relay_failure', letter, uid: u }) as const),
  fc.constantFrom(0, 1, 2, 3, 4 as const).map((code) => ({ name: 'Spoke_failure', code }) as const),
  fc.constantFrom(
    ...(['Hello_as_a_client', 'Agreement', 'Accepted', 'Refused', 'Done', 'Timeout'] as const).map((name) => ({ name }) as Packet),
  ),
);
const frameArb = fc.record({ uid, packet: packetArb });

describe('encode / decode round trip', () => {
  it('any valid frames survive encoding and decoding under any split', () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 6 }).chain((frames) => {
          const bytes = concat(frames.map(encodeFrame));
          return fc.tuple(fc.constant(frames), fc.constant(bytes), cutsOf(bytes.length));
        }),
        ([frames, bytes, cuts]) => {
          const decoded = decodeInPieces(bytes, cuts);
          expect(decoded.error).toBeNull();
          expect(decoded.frames).toEqual(frames);
        },
      ),
    );
  });

  it('writes lowercase hex (%04x%02x)', () => {
    const bytes = encodeFrame({ uid: 0xabcd, packet: { name: 'Closed', uid: 0xef01 } });
    expect(new TextDecoder().decode(bytes)).toBe('abcd09ef01');
  });

  it('covers all sixteen types', () => {
    expect(PACKET_NAMES).toHaveLength(16);
    PACKET_NAMES.forEach((name, type) => expect(packetType(name)).toBe(type));
  });
});

function decodeText(text: string | Uint8Array) {
  return decodeAll(typeof text === 'string' ? ascii(text) : text);
}

describe('parser rules and malformed input', () => {
  it('accepts hex digits of either case', () => {
    const { frames, error } = decodeText('00AB09Cd0F');
    expect(error).toBeNull();
    expect(frames).toEqual([{ uid: 0xab, packet: { name: 'Closed', uid: 0xcd0f } }]);
  });

  it('rejects a non-hex header as Invalid_header', () => {
    expect(decodeText('00g301').error?.kind).toBe('Invalid_header');
    expect(decodeText('0000 1').error?.kind).toBe('Invalid_header');
    expect(decodeText('GET / HTTP/1.1\r\n').error?.kind).toBe('Invalid_header');
  });

  it('rejects type >= 0x10 as Invalid_packet', () => {
    expect(decodeText('000010').error?.kind).toBe('Invalid_packet');
    expect(decodeText('0000ff').error?.kind).toBe('Invalid_packet');
  });

  it('Relay_failure: C, S, H and N (which bob cannot parse) are accepted, uppercase only', () => {
    for (const letter of ['C', 'S', 'H', 'N'] as const) {
      expect(decodeText(`00000c${letter}00a1`).frames).toEqual([{ uid: 0, packet: { name: 'Relay_failure', letter, uid: 0xa1 } }]);
    }
    expect(decodeText('00000cc00a1').error?.kind).toBe('Invalid_packet');
    expect(decodeText('00000cX00a1').error?.kind).toBe('Invalid_packet');
    expect(decodeText('00000cCzzzz').error?.kind).toBe('Invalid_packet');
  });

  it('Spoke_failure: codes 0..4 only', () => {
    expect(decodeText(concat([ascii('00120d'), Uint8Array.of(4)])).frames[0].packet).toEqual({ name: 'Spoke_failure', code: 4 });
    expect(decodeText(concat([ascii('00120d'), Uint8Array.of(5)])).error?.kind).toBe('Invalid_packet');
    expect(decodeText(concat([ascii('00120d'), Uint8Array.of(0xff)])).error?.kind).toBe('Invalid_packet');
  });

  it('New_server with a non-hex uid is Invalid_new_server; Closed with one is Invalid_uid', () => {
    const pub = new Uint8Array(34);
    expect(decodeText(concat([ascii('000004zz01'), pub, ascii('1.2.3.4:5'), Uint8Array.of(0)])).error?.kind).toBe(
      'Invalid_new_server',
    );
    expect(decodeText('000009xyz1').error?.kind).toBe('Invalid_uid');
  });

  it('caps identities: 64 bytes pass, 65 are Identity_too_long, whole or split', () => {
    const ok = concat([ascii('000003'), new Uint8Array(64).fill(0x41), Uint8Array.of(0)]);
    expect(decodeText(ok).error).toBeNull();
    const long = concat([ascii('000003'), new Uint8Array(65).fill(0x41), Uint8Array.of(0)]);
    expect(decodeText(long).error?.kind).toBe('Identity_too_long');
    expect(decodeInPieces(long, everyByte(long.length)).error?.kind).toBe('Identity_too_long');
  });

  it('never buffers more than one packet, even on a stream of bytes with no NUL', () => {
    const decoder = new HandshakeDecoder();
    decoder.push(ascii('000007'));
    let error = null;
    for (let i = 0; i < 10_000 && error === null; i++) {
      error = decoder.push(Uint8Array.of(0x41)).error;
      expect(decoder.bufferedBytes).toBeLessThanOrEqual(maxPacketBytes());
    }
    expect(error?.kind).toBe('Identity_too_long');
  });

  it('decodes a short identity as soon as its NUL arrives (no bob-style stall)', () => {
    const decoder = new HandshakeDecoder();
    expect(decoder.push(concat([ascii('000003foo'), Uint8Array.of(0)])).frames).toHaveLength(1);
  });

  it('EOF inside a packet is End_of_input; at a boundary it is clean', () => {
    expect(decodeText('0000').error?.kind).toBe('End_of_input');
    expect(decodeText('000005abc').error?.kind).toBe('End_of_input');
    expect(decodeText('000001').error).toBeNull();
  });

  it('keeps packets decoded before an error, then stays failed', () => {
    const decoder = new HandshakeDecoder();
    const first = decoder.push(ascii('000001000010'));
    expect(first.frames).toEqual([{ uid: 0, packet: { name: 'Hello_as_a_client' } }]);
    expect(first.error?.kind).toBe('Invalid_packet');
    expect(decoder.push(ascii('000001'))).toEqual({ frames: [], error: first.error });
  });

  it('garbage never throws, and an error is the same whatever the split', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }).chain((bytes) => fc.tuple(fc.constant(bytes), cutsOf(bytes.length))),
        ([bytes, cuts]) => {
          expect(decodeInPieces(bytes, cuts)).toEqual(decodeAll(bytes));
        },
      ),
    );
  });
});

describe('encoder refusals', () => {
  const id = (text: string) => ascii(text);
  it('refuses identities a bob peer could stall on or cannot frame', () => {
    expect(() => encodeFrame({ uid: 0, packet: { name: 'Client_identity', identity: id('foo') } })).toThrow(RangeError);
    expect(() => encodeFrame({ uid: 0, packet: { name: 'Client_identity', identity: id('1.2.3\0.4:5') } })).toThrow(/NUL/);
    expect(() => encodeFrame({ uid: 0, packet: { name: 'Client_identity', identity: new Uint8Array(65).fill(65) } })).toThrow(
      RangeError,
    );
  });
  it('refuses wrong field lengths and out-of-range values', () => {
    expect(frameProblem({ uid: 0x10000, packet: { name: 'Done' } })).toMatch(/uid/);
    expect(frameProblem({ uid: 1, packet: { name: 'Client_validator', validator: new Uint8Array(63) } })).toMatch(/validator/);
    expect(frameProblem({ uid: 1, packet: { name: 'Hello_as_a_server', public: new Uint8Array(33) } })).toMatch(/public/);
    expect(frameProblem({ uid: 1, packet: { name: 'Spoke_failure', code: 7 as 0 } })).toMatch(/code/);
    expect(frameProblem({ uid: 1, packet: { name: 'Relay_failure', letter: 'c' as 'C', uid: 0 } })).toMatch(/letter/);
  });
});
