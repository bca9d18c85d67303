// Segmentation offload on the TAP device (host/devices/gso.ts): which of the
// guest's frames may join a super-segment, and the joined frame the kernel
// gets. Checked by segmenting the joined frame again as the kernel does
// (tcp_gso_segment: the first segment's headers for each piece, sequence
// numbers advanced, PSH on the last only, checksums completed) and comparing
// with the frames that went in, byte for byte, checksums included.

import { describe, expect, it } from 'vitest';
import { completeChecksum, joinablePayload, SegmentJoiner, splitSegments, vnetKind, VNET_HDR_LEN } from '../../host/devices/gso.js';

const MSS = 1448;

function sum16(b: Uint8Array, from: number, to: number, start = 0): number {
  let s = start;
  for (let i = from; i < to; i += 2) s += (b[i]! << 8) | (i + 1 < to ? b[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

interface Seg {
  seq: number;
  payload: Uint8Array;
  flags?: number;
  ack?: number;
  window?: number;
  id?: number;
  options?: number[];
}

/** A TCP/IPv4 frame with correct checksums, as the stack makes them. */
function frame(s: Seg): Uint8Array {
  const opts = s.options ?? [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]; // NOP NOP timestamps
  const doff = 20 + opts.length;
  const total = 20 + doff + s.payload.length;
  const f = new Uint8Array(14 + total);
  f.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
  const ip = 14;
  f.set([0x45, 0, total >> 8, total & 0xff, (s.id ?? 7) >> 8, (s.id ?? 7) & 0xff, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1], ip);
  const ipSum = ~sum16(f, ip, ip + 20) & 0xffff;
  f[ip + 10] = ipSum >> 8;
  f[ip + 11] = ipSum & 0xff;
  const t = 34;
  const seq = s.seq >>> 0;
  const ack = (s.ack ?? 5000) >>> 0;
  f.set([0x1f, 0x90, 0xc3, 0x50, seq >>> 24, (seq >>> 16) & 0xff, (seq >>> 8) & 0xff, seq & 0xff, ack >>> 24, (ack >>> 16) & 0xff, (ack >>> 8) & 0xff, ack & 0xff], t);
  f[t + 12] = (doff / 4) << 4;
  f[t + 13] = s.flags ?? 0x10;
  f[t + 14] = (s.window ?? 512) >> 8;
  f[t + 15] = (s.window ?? 512) & 0xff;
  f.set(opts, t + 20);
  f.set(s.payload, t + doff);
  tcpChecksum(f);
  return f;
}

function tcpChecksum(f: Uint8Array): void {
  const t = 34;
  f[t + 16] = 0;
  f[t + 17] = 0;
  const tcpLen = f.length - t;
  const pseudo = sum16(f, 26, 34) + 6 + tcpLen;
  const sum = ~sum16(f, t, f.length, pseudo) & 0xffff;
  f[t + 16] = sum >> 8;
  f[t + 17] = sum & 0xff;
}

/** What the kernel makes of a joined frame: its segments, checksums done. */
function segment(out: Uint8Array, n: number): Uint8Array[] {
  const gsoSize = out[4]! | (out[5]! << 8);
  const hdrLen = out[2]! | (out[3]! << 8);
  const f = out.subarray(VNET_HDR_LEN, n);
  const payload = f.subarray(hdrLen);
  const seq0 = ((f[38]! << 24) | (f[39]! << 16) | (f[40]! << 8) | f[41]!) >>> 0;
  const flags = f[47]!;
  const segs: Uint8Array[] = [];
  for (let off = 0, i = 0; off < payload.length; off += gsoSize, i++) {
    const piece = payload.subarray(off, Math.min(payload.length, off + gsoSize));
    const s = new Uint8Array(hdrLen + piece.length);
    s.set(f.subarray(0, hdrLen));
    s.set(piece, hdrLen);
    const total = s.length - 14;
    s[16] = total >> 8;
    s[17] = total & 0xff;
    s[24] = 0;
    s[25] = 0;
    const ipSum = ~sum16(s, 14, 34) & 0xffff;
    s[24] = ipSum >> 8;
    s[25] = ipSum & 0xff;
    const seq = (seq0 + off) >>> 0;
    s.set([seq >>> 24, (seq >>> 16) & 0xff, (seq >>> 8) & 0xff, seq & 0xff], 38);
    s[47] = off + gsoSize >= payload.length ? flags : flags & ~0x08;
    tcpChecksum(s);
    segs.push(s);
  }
  return segs;
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** What the writer's joiner makes of `frames` waiting in its ring. */
function join(frames: Uint8Array[]): { out: Uint8Array; n: number; taken: number } {
  const joiner = new SegmentJoiner((i) => frames[i]!, (i) => frames[i]!.length, 1514);
  joiner.build(frames.length);
  return { out: joiner.out, n: joiner.writeBytes, taken: joiner.frames };
}

describe('TCP segmentation offload', () => {
  it('joins a run of full segments and a short last one; the kernel\'s segments are the frames that went in', () => {
    const frames = [0, 1, 2, 3].map((i) => frame({ seq: 0xfffff000 + i * MSS, payload: bytes(i === 3 ? 100 : MSS, i), flags: i === 3 ? 0x18 : 0x10, id: 7 }));
    const { out, n, taken } = join(frames);
    expect(taken).toBe(4);
    expect([...out.subarray(0, VNET_HDR_LEN)]).toEqual([1, 1, 66, 0, MSS & 0xff, MSS >> 8, 34, 0, 16, 0]);
    expect(segment(out, n)).toEqual(frames);
  });

  it('stops a run at what the kernel would not replicate: another flow, a gap, another ack or window, other options, PSH, a short middle', () => {
    const base = (i: number, extra: Partial<Seg> = {}) => frame({ seq: 1000 + i * MSS, payload: bytes(MSS, i), ...extra });
    const cases: [string, Uint8Array][] = [
      ['gap', frame({ seq: 1000 + 2 * MSS + 1, payload: bytes(MSS, 1) })],
      ['ack', base(1, { ack: 5001 })],
      ['window', base(1, { window: 511 })],
      ['options', base(1, { options: [1, 1, 8, 10, 0, 0, 0, 2, 0, 0, 0, 2] })],
      ['FIN', base(1, { flags: 0x11 })],
      ['SYN', base(1, { flags: 0x12 })],
    ];
    for (const [why, second] of cases) expect(join([base(0), second]).taken, why).toBe(1);
    expect(join([base(0, { flags: 0x18 }), base(1)]).taken, 'PSH ends a run').toBe(1);
    const short = frame({ seq: 1000 + MSS, payload: bytes(100, 1) });
    expect(join([base(0), short, frame({ seq: 1000 + MSS + 100, payload: bytes(MSS, 2) })]).taken, 'a short segment ends a run').toBe(2);
    const otherFlow = base(1);
    otherFlow[35] ^= 1; // another source port
    expect(join([base(0), otherFlow]).taken, 'flow').toBe(1);
  });

  it('leaves alone what is not plain TCP over IPv4: UDP, IP options, a fragment, a frame with no payload', () => {
    const f = frame({ seq: 1, payload: bytes(10, 1) });
    const udp = f.slice();
    udp[23] = 17;
    const options = f.slice();
    options[14] = 0x46;
    const fragment = f.slice();
    fragment[20] = 0x20; // more fragments
    const pureAck = frame({ seq: 1, payload: new Uint8Array(0) });
    for (const g of [udp, options, fragment, pureAck]) expect(joinablePayload(g, g.length)).toBe(-1);
    expect(joinablePayload(f, f.length)).toBe(10);
    expect(joinablePayload(f, f.length + 4), 'padded').toBe(-1);
  });

  it('keeps a joined datagram within IPv4\'s 65,535 bytes: 45 segments of 1448 fit, the 46th does not', () => {
    const frames = Array.from({ length: 50 }, (_, i) => frame({ seq: i * MSS, payload: bytes(MSS, i) }));
    const { out, n, taken } = join(frames);
    expect(taken).toBe(45);
    expect(n - VNET_HDR_LEN - 14).toBeLessThanOrEqual(65535);
    expect(segment(out, n)).toEqual(frames.slice(0, 45));
  });

  it('sends a lone frame behind a header of zeros', () => {
    const f = frame({ seq: 1, payload: bytes(10, 1) });
    const { out, n, taken } = join([f]);
    expect(taken).toBe(1);
    expect([...out.subarray(0, VNET_HDR_LEN)]).toEqual(new Array(VNET_HDR_LEN).fill(0));
    expect(out.subarray(VNET_HDR_LEN, n)).toEqual(f);
  });
});

describe('receive offload: the kernel\'s super-segments taken apart', () => {
  /** Split a joined frame with splitSegments into fresh buffers. */
  function split(out: Uint8Array, n: number, room = Infinity): { frames: Uint8Array[]; count: number } {
    const gso = out[4]! | (out[5]! << 8);
    const bufs: Uint8Array[] = [];
    const made: Uint8Array[] = [];
    const count = splitSegments(out.subarray(VNET_HDR_LEN), n - VNET_HDR_LEN, gso, (i) => (i < room ? (bufs[i] = new Uint8Array(2048)) : null), (i, len) => made.push(bufs[i]!.slice(0, len)));
    return { frames: made, count };
  }

  it('gives back the very frames a super-segment was made of: lengths, ids, sequence numbers, flags, both checksums', () => {
    const make = (lastFlags: number) =>
      [0, 1, 2, 3, 4].map((i) => frame({ seq: 0xffffe000 + i * MSS, payload: bytes(i === 4 ? 333 : MSS, i), flags: i === 4 ? lastFlags : 0x10, id: (0xfffe + i) & 0xffff }));
    const expected = make(0x19); // FIN, PSH, ACK on the last
    const { out, n, taken } = join(make(0x18));
    expect(taken).toBe(5);
    // What the kernel would send: the first segment's id, the flags of the whole (FIN too).
    const fromKernel = out.slice(0, n);
    fromKernel[VNET_HDR_LEN + 47] = 0x19;
    expect(vnetKind(fromKernel)).toBe('tcp4');
    const { frames: made, count } = split(fromKernel, n);
    expect(count).toBe(5);
    expect(made).toEqual(expected);
  });

  it('makes what there is room for and says how many there were (the rest is dropped, counted)', () => {
    const frames = [0, 1, 2].map((i) => frame({ seq: i * MSS, payload: bytes(MSS, i), id: 7 + i }));
    const { out, n } = join(frames);
    const { frames: made, count } = split(out, n, 2);
    expect(count).toBe(3);
    expect(made.length).toBe(2);
  });

  it('refuses what is not TCP over IPv4', () => {
    const f = frame({ seq: 1, payload: bytes(3000, 1) });
    f[23] = 17;
    expect(splitSegments(f, f.length, MSS, () => new Uint8Array(2048), () => {})).toBe(-1);
  });

  it('completes a partial checksum: the pseudo-header\'s sum in the field, the rest summed', () => {
    const f = frame({ seq: 9, payload: bytes(500, 3) });
    const good = f.slice();
    // What the kernel sends with CHECKSUM_PARTIAL: the folded pseudo-header sum in the field.
    const pseudo = sum16(f, 26, 34) + 6 + (f.length - 34);
    const folded = pseudo > 0xffff ? (pseudo & 0xffff) + (pseudo >>> 16) : pseudo;
    f[50] = folded >> 8;
    f[51] = folded & 0xff;
    const vnet = Uint8Array.of(1, 0, 0, 0, 0, 0, 34, 0, 16, 0);
    expect(vnetKind(vnet)).toBe('partial');
    expect(completeChecksum(f, f.length, vnet)).toBe(true);
    expect(f).toEqual(good);
    expect(completeChecksum(f, 40, vnet), 'the field beyond the frame').toBe(false);
  });
});
