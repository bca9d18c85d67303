// Header decode and encode in plain TypeScript: the ts engine's twin of
// assembly/codec.ts. Same checks in the same order, same record words, same
// bytes out; read that file for the rules. Arguments arrive already converted
// to u32 (see ts.ts), and memories are at most 2 GiB, so every position fits an
// int32 and bitwise operators are exact.

import {
  D,
  DECODED_BASE,
  DECODED_WORDS,
  E,
  ENCODE_BASE,
  ENCODE_WORDS,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETH_HLEN,
  ICMP_HLEN,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_HLEN,
  Kind,
  Reason,
  TCP_BASE_HLEN,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  UDP_HLEN,
  ARP_FRAME_LEN,
} from './layout.js';
import { foldSum, pseudoHeaderSumV4, rangeSum } from './ts-checksum.js';

const ARP_PADDED_LEN = 60;
/** Largest IPv4 payload: a datagram is at most 65535 bytes, 20 of them header. */
const IPV4_MAX_PAYLOAD = 65535 - IPV4_HLEN;
/** TCP options fit in 40 bytes (data offset 15 words). */
const TCP_MAX_OPTIONS = 40;

export class TsCodec {
  private readonly bytes: Uint8Array;
  private readonly words: Uint32Array;
  private readonly view: DataView;
  private readonly dec: Uint32Array;
  private readonly req: Uint32Array;
  private readonly size: number;

  constructor(buffer: ArrayBuffer | SharedArrayBuffer) {
    this.bytes = new Uint8Array(buffer);
    this.words = new Uint32Array(buffer);
    this.view = new DataView(buffer);
    this.dec = new Uint32Array(buffer, DECODED_BASE, DECODED_WORDS);
    this.req = new Uint32Array(buffer, ENCODE_BASE, ENCODE_WORDS);
    this.size = buffer.byteLength;
  }

  /** True when [off, off+len) lies inside memory. */
  inMemory(off: number, len: number): boolean {
    return off + len <= this.size;
  }

  /** Network-order folded sum of a range known to be in memory. */
  sum(off: number, len: number): number {
    return rangeSum(this.bytes, this.words, this.view, off, len);
  }

  // ---- Decode --------------------------------------------------------------

  decode(off: number, len: number): Reason {
    const dec = this.dec;
    dec[D.KIND] = Kind.None;
    dec[D.FRAME_OFF] = off;
    dec[D.FRAME_LEN] = len;
    const r = this.inMemory(off, len) && len >= ETH_HLEN ? this.decodeEthernet(off, len) : Reason.FrameTooShort;
    dec[D.REASON] = r;
    return r;
  }

  decodeTransport(proto: number, off: number, len: number, src: number, dst: number): Reason {
    this.dec[D.KIND] = Kind.None;
    const r = this.inMemory(off, len) ? this.decodeL4(proto, off, len, src, dst) : Reason.FrameTooShort;
    this.dec[D.REASON] = r;
    return r;
  }

  private decodeEthernet(off: number, len: number): Reason {
    const type = this.view.getUint16(off + 12);
    this.dec[D.ETHERTYPE] = type;
    if (type === ETHERTYPE_IPV4) return this.decodeIpv4(off + ETH_HLEN, len - ETH_HLEN);
    if (type === ETHERTYPE_ARP) return this.decodeArp(off + ETH_HLEN, len - ETH_HLEN);
    return Reason.UnknownEthertype;
  }

  private decodeArp(a: number, avail: number): Reason {
    if (avail < ARP_FRAME_LEN - ETH_HLEN) return Reason.ArpTooShort;
    const view = this.view;
    // Only IPv4 over Ethernet: hardware type 1, protocol 0x0800, lengths 6 and 4.
    if (
      view.getUint16(a) !== 1 ||
      view.getUint16(a + 2) !== ETHERTYPE_IPV4 ||
      view.getUint8(a + 4) !== 6 ||
      view.getUint8(a + 5) !== 4
    ) {
      return Reason.ArpUnsupported;
    }
    const op = view.getUint16(a + 6);
    if (op !== 1 && op !== 2) return Reason.ArpBadOp;
    const dec = this.dec;
    dec[D.ARP_OP] = op;
    dec[D.ARP_SHA_OFF] = a + 8;
    dec[D.ARP_SPA] = view.getUint32(a + 14);
    dec[D.ARP_THA_OFF] = a + 18;
    dec[D.ARP_TPA] = view.getUint32(a + 24);
    dec[D.KIND] = Kind.Arp;
    return Reason.Ok;
  }

  private decodeIpv4(ip: number, avail: number): Reason {
    if (avail < IPV4_HLEN) return Reason.IpTooShort;
    const bytes = this.bytes;
    const view = this.view;
    const versionIhl = bytes[ip];
    if (versionIhl >>> 4 !== 4) return Reason.IpBadVersion;
    const hlen = (versionIhl & 15) << 2;
    if (hlen < IPV4_HLEN || hlen > avail) return Reason.IpBadIhl;
    // Bytes past the total length are Ethernet padding (frames shorter than 60).
    const total = view.getUint16(ip + 2);
    if (total < hlen || total > avail) return Reason.IpBadTotalLength;
    if (this.sum(ip, hlen) !== 0xffff) return Reason.IpBadChecksum;
    if (!this.ipOptionsValid(ip + IPV4_HLEN, ip + hlen)) return Reason.IpBadOptions;
    const frag = view.getUint16(ip + 6);
    const l4len = total - hlen;
    if (!fragmentValid(frag, l4len)) return Reason.IpBadFragment;
    const src = view.getUint32(ip + 12);
    // 224.0.0.0/4 multicast, 240.0.0.0/4 reserved, 255.255.255.255 broadcast.
    if (src >= 0xe0000000) return Reason.IpSourceInvalid;
    const dst = view.getUint32(ip + 16);
    const proto = bytes[ip + 9];
    const l4 = ip + hlen;
    const dec = this.dec;
    dec[D.IP_OFF] = ip;
    dec[D.IP_HLEN] = hlen;
    dec[D.IP_TOS] = bytes[ip + 1];
    dec[D.IP_TOTAL_LEN] = total;
    dec[D.IP_ID] = view.getUint16(ip + 4);
    dec[D.IP_FRAG] = frag;
    dec[D.IP_TTL] = bytes[ip + 8];
    dec[D.IP_PROTO] = proto;
    dec[D.IP_SRC] = src;
    dec[D.IP_DST] = dst;
    dec[D.L4_OFF] = l4;
    dec[D.L4_LEN] = l4len;
    // More-fragments set or a nonzero offset: reassembly decodes the transport later.
    if ((frag & 0x3fff) !== 0) {
      this.setPayload(l4, l4len);
      dec[D.KIND] = Kind.Ipv4Fragment;
      return Reason.Ok;
    }
    return this.decodeL4(proto, l4, l4len, src, dst);
  }

  /** EOL ends the list, NOP is one byte, every other option carries a length
   *  of at least 2 that stays inside the header. */
  private ipOptionsValid(p: number, end: number): boolean {
    const bytes = this.bytes;
    while (p < end) {
      const kind = bytes[p];
      if (kind === 0) return true;
      if (kind === 1) {
        p++;
        continue;
      }
      if (end - p < 2) return false;
      const len = bytes[p + 1];
      if (len < 2 || len > end - p) return false;
      p += len;
    }
    return true;
  }

  private decodeL4(proto: number, l4: number, len: number, src: number, dst: number): Reason {
    if (proto === IPPROTO_TCP) return this.decodeTcp(l4, len, src, dst);
    if (proto === IPPROTO_UDP) return this.decodeUdp(l4, len, src, dst);
    if (proto === IPPROTO_ICMP) return this.decodeIcmp(l4, len);
    this.setPayload(l4, len);
    this.dec[D.KIND] = Kind.Ipv4Other;
    return Reason.Ok;
  }

  private setPayload(off: number, len: number): void {
    this.dec[D.PAYLOAD_OFF] = off;
    this.dec[D.PAYLOAD_LEN] = len;
  }

  private decodeIcmp(p: number, len: number): Reason {
    if (len < ICMP_HLEN) return Reason.IcmpTooShort;
    if (this.sum(p, len) !== 0xffff) return Reason.IcmpBadChecksum;
    const dec = this.dec;
    dec[D.ICMP_TYPE] = this.bytes[p];
    dec[D.ICMP_CODE] = this.bytes[p + 1];
    dec[D.ICMP_REST] = this.view.getUint32(p + 4);
    this.setPayload(p + ICMP_HLEN, len - ICMP_HLEN);
    dec[D.KIND] = Kind.Icmp;
    return Reason.Ok;
  }

  private decodeUdp(p: number, len: number, src: number, dst: number): Reason {
    if (len < UDP_HLEN) return Reason.UdpTooShort;
    const view = this.view;
    const ulen = view.getUint16(p + 4);
    if (ulen < UDP_HLEN || ulen > len) return Reason.UdpBadLength;
    // A zero checksum field means the sender computed none (RFC 768).
    if (view.getUint16(p + 6) !== 0) {
      const pseudo = pseudoHeaderSumV4(src, dst, IPPROTO_UDP, ulen);
      if (foldSum(this.sum(p, ulen) + pseudo) !== 0xffff) return Reason.UdpBadChecksum;
    }
    const dec = this.dec;
    dec[D.SPORT] = view.getUint16(p);
    dec[D.DPORT] = view.getUint16(p + 2);
    this.setPayload(p + UDP_HLEN, ulen - UDP_HLEN);
    dec[D.KIND] = Kind.Udp;
    return Reason.Ok;
  }

  private decodeTcp(p: number, len: number, src: number, dst: number): Reason {
    if (len < TCP_BASE_HLEN) return Reason.TcpTooShort;
    const view = this.view;
    const hlen = (this.bytes[p + 12] >>> 4) << 2;
    if (hlen < TCP_BASE_HLEN || hlen > len) return Reason.TcpBadDataOffset;
    const pseudo = pseudoHeaderSumV4(src, dst, IPPROTO_TCP, len);
    if (foldSum(this.sum(p, len) + pseudo) !== 0xffff) return Reason.TcpBadChecksum;
    const flags = this.bytes[p + 13];
    if (!tcpFlagsValid(flags)) return Reason.TcpBadFlags;
    if (!this.decodeTcpOptions(p + TCP_BASE_HLEN, p + hlen)) return Reason.TcpBadOption;
    const dec = this.dec;
    dec[D.SPORT] = view.getUint16(p);
    dec[D.DPORT] = view.getUint16(p + 2);
    dec[D.TCP_SEQ] = view.getUint32(p + 4);
    dec[D.TCP_ACK] = view.getUint32(p + 8);
    dec[D.TCP_HLEN] = hlen;
    dec[D.TCP_FLAGS] = flags;
    dec[D.TCP_WINDOW] = view.getUint16(p + 14);
    dec[D.TCP_URG] = view.getUint16(p + 18);
    this.setPayload(p + hlen, len - hlen);
    dec[D.KIND] = Kind.Tcp;
    return Reason.Ok;
  }

  /** Parse the options in [p, end); defaults first so absent options read as
   *  absent. Unknown kinds are skipped by their length. */
  private decodeTcpOptions(p: number, end: number): boolean {
    const dec = this.dec;
    dec[D.OPT_MSS] = 0;
    dec[D.OPT_WSCALE] = 0xff;
    dec[D.OPT_SACK_OK] = 0;
    dec[D.OPT_TS] = 0;
    dec[D.OPT_TSVAL] = 0;
    dec[D.OPT_TSECR] = 0;
    dec[D.OPT_SACK_COUNT] = 0;
    const bytes = this.bytes;
    while (p < end) {
      const kind = bytes[p];
      if (kind === 0) return true;
      if (kind === 1) {
        p++;
        continue;
      }
      if (end - p < 2) return false;
      const len = bytes[p + 1];
      if (len < 2 || len > end - p) return false;
      if (!this.decodeTcpOption(kind, p, len)) return false;
      p += len;
    }
    return true;
  }

  /** One length-bearing option; false when its length is wrong for its kind. */
  private decodeTcpOption(kind: number, p: number, len: number): boolean {
    const dec = this.dec;
    const view = this.view;
    switch (kind) {
      case 2: // MSS
        if (len !== 4) return false;
        dec[D.OPT_MSS] = view.getUint16(p + 2);
        return true;
      case 3: // window scale
        if (len !== 3) return false;
        dec[D.OPT_WSCALE] = this.bytes[p + 2];
        return true;
      case 4: // SACK permitted
        if (len !== 2) return false;
        dec[D.OPT_SACK_OK] = 1;
        return true;
      case 5: {
        // SACK: 1..4 blocks of two sequence numbers (40 option bytes hold 4 at most).
        if (len < 10 || ((len - 2) & 7) !== 0) return false;
        const count = (len - 2) >>> 3;
        dec[D.OPT_SACK_COUNT] = count;
        for (let i = 0; i < count; i++) {
          dec[D.OPT_SACK + 2 * i] = view.getUint32(p + 2 + 8 * i);
          dec[D.OPT_SACK + 2 * i + 1] = view.getUint32(p + 6 + 8 * i);
        }
        return true;
      }
      case 8: // timestamps
        if (len !== 10) return false;
        dec[D.OPT_TS] = 1;
        dec[D.OPT_TSVAL] = view.getUint32(p + 2);
        dec[D.OPT_TSECR] = view.getUint32(p + 6);
        return true;
    }
    return true;
  }

  // ---- Encode (option layout: see assembly/codec.ts) -------------------------

  /** OPT_WSCALE holds the shift, or 0xff (in its low byte) to leave the option out. */
  private wantWindowScale(): boolean {
    return (this.req[E.OPT_WSCALE] & 0xff) !== 0xff;
  }

  /** Option bytes before the SACK blocks. At most 4 + 12 + 4 = 20. */
  private fixedOptionsLen(): number {
    const req = this.req;
    let n = 0;
    if (req[E.OPT_MSS] !== 0) n += 4;
    if (req[E.OPT_TS] !== 0) n += 12;
    else if (req[E.OPT_SACK_OK] !== 0) n += 4;
    if (this.wantWindowScale()) n += 4;
    return n;
  }

  /** SACK blocks to send: the count asked for (at most 4), cut to what fits. */
  private sackBlocks(fixedLen: number): number {
    const wanted = Math.min(this.req[E.OPT_SACK_COUNT], 4);
    const fit = (TCP_MAX_OPTIONS - fixedLen - 4) >>> 3;
    return Math.min(wanted, fit);
  }

  tcpHeaderLen(): number {
    const fixed = this.fixedOptionsLen();
    const blocks = this.sackBlocks(fixed);
    return TCP_BASE_HLEN + fixed + (blocks !== 0 ? 4 + 8 * blocks : 0);
  }

  private writeTcpOptions(p: number): void {
    const req = this.req;
    const view = this.view;
    if (req[E.OPT_MSS] !== 0) {
      view.setUint16(p, 0x0204);
      view.setUint16(p + 2, req[E.OPT_MSS] & 0xffff);
      p += 4;
    }
    if (req[E.OPT_TS] !== 0) {
      view.setUint16(p, req[E.OPT_SACK_OK] !== 0 ? 0x0402 : 0x0101);
      view.setUint16(p + 2, 0x080a);
      view.setUint32(p + 4, req[E.OPT_TSVAL]);
      view.setUint32(p + 8, req[E.OPT_TSECR]);
      p += 12;
    } else if (req[E.OPT_SACK_OK] !== 0) {
      view.setUint32(p, 0x01010402);
      p += 4;
    }
    if (this.wantWindowScale()) {
      view.setUint32(p, 0x01030300 | (req[E.OPT_WSCALE] & 0xff));
      p += 4;
    }
    const blocks = this.sackBlocks(this.fixedOptionsLen());
    if (blocks !== 0) {
      view.setUint32(p, 0x01010500 | (2 + 8 * blocks));
      p += 4;
      for (let i = 0; i < 2 * blocks; i++) {
        view.setUint32(p, req[E.OPT_SACK + i]);
        p += 4;
      }
    }
  }

  /** A MAC stored as HI (first 2 bytes) and LO (last 4 bytes) request words. */
  private putMac(p: number, hiWord: number, loWord: number): void {
    this.view.setUint16(p, this.req[hiWord] & 0xffff);
    this.view.setUint32(p + 2, this.req[loWord]);
  }

  private writeEthernet(slot: number, type: number): void {
    this.putMac(slot, E.DST_MAC_HI, E.DST_MAC_LO);
    this.putMac(slot + 6, E.SRC_MAC_HI, E.SRC_MAC_LO);
    this.view.setUint16(slot + 12, type);
  }

  /** IPv4 header without options, header checksum filled in. */
  private writeIpv4(ip: number, proto: number, total: number): void {
    const req = this.req;
    const view = this.view;
    view.setUint8(ip, 0x45);
    view.setUint8(ip + 1, req[E.IP_TOS] & 0xff);
    view.setUint16(ip + 2, total);
    view.setUint16(ip + 4, req[E.IP_ID] & 0xffff);
    view.setUint16(ip + 6, req[E.IP_FRAG] & 0xffff);
    view.setUint8(ip + 8, req[E.IP_TTL] & 0xff);
    view.setUint8(ip + 9, proto & 0xff);
    view.setUint16(ip + 10, 0);
    view.setUint32(ip + 12, req[E.IP_SRC]);
    view.setUint32(ip + 16, req[E.IP_DST]);
    view.setUint16(ip + 10, ~this.sum(ip, IPV4_HLEN) & 0xffff);
  }

  /** The IP total length for `l4len` bytes after the IP header, or 0 when the
   *  datagram would pass 65535 bytes or the frame would leave memory. */
  private ipTotalFor(slot: number, l4len: number): number {
    const total = IPV4_HLEN + l4len;
    if (total > 65535) return 0;
    if (!this.inMemory(slot, ETH_HLEN + total)) return 0;
    return total;
  }

  /** Transport checksum over [p, p+len) with the IPv4 pseudo-header. */
  private transportChecksum(p: number, len: number, proto: number): number {
    const pseudo = pseudoHeaderSumV4(this.req[E.IP_SRC], this.req[E.IP_DST], proto, len);
    return ~foldSum(this.sum(p, len) + pseudo) & 0xffff;
  }

  encodeTcp(slot: number, payloadLen: number): number {
    const hlen = this.tcpHeaderLen();
    const total = this.ipTotalFor(slot, hlen + payloadLen);
    if (total === 0) return 0;
    const req = this.req;
    const view = this.view;
    const ip = slot + ETH_HLEN;
    const p = ip + IPV4_HLEN;
    this.writeEthernet(slot, ETHERTYPE_IPV4);
    this.writeIpv4(ip, IPPROTO_TCP, total);
    view.setUint16(p, req[E.SPORT] & 0xffff);
    view.setUint16(p + 2, req[E.DPORT] & 0xffff);
    view.setUint32(p + 4, req[E.TCP_SEQ]);
    view.setUint32(p + 8, req[E.TCP_ACK]);
    view.setUint8(p + 12, (hlen >>> 2) << 4);
    view.setUint8(p + 13, req[E.TCP_FLAGS] & 0xff);
    view.setUint16(p + 14, req[E.TCP_WINDOW] & 0xffff);
    view.setUint16(p + 16, 0);
    view.setUint16(p + 18, req[E.TCP_URG] & 0xffff);
    this.writeTcpOptions(p + TCP_BASE_HLEN);
    view.setUint16(p + 16, this.transportChecksum(p, total - IPV4_HLEN, IPPROTO_TCP));
    return ETH_HLEN + total;
  }

  encodeUdp(slot: number, payloadLen: number): number {
    const total = this.ipTotalFor(slot, UDP_HLEN + payloadLen);
    if (total === 0) return 0;
    const req = this.req;
    const view = this.view;
    const ip = slot + ETH_HLEN;
    const p = ip + IPV4_HLEN;
    const ulen = total - IPV4_HLEN;
    this.writeEthernet(slot, ETHERTYPE_IPV4);
    this.writeIpv4(ip, IPPROTO_UDP, total);
    view.setUint16(p, req[E.SPORT] & 0xffff);
    view.setUint16(p + 2, req[E.DPORT] & 0xffff);
    view.setUint16(p + 4, ulen);
    view.setUint16(p + 6, 0);
    // A computed 0 is sent as 0xffff: 0 on the wire means "no checksum".
    const sum = this.transportChecksum(p, ulen, IPPROTO_UDP);
    view.setUint16(p + 6, sum === 0 ? 0xffff : sum);
    return ETH_HLEN + total;
  }

  encodeIcmp(slot: number, payloadLen: number): number {
    const total = this.ipTotalFor(slot, ICMP_HLEN + payloadLen);
    if (total === 0) return 0;
    const req = this.req;
    const view = this.view;
    const ip = slot + ETH_HLEN;
    const p = ip + IPV4_HLEN;
    this.writeEthernet(slot, ETHERTYPE_IPV4);
    this.writeIpv4(ip, IPPROTO_ICMP, total);
    view.setUint8(p, req[E.ICMP_TYPE] & 0xff);
    view.setUint8(p + 1, req[E.ICMP_CODE] & 0xff);
    view.setUint16(p + 2, 0);
    view.setUint32(p + 4, req[E.ICMP_REST]);
    view.setUint16(p + 2, ~this.sum(p, total - IPV4_HLEN) & 0xffff);
    return ETH_HLEN + total;
  }

  encodeIpv4(slot: number, payloadLen: number): number {
    const total = this.ipTotalFor(slot, payloadLen);
    if (total === 0) return 0;
    this.writeEthernet(slot, ETHERTYPE_IPV4);
    this.writeIpv4(slot + ETH_HLEN, this.req[E.IP_PROTO], total);
    return ETH_HLEN + total;
  }

  encodeArp(slot: number): number {
    if (!this.inMemory(slot, ARP_PADDED_LEN)) return 0;
    const req = this.req;
    const view = this.view;
    const a = slot + ETH_HLEN;
    this.writeEthernet(slot, ETHERTYPE_ARP);
    view.setUint16(a, 1);
    view.setUint16(a + 2, ETHERTYPE_IPV4);
    view.setUint8(a + 4, 6);
    view.setUint8(a + 5, 4);
    view.setUint16(a + 6, req[E.ARP_OP] & 0xffff);
    this.putMac(a + 8, E.ARP_SHA_HI, E.ARP_SHA_LO);
    view.setUint32(a + 14, req[E.ARP_SPA]);
    this.putMac(a + 18, E.ARP_THA_HI, E.ARP_THA_LO);
    view.setUint32(a + 24, req[E.ARP_TPA]);
    this.bytes.fill(0, slot + ARP_FRAME_LEN, slot + ARP_PADDED_LEN);
    return ARP_PADDED_LEN;
  }
}

/** Rejects fragment fields no sender can produce: DF together with MF, a
 *  fragment reaching past the largest datagram, or a non-last fragment whose
 *  data is not a multiple of 8 bytes (offsets count 8-byte units). */
function fragmentValid(frag: number, l4len: number): boolean {
  const dontFragment = (frag & 0x4000) !== 0;
  const moreFragments = (frag & 0x2000) !== 0;
  if (dontFragment && moreFragments) return false;
  if (((frag & 0x1fff) << 3) + l4len > IPV4_MAX_PAYLOAD) return false;
  if (moreFragments && (l4len & 7) !== 0) return false;
  return true;
}

/** SYN with FIN or RST is never legitimate, and a segment must carry at least
 *  one of the six classic control bits (FIN..URG). */
function tcpFlagsValid(flags: number): boolean {
  if ((flags & TCP_SYN) !== 0 && (flags & (TCP_FIN | TCP_RST)) !== 0) return false;
  return (flags & 0x3f) !== 0;
}
