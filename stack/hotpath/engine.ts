// The hot-path interface. Two engines implement it over the same byte layout
// (layout.ts): `wasm` (assembly/ compiled by asc) and `ts` (pure TypeScript).
// The stack is written against this interface only, so every stack instance can
// run on either engine and property tests can compare them call for call.
//
// Conventions
// - Offsets and lengths are byte positions in the engine's linear memory.
// - Calls never throw and never trap, whatever the bytes or arguments: a bad
//   offset/length (outside memory, negative) yields a rejection code, 0, or a
//   documented sentinel, never an exception.
// - u32 values are returned as non-negative JS numbers (>>> 0 applied).

import type { Reason } from './layout.js';

export type EngineName = 'wasm' | 'ts';

export interface HotPath {
  readonly name: EngineName;
  /** The whole linear memory, fixed size for the engine's life (views never detach). */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** Byte view over the whole memory. */
  readonly bytes: Uint8Array;
  /** DECODED_WORDS u32 view at DECODED_BASE (index with layout `D`). */
  readonly decoded: Uint32Array;
  /** ENCODE_WORDS u32 view at ENCODE_BASE (index with layout `E`). */
  readonly request: Uint32Array;
  /** FAST_WORDS u32 view at FAST_BASE: the TCP fast path's configuration and
   *  results (index with layout `F`). */
  readonly fast: Uint32Array;

  // ---- Internet checksum (RFC 1071) -------------------------------------
  /** Ones'-complement sum of [off, off+len) folded to 16 bits and added to
   *  `initial` (a previous folded sum), not complemented. Odd lengths pad a zero byte. */
  sum16(off: number, len: number, initial: number): number;
  /** The checksum to store in a header: ~fold(sum16(off,len,initial)) & 0xffff.
   *  Over data that includes a correct checksum field it returns 0. Uses SIMD
   *  for long buffers in the wasm engine. */
  checksum(off: number, len: number, initial: number): number;
  /** Same result as checksum, always by the scalar loop (for benchmarks and tests). */
  checksumScalar(off: number, len: number, initial: number): number;
  /** Folded sum of the IPv4 pseudo-header (src, dst, zero, proto, length). */
  pseudoHeaderSumV4(src: number, dst: number, proto: number, length: number): number;
  /** RFC 1624 eqn. 3: new checksum after a 16-bit field changes from oldWord to newWord. */
  checksumUpdate16(oldChecksum: number, oldWord: number, newWord: number): number;

  // ---- Decode and validate ----------------------------------------------
  /** Decode the Ethernet frame at [off, off+len): validate every header and
   *  checksum down to the transport layer, fill the decoded record, return the
   *  reason (0 = accepted). IPv4 fragments stop at IPv4 (Kind.Ipv4Fragment). */
  decode(off: number, len: number): Reason;
  /** Decode a transport header and payload that are not inside an Ethernet frame
   *  (a reassembled datagram): proto is the IP protocol; src/dst feed the
   *  pseudo-header. Fills the same record from ICMP_TYPE / SPORT on. */
  decodeTransport(proto: number, off: number, len: number, src: number, dst: number): Reason;

  // ---- Encode -----------------------------------------------------------
  // Each encoder reads the request record, writes headers at `slot` with every
  // checksum filled in, and returns the frame length (Ethernet included).
  // The payload must already be in place at the offset named.
  /** Length of the TCP header the request describes (20 + options, padded to 4). */
  tcpHeaderLen(): number;
  /** Payload at slot + 14 + 20 + tcpHeaderLen(). */
  encodeTcp(slot: number, payloadLen: number): number;
  /** Payload at slot + 42. */
  encodeUdp(slot: number, payloadLen: number): number;
  /** ICMP header (type, code, rest) then payload at slot + 42. */
  encodeIcmp(slot: number, payloadLen: number): number;
  /** IPv4 with E.IP_PROTO and any payload at slot + 34 (fragments, raw protocols). */
  encodeIpv4(slot: number, payloadLen: number): number;
  /** An ARP frame padded to 60 bytes. */
  encodeArp(slot: number): number;

  // ---- The TCP fast path (one call per segment) ---------------------------
  // Both work over the control blocks the stack keeps in this memory (layout
  // T, configured in F by the TCP layer that claims the engine) and trust
  // them as the stack's own state; frames are untrusted.
  /** Decode the frame at [off, off+len) (as decode() does) and, for an in-order
   *  segment or new ACK of an ESTABLISHED connection that needs nothing else
   *  (header prediction), process it whole. Returns Slow.FAST (0) with FA
   *  action bits, or the Slow reason it was left to the stack (then only the
   *  decoded record was written). `now`: the stack's clock, ms. */
  tcpInput(off: number, len: number, now: number): number;
  /** Build up to `max` (<= BURST_MAX) data segments of control block `index`
   *  that the windows, Nagle and SWS avoidance allow, as the stack's own
   *  output would, with the link and IPv4 words of the encode request (one
   *  route for all; E.IP_ID moves on per frame). Returns the count; slots,
   *  lengths and why it stopped are in F.BURST_*. */
  tcpSendBurst(index: number, max: number, now: number): number;

  // ---- Sequence numbers (mod 2^32) --------------------------------------
  // (TCP calls the TypeScript twins in ts-seq.ts directly: a call into Wasm
  // costs more than the comparison. Both engines keep them, held to the same
  // answers by the agreement tests, for work that moves into the engine whole.)
  seqLt(a: number, b: number): boolean;
  seqLe(a: number, b: number): boolean;
  seqGt(a: number, b: number): boolean;
  seqGe(a: number, b: number): boolean;
  /** (a + n) mod 2^32, as u32. */
  seqAdd(a: number, n: number): number;
  /** a - b as a signed 32-bit number. */
  seqDiff(a: number, b: number): number;
  /** RFC 9293 3.10.7.4 acceptability of a segment (seq, segLen) against
   *  (rcvNxt, rcvWnd), all four cases of the table. */
  segmentAcceptable(seq: number, segLen: number, rcvNxt: number, rcvWnd: number): boolean;
  /** Peer's window in bytes: raw << shift. */
  windowScaled(raw: number, shift: number): number;
  /** Raw window field for `bytes` of space with our shift: min(bytes >> shift, 65535). */
  windowRaw(bytes: number, shift: number): number;

  // ---- RFC 6298 in integer arithmetic -----------------------------------
  // srtt8 = SRTT * 8, rttvar4 = RTTVAR * 4 (in clock ticks, e.g. ms); srtt8 = 0 means no sample yet.
  /** New srtt8 after measurement r. */
  rttSrtt8(srtt8: number, rttvar4: number, r: number): number;
  /** New rttvar4 after measurement r. */
  rttRttvar4(srtt8: number, rttvar4: number, r: number): number;
  /** RTO = SRTT + max(G, 4 * RTTVAR), clamped to [min, max]. */
  rto(srtt8: number, rttvar4: number, granularity: number, min: number, max: number): number;

  // ---- Arena: fixed-size chunks with an owner tag each --------------------
  // Owner tag: kind (OwnerKind, high 8 bits) << 24 | id (low 24 bits); 0 = free.
  /** Number of chunks the memory holds (set up at construction). */
  readonly chunkCount: number;
  /** Offset of the first chunk. */
  readonly chunksBase: number;
  /** O(1): a chunk for owner, or 0 when the arena is full or owner is 0. */
  alloc(owner: number): number;
  /** O(1): 0 = freed, 1 = double free, 2 = not a chunk of this arena. Bad frees are
   *  counted and never corrupt the arena. */
  free(off: number): number;
  /** Owner tag of the chunk at off (0 when free or not a chunk). */
  ownerOf(off: number): number;
  /** Re-tag an allocated chunk (e.g. an RX slot adopted by a connection). Returns false if not allocated. */
  setOwner(off: number, owner: number): boolean;
  chunksInUse(): number;
  /** Chunks in use by owner kind (0..255). */
  chunksByKind(kind: number): number;
  /** Rejected frees since construction. */
  badFrees(): number;
}

/** Owner kinds of arena chunks. */
export const enum OwnerKind {
  Free = 0,
  Rx = 1, // a received frame slot, recycled after input
  Tx = 2, // a frame being built or queued to the device
  TcpSend = 3, // bytes the application wrote, not yet acknowledged
  TcpRecv = 4, // in-order bytes waiting for the application
  TcpReassembly = 5, // out-of-order segments
  UdpQueue = 6,
  Fragments = 7, // IPv4 reassembly
  ArpQueue = 8, // frames waiting for address resolution
  App = 9, // application buffers (e.g. the relay)
  Device = 10, // device rings in the tender
  Table = 11, // fixed tables made at boot: TCP control blocks and their lookup, timer positions
  KindCount = 12,
}

export const OWNER_KIND_NAMES: readonly string[] = [
  'free',
  'rx',
  'tx',
  'tcpSend',
  'tcpRecv',
  'tcpReassembly',
  'udpQueue',
  'fragments',
  'arpQueue',
  'app',
  'device',
  'table',
];

export function ownerTag(kind: OwnerKind, id: number): number {
  return ((kind << 24) | (id & 0xffffff)) >>> 0;
}

export function ownerKindOf(tag: number): number {
  return tag >>> 24;
}
