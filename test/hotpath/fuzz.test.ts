// 100,000 random and mutated frames through both engines: no throw, no trap,
// the same verdict from both, and an accepted frame's record always points
// inside the frame. Deterministic (seeded), and a few seconds long.

import { beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../host/hotpath.js';
import type { HotPath } from '../../stack/hotpath/engine.js';
import { D, ENCODE_WORDS, Kind, Reason, REASON_NAMES } from '../../stack/hotpath/layout.js';
import {
  arpFrame,
  fixChecksums,
  icmpFrame,
  ipv4Frame,
  tcpFrame,
  tcpOptionBytes,
  udpFrame,
} from '../helpers/frames.js';

const FRAMES = 100_000;
const MEMORY = 1 << 20;

/** xorshift32: fast, seeded, good enough to pick bytes and mutations. */
function rng(seed: number): () => number {
  let x = seed | 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** A pool of valid frames of every kind to mutate. */
function templates(next: () => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => next() & 0xff);
  for (let i = 0; i < 40; i++) {
    const payload = bytes(next() % 3 === 0 ? next() % 1460 : next() % 64);
    out.push(
      tcpFrame({
        flags: [0x02, 0x12, 0x10, 0x18, 0x11, 0x04][i % 6],
        seq: next(),
        ack: next(),
        tcpOptions: tcpOptionBytes({
          mss: i % 2 ? 1460 : undefined,
          wscale: i % 3 ? 7 : undefined,
          sackOk: i % 4 === 0,
          ts: i % 5 ? [next(), next()] : undefined,
          sack: i % 4 === 1 ? Array.from({ length: 1 + (i % 3) }, (): [number, number] => [next(), next()]) : undefined,
        }),
        ipOptions: i % 9 === 0 ? Uint8Array.of(1, 7, 7, 4, 0, 0, 0, 0) : undefined,
        payload,
      }),
      udpFrame({ payload, noChecksum: i % 5 === 0, padTo: i % 2 ? 60 : 0 }),
      icmpFrame({ type: i % 2 ? 8 : 0, rest: next(), payload }),
      ipv4Frame(i % 2 ? 47 : 6, payload.subarray(0, 64), { frag: i % 3 === 0 ? 0x2000 : 5 }),
      arpFrame({ op: 1 + (i % 2) }),
    );
  }
  return out;
}

describe('fuzz: both engines decode anything without throwing or trapping', () => {
  let wasm: HotPath;
  let ts: HotPath;
  beforeAll(async () => {
    wasm = await createEngine('wasm', MEMORY);
    ts = await createEngine('ts', MEMORY);
  });

  /** Copy, then damage: overwrite bytes, flip bits, cut or extend, maybe fix checksums. */
  function mutate(next: () => number, template: Uint8Array): Uint8Array {
    let f: Uint8Array = template.slice();
    const edits = 1 + (next() % 4);
    for (let e = 0; e < edits && f.length > 0; e++) {
      // Mostly inside the first 80 bytes, where every header field lives.
      const at = next() % Math.min(f.length, next() % 4 === 0 ? f.length : 80);
      switch (next() % 5) {
        case 0:
          f[at] = next() & 0xff;
          break;
        case 1:
          f[at] ^= 1 << (next() % 8);
          break;
        case 2:
          f = f.subarray(0, at);
          break;
        case 3: {
          const longer = new Uint8Array(f.length + (next() % 32));
          longer.set(f);
          f = longer;
          break;
        }
        default:
          f[at] = [0, 1, 2, 3, 4, 5, 8, 0x45, 0xff][next() % 9];
      }
    }
    return next() % 2 === 0 ? fixChecksums(f) : f;
  }

  /** A disagreement, to replay by hand: which frame, its bytes, each engine's verdict. */
  function disagreement(index: number, frame: Uint8Array, rw: Reason, rt: Reason): string {
    const verdict = (r: Reason) => `${r} (${REASON_NAMES[r] ?? 'not a reason'})`;
    return [
      `frame ${index}, ${frame.length} bytes: ${Buffer.from(frame).toString('hex')}`,
      `wasm: ${verdict(rw)}`,
      `ts:   ${verdict(rt)}`,
    ].join('\n');
  }

  function checkRecord(hot: HotPath, off: number, len: number, r: Reason): void {
    const d = hot.decoded;
    expect(r).toBeGreaterThanOrEqual(0);
    expect(r).toBeLessThan(Reason.ReasonCount);
    expect(d[D.REASON]).toBe(r);
    if (r !== Reason.Ok) {
      expect(d[D.KIND]).toBe(Kind.None);
      return;
    }
    expect(d[D.KIND]).not.toBe(Kind.None);
    if (d[D.KIND] === Kind.Arp) return;
    // Accepted IPv4: every located region lies inside the frame.
    const end = off + len;
    expect(d[D.IP_OFF] + d[D.IP_HLEN]).toBeLessThanOrEqual(end);
    expect(d[D.L4_OFF] + d[D.L4_LEN]).toBeLessThanOrEqual(end);
    expect(d[D.PAYLOAD_OFF]).toBeGreaterThanOrEqual(d[D.L4_OFF]);
    expect(d[D.PAYLOAD_OFF] + d[D.PAYLOAD_LEN]).toBeLessThanOrEqual(d[D.L4_OFF] + d[D.L4_LEN]);
  }

  it(`decodes ${FRAMES} random and mutated frames, with the same verdict from both engines`, () => {
    const next = rng(0x5eed1);
    const pool = templates(next);
    const seen = new Map<string, number>();
    let disagreements = 0;
    let firstDisagreement = '';
    for (let i = 0; i < FRAMES; i++) {
      const frame =
        i % 10 === 0
          ? Uint8Array.from({ length: next() % 100 }, () => next() & 0xff)
          : mutate(next, pool[next() % pool.length]);
      const off = wasm.chunksBase + (i % 400) * 2048 + (i % 7);
      wasm.bytes.set(frame, off);
      ts.bytes.set(frame, off);
      const rw = wasm.decode(off, frame.length);
      const rt = ts.decode(off, frame.length);
      if (rw !== rt && disagreements++ === 0) firstDisagreement = disagreement(i, frame, rw, rt);
      // Checking every record would dominate the runtime; every 16th is plenty.
      if (i % 16 === 0) {
        checkRecord(wasm, off, frame.length, rw);
        checkRecord(ts, off, frame.length, rt);
      }
      const name = REASON_NAMES[rw];
      seen.set(name, (seen.get(name) ?? 0) + 1);
    }
    expect(disagreements, `${disagreements} frames decoded differently; the first:\n${firstDisagreement}`).toBe(0);
    // The mutations reach deep: nearly every reason shows up, acceptance included.
    expect(seen.get('ok') ?? 0).toBeGreaterThan(FRAMES / 50);
    expect(seen.size).toBeGreaterThanOrEqual(Reason.ReasonCount - 1);
  });

  it('decodes frames that run to the very end of memory, or past it', () => {
    const next = rng(42);
    const size = wasm.bytes.length;
    for (let i = 0; i < 20_000; i++) {
      const off = size - (next() % 200);
      const len = next() % 220;
      const rw = wasm.decode(off, len);
      expect(ts.decode(off, len)).toBe(rw);
      if (off + len > size) expect(rw).toBe(Reason.FrameTooShort);
    }
  });

  it('encodes random requests without throwing, trapping or disagreeing', () => {
    const next = rng(7);
    for (let i = 0; i < 20_000; i++) {
      for (let w = 0; w < ENCODE_WORDS; w++) {
        const v = next() % 4 === 0 ? next() : next() % 300;
        wasm.request[w] = v;
        ts.request[w] = v;
      }
      const slot = wasm.chunksBase + (i % 400) * 2048 + (i % 5);
      const len = next() % 3 === 0 ? next() : next() % 1600;
      expect(ts.tcpHeaderLen()).toBe(wasm.tcpHeaderLen());
      const pairs: Array<[number, number]> = [
        [wasm.encodeTcp(slot, len), ts.encodeTcp(slot, len)],
        [wasm.encodeUdp(slot, len), ts.encodeUdp(slot, len)],
        [wasm.encodeIcmp(slot, len), ts.encodeIcmp(slot, len)],
        [wasm.encodeIpv4(slot, len), ts.encodeIpv4(slot, len)],
        [wasm.encodeArp(slot), ts.encodeArp(slot)],
      ];
      for (const [a, b] of pairs) expect(b).toBe(a);
    }
  });
});
