// Builders for valid Ethernet frames (ARP, IPv4 with ICMP/UDP/TCP or any
// protocol), written independently of the hot-path engines so tests can check
// the engines against them. Checksums are computed by a deliberately naive
// RFC 1071 loop. Every builder returns a fresh Uint8Array holding the frame.
//
//   const frame = tcpFrame({ src: '10.0.0.1', dst: '10.0.0.2', flags: TCP_SYN,
//                            tcpOptions: tcpOptionBytes({ mss: 1460 }) });
//   const off = placeFrame(hot, frame);
//   hot.decode(off, frame.length);

import type { HotPath } from '../../stack/hotpath/engine.js';
import {
  D,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETH_HLEN,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  TCP_ACK,
} from '../../stack/hotpath/layout.js';

export type Mac = string | Uint8Array;
export type Ip = string | number;

export const MAC_A = '02:00:00:00:00:0a';
export const MAC_B = '02:00:00:00:00:0b';
export const IP_A = '10.0.0.1';
export const IP_B = '10.0.0.2';

// ---- Addresses ----------------------------------------------------------------

export function macBytes(mac: Mac): Uint8Array {
  if (typeof mac !== 'string') return mac;
  const parts = mac.split(':').map((h) => parseInt(h, 16));
  if (parts.length !== 6 || parts.some((b) => !(b >= 0 && b <= 255))) throw new Error(`bad MAC ${mac}`);
  return Uint8Array.from(parts);
}

/** A MAC as the request record's two words: HI = first 2 bytes, LO = last 4. */
export function macWords(mac: Mac): [hi: number, lo: number] {
  const b = macBytes(mac);
  return [(b[0] << 8) | b[1], ((b[2] << 24) | (b[3] << 16) | (b[4] << 8) | b[5]) >>> 0];
}

export function ipNumber(ip: Ip): number {
  if (typeof ip === 'number') return ip >>> 0;
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((b) => !(b >= 0 && b <= 255))) throw new Error(`bad IPv4 address ${ip}`);
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

// ---- Reference checksum (RFC 1071, byte by byte) ---------------------------------

/** Folded ones'-complement sum of big-endian 16-bit words (odd length: zero pad). */
export function refSum(data: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i < data.length; i += 2) {
    s += (data[i] << 8) | (i + 1 < data.length ? data[i + 1] : 0);
    s = (s & 0xffff) + Math.floor(s / 0x10000);
  }
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

export function refChecksum(data: Uint8Array, initial = 0): number {
  return ~refSum(data, initial) & 0xffff;
}

export function refPseudoSum(src: Ip, dst: Ip, proto: number, length: number): number {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint32(0, ipNumber(src));
  v.setUint32(4, ipNumber(dst));
  v.setUint8(9, proto);
  v.setUint16(10, length);
  return refSum(b);
}

// ---- Byte helpers ---------------------------------------------------------------

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

// ---- Ethernet and ARP --------------------------------------------------------------

export interface EthSpec {
  dstMac?: Mac;
  srcMac?: Mac;
  /** Pad the frame with zeros to at least this length (e.g. 60, the Ethernet minimum). */
  padTo?: number;
}

export function ethernetFrame(type: number, payload: Uint8Array, spec: EthSpec = {}): Uint8Array {
  const len = Math.max(ETH_HLEN + payload.length, spec.padTo ?? 0);
  const f = new Uint8Array(len);
  f.set(macBytes(spec.dstMac ?? MAC_B), 0);
  f.set(macBytes(spec.srcMac ?? MAC_A), 6);
  view(f).setUint16(12, type);
  f.set(payload, ETH_HLEN);
  return f;
}

export interface ArpSpec extends EthSpec {
  op?: number; // 1 request, 2 reply
  sha?: Mac;
  spa?: Ip;
  tha?: Mac;
  tpa?: Ip;
}

/** An ARP frame (IPv4 over Ethernet), padded to 60 bytes unless padTo says otherwise. */
export function arpFrame(spec: ArpSpec = {}): Uint8Array {
  const a = new Uint8Array(28);
  const v = view(a);
  v.setUint16(0, 1);
  v.setUint16(2, ETHERTYPE_IPV4);
  a[4] = 6;
  a[5] = 4;
  v.setUint16(6, spec.op ?? 1);
  a.set(macBytes(spec.sha ?? MAC_A), 8);
  v.setUint32(14, ipNumber(spec.spa ?? IP_A));
  a.set(macBytes(spec.tha ?? '00:00:00:00:00:00'), 18);
  v.setUint32(24, ipNumber(spec.tpa ?? IP_B));
  return ethernetFrame(ETHERTYPE_ARP, a, { padTo: 60, ...spec });
}

// ---- IPv4 ----------------------------------------------------------------------

export interface Ipv4Spec extends EthSpec {
  src?: Ip;
  dst?: Ip;
  ttl?: number;
  tos?: number;
  id?: number;
  /** Raw flags + fragment offset field (0x4000 = DF). */
  frag?: number;
  /** IPv4 options; padded with zeros (EOL) to a multiple of 4. */
  ipOptions?: Uint8Array;
}

/** An IPv4 header (checksum filled in) for `payloadLen` bytes of payload. */
export function ipv4Header(proto: number, payloadLen: number, spec: Ipv4Spec = {}): Uint8Array {
  const opts = spec.ipOptions ?? new Uint8Array(0);
  const hlen = 20 + Math.ceil(opts.length / 4) * 4;
  const h = new Uint8Array(hlen);
  const v = view(h);
  h[0] = 0x40 | (hlen >>> 2);
  h[1] = spec.tos ?? 0;
  v.setUint16(2, hlen + payloadLen);
  v.setUint16(4, spec.id ?? 0x1234);
  v.setUint16(6, spec.frag ?? 0x4000);
  h[8] = spec.ttl ?? 64;
  h[9] = proto;
  v.setUint32(12, ipNumber(spec.src ?? IP_A));
  v.setUint32(16, ipNumber(spec.dst ?? IP_B));
  h.set(opts, 20);
  v.setUint16(10, refChecksum(h));
  return h;
}

/** Ethernet + IPv4 + payload, any protocol. */
export function ipv4Frame(proto: number, payload: Uint8Array, spec: Ipv4Spec = {}): Uint8Array {
  return ethernetFrame(ETHERTYPE_IPV4, concat(ipv4Header(proto, payload.length, spec), payload), spec);
}

// ---- ICMP ----------------------------------------------------------------------

export interface IcmpSpec extends Ipv4Spec {
  type?: number;
  code?: number;
  /** The 4 bytes after the checksum, as one big-endian number (echo: id << 16 | seq). */
  rest?: number;
  payload?: Uint8Array;
}

export function icmpMessage(spec: IcmpSpec = {}): Uint8Array {
  const payload = spec.payload ?? new Uint8Array(0);
  const m = new Uint8Array(8 + payload.length);
  const v = view(m);
  m[0] = spec.type ?? 8;
  m[1] = spec.code ?? 0;
  v.setUint32(4, (spec.rest ?? 0x00010001) >>> 0);
  m.set(payload, 8);
  v.setUint16(2, refChecksum(m));
  return m;
}

export function icmpFrame(spec: IcmpSpec = {}): Uint8Array {
  return ipv4Frame(IPPROTO_ICMP, icmpMessage(spec), spec);
}

// ---- UDP -----------------------------------------------------------------------

export interface UdpSpec extends Ipv4Spec {
  sport?: number;
  dport?: number;
  payload?: Uint8Array;
  /** Send a zero checksum field ("no checksum"). */
  noChecksum?: boolean;
}

export function udpDatagram(spec: UdpSpec = {}): Uint8Array {
  const payload = spec.payload ?? new Uint8Array(0);
  const u = new Uint8Array(8 + payload.length);
  const v = view(u);
  v.setUint16(0, spec.sport ?? 5000);
  v.setUint16(2, spec.dport ?? 7);
  v.setUint16(4, u.length);
  u.set(payload, 8);
  if (!spec.noChecksum) {
    const sum = refChecksum(u, refPseudoSum(spec.src ?? IP_A, spec.dst ?? IP_B, IPPROTO_UDP, u.length));
    v.setUint16(6, sum === 0 ? 0xffff : sum);
  }
  return u;
}

export function udpFrame(spec: UdpSpec = {}): Uint8Array {
  return ipv4Frame(IPPROTO_UDP, udpDatagram(spec), spec);
}

// ---- TCP -----------------------------------------------------------------------

export interface TcpOptionSpec {
  mss?: number;
  wscale?: number;
  sackOk?: boolean;
  ts?: [tsval: number, tsecr: number];
  sack?: Array<[left: number, right: number]>;
}

/** TCP options in the order given by the spec's fields, each as kind-length-value,
 *  with no alignment NOPs (a layout different from the encoder's on purpose). */
export function tcpOptionBytes(o: TcpOptionSpec): Uint8Array {
  const out: number[] = [];
  const u32 = (x: number) => out.push((x >>> 24) & 0xff, (x >>> 16) & 0xff, (x >>> 8) & 0xff, x & 0xff);
  if (o.mss !== undefined) out.push(2, 4, (o.mss >>> 8) & 0xff, o.mss & 0xff);
  if (o.wscale !== undefined) out.push(3, 3, o.wscale);
  if (o.sackOk) out.push(4, 2);
  if (o.ts) {
    out.push(8, 10);
    u32(o.ts[0]);
    u32(o.ts[1]);
  }
  if (o.sack && o.sack.length > 0) {
    out.push(5, 2 + 8 * o.sack.length);
    for (const [l, r] of o.sack) {
      u32(l);
      u32(r);
    }
  }
  return Uint8Array.from(out);
}

export interface TcpSpec extends Ipv4Spec {
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  window?: number;
  urg?: number;
  /** Raw option bytes; padded with zeros (EOL) to a multiple of 4. */
  tcpOptions?: Uint8Array;
  payload?: Uint8Array;
}

export function tcpSegment(spec: TcpSpec = {}): Uint8Array {
  const opts = spec.tcpOptions ?? new Uint8Array(0);
  const payload = spec.payload ?? new Uint8Array(0);
  const hlen = 20 + Math.ceil(opts.length / 4) * 4;
  const t = new Uint8Array(hlen + payload.length);
  const v = view(t);
  v.setUint16(0, spec.sport ?? 40000);
  v.setUint16(2, spec.dport ?? 9000);
  v.setUint32(4, (spec.seq ?? 1000) >>> 0);
  v.setUint32(8, (spec.ack ?? 2000) >>> 0);
  t[12] = (hlen >>> 2) << 4;
  t[13] = spec.flags ?? TCP_ACK;
  v.setUint16(14, spec.window ?? 65535);
  v.setUint16(18, spec.urg ?? 0);
  t.set(opts, 20);
  t.set(payload, hlen);
  v.setUint16(16, refChecksum(t, refPseudoSum(spec.src ?? IP_A, spec.dst ?? IP_B, IPPROTO_TCP, t.length)));
  return t;
}

export function tcpFrame(spec: TcpSpec = {}): Uint8Array {
  return ipv4Frame(IPPROTO_TCP, tcpSegment(spec), spec);
}

// ---- Mutation support ------------------------------------------------------------

/** Recompute the IPv4 header checksum and the ICMP/UDP/TCP checksum of an
 *  Ethernet/IPv4 frame in place, as far as its length fields allow, so that a
 *  mutated frame gets past the checksum checks to the ones behind them.
 *  Frames that are not IPv4, or too broken to locate a header, are left alone. */
export function fixChecksums(f: Uint8Array): Uint8Array {
  const v = view(f);
  if (f.length < 34 || v.getUint16(12) !== ETHERTYPE_IPV4) return f;
  const hlen = (f[14] & 15) * 4;
  if (hlen < 20 || 14 + hlen > f.length) return f;
  v.setUint16(24, 0);
  v.setUint16(24, refChecksum(f.subarray(14, 14 + hlen)));
  const total = v.getUint16(16);
  if (total < hlen || 14 + total > f.length || (v.getUint16(20) & 0x3fff) !== 0) return f;
  const l4 = f.subarray(14 + hlen, 14 + total);
  const src = v.getUint32(26);
  const dst = v.getUint32(30);
  const lv = view(l4);
  const proto = f[23];
  if (proto === IPPROTO_ICMP && l4.length >= 8) {
    lv.setUint16(2, 0);
    lv.setUint16(2, refChecksum(l4));
  } else if (proto === IPPROTO_UDP && l4.length >= 8) {
    const ulen = lv.getUint16(4);
    if (ulen < 8 || ulen > l4.length) return f;
    lv.setUint16(6, 0);
    const sum = refChecksum(l4.subarray(0, ulen), refPseudoSum(src, dst, IPPROTO_UDP, ulen));
    lv.setUint16(6, sum === 0 ? 0xffff : sum);
  } else if (proto === IPPROTO_TCP && l4.length >= 20) {
    lv.setUint16(16, 0);
    lv.setUint16(16, refChecksum(l4, refPseudoSum(src, dst, IPPROTO_TCP, l4.length)));
  }
  return f;
}

// ---- Engines ---------------------------------------------------------------------

/** Copy a frame into the engine's memory (at its first chunk unless `off` is
 *  given) and return the offset. */
export function placeFrame(hot: HotPath, frame: Uint8Array, off = hot.chunksBase): number {
  hot.bytes.set(frame, off);
  return off;
}

/** The bytes of [off, off+len) of the engine's memory, copied. */
export function readBytes(hot: HotPath, off: number, len: number): Uint8Array {
  return hot.bytes.slice(off, off + len);
}

/** The decoded record's words by name (layout `D` is a const enum, which has
 *  no run-time names), for readable assertions and dumps. */
export const DECODED_FIELDS = {
  REASON: D.REASON,
  KIND: D.KIND,
  FRAME_OFF: D.FRAME_OFF,
  FRAME_LEN: D.FRAME_LEN,
  ETHERTYPE: D.ETHERTYPE,
  ARP_OP: D.ARP_OP,
  ARP_SHA_OFF: D.ARP_SHA_OFF,
  ARP_SPA: D.ARP_SPA,
  ARP_THA_OFF: D.ARP_THA_OFF,
  ARP_TPA: D.ARP_TPA,
  IP_OFF: D.IP_OFF,
  IP_HLEN: D.IP_HLEN,
  IP_TOS: D.IP_TOS,
  IP_TOTAL_LEN: D.IP_TOTAL_LEN,
  IP_ID: D.IP_ID,
  IP_FRAG: D.IP_FRAG,
  IP_TTL: D.IP_TTL,
  IP_PROTO: D.IP_PROTO,
  IP_SRC: D.IP_SRC,
  IP_DST: D.IP_DST,
  L4_OFF: D.L4_OFF,
  L4_LEN: D.L4_LEN,
  ICMP_TYPE: D.ICMP_TYPE,
  ICMP_CODE: D.ICMP_CODE,
  ICMP_REST: D.ICMP_REST,
  SPORT: D.SPORT,
  DPORT: D.DPORT,
  TCP_SEQ: D.TCP_SEQ,
  TCP_ACK: D.TCP_ACK,
  TCP_HLEN: D.TCP_HLEN,
  TCP_FLAGS: D.TCP_FLAGS,
  TCP_WINDOW: D.TCP_WINDOW,
  TCP_URG: D.TCP_URG,
  OPT_MSS: D.OPT_MSS,
  OPT_WSCALE: D.OPT_WSCALE,
  OPT_SACK_OK: D.OPT_SACK_OK,
  OPT_TS: D.OPT_TS,
  OPT_TSVAL: D.OPT_TSVAL,
  OPT_TSECR: D.OPT_TSECR,
  OPT_SACK_COUNT: D.OPT_SACK_COUNT,
  OPT_SACK: D.OPT_SACK,
  PAYLOAD_OFF: D.PAYLOAD_OFF,
  PAYLOAD_LEN: D.PAYLOAD_LEN,
} as const;

export type DecodedField = keyof typeof DECODED_FIELDS;

/** The named words of the engine's decoded record. */
export function decodedFields(hot: HotPath, ...names: DecodedField[]): Record<string, number> {
  return Object.fromEntries(names.map((n) => [n, hot.decoded[DECODED_FIELDS[n]]]));
}
