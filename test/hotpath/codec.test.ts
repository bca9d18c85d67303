// Header decode and encode on both engines: hand-built frames field by field,
// one test per rejection reason, and encode -> decode round trips.

import { beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../host/hotpath.js';
import type { HotPath } from '../../stack/hotpath/engine.js';
import {
  D,
  E,
  ENCODE_WORDS,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  Kind,
  REASON_NAMES,
  Reason,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
} from '../../stack/hotpath/layout.js';
import {
  arpFrame,
  concat,
  decodedFields,
  fixChecksums,
  icmpFrame,
  icmpMessage,
  ipNumber,
  ipv4Frame,
  macWords,
  MAC_A,
  MAC_B,
  readBytes,
  refChecksum,
  refPseudoSum,
  tcpFrame,
  tcpOptionBytes,
  tcpSegment,
  udpDatagram,
  udpFrame,
  type DecodedField,
  type TcpSpec,
} from '../helpers/frames.js';

const MEMORY = 1 << 20;
const engines = {} as Record<'wasm' | 'ts', HotPath>;

beforeAll(async () => {
  engines.wasm = await createEngine('wasm', MEMORY);
  engines.ts = await createEngine('ts', MEMORY);
});

function bytesOf(n: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
}

/** Frame bytes as a mutable copy with a DataView, for hand-made damage. */
function damage(frame: Uint8Array, edit: (f: Uint8Array, v: DataView) => void): Uint8Array {
  const f = frame.slice();
  edit(f, new DataView(f.buffer));
  return f;
}

describe.each(['wasm', 'ts'] as const)('decode (%s engine)', (name) => {
  let hot: HotPath;
  let slot: number;
  beforeAll(() => {
    hot = engines[name];
    slot = hot.chunksBase + 4 * 2048;
  });

  function decode(frame: Uint8Array): Reason {
    hot.bytes.set(frame, slot);
    return hot.decode(slot, frame.length);
  }
  const d = (word: D) => hot.decoded[word];
  const words = (...names: DecodedField[]) => decodedFields(hot, ...names);

  function expectIpv4(frame: Uint8Array, proto: number, ipHlen = 20): void {
    const total = new DataView(frame.buffer).getUint16(16);
    expect(words('ETHERTYPE', 'IP_OFF', 'IP_HLEN', 'IP_TOTAL_LEN', 'IP_PROTO', 'L4_OFF', 'L4_LEN')).toEqual({
      ETHERTYPE: ETHERTYPE_IPV4,
      IP_OFF: slot + 14,
      IP_HLEN: ipHlen,
      IP_TOTAL_LEN: total,
      IP_PROTO: proto,
      L4_OFF: slot + 14 + ipHlen,
      L4_LEN: total - ipHlen,
    });
  }

  describe('accepts', () => {
    it('a TCP/IPv4 frame with every option, field by field', () => {
      const payload = bytesOf(5);
      const frame = tcpFrame({
        src: '192.168.1.10',
        dst: '192.168.1.20',
        tos: 0x10,
        id: 0xbeef,
        frag: 0x4000,
        ttl: 63,
        sport: 443,
        dport: 50000,
        seq: 0xfffffff0,
        ack: 0x80000001,
        flags: TCP_SYN | TCP_ACK,
        window: 29200,
        urg: 7,
        tcpOptions: tcpOptionBytes({ mss: 1460, sackOk: true, ts: [0x01020304, 0xa0b0c0d0], wscale: 7 }),
        payload,
      });
      expect(decode(frame)).toBe(Reason.Ok);
      expect(words('REASON', 'KIND', 'FRAME_OFF', 'FRAME_LEN', 'ETHERTYPE')).toEqual({
        REASON: Reason.Ok,
        KIND: Kind.Tcp,
        FRAME_OFF: slot,
        FRAME_LEN: frame.length,
        ETHERTYPE: ETHERTYPE_IPV4,
      });
      expect(words('IP_OFF', 'IP_HLEN', 'IP_TOS', 'IP_TOTAL_LEN', 'IP_ID', 'IP_FRAG', 'IP_TTL', 'IP_PROTO')).toEqual({
        IP_OFF: slot + 14,
        IP_HLEN: 20,
        IP_TOS: 0x10,
        IP_TOTAL_LEN: 20 + 40 + 5,
        IP_ID: 0xbeef,
        IP_FRAG: 0x4000,
        IP_TTL: 63,
        IP_PROTO: IPPROTO_TCP,
      });
      expect(words('IP_SRC', 'IP_DST', 'L4_OFF', 'L4_LEN')).toEqual({
        IP_SRC: 0xc0a8010a,
        IP_DST: 0xc0a80114,
        L4_OFF: slot + 34,
        L4_LEN: 45,
      });
      expect(words('SPORT', 'DPORT', 'TCP_SEQ', 'TCP_ACK', 'TCP_HLEN', 'TCP_FLAGS', 'TCP_WINDOW', 'TCP_URG')).toEqual({
        SPORT: 443,
        DPORT: 50000,
        TCP_SEQ: 0xfffffff0,
        TCP_ACK: 0x80000001,
        TCP_HLEN: 40,
        TCP_FLAGS: TCP_SYN | TCP_ACK,
        TCP_WINDOW: 29200,
        TCP_URG: 7,
      });
      expect(
        words('OPT_MSS', 'OPT_WSCALE', 'OPT_SACK_OK', 'OPT_TS', 'OPT_TSVAL', 'OPT_TSECR', 'OPT_SACK_COUNT'),
      ).toEqual({
        OPT_MSS: 1460,
        OPT_WSCALE: 7,
        OPT_SACK_OK: 1,
        OPT_TS: 1,
        OPT_TSVAL: 0x01020304,
        OPT_TSECR: 0xa0b0c0d0,
        OPT_SACK_COUNT: 0,
      });
      expect(words('PAYLOAD_OFF', 'PAYLOAD_LEN')).toEqual({ PAYLOAD_OFF: slot + 74, PAYLOAD_LEN: 5 });
    });

    it('TCP without options: every option word reads as absent', () => {
      // Fill the option words with junk first: decode must reset them.
      hot.decoded.fill(0xdeadbeef);
      expect(decode(tcpFrame({ flags: TCP_ACK }))).toBe(Reason.Ok);
      expect(
        words('TCP_HLEN', 'OPT_MSS', 'OPT_WSCALE', 'OPT_SACK_OK', 'OPT_TS', 'OPT_TSVAL', 'OPT_TSECR', 'OPT_SACK_COUNT'),
      ).toEqual({
        TCP_HLEN: 20,
        OPT_MSS: 0,
        OPT_WSCALE: 0xff,
        OPT_SACK_OK: 0,
        OPT_TS: 0,
        OPT_TSVAL: 0,
        OPT_TSECR: 0,
        OPT_SACK_COUNT: 0,
      });
      expect(words('PAYLOAD_OFF', 'PAYLOAD_LEN')).toEqual({ PAYLOAD_OFF: slot + 54, PAYLOAD_LEN: 0 });
    });

    it('TCP SACK option with 1 to 4 blocks', () => {
      for (let n = 1; n <= 4; n++) {
        const blocks = Array.from({ length: n }, (_, i): [number, number] => [0xfffff000 + i * 0x100, 0x10 + i]);
        expect(decode(tcpFrame({ tcpOptions: concat(Uint8Array.of(1, 1), tcpOptionBytes({ sack: blocks })) }))).toBe(
          Reason.Ok,
        );
        expect(d(D.OPT_SACK_COUNT)).toBe(n);
        expect(Array.from(hot.decoded.subarray(D.OPT_SACK, D.OPT_SACK + 2 * n))).toEqual(blocks.flat());
      }
    });

    it('TCP options: NOP padding, unknown kinds skipped by length, nothing read after EOL', () => {
      const options = Uint8Array.of(
        1, // NOP
        30, 6, 0xaa, 0xbb, 0xcc, 0xdd, // unknown kind 30 (MPTCP), length 6: skipped
        2, 4, 0x05, 0xb4, // MSS 1460
        0, // EOL: what follows is padding, even if it looks like a bad option
        3, 9, 9, 9,
      );
      expect(decode(tcpFrame({ flags: TCP_SYN, tcpOptions: options }))).toBe(Reason.Ok);
      expect(words('OPT_MSS', 'OPT_WSCALE', 'TCP_HLEN')).toEqual({ OPT_MSS: 1460, OPT_WSCALE: 0xff, TCP_HLEN: 36 });
    });

    it('TCP: the last copy of a repeated option wins', () => {
      const options = concat(tcpOptionBytes({ mss: 1000 }), tcpOptionBytes({ mss: 536 }));
      expect(decode(tcpFrame({ flags: TCP_SYN, tcpOptions: options }))).toBe(Reason.Ok);
      expect(d(D.OPT_MSS)).toBe(536);
    });

    it('a UDP/IPv4 frame, field by field', () => {
      const frame = udpFrame({ src: '10.1.2.3', dst: '10.3.2.1', sport: 53, dport: 33333, payload: bytesOf(13) });
      expect(decode(frame)).toBe(Reason.Ok);
      expect(d(D.KIND)).toBe(Kind.Udp);
      expectIpv4(frame, IPPROTO_UDP);
      expect(words('IP_SRC', 'IP_DST', 'SPORT', 'DPORT', 'PAYLOAD_OFF', 'PAYLOAD_LEN')).toEqual({
        IP_SRC: ipNumber('10.1.2.3'),
        IP_DST: ipNumber('10.3.2.1'),
        SPORT: 53,
        DPORT: 33333,
        PAYLOAD_OFF: slot + 42,
        PAYLOAD_LEN: 13,
      });
    });

    it('UDP with a zero checksum field (no checksum), whatever the data', () => {
      const frame = damage(udpFrame({ payload: bytesOf(20), noChecksum: true }), (f) => (f[50] ^= 0xff));
      expect(decode(frame)).toBe(Reason.Ok);
      expect(d(D.PAYLOAD_LEN)).toBe(20);
    });

    it('UDP shorter than its IP payload: the payload ends at the UDP length', () => {
      const udp = concat(udpDatagram({ payload: bytesOf(4) }), bytesOf(6, 9));
      expect(decode(ipv4Frame(IPPROTO_UDP, udp))).toBe(Reason.Ok);
      expect(words('L4_LEN', 'PAYLOAD_LEN')).toEqual({ L4_LEN: 18, PAYLOAD_LEN: 4 });
    });

    it('an ICMP echo request, field by field', () => {
      const frame = icmpFrame({ type: 8, code: 0, rest: 0x12340007, payload: bytesOf(56) });
      expect(decode(frame)).toBe(Reason.Ok);
      expect(d(D.KIND)).toBe(Kind.Icmp);
      expectIpv4(frame, IPPROTO_ICMP);
      expect(words('ICMP_TYPE', 'ICMP_CODE', 'ICMP_REST', 'PAYLOAD_OFF', 'PAYLOAD_LEN')).toEqual({
        ICMP_TYPE: 8,
        ICMP_CODE: 0,
        ICMP_REST: 0x12340007,
        PAYLOAD_OFF: slot + 42,
        PAYLOAD_LEN: 56,
      });
    });

    it('ARP requests and replies, field by field', () => {
      for (const op of [1, 2]) {
        const frame = arpFrame({ op, sha: MAC_A, spa: '10.0.0.1', tha: MAC_B, tpa: '10.0.0.2' });
        expect(frame.length).toBe(60);
        expect(decode(frame)).toBe(Reason.Ok);
        expect(words('KIND', 'ETHERTYPE', 'ARP_OP', 'ARP_SHA_OFF', 'ARP_SPA', 'ARP_THA_OFF', 'ARP_TPA')).toEqual({
          KIND: Kind.Arp,
          ETHERTYPE: ETHERTYPE_ARP,
          ARP_OP: op,
          ARP_SHA_OFF: slot + 22,
          ARP_SPA: 0x0a000001,
          ARP_THA_OFF: slot + 32,
          ARP_TPA: 0x0a000002,
        });
        expect(Array.from(hot.bytes.subarray(slot + 22, slot + 28))).toEqual([2, 0, 0, 0, 0, 0x0a]);
      }
    });

    it('an unpadded 42-byte ARP frame', () => {
      expect(decode(arpFrame({ padTo: 0 }))).toBe(Reason.Ok);
    });

    it('another IPv4 protocol: the payload is located, nothing else decoded', () => {
      const frame = ipv4Frame(47, bytesOf(30));
      expect(decode(frame)).toBe(Reason.Ok);
      expect(d(D.KIND)).toBe(Kind.Ipv4Other);
      expectIpv4(frame, 47);
      expect(words('PAYLOAD_OFF', 'PAYLOAD_LEN')).toEqual({ PAYLOAD_OFF: slot + 34, PAYLOAD_LEN: 30 });
    });

    it('IPv4 options (NOP, record route, EOL padding) before the transport header', () => {
      const rr = Uint8Array.of(1, 7, 7, 4, 0, 0, 0, 0, 0, 0, 0); // NOP + record route, 1 slot
      const frame = tcpFrame({ ipOptions: rr });
      expect(decode(frame)).toBe(Reason.Ok);
      expect(d(D.KIND)).toBe(Kind.Tcp);
      expectIpv4(frame, IPPROTO_TCP, 32);
      expect(d(D.SPORT)).toBe(40000);
    });

    it('Ethernet padding after a short datagram: lengths come from the IP header', () => {
      const frame = udpFrame({ payload: bytesOf(2), padTo: 60 });
      expect(frame.length).toBe(60);
      expect(decode(frame)).toBe(Reason.Ok);
      expect(words('FRAME_LEN', 'IP_TOTAL_LEN', 'L4_LEN', 'PAYLOAD_LEN')).toEqual({
        FRAME_LEN: 60,
        IP_TOTAL_LEN: 30,
        L4_LEN: 10,
        PAYLOAD_LEN: 2,
      });
    });

    it('IPv4 fragments stop at IPv4 (KIND Ipv4Fragment), the transport is not decoded', () => {
      const segment = tcpSegment({ payload: bytesOf(100) });
      // A first fragment (MF, offset 0) carrying 64 bytes of a TCP segment, whose
      // checksum cannot be verified yet; and a last fragment at offset 64.
      const first = ipv4Frame(IPPROTO_TCP, segment.subarray(0, 64), { frag: 0x2000, id: 77 });
      expect(decode(first)).toBe(Reason.Ok);
      expect(words('KIND', 'IP_ID', 'IP_FRAG', 'L4_OFF', 'L4_LEN', 'PAYLOAD_OFF', 'PAYLOAD_LEN')).toEqual({
        KIND: Kind.Ipv4Fragment,
        IP_ID: 77,
        IP_FRAG: 0x2000,
        L4_OFF: slot + 34,
        L4_LEN: 64,
        PAYLOAD_OFF: slot + 34,
        PAYLOAD_LEN: 64,
      });
      const last = ipv4Frame(IPPROTO_TCP, segment.subarray(64), { frag: 64 / 8, id: 77 });
      expect(decode(last)).toBe(Reason.Ok);
      expect(words('KIND', 'IP_FRAG', 'L4_LEN')).toEqual({ KIND: Kind.Ipv4Fragment, IP_FRAG: 8, L4_LEN: 56 });
    });

    it('reassembled datagrams through decodeTransport', () => {
      const src = ipNumber('10.0.0.1');
      const dst = ipNumber('10.0.0.2');
      const at = slot + 100;
      const cases: Array<[number, Uint8Array, Kind, number]> = [
        [IPPROTO_TCP, tcpSegment({ payload: bytesOf(3000), sport: 1, dport: 2 }), Kind.Tcp, at + 20],
        [IPPROTO_UDP, udpDatagram({ payload: bytesOf(2000), sport: 3, dport: 4 }), Kind.Udp, at + 8],
        [IPPROTO_ICMP, icmpMessage({ payload: bytesOf(1800) }), Kind.Icmp, at + 8],
        [99, bytesOf(1500), Kind.Ipv4Other, at],
      ];
      for (const [proto, body, kind, payloadOff] of cases) {
        hot.bytes.set(body, at);
        expect(hot.decodeTransport(proto, at, body.length, src, dst)).toBe(Reason.Ok);
        expect(words('REASON', 'KIND', 'PAYLOAD_OFF')).toEqual({ REASON: Reason.Ok, KIND: kind, PAYLOAD_OFF: payloadOff });
      }
      expect(d(D.PAYLOAD_LEN)).toBe(1500);
      // The pseudo-header takes part: the wrong source address fails the checksum.
      const tcp = tcpSegment({ payload: bytesOf(10) });
      hot.bytes.set(tcp, at);
      expect(hot.decodeTransport(IPPROTO_TCP, at, tcp.length, src + 1, dst)).toBe(Reason.TcpBadChecksum);
      expect(hot.decodeTransport(IPPROTO_TCP, hot.bytes.length - 10, 20, src, dst)).toBe(Reason.FrameTooShort);
    });
  });

  // One test per reason: what input produces it. Every rejection leaves KIND = None.
  describe('rejects', () => {
    function expectReject(frame: Uint8Array, reason: Reason): void {
      expect(REASON_NAMES[decode(frame)]).toBe(REASON_NAMES[reason]);
      expect(words('REASON', 'KIND')).toEqual({ REASON: reason, KIND: Kind.None });
    }
    const tcpWithRawOptions = (options: number[], spec: TcpSpec = {}) =>
      tcpFrame({ flags: TCP_SYN, ...spec, tcpOptions: Uint8Array.from(options) });

    it('FrameTooShort: fewer than 14 bytes, or a frame not inside memory', () => {
      expectReject(new Uint8Array(13), Reason.FrameTooShort);
      const size = hot.bytes.length;
      for (const [off, len] of [
        [size - 30, 60],
        [size, 14],
        [-1, 60],
        [slot, -1],
        [0xffffffff, 0xffffffff],
      ]) {
        expect(hot.decode(off, len)).toBe(Reason.FrameTooShort);
        expect(words('REASON', 'KIND', 'FRAME_OFF', 'FRAME_LEN')).toEqual({
          REASON: Reason.FrameTooShort,
          KIND: Kind.None,
          FRAME_OFF: off >>> 0,
          FRAME_LEN: len >>> 0,
        });
      }
    });

    it('UnknownEthertype: IPv6, VLAN tags and anything but IPv4 and ARP', () => {
      for (const type of [ETHERTYPE_IPV6, 0x8100, 0x0000, 0x88cc]) {
        expectReject(damage(tcpFrame(), (_, v) => v.setUint16(12, type)), Reason.UnknownEthertype);
        expect(d(D.ETHERTYPE)).toBe(type);
      }
    });

    it('ArpTooShort: fewer than 28 bytes of ARP', () => {
      expectReject(arpFrame({ padTo: 0 }).subarray(0, 41), Reason.ArpTooShort);
    });

    it('ArpUnsupported: not IPv4 over Ethernet', () => {
      expectReject(damage(arpFrame(), (_, v) => v.setUint16(14, 6)), Reason.ArpUnsupported); // IEEE 802
      expectReject(damage(arpFrame(), (_, v) => v.setUint16(16, 0x86dd)), Reason.ArpUnsupported);
      expectReject(damage(arpFrame(), (f) => (f[18] = 8)), Reason.ArpUnsupported);
      expectReject(damage(arpFrame(), (f) => (f[19] = 16)), Reason.ArpUnsupported);
    });

    it('ArpBadOp: operations other than request and reply (RARP ops included)', () => {
      for (const op of [0, 3, 4, 0x0100]) expectReject(arpFrame({ op }), Reason.ArpBadOp);
    });

    it('IpTooShort: fewer than 20 bytes after Ethernet', () => {
      expectReject(tcpFrame().subarray(0, 33), Reason.IpTooShort);
    });

    it('IpBadVersion: an IPv4 ethertype over a version other than 4', () => {
      expectReject(damage(tcpFrame(), (f) => (f[14] = 0x65)), Reason.IpBadVersion);
    });

    it('IpBadIhl: IHL below 5, or a header longer than the frame', () => {
      expectReject(damage(tcpFrame(), (f) => (f[14] = 0x44)), Reason.IpBadIhl);
      expectReject(damage(udpFrame(), (f) => (f[14] = 0x4f)), Reason.IpBadIhl); // 60 > 28 bytes present
    });

    it('IpBadTotalLength: total length below the header or beyond the bytes present', () => {
      expectReject(damage(tcpFrame(), (_, v) => v.setUint16(16, 19)), Reason.IpBadTotalLength);
      const frame = tcpFrame({ payload: bytesOf(10) });
      expectReject(damage(frame, (_, v) => v.setUint16(16, frame.length - 14 + 1)), Reason.IpBadTotalLength);
      expectReject(frame.subarray(0, frame.length - 1), Reason.IpBadTotalLength); // truncated frame
    });

    it('IpBadChecksum: any header bit flipped', () => {
      expectReject(damage(tcpFrame(), (f) => (f[22] ^= 0x01)), Reason.IpBadChecksum); // TTL
      expectReject(damage(tcpFrame(), (f) => (f[24] ^= 0x80)), Reason.IpBadChecksum); // the checksum itself
    });

    it('IpBadOptions: an option length of 0 or 1, or one running past the header', () => {
      expectReject(tcpFrame({ ipOptions: Uint8Array.of(7, 0, 0, 0) }), Reason.IpBadOptions);
      expectReject(tcpFrame({ ipOptions: Uint8Array.of(7, 1, 0, 0) }), Reason.IpBadOptions);
      expectReject(tcpFrame({ ipOptions: Uint8Array.of(1, 7, 8, 4, 0, 0, 0, 0) }), Reason.IpBadOptions);
      expectReject(tcpFrame({ ipOptions: Uint8Array.of(1, 1, 1, 0x94) }), Reason.IpBadOptions); // no length byte
    });

    it('IpBadFragment: DF with MF, a fragment past 65535 bytes, a non-last fragment not a multiple of 8', () => {
      expectReject(ipv4Frame(IPPROTO_UDP, bytesOf(16), { frag: 0x6000 }), Reason.IpBadFragment);
      expectReject(ipv4Frame(IPPROTO_UDP, bytesOf(16), { frag: 0x1fff }), Reason.IpBadFragment); // 65528 + 16
      expectReject(ipv4Frame(IPPROTO_UDP, bytesOf(20), { frag: 0x2000 }), Reason.IpBadFragment);
      // The largest legal last fragment is accepted.
      expect(decode(ipv4Frame(IPPROTO_UDP, bytesOf(3), { frag: 8189 }))).toBe(Reason.Ok); // 65512 + 3 = 65515
    });

    it('IpSourceInvalid: multicast, reserved or broadcast source address', () => {
      for (const src of ['224.0.0.1', '239.255.255.250', '240.0.0.1', '255.255.255.255']) {
        expectReject(udpFrame({ src }), Reason.IpSourceInvalid);
      }
      expect(decode(udpFrame({ src: '223.255.255.255' }))).toBe(Reason.Ok);
      expect(decode(udpFrame({ src: '0.0.0.0', dst: '255.255.255.255' }))).toBe(Reason.Ok); // DHCP discover
    });

    it('IcmpTooShort: fewer than 8 bytes of ICMP', () => {
      expectReject(ipv4Frame(IPPROTO_ICMP, Uint8Array.of(8, 0, 0xf7, 0xff, 0, 0, 0)), Reason.IcmpTooShort);
    });

    it('IcmpBadChecksum: a payload bit flipped', () => {
      expectReject(damage(icmpFrame({ payload: bytesOf(8) }), (f) => (f[45] ^= 4)), Reason.IcmpBadChecksum);
    });

    it('UdpTooShort: fewer than 8 bytes of UDP', () => {
      expectReject(ipv4Frame(IPPROTO_UDP, bytesOf(7)), Reason.UdpTooShort);
    });

    it('UdpBadLength: UDP length below 8 or beyond the IP payload', () => {
      expectReject(fixChecksums(damage(udpFrame(), (_, v) => v.setUint16(38, 7))), Reason.UdpBadLength);
      expectReject(fixChecksums(damage(udpFrame({ payload: bytesOf(4) }), (_, v) => v.setUint16(38, 13))), Reason.UdpBadLength);
    });

    it('UdpBadChecksum: a payload bit flipped, or the wrong pseudo-header', () => {
      expectReject(damage(udpFrame({ payload: bytesOf(9) }), (f) => (f[44] ^= 0x10)), Reason.UdpBadChecksum);
      const wrongDst = udpDatagram({ dst: '10.9.9.9', payload: bytesOf(9) });
      expectReject(ipv4Frame(IPPROTO_UDP, wrongDst, { dst: '10.0.0.2' }), Reason.UdpBadChecksum);
    });

    it('TcpTooShort: fewer than 20 bytes of TCP', () => {
      expectReject(ipv4Frame(IPPROTO_TCP, tcpSegment().subarray(0, 19)), Reason.TcpTooShort);
    });

    it('TcpBadDataOffset: data offset below 5, or a header beyond the segment', () => {
      expectReject(fixChecksums(damage(tcpFrame(), (f) => (f[46] = 0x40))), Reason.TcpBadDataOffset);
      expectReject(fixChecksums(damage(tcpFrame(), (f) => (f[46] = 0x60))), Reason.TcpBadDataOffset); // 24 > 20
    });

    it('TcpBadChecksum: a payload bit flipped, or the wrong pseudo-header', () => {
      expectReject(damage(tcpFrame({ payload: bytesOf(3) }), (f) => (f[55] ^= 1)), Reason.TcpBadChecksum);
      expectReject(ipv4Frame(IPPROTO_TCP, tcpSegment({ src: '10.0.0.9' }), { src: '10.0.0.1' }), Reason.TcpBadChecksum);
      // Checked before flags and options: a corrupt segment names its checksum.
      const bad = tcpWithRawOptions([2, 3, 0, 0], { flags: TCP_SYN | TCP_FIN });
      expectReject(damage(bad, (f) => (f[36] ^= 1)), Reason.TcpBadChecksum);
    });

    it('TcpBadFlags: SYN with FIN, SYN with RST, or no control bit', () => {
      expectReject(tcpFrame({ flags: TCP_SYN | TCP_FIN }), Reason.TcpBadFlags);
      expectReject(tcpFrame({ flags: TCP_SYN | TCP_RST | TCP_ACK }), Reason.TcpBadFlags);
      expectReject(tcpFrame({ flags: 0 }), Reason.TcpBadFlags);
      expectReject(tcpFrame({ flags: 0xc0 }), Reason.TcpBadFlags); // ECE|CWR only
      expect(decode(tcpFrame({ flags: TCP_FIN | TCP_PSH | TCP_ACK }))).toBe(Reason.Ok);
      expect(decode(tcpFrame({ flags: TCP_RST }))).toBe(Reason.Ok);
    });

    it('TcpBadOption: wrong fixed lengths, lengths 0 or 1, lengths running past the header', () => {
      const bad: number[][] = [
        [2, 3, 5, 0], // MSS of length 3
        [2, 5, 5, 0xb4, 0, 0, 0, 0], // MSS of length 5
        [3, 4, 7, 0], // window scale of length 4
        [4, 3, 0, 0], // SACK-permitted of length 3
        [8, 8, 0, 0, 0, 0, 0, 0], // timestamps of length 8
        [5, 2, 0, 0], // SACK with no block
        [5, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // SACK of length 9
        [30, 0, 0, 0], // unknown option of length 0
        [30, 1, 0, 0], // unknown option of length 1
        [1, 1, 30, 8], // unknown option running past the header
        [1, 1, 1, 30], // a kind with no room for its length byte
      ];
      for (const options of bad) expectReject(tcpWithRawOptions(options), Reason.TcpBadOption);
    });
  });
});

// ---------------------------------------------------------------------------

interface RequestSpec {
  dstMac?: string;
  srcMac?: string;
  src?: string;
  dst?: string;
  ttl?: number;
  tos?: number;
  id?: number;
  frag?: number;
  proto?: number;
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  window?: number;
  urg?: number;
  mss?: number;
  wscale?: number;
  sackOk?: boolean;
  ts?: [number, number];
  sack?: Array<[number, number]>;
  icmpType?: number;
  icmpCode?: number;
  icmpRest?: number;
  arpOp?: number;
  sha?: string;
  spa?: string;
  tha?: string;
  tpa?: string;
}

/** Fill the encode request with the same defaults as the frame builders. */
function setRequest(hot: HotPath, s: RequestSpec): void {
  const r = hot.request;
  r.fill(0, 0, ENCODE_WORDS);
  [r[E.DST_MAC_HI], r[E.DST_MAC_LO]] = macWords(s.dstMac ?? MAC_B);
  [r[E.SRC_MAC_HI], r[E.SRC_MAC_LO]] = macWords(s.srcMac ?? MAC_A);
  r[E.IP_SRC] = ipNumber(s.src ?? '10.0.0.1');
  r[E.IP_DST] = ipNumber(s.dst ?? '10.0.0.2');
  r[E.IP_TTL] = s.ttl ?? 64;
  r[E.IP_TOS] = s.tos ?? 0;
  r[E.IP_ID] = s.id ?? 0x1234;
  r[E.IP_FRAG] = s.frag ?? 0x4000;
  r[E.IP_PROTO] = s.proto ?? 0;
  r[E.SPORT] = s.sport ?? 40000;
  r[E.DPORT] = s.dport ?? 9000;
  r[E.TCP_SEQ] = s.seq ?? 1000;
  r[E.TCP_ACK] = s.ack ?? 2000;
  r[E.TCP_FLAGS] = s.flags ?? TCP_ACK;
  r[E.TCP_WINDOW] = s.window ?? 65535;
  r[E.TCP_URG] = s.urg ?? 0;
  r[E.OPT_MSS] = s.mss ?? 0;
  r[E.OPT_WSCALE] = s.wscale ?? 0xff;
  r[E.OPT_SACK_OK] = s.sackOk ? 1 : 0;
  r[E.OPT_TS] = s.ts ? 1 : 0;
  r[E.OPT_TSVAL] = s.ts?.[0] ?? 0;
  r[E.OPT_TSECR] = s.ts?.[1] ?? 0;
  r[E.OPT_SACK_COUNT] = s.sack?.length ?? 0;
  (s.sack ?? []).forEach(([left, right], i) => {
    r[E.OPT_SACK + 2 * i] = left;
    r[E.OPT_SACK + 2 * i + 1] = right;
  });
  r[E.ICMP_TYPE] = s.icmpType ?? 8;
  r[E.ICMP_CODE] = s.icmpCode ?? 0;
  r[E.ICMP_REST] = s.icmpRest ?? 0x00010001;
  r[E.ARP_OP] = s.arpOp ?? 1;
  [r[E.ARP_SHA_HI], r[E.ARP_SHA_LO]] = macWords(s.sha ?? MAC_A);
  r[E.ARP_SPA] = ipNumber(s.spa ?? '10.0.0.1');
  [r[E.ARP_THA_HI], r[E.ARP_THA_LO]] = macWords(s.tha ?? '00:00:00:00:00:00');
  r[E.ARP_TPA] = ipNumber(s.tpa ?? '10.0.0.2');
}

describe.each(['wasm', 'ts'] as const)('encode (%s engine)', (name) => {
  let hot: HotPath;
  let slot: number;
  let other: number;
  beforeAll(() => {
    hot = engines[name];
    slot = hot.chunksBase + 8 * 2048;
    other = hot.chunksBase + 40 * 2048; // a second slot, for decoding copies
  });

  /** Put the payload in place, encode, and return the frame's bytes. */
  function encodeWith(encode: (payloadLen: number) => number, payloadAt: number, payload: Uint8Array): Uint8Array {
    hot.bytes.fill(0xee, slot, slot + 70_000); // stale bytes must not leak into the frame
    hot.bytes.set(payload, payloadAt);
    const len = encode(payload.length);
    expect(len).toBeGreaterThan(0);
    return readBytes(hot, slot, len);
  }

  it('TCP round trips with every combination of options', () => {
    const block = (i: number): [number, number] => [0x10000000 * i + 1, 0x10000000 * i + 0x1000];
    let combos = 0;
    for (const mss of [0, 1460])
      for (const wscale of [0xff, 0, 14])
        for (const sackOk of [false, true])
          for (const ts of [undefined, [0xfedcba98, 0x01234567] as [number, number]])
            for (let blocks = 0; blocks <= 4; blocks++) {
              combos++;
              const sack = Array.from({ length: blocks }, (_, i) => block(i + 1));
              setRequest(hot, { mss, wscale, sackOk, ts, sack, flags: TCP_ACK | TCP_PSH, seq: 0xffffff00 });
              const hlen = hot.tcpHeaderLen();
              const payload = bytesOf(combos * 7, combos);
              const frame = encodeWith((n) => hot.encodeTcp(slot, n), slot + 34 + hlen, payload);
              expect(hlen % 4).toBe(0);
              expect(hlen).toBeLessThanOrEqual(60);
              expect(frame.length).toBe(14 + 20 + hlen + payload.length);
              hot.bytes.set(frame, other);
              expect(REASON_NAMES[hot.decode(other, frame.length)]).toBe('ok');
              const d = hot.decoded;
              // Options that fit are all present; SACK blocks are cut to what fits in 40 bytes.
              const fixed = (mss ? 4 : 0) + (ts ? 12 : sackOk ? 4 : 0) + (wscale !== 0xff ? 4 : 0);
              const sent = Math.min(blocks, (40 - fixed - 4) >> 3);
              expect(hlen).toBe(20 + fixed + (sent ? 4 + 8 * sent : 0));
              expect([d[D.KIND], d[D.TCP_HLEN], d[D.TCP_SEQ], d[D.TCP_FLAGS], d[D.PAYLOAD_LEN]]).toEqual([
                Kind.Tcp,
                hlen,
                0xffffff00,
                TCP_ACK | TCP_PSH,
                payload.length,
              ]);
              expect([d[D.OPT_MSS], d[D.OPT_WSCALE], d[D.OPT_SACK_OK], d[D.OPT_TS]]).toEqual([
                mss,
                wscale,
                sackOk ? 1 : 0,
                ts ? 1 : 0,
              ]);
              if (ts) expect([d[D.OPT_TSVAL], d[D.OPT_TSECR]]).toEqual(ts);
              expect(d[D.OPT_SACK_COUNT]).toBe(sent);
              expect(Array.from(d.subarray(D.OPT_SACK, D.OPT_SACK + 2 * sent))).toEqual(sack.slice(0, sent).flat());
              expect(readBytes(hot, other + 34 + hlen, payload.length)).toEqual(payload);
            }
    expect(combos).toBe(120);
  });

  it('TCP options are laid out 4-byte aligned, as Linux lays out a SYN', () => {
    setRequest(hot, { flags: TCP_SYN, mss: 1460, sackOk: true, ts: [1, 0], wscale: 7 });
    const frame = encodeWith((n) => hot.encodeTcp(slot, n), slot + 54 + 20, new Uint8Array(0));
    expect(Array.from(frame.subarray(54))).toEqual([
      2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ]);
    setRequest(hot, { flags: TCP_SYN, mss: 536, sackOk: true, wscale: 0 });
    expect(Array.from(encodeWith((n) => hot.encodeTcp(slot, n), slot + 66, new Uint8Array(0)).subarray(54))).toEqual([
      2, 4, 0x02, 0x18, 1, 1, 4, 2, 1, 3, 3, 0,
    ]);
    setRequest(hot, { ts: [5, 6], sack: [[100, 200]] });
    expect(Array.from(encodeWith((n) => hot.encodeTcp(slot, n), slot + 78, new Uint8Array(0)).subarray(54))).toEqual([
      1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6, 1, 1, 5, 10, 0, 0, 0, 100, 0, 0, 0, 200,
    ]);
  });

  it('TCP frames equal the independent builder byte for byte', () => {
    const payload = bytesOf(1000);
    setRequest(hot, { flags: TCP_ACK | TCP_PSH, mss: 1400 });
    const frame = encodeWith((n) => hot.encodeTcp(slot, n), slot + 58, payload);
    expect(frame).toEqual(tcpFrame({ flags: TCP_ACK | TCP_PSH, tcpOptions: tcpOptionBytes({ mss: 1400 }), payload }));
  });

  it('UDP frames equal the builder, and decode back', () => {
    for (const size of [0, 1, 17, 1472]) {
      const payload = bytesOf(size, size);
      setRequest(hot, { sport: 68, dport: 67, ttl: 1, tos: 0x2e, id: 9, frag: 0 });
      const frame = encodeWith((n) => hot.encodeUdp(slot, n), slot + 42, payload);
      expect(frame).toEqual(udpFrame({ sport: 68, dport: 67, ttl: 1, tos: 0x2e, id: 9, frag: 0, payload }));
      hot.bytes.set(frame, other);
      expect(hot.decode(other, frame.length)).toBe(Reason.Ok);
      expect([hot.decoded[D.KIND], hot.decoded[D.SPORT], hot.decoded[D.PAYLOAD_LEN]]).toEqual([Kind.Udp, 68, size]);
    }
  });

  it('UDP sends a computed checksum of 0 as 0xffff', () => {
    // Choose the last payload word so that the checksum comes out 0.
    const payload = new Uint8Array(2);
    const header = udpDatagram({ payload, sport: 40000, dport: 9000 }); // the request's ports
    header[6] = header[7] = 0;
    const partial = refChecksum(header, refPseudoSum('10.0.0.1', '10.0.0.2', IPPROTO_UDP, header.length));
    payload[0] = partial >>> 8;
    payload[1] = partial & 0xff;
    setRequest(hot, {});
    const frame = encodeWith((n) => hot.encodeUdp(slot, n), slot + 42, payload);
    expect([frame[40], frame[41]]).toEqual([0xff, 0xff]);
    hot.bytes.set(frame, other);
    expect(hot.decode(other, frame.length)).toBe(Reason.Ok);
  });

  it('ICMP frames equal the builder, and decode back', () => {
    const payload = bytesOf(56);
    setRequest(hot, { icmpType: 0, icmpCode: 0, icmpRest: 0xabcd0102 });
    const frame = encodeWith((n) => hot.encodeIcmp(slot, n), slot + 42, payload);
    expect(frame).toEqual(icmpFrame({ type: 0, code: 0, rest: 0xabcd0102, payload }));
    hot.bytes.set(frame, other);
    expect(hot.decode(other, frame.length)).toBe(Reason.Ok);
    expect([hot.decoded[D.ICMP_TYPE], hot.decoded[D.ICMP_REST], hot.decoded[D.PAYLOAD_LEN]]).toEqual([0, 0xabcd0102, 56]);
  });

  it('raw IPv4 frames (any protocol, fragments) equal the builder, and decode back', () => {
    const payload = bytesOf(48);
    setRequest(hot, { proto: 17, frag: 0x2000 | 3, id: 4242 });
    const frame = encodeWith((n) => hot.encodeIpv4(slot, n), slot + 34, payload);
    expect(frame).toEqual(ipv4Frame(17, payload, { frag: 0x2000 | 3, id: 4242 }));
    hot.bytes.set(frame, other);
    expect(hot.decode(other, frame.length)).toBe(Reason.Ok);
    expect([hot.decoded[D.KIND], hot.decoded[D.IP_FRAG], hot.decoded[D.L4_LEN]]).toEqual([Kind.Ipv4Fragment, 0x2003, 48]);
    setRequest(hot, { proto: 89 });
    const ospf = encodeWith((n) => hot.encodeIpv4(slot, n), slot + 34, payload);
    hot.bytes.set(ospf, other);
    expect(hot.decode(other, ospf.length)).toBe(Reason.Ok);
    expect([hot.decoded[D.KIND], hot.decoded[D.IP_PROTO]]).toEqual([Kind.Ipv4Other, 89]);
  });

  it('ARP frames are padded to 60 bytes, equal the builder, and decode back', () => {
    setRequest(hot, { arpOp: 2, sha: MAC_A, spa: '10.0.0.1', tha: MAC_B, tpa: '10.0.0.2' });
    hot.bytes.fill(0xee, slot, slot + 100);
    expect(hot.encodeArp(slot)).toBe(60);
    const frame = readBytes(hot, slot, 60);
    expect(frame).toEqual(arpFrame({ op: 2, sha: MAC_A, spa: '10.0.0.1', tha: MAC_B, tpa: '10.0.0.2' }));
    expect(hot.decode(slot, 60)).toBe(Reason.Ok);
    expect([hot.decoded[D.ARP_OP], hot.decoded[D.ARP_TPA]]).toEqual([2, 0x0a000002]);
  });

  it('returns 0 when the frame would not fit memory or 65535 bytes of datagram', () => {
    setRequest(hot, { mss: 1460 });
    const size = hot.bytes.length;
    expect(hot.encodeTcp(size - 57, 0)).toBe(0); // needs 58
    expect(hot.encodeTcp(size - 58, 0)).toBe(58);
    expect(hot.encodeTcp(slot, 65535 - 20 - 24 + 1)).toBe(0);
    expect(hot.encodeTcp(slot, -1)).toBe(0);
    expect(hot.encodeUdp(slot, 65535 - 28 + 1)).toBe(0);
    expect(hot.encodeUdp(slot, 65535 - 28)).toBe(65535 + 14);
    expect(hot.encodeIcmp(-1, 10)).toBe(0);
    expect(hot.encodeIpv4(0xffffffff, 0)).toBe(0);
    expect(hot.encodeArp(size - 59)).toBe(0);
    expect(hot.encodeArp(size - 60)).toBe(60);
  });
});
