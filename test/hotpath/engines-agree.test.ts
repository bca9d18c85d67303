// The two engines agree call for call: identical return values, identical
// decoded-record words (for the fields the decoded KIND defines) and identical
// encoded bytes, on random valid frames, mutated frames and random bytes.

import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEngine, hotpathWasmPath, loadHotpathModule } from '../../host/hotpath.js';
import type { HotPath } from '../../stack/hotpath/engine.js';
import {
  createTsEngine,
  createWasmEngineSync,
  instantiateWasmEngine,
  MAX_MEMORY_PAGES,
  memoryPages,
} from '../../stack/hotpath/index.js';
import {
  D,
  DECODED_BASE,
  ENCODE_BASE,
  ENCODE_WORDS,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  Kind,
  PAGE_SIZE,
} from '../../stack/hotpath/layout.js';
import {
  arpFrame,
  fixChecksums,
  icmpFrame,
  ipv4Frame,
  tcpFrame,
  tcpOptionBytes,
  tcpSegment,
  udpDatagram,
  udpFrame,
} from '../helpers/frames.js';

const MEMORY = 1 << 20;
let wasm: HotPath;
let ts: HotPath;

beforeAll(async () => {
  wasm = await createEngine('wasm', MEMORY);
  ts = await createEngine('ts', MEMORY);
});

// ---- Which record words a result defines ------------------------------------------

const IP_WORDS = [
  D.ETHERTYPE, D.IP_OFF, D.IP_HLEN, D.IP_TOS, D.IP_TOTAL_LEN, D.IP_ID, D.IP_FRAG, D.IP_TTL,
  D.IP_PROTO, D.IP_SRC, D.IP_DST, D.L4_OFF, D.L4_LEN,
];
const TCP_WORDS = [
  D.SPORT, D.DPORT, D.TCP_SEQ, D.TCP_ACK, D.TCP_HLEN, D.TCP_FLAGS, D.TCP_WINDOW, D.TCP_URG,
  D.OPT_MSS, D.OPT_WSCALE, D.OPT_SACK_OK, D.OPT_TS, D.OPT_TSVAL, D.OPT_TSECR, D.OPT_SACK_COUNT,
];
const PAYLOAD_WORDS = [D.PAYLOAD_OFF, D.PAYLOAD_LEN];

/** The transport-level words a KIND defines (what decodeTransport fills). */
function transportWords(kind: number, record: Uint32Array): D[] {
  switch (kind) {
    case Kind.Icmp:
      return [D.ICMP_TYPE, D.ICMP_CODE, D.ICMP_REST, ...PAYLOAD_WORDS];
    case Kind.Udp:
      return [D.SPORT, D.DPORT, ...PAYLOAD_WORDS];
    case Kind.Tcp: {
      const sack = Array.from({ length: 2 * record[D.OPT_SACK_COUNT] }, (_, i) => D.OPT_SACK + i);
      return [...TCP_WORDS, ...sack, ...PAYLOAD_WORDS];
    }
    case Kind.Ipv4Other:
    case Kind.Ipv4Fragment:
      return PAYLOAD_WORDS;
    default:
      return [];
  }
}

/** Every word decode defines for the KIND it wrote (None: just the verdict and the frame). */
function frameWords(kind: number, record: Uint32Array): D[] {
  const always = [D.REASON, D.KIND, D.FRAME_OFF, D.FRAME_LEN];
  if (kind === Kind.None) return always;
  if (kind === Kind.Arp) {
    return [...always, D.ETHERTYPE, D.ARP_OP, D.ARP_SHA_OFF, D.ARP_SPA, D.ARP_THA_OFF, D.ARP_TPA];
  }
  return [...always, ...IP_WORDS, ...transportWords(kind, record)];
}

function pick(record: Uint32Array, words: D[]): Record<number, number> {
  return Object.fromEntries(words.map((w) => [w, record[w]]));
}

// ---- Frame arbitraries --------------------------------------------------------------

const u16 = fc.nat({ max: 0xffff });
const u32 = fc.nat({ max: 0xffffffff });
const addr = fc.oneof(fc.constantFrom('10.0.0.1', '10.0.0.2', '192.168.1.1'), u32);
const payload = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 100, maxLength: 1460 }));
const frag = fc.oneof(fc.constantFrom(0, 0x4000), u16);
const ipOptions = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }) },
);
const ipFields = { src: addr, dst: addr, ttl: fc.nat(255), tos: fc.nat(255), id: u16, frag, ipOptions };

const tcpOptions = fc.oneof(
  fc.record(
    {
      mss: u16,
      wscale: fc.nat(255),
      sackOk: fc.boolean(),
      ts: fc.tuple(u32, u32),
      sack: fc.array(fc.tuple(u32, u32), { minLength: 1, maxLength: 3 }),
    },
    { requiredKeys: [] },
  ).map((o) => tcpOptionBytes(o).subarray(0, 40)),
  fc.uint8Array({ maxLength: 40 }),
);

const tcp = fc
  .record({
    ...ipFields,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: fc.oneof(fc.constantFrom(0x02, 0x12, 0x10, 0x18, 0x11, 0x04), fc.nat(255)),
    window: u16,
    urg: u16,
    tcpOptions,
    payload,
  })
  .map((s) => tcpFrame(s));
const udp = fc
  .record({ ...ipFields, sport: u16, dport: u16, payload, noChecksum: fc.boolean() })
  .map((s) => udpFrame(s));
const icmp = fc
  .record({ ...ipFields, type: fc.nat(255), code: fc.nat(255), rest: u32, payload })
  .map((s) => icmpFrame(s));
const arp = fc
  .record({ op: fc.oneof(fc.constantFrom(1, 2), u16), spa: addr, tpa: addr, padTo: fc.constantFrom(0, 60) })
  .map((s) => arpFrame(s));
const other = fc.record({ ...ipFields, proto: fc.nat(255), payload }).map((s) => ipv4Frame(s.proto, s.payload, s));

const validFrame = fc.oneof(tcp, udp, icmp, arp, other);

/** A valid frame with a few bytes overwritten, maybe truncated, maybe with its
 *  checksums recomputed so the damage reaches the checks behind them. */
const mutatedFrame = fc
  .record({
    frame: validFrame,
    edits: fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }),
    cut: fc.option(fc.nat(), { nil: undefined }),
    fix: fc.boolean(),
  })
  .map(({ frame, edits, cut, fix }) => {
    const f = frame.slice(0, cut === undefined ? frame.length : cut % (frame.length + 1));
    // Bias edits towards the headers, where the decisions are made.
    for (const [at, value] of edits) if (f.length > 0) f[at % Math.min(f.length, 80)] = value;
    return fix ? fixChecksums(f) : f;
  });

const anyFrame = fc.oneof(validFrame, mutatedFrame, fc.uint8Array({ maxLength: 120 }));

// ---- Properties ---------------------------------------------------------------------

function slotOf(hot: HotPath, index: number): number {
  return hot.chunksBase + (index % 64) * 2048;
}

describe('engine construction', () => {
  it('sizes both memories in whole pages and lays them out alike', () => {
    expect([wasm.bytes.length, wasm.chunkCount, wasm.chunksBase]).toEqual([ts.bytes.length, ts.chunkCount, ts.chunksBase]);
    expect(memoryPages(1)).toBe(1);
    expect(memoryPages(PAGE_SIZE)).toBe(1);
    expect(memoryPages(PAGE_SIZE + 1)).toBe(2);
    expect(memoryPages(40e6)).toBe(611);
    for (const bad of [0, -1, NaN, Infinity, (MAX_MEMORY_PAGES + 1) * PAGE_SIZE]) {
      expect(() => memoryPages(bad)).toThrow(RangeError);
    }
  });

  it('puts the records at their layout offsets, over the whole memory', () => {
    for (const hot of [wasm, ts]) {
      expect(hot.buffer.byteLength).toBe(MEMORY);
      expect(hot.bytes.buffer).toBe(hot.buffer);
      expect(hot.decoded.byteOffset).toBe(DECODED_BASE);
      expect(hot.request.byteOffset).toBe(ENCODE_BASE);
      expect(hot.chunkCount).toBeGreaterThan(400);
    }
  });

  it('instantiates the wasm engine from bytes, from a compiled module, synchronously', async () => {
    const fromBytes = await instantiateWasmEngine(readFileSync(hotpathWasmPath()), 3 * PAGE_SIZE);
    const fromModule = createWasmEngineSync(await loadHotpathModule(), 3 * PAGE_SIZE);
    for (const hot of [fromBytes, fromModule]) {
      expect(hot.name).toBe('wasm');
      expect(hot.buffer.byteLength).toBe(3 * PAGE_SIZE);
      expect(hot.chunkCount).toBe(createTsEngine(3 * PAGE_SIZE).chunkCount);
    }
  });

  it('builds the ts engine over a SharedArrayBuffer on request', () => {
    const shared = createTsEngine(PAGE_SIZE * 2, true);
    expect(shared.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(shared.name).toBe('ts');
    shared.bytes.set([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7], shared.chunksBase);
    expect(shared.checksum(shared.chunksBase, 8, 0)).toBe(0x220d);
  });
});

describe('wasm and ts engines agree', () => {

  it('decode: same reason and same record words on valid, mutated and random frames', () => {
    fc.assert(
      fc.property(anyFrame, fc.nat(), fc.integer({ min: -2, max: 2 }), (frame, index, lenDelta) => {
        const off = slotOf(wasm, index);
        wasm.bytes.set(frame, off);
        ts.bytes.set(frame, off);
        const len = Math.max(0, frame.length + lenDelta); // also claim a byte more or less
        const r = wasm.decode(off, len);
        expect(ts.decode(off, len)).toBe(r);
        const words = frameWords(wasm.decoded[D.KIND], wasm.decoded);
        expect(pick(ts.decoded, words)).toEqual(pick(wasm.decoded, words));
      }),
      { numRuns: 3000 },
    );
  });

  it('decode: the valid frames are accepted by both', () => {
    fc.assert(
      fc.property(fc.oneof(tcp, udp, icmp), (frame) => {
        const off = wasm.chunksBase;
        wasm.bytes.set(frame, off);
        ts.bytes.set(frame, off);
        const r = wasm.decode(off, frame.length);
        expect(ts.decode(off, frame.length)).toBe(r);
        const words = frameWords(wasm.decoded[D.KIND], wasm.decoded);
        expect(pick(ts.decoded, words)).toEqual(pick(wasm.decoded, words));
      }),
      { numRuns: 500 },
    );
  });

  it('decode: same answer for any offset and length, in memory or not', () => {
    const size = wasm.bytes.length;
    const position = fc.oneof(
      fc.integer({ min: 0, max: size }),
      fc.integer({ min: size - 100, max: size + 100 }),
      fc.integer({ min: -0x80000000, max: 0xffffffff }),
      fc.constantFrom(-1, 0, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 32 + 5, 1.5, NaN),
    );
    fc.assert(
      fc.property(position, position, (off, len) => {
        const r = wasm.decode(off, len);
        expect(ts.decode(off, len)).toBe(r);
        const words = frameWords(wasm.decoded[D.KIND], wasm.decoded);
        expect(pick(ts.decoded, words)).toEqual(pick(wasm.decoded, words));
      }),
      { numRuns: 1000 },
    );
  });

  it('decodeTransport: same reason and words on random and damaged transport headers', () => {
    const body = fc.oneof(
      fc.record({ sport: u16, dport: u16, payload }).map((s) => [IPPROTO_TCP, tcpSegment(s)] as const),
      fc.record({ sport: u16, dport: u16, payload }).map((s) => [IPPROTO_UDP, udpDatagram(s)] as const),
      fc.tuple(fc.constantFrom(IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, 0, 255, 262), fc.uint8Array({ maxLength: 90 })),
    );
    fc.assert(
      fc.property(body, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 2 }), ([proto, bytes], edits) => {
        const b = bytes.slice();
        for (const [at, v] of edits) if (b.length) b[at % b.length] = v;
        const off = wasm.chunksBase + 3;
        wasm.bytes.set(b, off);
        ts.bytes.set(b, off);
        const src = 0x0a000001;
        const dst = 0x0a000002;
        const r = wasm.decodeTransport(proto, off, b.length, src, dst);
        expect(ts.decodeTransport(proto, off, b.length, src, dst)).toBe(r);
        const words = [D.REASON, D.KIND, ...transportWords(wasm.decoded[D.KIND], wasm.decoded)];
        expect(pick(ts.decoded, words)).toEqual(pick(wasm.decoded, words));
      }),
      { numRuns: 1000 },
    );
  });

  it('encode: same length and same bytes for any request, slot and payload length', () => {
    // Request words are mostly plausible values, sometimes any u32.
    const word = fc.oneof(fc.nat(4), fc.nat(0xff), u16, u32);
    const call = fc.constantFrom('tcp', 'udp', 'icmp', 'ipv4', 'arp');
    const payloadLen = fc.oneof(fc.nat(1600), fc.constantFrom(-1, 65535, 65535 - 28, 65535 - 20, 2 ** 32));
    fc.assert(
      fc.property(
        fc.array(word, { minLength: ENCODE_WORDS, maxLength: ENCODE_WORDS }),
        call,
        payloadLen,
        fc.nat(),
        fc.nat(255),
        (request, kind, len, index, fill) => {
          const slot = slotOf(wasm, index) + (index % 3);
          const span = 70_000;
          for (const hot of [wasm, ts]) {
            hot.request.set(request);
            hot.bytes.fill(fill, slot, slot + span);
          }
          const run = (hot: HotPath): number => {
            switch (kind) {
              case 'tcp':
                return hot.encodeTcp(slot, len);
              case 'udp':
                return hot.encodeUdp(slot, len);
              case 'icmp':
                return hot.encodeIcmp(slot, len);
              case 'ipv4':
                return hot.encodeIpv4(slot, len);
              default:
                return hot.encodeArp(slot);
            }
          };
          expect(ts.tcpHeaderLen()).toBe(wasm.tcpHeaderLen());
          const n = run(wasm);
          expect(run(ts)).toBe(n);
          // Compare the frame and what follows it: neither engine writes past its frame.
          const end = slot + Math.min(span, n + 64);
          expect(Buffer.from(ts.bytes.subarray(slot, end)).equals(Buffer.from(wasm.bytes.subarray(slot, end)))).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('checksum functions: same results for any arguments, odd and out-of-range ones included', () => {
    const data = new Uint8Array(8192).map((_, i) => (i * 131 + 7) & 0xff);
    wasm.bytes.set(data, wasm.chunksBase);
    ts.bytes.set(data, ts.chunksBase);
    const size = wasm.bytes.length;
    const n = fc.oneof(
      fc.integer({ min: wasm.chunksBase, max: wasm.chunksBase + 8192 }),
      fc.nat(size + 10),
      fc.constantFrom(-1, -0x80000000, 0xffffffff, 2 ** 32 + 3, 1.5, NaN, Infinity),
    );
    fc.assert(
      fc.property(n, fc.oneof(fc.nat(9000), n), fc.oneof(u16, u32, n), (off, len, initial) => {
        expect(ts.sum16(off, len, initial)).toBe(wasm.sum16(off, len, initial));
        expect(ts.checksum(off, len, initial)).toBe(wasm.checksum(off, len, initial));
        expect(ts.checksumScalar(off, len, initial)).toBe(wasm.checksumScalar(off, len, initial));
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(n, n, n, n, (a, b, c, e) => {
        expect(ts.pseudoHeaderSumV4(a, b, c, e)).toBe(wasm.pseudoHeaderSumV4(a, b, c, e));
        expect(ts.checksumUpdate16(a, b, c)).toBe(wasm.checksumUpdate16(a, b, c));
      }),
      { numRuns: 1000 },
    );
  });
});
