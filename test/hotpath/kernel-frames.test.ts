// Frames built by the Linux kernel (test/fixtures/kernel, see its README),
// decoded by both hot-path engines and compared field by field with Wireshark's
// reading of the same bytes (expected.json). Hand-built frames can share our
// own misreadings of the RFCs; these cannot.
//
// Also: a corrupted checksum region is rejected with the right reason, and every
// truncation of every frame is rejected, with the reason the layout promises,
// without a throw.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../host/hotpath.js';
import type { EngineName, HotPath } from '../../stack/hotpath/engine.js';
import {
  ARP_FRAME_LEN,
  CHUNK_SIZE,
  D,
  ETH_HLEN,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_HLEN,
  Kind,
  REASON_NAMES,
  Reason,
} from '../../stack/hotpath/layout.js';
import { readPcap, readPcapHeader, type PcapFrame } from '../helpers/pcap-read.js';

// ---- The fixture ---------------------------------------------------------------

interface Expected {
  number: number;
  len: number;
  summary: string;
  eth: { dst: string; src: string; type: number };
  arp?: { op: number; sender_mac: string; sender_ip: string; target_mac: string; target_ip: string };
  ip?: {
    hdr_len: number;
    tos: number;
    len: number;
    id: number;
    flags: number;
    frag_offset: number;
    frag_field: number;
    ttl: number;
    proto: number;
    src: string;
    dst: string;
    checksum_status: string;
    options: number[];
  };
  fragment?: boolean;
  icmp?: { type: number; code: number; ident: number | null; seq: number | null; unused: number | null; checksum_status: string };
  udp?: { srcport: number; dstport: number; length: number; checksum_status: string };
  tcp?: {
    srcport: number;
    dstport: number;
    seq: number;
    ack: number;
    hdr_len: number;
    flags: number;
    window: number;
    urgent_pointer: number;
    len: number;
    checksum_status: string;
    options: { mss?: number; wscale?: number; sack_perm?: boolean; tsval?: number; tsecr?: number; sack?: [number, number][] };
  };
  payload_len?: number;
}

const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'kernel');
const pcapBytes = new Uint8Array(readFileSync(join(FIXTURE_DIR, 'frames.pcap')));
const expectedDoc = JSON.parse(readFileSync(join(FIXTURE_DIR, 'expected.json'), 'utf8')) as {
  sha256: string;
  frames: Expected[];
};
const frames = readPcap(pcapBytes);
const expected = expectedDoc.frames;

/** One test case per frame, named the way Wireshark summarises it. */
const cases = frames.map((f, i) => ({ name: `#${i + 1} ${expected[i]?.summary ?? '?'}`, frame: f.data, want: expected[i]! }));
const ipCases = cases.filter((c) => c.want.ip !== undefined);

function ipNumber(dotted: string): number {
  const p = dotted.split('.').map(Number);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

function macBytes(mac: string): number[] {
  return mac.split(':').map((h) => parseInt(h, 16));
}

function reasonName(r: number): string {
  return `${r} (${REASON_NAMES[r] ?? '?'})`;
}

// ---- The reader and the fixture agree ------------------------------------------

describe('kernel fixture', () => {
  it('is the capture expected.json was generated from', () => {
    expect(createHash('sha256').update(pcapBytes).digest('hex')).toBe(expectedDoc.sha256);
    expect(readPcapHeader(pcapBytes).linkType).toBe(1); // Ethernet
    expect(frames.length).toBe(expected.length);
    frames.forEach((f, i) => {
      expect(f.data.length, `frame #${i + 1}`).toBe(expected[i]!.len);
      expect(f.origLen, `frame #${i + 1}`).toBe(f.data.length); // never cut by the snap length
    });
  });

  it('covers what it claims to', () => {
    const has = (p: (e: Expected) => boolean) => expect(expected.some(p)).toBe(true);
    has((e) => e.arp?.op === 1);
    has((e) => e.arp?.op === 2);
    has((e) => e.icmp?.type === 8 && !e.fragment);
    has((e) => e.icmp?.type === 0 && !e.fragment);
    has((e) => e.icmp?.type === 3 && e.icmp.code === 3);
    has((e) => (e.ip?.options ?? []).includes(7)); // Record Route
    has((e) => e.ip?.tos !== 0);
    has((e) => e.fragment === true && e.ip!.frag_offset === 0); // first fragments
    has((e) => e.fragment === true && e.ip!.frag_offset !== 0); // later fragments
    has((e) => e.ip?.proto === IPPROTO_UDP && e.fragment === true);
    has((e) => e.udp !== undefined && !e.fragment && e.payload_len! > 0);
    has((e) => e.tcp?.flags === 0x02 && e.tcp.options.wscale !== undefined && e.tcp.options.sack_perm === true);
    has((e) => e.tcp?.flags === 0x12);
    has((e) => (e.tcp?.options.sack?.length ?? 0) > 0);
    has((e) => ((e.tcp?.flags ?? 0) & 0x01) !== 0); // FIN
    has((e) => ((e.tcp?.flags ?? 0) & 0x04) !== 0); // RST
    has((e) => (e.tcp?.urgent_pointer ?? 0) > 0);
    has((e) => (e.tcp?.len ?? 0) > 0);
  });

  it('reads the same frames from big-endian and nanosecond pcaps', () => {
    for (const [littleEndian, nanoseconds] of [
      [false, false],
      [true, true],
      [false, true],
    ] as const) {
      const again = readPcap(writePcap(frames, littleEndian, nanoseconds));
      const h = readPcapHeader(writePcap([], littleEndian, nanoseconds));
      expect([h.littleEndian, h.nanoseconds]).toEqual([littleEndian, nanoseconds]);
      expect(again.length).toBe(frames.length);
      again.forEach((f, i) => {
        expect(Buffer.compare(f.data, frames[i]!.data), `frame #${i + 1}`).toBe(0);
        expect([f.sec, f.nsec]).toEqual([frames[i]!.sec, frames[i]!.nsec]);
      });
    }
  });

  it('rejects files that are not classic pcap or are cut short', () => {
    expect(() => readPcap(new Uint8Array(24))).toThrow(/magic/);
    expect(() => readPcap(pcapBytes.subarray(0, 10))).toThrow();
    expect(() => readPcap(pcapBytes.subarray(0, pcapBytes.length - 1))).toThrow(/past the end/);
  });
});

/** A pcap of the given frames in the given byte order and time resolution. */
function writePcap(list: PcapFrame[], littleEndian: boolean, nanoseconds: boolean): Uint8Array {
  const size = 24 + list.reduce((n, f) => n + 16 + f.data.length, 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, nanoseconds ? 0xa1b23c4d : 0xa1b2c3d4, littleEndian);
  v.setUint16(4, 2, littleEndian);
  v.setUint16(6, 4, littleEndian);
  v.setUint32(16, 65535, littleEndian);
  v.setUint32(20, 1, littleEndian);
  let pos = 24;
  for (const f of list) {
    v.setUint32(pos, f.sec, littleEndian);
    v.setUint32(pos + 4, nanoseconds ? f.nsec : f.nsec / 1000, littleEndian);
    v.setUint32(pos + 8, f.data.length, littleEndian);
    v.setUint32(pos + 12, f.origLen, littleEndian);
    out.set(f.data, pos + 16);
    pos += 16 + f.data.length;
  }
  return out;
}

// ---- Both engines against Wireshark ----------------------------------------------

/** What Wireshark's fields say the decoded record must hold, for a frame at `at`. */
function wantedRecord(w: Expected, at: number): Record<string, number> {
  const r: Record<string, number> = {
    REASON: Reason.Ok,
    FRAME_OFF: at,
    FRAME_LEN: w.len,
    ETHERTYPE: w.eth.type,
  };
  if (w.arp) {
    r.KIND = Kind.Arp;
    r.ARP_OP = w.arp.op;
    r.ARP_SPA = ipNumber(w.arp.sender_ip);
    r.ARP_TPA = ipNumber(w.arp.target_ip);
    return r;
  }
  const ip = w.ip!;
  const l4 = at + ETH_HLEN + ip.hdr_len;
  Object.assign(r, {
    IP_OFF: at + ETH_HLEN,
    IP_HLEN: ip.hdr_len,
    IP_TOS: ip.tos,
    IP_TOTAL_LEN: ip.len,
    IP_ID: ip.id,
    IP_FRAG: ip.frag_field,
    IP_TTL: ip.ttl,
    IP_PROTO: ip.proto,
    IP_SRC: ipNumber(ip.src),
    IP_DST: ipNumber(ip.dst),
    L4_OFF: l4,
    L4_LEN: ip.len - ip.hdr_len,
  });
  if (w.fragment) {
    // Transport headers wait for reassembly; Wireshark's reading of a first
    // fragment's transport header is not part of the contract.
    r.KIND = Kind.Ipv4Fragment;
    return r;
  }
  if (w.icmp) {
    const echo = w.icmp.type === 0 || w.icmp.type === 8;
    Object.assign(r, {
      KIND: Kind.Icmp,
      ICMP_TYPE: w.icmp.type,
      ICMP_CODE: w.icmp.code,
      ICMP_REST: echo ? ((w.icmp.ident! << 16) | w.icmp.seq!) >>> 0 : w.icmp.unused!,
      PAYLOAD_OFF: l4 + 8,
      PAYLOAD_LEN: w.payload_len!,
    });
  } else if (w.udp) {
    Object.assign(r, {
      KIND: Kind.Udp,
      SPORT: w.udp.srcport,
      DPORT: w.udp.dstport,
      PAYLOAD_OFF: l4 + 8,
      PAYLOAD_LEN: w.payload_len!,
    });
  } else if (w.tcp) {
    const t = w.tcp;
    const sack = t.options.sack ?? [];
    Object.assign(r, {
      KIND: Kind.Tcp,
      SPORT: t.srcport,
      DPORT: t.dstport,
      TCP_SEQ: t.seq,
      TCP_ACK: t.ack,
      TCP_HLEN: t.hdr_len,
      TCP_FLAGS: t.flags,
      TCP_WINDOW: t.window,
      TCP_URG: t.urgent_pointer,
      OPT_MSS: t.options.mss ?? 0,
      OPT_WSCALE: t.options.wscale ?? 0xff,
      OPT_SACK_OK: t.options.sack_perm ? 1 : 0,
      OPT_TS: t.options.tsval !== undefined ? 1 : 0,
      OPT_SACK_COUNT: sack.length,
      PAYLOAD_OFF: l4 + t.hdr_len,
      PAYLOAD_LEN: w.payload_len!,
    });
    if (t.options.tsval !== undefined) {
      r.OPT_TSVAL = t.options.tsval;
      r.OPT_TSECR = t.options.tsecr!;
    }
    sack.forEach(([left, right], i) => {
      r[`OPT_SACK+${2 * i}`] = left;
      r[`OPT_SACK+${2 * i + 1}`] = right;
    });
  } else {
    r.KIND = Kind.Ipv4Other;
  }
  return r;
}

/** Word index of each name used above (`D` is a const enum: no runtime names). */
const WORD: Record<string, number> = {
  REASON: D.REASON, KIND: D.KIND, FRAME_OFF: D.FRAME_OFF, FRAME_LEN: D.FRAME_LEN, ETHERTYPE: D.ETHERTYPE,
  ARP_OP: D.ARP_OP, ARP_SPA: D.ARP_SPA, ARP_TPA: D.ARP_TPA,
  IP_OFF: D.IP_OFF, IP_HLEN: D.IP_HLEN, IP_TOS: D.IP_TOS, IP_TOTAL_LEN: D.IP_TOTAL_LEN, IP_ID: D.IP_ID,
  IP_FRAG: D.IP_FRAG, IP_TTL: D.IP_TTL, IP_PROTO: D.IP_PROTO, IP_SRC: D.IP_SRC, IP_DST: D.IP_DST,
  L4_OFF: D.L4_OFF, L4_LEN: D.L4_LEN,
  ICMP_TYPE: D.ICMP_TYPE, ICMP_CODE: D.ICMP_CODE, ICMP_REST: D.ICMP_REST,
  SPORT: D.SPORT, DPORT: D.DPORT,
  TCP_SEQ: D.TCP_SEQ, TCP_ACK: D.TCP_ACK, TCP_HLEN: D.TCP_HLEN, TCP_FLAGS: D.TCP_FLAGS,
  TCP_WINDOW: D.TCP_WINDOW, TCP_URG: D.TCP_URG,
  OPT_MSS: D.OPT_MSS, OPT_WSCALE: D.OPT_WSCALE, OPT_SACK_OK: D.OPT_SACK_OK, OPT_TS: D.OPT_TS,
  OPT_TSVAL: D.OPT_TSVAL, OPT_TSECR: D.OPT_TSECR, OPT_SACK_COUNT: D.OPT_SACK_COUNT,
  PAYLOAD_OFF: D.PAYLOAD_OFF, PAYLOAD_LEN: D.PAYLOAD_LEN,
};
for (let i = 0; i < 8; i++) WORD[`OPT_SACK+${i}`] = D.OPT_SACK + i;

/** The same names read from the engine's record. */
function gotRecord(hp: HotPath, names: string[]): Record<string, number> {
  const r: Record<string, number> = {};
  for (const name of names) r[name] = hp.decoded[WORD[name]!]!;
  return r;
}

/** Copy a frame into engine memory at `at` and decode it, with the record first
 *  filled with a marker so that nothing left from an earlier decode can pass. */
function decodeAt(hp: HotPath, frame: Uint8Array, at: number, len = frame.length): number {
  hp.bytes.set(frame, at);
  hp.decoded.fill(0xa5a5a5a5);
  return hp.decode(at, len);
}

for (const engine of ['wasm', 'ts'] as EngineName[]) {
  describe(`kernel frames on the ${engine} engine`, () => {
    let hp: HotPath;
    let slot: number; // a chunk: where the device puts received frames
    let odd: number; // an odd address in a later chunk: no alignment assumed

    beforeAll(async () => {
      hp = await createEngine(engine);
      expect(hp.name).toBe(engine);
      slot = hp.chunksBase;
      odd = hp.chunksBase + 2 * CHUNK_SIZE + 1;
      expect(odd + CHUNK_SIZE).toBeLessThanOrEqual(hp.bytes.length);
      expect(slot).toBeGreaterThanOrEqual(65536);
    });

    it.each(cases)('$name decodes as Wireshark reads it', ({ frame, want }) => {
      const reason = decodeAt(hp, frame, slot);
      expect(reasonName(reason)).toBe(reasonName(Reason.Ok));
      const wanted = wantedRecord(want, slot);
      expect(gotRecord(hp, Object.keys(wanted))).toEqual(wanted);
      if (want.arp) {
        // The record points at the MACs inside the frame.
        const d = hp.decoded;
        expect([...hp.bytes.subarray(d[D.ARP_SHA_OFF]!, d[D.ARP_SHA_OFF]! + 6)]).toEqual(macBytes(want.arp.sender_mac));
        expect([...hp.bytes.subarray(d[D.ARP_THA_OFF]!, d[D.ARP_THA_OFF]! + 6)]).toEqual(macBytes(want.arp.target_mac));
      }
    });

    it.each(cases)('$name decodes the same at an odd address', ({ frame, want }) => {
      expect(reasonName(decodeAt(hp, frame, odd))).toBe(reasonName(Reason.Ok));
      const wanted = wantedRecord(want, odd);
      expect(gotRecord(hp, Object.keys(wanted))).toEqual(wanted);
    });

    // A NIC pads short frames to 60 bytes; the kernel's own frames here are
    // unpadded (a veth does not pad). Padding must not count as payload.
    it.each(cases.filter((c) => c.frame.length < 60))('$name padded to 60 bytes decodes the same', ({ frame, want }) => {
      const padded = new Uint8Array(60);
      padded.set(frame);
      expect(reasonName(decodeAt(hp, padded, slot))).toBe(reasonName(Reason.Ok));
      const wanted = { ...wantedRecord(want, slot), FRAME_LEN: 60 };
      expect(gotRecord(hp, Object.keys(wanted))).toEqual(wanted);
    });

    it.each(ipCases)('$name with a corrupted checksum region is rejected', ({ frame, want }) => {
      const ip = want.ip!;
      const l4 = ETH_HLEN + ip.hdr_len;
      // [byte offset in the frame, reason expected]. Flipping the lowest bit of
      // one byte changes the ones'-complement sum by 1 or 256: always detected.
      const corruptions: [number, Reason, string][] = [[ETH_HLEN + 10, Reason.IpBadChecksum, 'IPv4 checksum field']];
      // The header's last byte: an empty Record Route slot or end-of-list padding,
      // so the options stay well formed and only the checksum can catch it.
      if (ip.hdr_len > IPV4_HLEN) corruptions.push([l4 - 1, Reason.IpBadChecksum, 'last IPv4 option byte']);
      if (!want.fragment) {
        const last = frame.length - 1;
        const payload = (want.payload_len ?? 0) > 0;
        if (ip.proto === IPPROTO_ICMP) {
          corruptions.push([l4 + 2, Reason.IcmpBadChecksum, 'ICMP checksum field']);
          if (payload) corruptions.push([last, Reason.IcmpBadChecksum, 'last ICMP payload byte']);
        } else if (ip.proto === IPPROTO_UDP) {
          corruptions.push([l4 + 6, Reason.UdpBadChecksum, 'UDP checksum field']);
          if (payload) corruptions.push([last, Reason.UdpBadChecksum, 'last UDP payload byte']);
        } else if (ip.proto === IPPROTO_TCP) {
          corruptions.push([l4 + 16, Reason.TcpBadChecksum, 'TCP checksum field']);
          corruptions.push([l4 + 14, Reason.TcpBadChecksum, 'TCP window']);
          if (payload) corruptions.push([last, Reason.TcpBadChecksum, 'last TCP payload byte']);
        }
      }
      for (const [at, reason, what] of corruptions) {
        const bad = frame.slice();
        bad[at] ^= 0x01;
        if (ip.proto === IPPROTO_UDP && at === l4 + 6) {
          // A UDP checksum of zero means "none": make sure the flip did not make one.
          expect(bad[l4 + 6] | bad[l4 + 7]).not.toBe(0);
        }
        expect(`${what}: ${reasonName(decodeAt(hp, bad, slot))}`).toBe(`${what}: ${reasonName(reason)}`);
        expect(hp.decoded[D.REASON]).toBe(reason);
      }
    });

    // Every cut of every frame: the bytes beyond the cut stay in memory (they
    // are the real frame), so an engine that reads past `len` would accept.
    it.each(cases)('$name is rejected at every truncation, without a throw', ({ frame, want }) => {
      const ipHeaderEnd = want.ip ? ETH_HLEN + want.ip.hdr_len : 0;
      const wrong: string[] = [];
      for (let len = 0; len < frame.length; len++) {
        let reason: Reason;
        if (len < ETH_HLEN) reason = Reason.FrameTooShort;
        else if (want.arp) reason = Reason.ArpTooShort;
        else if (len < ETH_HLEN + IPV4_HLEN) reason = Reason.IpTooShort;
        else if (len < ipHeaderEnd) reason = Reason.IpBadIhl; // the header runs past the frame
        else reason = Reason.IpBadTotalLength; // the datagram runs past the frame
        const got = decodeAt(hp, frame, slot, len);
        if (got !== reason || hp.decoded[D.REASON] !== reason) {
          wrong.push(`len ${len}: ${reasonName(got)} (record ${hp.decoded[D.REASON]}), want ${reasonName(reason)}`);
        }
      }
      // Report all cuts that went wrong at once, but keep the message readable.
      expect(wrong.slice(0, 8), `${wrong.length} truncations wrong`).toEqual([]);
    });

    it('ARP frames are exactly the size the layout names', () => {
      for (const c of cases.filter((x) => x.want.arp)) expect(c.frame.length).toBe(ARP_FRAME_LEN);
    });
  });
}
