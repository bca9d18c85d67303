// Header decode and encode: Ethernet II, ARP, IPv4, ICMPv4, UDP, TCP.
//
// decode validates a frame from the Ethernet header down to the transport
// payload and writes what it found into the decoded-frame record; encode reads
// the encode-request record and writes headers with every checksum filled in.
// The record layouts are in stack/hotpath/layout.ts. stack/hotpath/ts-codec.ts
// is the TypeScript twin and must follow the same rules in the same order, so
// the two engines return the same reason for every input.
//
// Rules shared by both engines:
// - A frame or range outside linear memory is rejected (FrameTooShort) or
//   encodes nothing (0); no input makes a function trap.
// - KIND is written as None first and set last, only on acceptance.
// - The checks run in a fixed order; the first failing one names the reason.

import {
  inMemory, addFold, rangeSum, rangeSumScalar, pseudoHeaderSumV4,
} from './checksum';
import {
  DECODED_BASE, ENCODE_BASE,
  KIND_NONE, KIND_ARP, KIND_IPV4_OTHER, KIND_ICMP, KIND_UDP, KIND_TCP, KIND_IPV4_FRAGMENT,
  ETHERTYPE_IPV4, ETHERTYPE_ARP, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP,
  TCP_FIN, TCP_SYN, TCP_RST,
  R_OK, R_FRAME_TOO_SHORT, R_UNKNOWN_ETHERTYPE, R_ARP_TOO_SHORT, R_ARP_UNSUPPORTED, R_ARP_BAD_OP,
  R_IP_TOO_SHORT, R_IP_BAD_VERSION, R_IP_BAD_IHL, R_IP_BAD_TOTAL_LENGTH, R_IP_BAD_CHECKSUM,
  R_IP_BAD_OPTIONS, R_IP_BAD_FRAGMENT, R_ICMP_TOO_SHORT, R_ICMP_BAD_CHECKSUM, R_UDP_TOO_SHORT,
  R_UDP_BAD_LENGTH, R_UDP_BAD_CHECKSUM, R_TCP_TOO_SHORT, R_TCP_BAD_DATA_OFFSET, R_TCP_BAD_CHECKSUM,
  R_TCP_BAD_OPTION, R_IP_SOURCE_INVALID, R_TCP_BAD_FLAGS,
  D_REASON, D_KIND, D_FRAME_OFF, D_FRAME_LEN, D_ETHERTYPE,
  D_ARP_OP, D_ARP_SHA_OFF, D_ARP_SPA, D_ARP_THA_OFF, D_ARP_TPA,
  D_IP_OFF, D_IP_HLEN, D_IP_TOS, D_IP_TOTAL_LEN, D_IP_ID, D_IP_FRAG, D_IP_TTL, D_IP_PROTO,
  D_IP_SRC, D_IP_DST, D_L4_OFF, D_L4_LEN, D_ICMP_TYPE, D_ICMP_CODE, D_ICMP_REST, D_SPORT, D_DPORT,
  D_TCP_SEQ, D_TCP_ACK, D_TCP_HLEN, D_TCP_FLAGS, D_TCP_WINDOW, D_TCP_URG,
  D_OPT_MSS, D_OPT_WSCALE, D_OPT_SACK_OK, D_OPT_TS, D_OPT_TSVAL, D_OPT_TSECR,
  D_OPT_SACK_COUNT, D_OPT_SACK, D_PAYLOAD_OFF, D_PAYLOAD_LEN,
  E_DST_MAC_HI, E_DST_MAC_LO, E_SRC_MAC_HI, E_SRC_MAC_LO, E_IP_SRC, E_IP_DST, E_IP_TTL,
  E_IP_TOS, E_IP_ID, E_IP_FRAG, E_IP_PROTO, E_SPORT, E_DPORT, E_TCP_SEQ, E_TCP_ACK,
  E_TCP_FLAGS, E_TCP_WINDOW, E_TCP_URG, E_OPT_MSS, E_OPT_WSCALE, E_OPT_SACK_OK, E_OPT_TS,
  E_OPT_TSVAL, E_OPT_TSECR, E_OPT_SACK_COUNT, E_OPT_SACK, E_ICMP_TYPE, E_ICMP_CODE,
  E_ICMP_REST, E_ARP_OP, E_ARP_SHA_HI, E_ARP_SHA_LO, E_ARP_SPA, E_ARP_THA_HI, E_ARP_THA_LO,
  E_ARP_TPA,
  ETH_HLEN, IPV4_HLEN, UDP_HLEN, ICMP_HLEN, TCP_BASE_HLEN, ARP_FRAME_LEN, ARP_PADDED_LEN,
} from './layout.generated';

/** Largest IPv4 payload: a datagram is at most 65535 bytes, 20 of them header. */
const IPV4_MAX_PAYLOAD: u32 = 65535 - IPV4_HLEN;
/** TCP options fit in 40 bytes (data offset 15 words). */
const TCP_MAX_OPTIONS: u32 = 40;

// ---- Memory access (network byte order) -----------------------------------

// @ts-ignore: decorator
@inline function u8at(p: u32): u32 {
  return <u32>load<u8>(p);
}
// @ts-ignore: decorator
@inline function be16(p: u32): u32 {
  return <u32>bswap<u16>(load<u16>(p));
}
// @ts-ignore: decorator
@inline function be32(p: u32): u32 {
  return bswap<u32>(load<u32>(p));
}
// @ts-ignore: decorator
@inline function put8(p: u32, v: u32): void {
  store<u8>(p, <u8>v);
}
// @ts-ignore: decorator
@inline function put16(p: u32, v: u32): void {
  store<u16>(p, bswap<u16>(<u16>v));
}
// @ts-ignore: decorator
@inline function put32(p: u32, v: u32): void {
  store<u32>(p, bswap<u32>(v));
}
// @ts-ignore: decorator
@inline function setD(word: u32, v: u32): void {
  store<u32>(DECODED_BASE + (word << 2), v);
}
// @ts-ignore: decorator
@inline function req(word: u32): u32 {
  return load<u32>(ENCODE_BASE + (word << 2));
}

// ---- Decode ----------------------------------------------------------------

/** Decode the Ethernet frame at [off, off+len). Returns the reason (0 = accepted). */
export function decode(off: u32, len: u32): u32 {
  setD(D_KIND, KIND_NONE);
  setD(D_FRAME_OFF, off);
  setD(D_FRAME_LEN, len);
  const r = inMemory(off, len) && len >= ETH_HLEN ? decodeEthernet(off, len) : R_FRAME_TOO_SHORT;
  setD(D_REASON, r);
  return r;
}

/** Decode a transport header and payload outside any frame (a reassembled datagram). */
export function decodeTransport(proto: u32, off: u32, len: u32, src: u32, dst: u32): u32 {
  setD(D_KIND, KIND_NONE);
  const r = inMemory(off, len) ? decodeL4(proto, off, len, src, dst) : R_FRAME_TOO_SHORT;
  setD(D_REASON, r);
  return r;
}

function decodeEthernet(off: u32, len: u32): u32 {
  const type = be16(off + 12);
  setD(D_ETHERTYPE, type);
  if (type == ETHERTYPE_IPV4) return decodeIpv4(off + ETH_HLEN, len - ETH_HLEN);
  if (type == ETHERTYPE_ARP) return decodeArp(off + ETH_HLEN, len - ETH_HLEN);
  return R_UNKNOWN_ETHERTYPE;
}

function decodeArp(a: u32, avail: u32): u32 {
  if (avail < ARP_FRAME_LEN - ETH_HLEN) return R_ARP_TOO_SHORT;
  // Only IPv4 over Ethernet: hardware type 1, protocol 0x0800, lengths 6 and 4.
  if (be16(a) != 1 || be16(a + 2) != ETHERTYPE_IPV4 || u8at(a + 4) != 6 || u8at(a + 5) != 4) {
    return R_ARP_UNSUPPORTED;
  }
  const op = be16(a + 6);
  if (op != 1 && op != 2) return R_ARP_BAD_OP;
  setD(D_ARP_OP, op);
  setD(D_ARP_SHA_OFF, a + 8);
  setD(D_ARP_SPA, be32(a + 14));
  setD(D_ARP_THA_OFF, a + 18);
  setD(D_ARP_TPA, be32(a + 24));
  setD(D_KIND, KIND_ARP);
  return R_OK;
}

function decodeIpv4(ip: u32, avail: u32): u32 {
  if (avail < IPV4_HLEN) return R_IP_TOO_SHORT;
  const versionIhl = u8at(ip);
  if (versionIhl >>> 4 != 4) return R_IP_BAD_VERSION;
  const hlen = (versionIhl & 15) << 2;
  if (hlen < IPV4_HLEN || hlen > avail) return R_IP_BAD_IHL;
  // Bytes past the total length are Ethernet padding (frames shorter than 60).
  const total = be16(ip + 2);
  if (total < hlen || total > avail) return R_IP_BAD_TOTAL_LENGTH;
  if (rangeSumScalar(ip, hlen) != 0xffff) return R_IP_BAD_CHECKSUM;
  if (!ipOptionsValid(ip + IPV4_HLEN, ip + hlen)) return R_IP_BAD_OPTIONS;
  const frag = be16(ip + 6);
  const l4len = total - hlen;
  if (!fragmentValid(frag, l4len)) return R_IP_BAD_FRAGMENT;
  const src = be32(ip + 12);
  // 224.0.0.0/4 multicast, 240.0.0.0/4 reserved, 255.255.255.255 broadcast.
  if (src >= 0xe0000000) return R_IP_SOURCE_INVALID;
  const dst = be32(ip + 16);
  const proto = u8at(ip + 9);
  const l4 = ip + hlen;
  setD(D_IP_OFF, ip);
  setD(D_IP_HLEN, hlen);
  setD(D_IP_TOS, u8at(ip + 1));
  setD(D_IP_TOTAL_LEN, total);
  setD(D_IP_ID, be16(ip + 4));
  setD(D_IP_FRAG, frag);
  setD(D_IP_TTL, u8at(ip + 8));
  setD(D_IP_PROTO, proto);
  setD(D_IP_SRC, src);
  setD(D_IP_DST, dst);
  setD(D_L4_OFF, l4);
  setD(D_L4_LEN, l4len);
  // More-fragments set or a nonzero offset: reassembly decodes the transport later.
  if ((frag & 0x3fff) != 0) {
    setPayload(l4, l4len);
    setD(D_KIND, KIND_IPV4_FRAGMENT);
    return R_OK;
  }
  return decodeL4(proto, l4, l4len, src, dst);
}

/** IPv4 options: EOL ends the list, NOP is one byte, every other option
 *  carries a length of at least 2 that stays inside the header. */
function ipOptionsValid(p: u32, end: u32): bool {
  while (p < end) {
    const kind = u8at(p);
    if (kind == 0) return true;
    if (kind == 1) {
      p++;
      continue;
    }
    if (end - p < 2) return false;
    const len = u8at(p + 1);
    if (len < 2 || len > end - p) return false;
    p += len;
  }
  return true;
}

/** Rejects fragment fields no sender can produce: DF together with MF, a
 *  fragment reaching past the largest datagram, or a non-last fragment whose
 *  data is not a multiple of 8 bytes (offsets count 8-byte units). */
function fragmentValid(frag: u32, l4len: u32): bool {
  const dontFragment = (frag & 0x4000) != 0;
  const moreFragments = (frag & 0x2000) != 0;
  if (dontFragment && moreFragments) return false;
  if (((frag & 0x1fff) << 3) + l4len > IPV4_MAX_PAYLOAD) return false;
  if (moreFragments && (l4len & 7) != 0) return false;
  return true;
}

function decodeL4(proto: u32, l4: u32, len: u32, src: u32, dst: u32): u32 {
  if (proto == IPPROTO_TCP) return decodeTcp(l4, len, src, dst);
  if (proto == IPPROTO_UDP) return decodeUdp(l4, len, src, dst);
  if (proto == IPPROTO_ICMP) return decodeIcmp(l4, len);
  setPayload(l4, len);
  setD(D_KIND, KIND_IPV4_OTHER);
  return R_OK;
}

// @ts-ignore: decorator
@inline function setPayload(off: u32, len: u32): void {
  setD(D_PAYLOAD_OFF, off);
  setD(D_PAYLOAD_LEN, len);
}

function decodeIcmp(p: u32, len: u32): u32 {
  if (len < ICMP_HLEN) return R_ICMP_TOO_SHORT;
  if (rangeSum(p, len) != 0xffff) return R_ICMP_BAD_CHECKSUM;
  setD(D_ICMP_TYPE, u8at(p));
  setD(D_ICMP_CODE, u8at(p + 1));
  setD(D_ICMP_REST, be32(p + 4));
  setPayload(p + ICMP_HLEN, len - ICMP_HLEN);
  setD(D_KIND, KIND_ICMP);
  return R_OK;
}

function decodeUdp(p: u32, len: u32, src: u32, dst: u32): u32 {
  if (len < UDP_HLEN) return R_UDP_TOO_SHORT;
  const ulen = be16(p + 4);
  if (ulen < UDP_HLEN || ulen > len) return R_UDP_BAD_LENGTH;
  // A zero checksum field means the sender computed none (RFC 768).
  if (load<u16>(p + 6) != 0) {
    const pseudo = pseudoHeaderSumV4(src, dst, IPPROTO_UDP, ulen);
    if (addFold(rangeSum(p, ulen), pseudo) != 0xffff) return R_UDP_BAD_CHECKSUM;
  }
  setD(D_SPORT, be16(p));
  setD(D_DPORT, be16(p + 2));
  setPayload(p + UDP_HLEN, ulen - UDP_HLEN);
  setD(D_KIND, KIND_UDP);
  return R_OK;
}

function decodeTcp(p: u32, len: u32, src: u32, dst: u32): u32 {
  if (len < TCP_BASE_HLEN) return R_TCP_TOO_SHORT;
  const hlen = (u8at(p + 12) >>> 4) << 2;
  if (hlen < TCP_BASE_HLEN || hlen > len) return R_TCP_BAD_DATA_OFFSET;
  const pseudo = pseudoHeaderSumV4(src, dst, IPPROTO_TCP, len);
  if (addFold(rangeSum(p, len), pseudo) != 0xffff) return R_TCP_BAD_CHECKSUM;
  const flags = u8at(p + 13);
  if (!tcpFlagsValid(flags)) return R_TCP_BAD_FLAGS;
  if (!decodeTcpOptions(p + TCP_BASE_HLEN, p + hlen)) return R_TCP_BAD_OPTION;
  setD(D_SPORT, be16(p));
  setD(D_DPORT, be16(p + 2));
  setD(D_TCP_SEQ, be32(p + 4));
  setD(D_TCP_ACK, be32(p + 8));
  setD(D_TCP_HLEN, hlen);
  setD(D_TCP_FLAGS, flags);
  setD(D_TCP_WINDOW, be16(p + 14));
  setD(D_TCP_URG, be16(p + 18));
  setPayload(p + hlen, len - hlen);
  setD(D_KIND, KIND_TCP);
  return R_OK;
}

/** SYN with FIN or RST is never legitimate, and a segment must carry at
 *  least one of the six classic control bits (FIN..URG). */
function tcpFlagsValid(flags: u32): bool {
  if ((flags & TCP_SYN) != 0 && (flags & (TCP_FIN | TCP_RST)) != 0) return false;
  return (flags & 0x3f) != 0;
}

/** Parse the options in [p, end); write defaults first so absent options read
 *  as absent. Unknown kinds are skipped by their length. */
function decodeTcpOptions(p: u32, end: u32): bool {
  setD(D_OPT_MSS, 0);
  setD(D_OPT_WSCALE, 0xff);
  setD(D_OPT_SACK_OK, 0);
  setD(D_OPT_TS, 0);
  setD(D_OPT_TSVAL, 0);
  setD(D_OPT_TSECR, 0);
  setD(D_OPT_SACK_COUNT, 0);
  while (p < end) {
    const kind = u8at(p);
    if (kind == 0) return true;
    if (kind == 1) {
      p++;
      continue;
    }
    if (end - p < 2) return false;
    const len = u8at(p + 1);
    if (len < 2 || len > end - p) return false;
    if (!decodeTcpOption(kind, p, len)) return false;
    p += len;
  }
  return true;
}

/** One length-bearing option; false when its length is wrong for its kind. */
function decodeTcpOption(kind: u32, p: u32, len: u32): bool {
  switch (kind) {
    case 2: // MSS
      if (len != 4) return false;
      setD(D_OPT_MSS, be16(p + 2));
      return true;
    case 3: // window scale
      if (len != 3) return false;
      setD(D_OPT_WSCALE, u8at(p + 2));
      return true;
    case 4: // SACK permitted
      if (len != 2) return false;
      setD(D_OPT_SACK_OK, 1);
      return true;
    case 5: {
      // SACK: 1..4 blocks of two sequence numbers (40 option bytes hold 4 at most).
      if (len < 10 || ((len - 2) & 7) != 0) return false;
      const count = (len - 2) >>> 3;
      setD(D_OPT_SACK_COUNT, count);
      for (let i: u32 = 0; i < count; i++) {
        setD(D_OPT_SACK + 2 * i, be32(p + 2 + 8 * i));
        setD(D_OPT_SACK + 2 * i + 1, be32(p + 6 + 8 * i));
      }
      return true;
    }
    case 8: // timestamps
      if (len != 10) return false;
      setD(D_OPT_TS, 1);
      setD(D_OPT_TSVAL, be32(p + 2));
      setD(D_OPT_TSECR, be32(p + 6));
      return true;
  }
  return true;
}

// ---- Encode ----------------------------------------------------------------
//
// Option layout (every piece a multiple of 4, so no trailing padding is needed
// and the 32-bit fields stay aligned, as Linux and BSD lay them out):
//   MSS                      02 04 mm mm
//   SACK-permitted + TS      04 02 08 0a <tsval> <tsecr>
//   TS alone                 01 01 08 0a <tsval> <tsecr>
//   SACK-permitted alone     01 01 04 02
//   window scale             01 03 03 ss
//   SACK blocks              01 01 05 <2+8n> <left right>*n
// SACK blocks that do not fit in the 40 option bytes are left out (the first
// block, the most recent one by RFC 2018, is always kept).

/** OPT_WSCALE holds the shift, or 0xff (in its low byte) to leave the option out. */
// @ts-ignore: decorator
@inline function wantWindowScale(): bool {
  return (req(E_OPT_WSCALE) & 0xff) != 0xff;
}

/** Option bytes before the SACK blocks. At most 4 + 12 + 4 = 20. */
function fixedOptionsLen(): u32 {
  let n: u32 = 0;
  if (req(E_OPT_MSS) != 0) n += 4;
  if (req(E_OPT_TS) != 0) n += 12;
  else if (req(E_OPT_SACK_OK) != 0) n += 4;
  if (wantWindowScale()) n += 4;
  return n;
}

/** SACK blocks to send: the count asked for (at most 4), cut to what fits. */
function sackBlocks(fixedLen: u32): u32 {
  const wanted = min<u32>(req(E_OPT_SACK_COUNT), 4);
  const fit = (TCP_MAX_OPTIONS - fixedLen - 4) >>> 3;
  return min<u32>(wanted, fit);
}

/** Length of the TCP header the request describes. */
export function tcpHeaderLen(): u32 {
  const fixed = fixedOptionsLen();
  const blocks = sackBlocks(fixed);
  return TCP_BASE_HLEN + fixed + (blocks != 0 ? 4 + 8 * blocks : 0);
}

function writeTcpOptions(p: u32): void {
  if (req(E_OPT_MSS) != 0) {
    put16(p, 0x0204);
    put16(p + 2, req(E_OPT_MSS));
    p += 4;
  }
  if (req(E_OPT_TS) != 0) {
    put16(p, req(E_OPT_SACK_OK) != 0 ? 0x0402 : 0x0101);
    put16(p + 2, 0x080a);
    put32(p + 4, req(E_OPT_TSVAL));
    put32(p + 8, req(E_OPT_TSECR));
    p += 12;
  } else if (req(E_OPT_SACK_OK) != 0) {
    put32(p, 0x01010402);
    p += 4;
  }
  if (wantWindowScale()) {
    put32(p, 0x01030300 | (req(E_OPT_WSCALE) & 0xff));
    p += 4;
  }
  const blocks = sackBlocks(fixedOptionsLen());
  if (blocks != 0) {
    put32(p, 0x01010500 | (2 + 8 * blocks));
    p += 4;
    for (let i: u32 = 0; i < 2 * blocks; i++) {
      put32(p, req(E_OPT_SACK + i));
      p += 4;
    }
  }
}

/** A MAC stored as HI (first 2 bytes) and LO (last 4 bytes) request words. */
// @ts-ignore: decorator
@inline function putMac(p: u32, hiWord: u32, loWord: u32): void {
  put16(p, req(hiWord));
  put32(p + 2, req(loWord));
}

function writeEthernet(slot: u32, type: u32): void {
  putMac(slot, E_DST_MAC_HI, E_DST_MAC_LO);
  putMac(slot + 6, E_SRC_MAC_HI, E_SRC_MAC_LO);
  put16(slot + 12, type);
}

/** IPv4 header without options, header checksum filled in. */
function writeIpv4(ip: u32, proto: u32, total: u32): void {
  put8(ip, 0x45);
  put8(ip + 1, req(E_IP_TOS));
  put16(ip + 2, total);
  put16(ip + 4, req(E_IP_ID));
  put16(ip + 6, req(E_IP_FRAG));
  put8(ip + 8, req(E_IP_TTL));
  put8(ip + 9, proto);
  put16(ip + 10, 0);
  put32(ip + 12, req(E_IP_SRC));
  put32(ip + 16, req(E_IP_DST));
  put16(ip + 10, ~rangeSumScalar(ip, IPV4_HLEN) & 0xffff);
}

/** Checks that an IPv4 frame with `l4len` bytes after the IP header fits both
 *  the 65535-byte datagram limit and memory; returns the IP total length or 0. */
function ipTotalFor(slot: u32, l4len: u64): u32 {
  const total = <u64>IPV4_HLEN + l4len;
  if (total > 65535) return 0;
  if (!inMemory(slot, ETH_HLEN + <u32>total)) return 0;
  return <u32>total;
}

/** Transport checksum over [p, p+len) with the IPv4 pseudo-header. */
// @ts-ignore: decorator
@inline function transportChecksum(p: u32, len: u32, proto: u32): u32 {
  const pseudo = pseudoHeaderSumV4(req(E_IP_SRC), req(E_IP_DST), proto, len);
  return ~addFold(rangeSum(p, len), pseudo) & 0xffff;
}

export function encodeTcp(slot: u32, payloadLen: u32): u32 {
  const hlen = tcpHeaderLen();
  const total = ipTotalFor(slot, <u64>hlen + <u64>payloadLen);
  if (total == 0) return 0;
  const ip = slot + ETH_HLEN;
  const p = ip + IPV4_HLEN;
  writeEthernet(slot, ETHERTYPE_IPV4);
  writeIpv4(ip, IPPROTO_TCP, total);
  put16(p, req(E_SPORT));
  put16(p + 2, req(E_DPORT));
  put32(p + 4, req(E_TCP_SEQ));
  put32(p + 8, req(E_TCP_ACK));
  put8(p + 12, (hlen >>> 2) << 4);
  put8(p + 13, req(E_TCP_FLAGS));
  put16(p + 14, req(E_TCP_WINDOW));
  put16(p + 16, 0);
  put16(p + 18, req(E_TCP_URG));
  writeTcpOptions(p + TCP_BASE_HLEN);
  put16(p + 16, transportChecksum(p, total - IPV4_HLEN, IPPROTO_TCP));
  return ETH_HLEN + total;
}

export function encodeUdp(slot: u32, payloadLen: u32): u32 {
  const total = ipTotalFor(slot, <u64>UDP_HLEN + <u64>payloadLen);
  if (total == 0) return 0;
  const ip = slot + ETH_HLEN;
  const p = ip + IPV4_HLEN;
  const ulen = total - IPV4_HLEN;
  writeEthernet(slot, ETHERTYPE_IPV4);
  writeIpv4(ip, IPPROTO_UDP, total);
  put16(p, req(E_SPORT));
  put16(p + 2, req(E_DPORT));
  put16(p + 4, ulen);
  put16(p + 6, 0);
  // A computed 0 is sent as 0xffff: 0 on the wire means "no checksum".
  const sum = transportChecksum(p, ulen, IPPROTO_UDP);
  put16(p + 6, sum == 0 ? 0xffff : sum);
  return ETH_HLEN + total;
}

export function encodeIcmp(slot: u32, payloadLen: u32): u32 {
  const total = ipTotalFor(slot, <u64>ICMP_HLEN + <u64>payloadLen);
  if (total == 0) return 0;
  const ip = slot + ETH_HLEN;
  const p = ip + IPV4_HLEN;
  writeEthernet(slot, ETHERTYPE_IPV4);
  writeIpv4(ip, IPPROTO_ICMP, total);
  put8(p, req(E_ICMP_TYPE));
  put8(p + 1, req(E_ICMP_CODE));
  put16(p + 2, 0);
  put32(p + 4, req(E_ICMP_REST));
  put16(p + 2, ~rangeSum(p, total - IPV4_HLEN) & 0xffff);
  return ETH_HLEN + total;
}

export function encodeIpv4(slot: u32, payloadLen: u32): u32 {
  const total = ipTotalFor(slot, <u64>payloadLen);
  if (total == 0) return 0;
  writeEthernet(slot, ETHERTYPE_IPV4);
  writeIpv4(slot + ETH_HLEN, req(E_IP_PROTO), total);
  return ETH_HLEN + total;
}

export function encodeArp(slot: u32): u32 {
  if (!inMemory(slot, ARP_PADDED_LEN)) return 0;
  const a = slot + ETH_HLEN;
  writeEthernet(slot, ETHERTYPE_ARP);
  put16(a, 1);
  put16(a + 2, ETHERTYPE_IPV4);
  put8(a + 4, 6);
  put8(a + 5, 4);
  put16(a + 6, req(E_ARP_OP));
  putMac(a + 8, E_ARP_SHA_HI, E_ARP_SHA_LO);
  put32(a + 14, req(E_ARP_SPA));
  putMac(a + 18, E_ARP_THA_HI, E_ARP_THA_LO);
  put32(a + 24, req(E_ARP_TPA));
  memory.fill(slot + ARP_FRAME_LEN, 0, ARP_PADDED_LEN - ARP_FRAME_LEN);
  return ARP_PADDED_LEN;
}
