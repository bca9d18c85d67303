// Segmentation offload on the TAP device (IFF_VNET_HDR): every frame to and
// from the kernel carries a virtio-net header, and the guest's consecutive
// TCP segments of one flow leave as one super-segment that the kernel
// segments itself, or hands whole to a local socket (virtio-net's
// GSO_TCPV4, as a NIC's TSO). One write(2) then carries up to 64 KB instead
// of one MSS: the syscall per frame was what bounded the guest's sending.
//
// The stack still makes MSS-sized segments with their checksums; the device
// thread joins a run of them when the kernel's rules hold (Linux
// tcp_gso_segment, virtio_net_hdr_to_skb): IPv4 without options or
// fragmentation, TCP with ACK and at most PSH, every segment but the last
// carrying exactly gso_size bytes, consecutive sequence numbers, and the
// same addresses, ports, acknowledgment, window and options. The joined
// frame takes the first segment's headers with the last one's flags (the
// kernel gives PSH to the last segment only), its IPv4 total length and
// checksum redone, and in the TCP checksum field the pseudo-header's sum
// (CHECKSUM_PARTIAL: the kernel completes each segment's checksum). Any other
// frame leaves alone behind a header of zeros.
//
// Functions over plain byte arrays, so that the writer thread uses them
// without any per-frame allocation and tests can check them against frames
// the stack really makes.

/** sizeof(struct virtio_net_hdr) (TUNSETVNETHDRSZ's default). */
export const VNET_HDR_LEN = 10;
const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
const VIRTIO_NET_HDR_GSO_NONE = 0;
const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
const ETH = 14;
const IP_HDR = 20;
const TCP_AT = ETH + IP_HDR;
const ACK = 0x10;
const PSH = 0x08;
/** Largest IPv4 datagram: the super-segment's total length must fit 16 bits. */
const MAX_IP_LENGTH = 65535;
/** Room for one joined frame, its virtio-net header included. */
export const SUPER_FRAME_BYTES = VNET_HDR_LEN + ETH + MAX_IP_LENGTH;

const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;
const u32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

/** The TCP payload length of a frame that may join a super-segment, or -1. */
export function joinablePayload(f: Uint8Array, len: number): number {
  if (len < TCP_AT + 20 || f[12] !== 0x08 || f[13] !== 0x00) return -1; // IPv4, no VLAN tag
  if (f[ETH] !== 0x45 || f[ETH + 9] !== 6) return -1; // no IP options; TCP
  if ((u16(f, ETH + 6) & 0x3fff) !== 0) return -1; // not a fragment
  const total = u16(f, ETH + 2);
  if (ETH + total !== len) return -1; // no Ethernet padding (a short frame)
  const doff = (f[TCP_AT + 12]! >> 4) * 4;
  if (doff < 20 || (f[TCP_AT + 13]! & ~PSH) !== ACK || (f[TCP_AT + 12]! & 0x0f) !== 0) return -1;
  const payload = total - IP_HDR - doff;
  return payload > 0 ? payload : -1;
}

/** Whether `b` continues `a`: same flow, headers and options, `b`'s sequence
 *  number right after `a`'s `aPayload` bytes. */
export function continues(a: Uint8Array, aPayload: number, b: Uint8Array): boolean {
  const doff = (a[TCP_AT + 12]! >> 4) * 4;
  if (((b[TCP_AT + 12]! >> 4) * 4) !== doff) return false;
  for (let i = 0; i < 12; i++) if (a[i] !== b[i]) return false; // MACs
  for (let i = ETH + 12; i < TCP_AT + 4; i++) if (a[i] !== b[i]) return false; // addresses, ports
  for (let i = TCP_AT + 8; i < TCP_AT + 12; i++) if (a[i] !== b[i]) return false; // acknowledgment
  for (let i = TCP_AT + 14; i < TCP_AT + 16; i++) if (a[i] !== b[i]) return false; // window
  for (let i = TCP_AT + 18; i < TCP_AT + doff; i++) if (a[i] !== b[i]) return false; // urgent pointer, options
  if ((a[TCP_AT + 13]! & PSH) !== 0) return false; // PSH ends a run
  return ((u32(a, TCP_AT + 4) + aPayload) >>> 0) === u32(b, TCP_AT + 4);
}

/** Write the virtio-net header for a frame sent as it is. */
function plainHeader(out: Uint8Array): void {
  out.fill(0, 0, VNET_HDR_LEN);
  out[1] = VIRTIO_NET_HDR_GSO_NONE;
}

function ipChecksum(b: Uint8Array, at: number): number {
  let sum = 0;
  for (let i = 0; i < IP_HDR; i += 2) if (i !== 10) sum += u16(b, at + i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * Join `frames` (each joinable, each continuing the one before, all but the
 * last carrying `gsoSize` bytes) into `out`, behind its virtio-net header.
 * Returns the bytes to write.
 */
export function joinSegments(out: Uint8Array, frames: readonly Uint8Array[], lengths: readonly number[], gsoSize: number): number {
  const first = frames[0]!;
  const last = frames[frames.length - 1]!;
  const doff = (first[TCP_AT + 12]! >> 4) * 4;
  const headers = TCP_AT + doff;
  let at = VNET_HDR_LEN;
  out.set(first.subarray(0, headers), at);
  at += headers;
  for (let i = 0; i < frames.length; i++) {
    out.set(frames[i]!.subarray(headers, lengths[i]!), at);
    at += lengths[i]! - headers;
  }
  const frame = out.subarray(VNET_HDR_LEN);
  const ipLength = at - VNET_HDR_LEN - ETH;
  frame[ETH + 2] = ipLength >> 8;
  frame[ETH + 3] = ipLength & 0xff;
  const ipSum = ipChecksum(frame, ETH);
  frame[ETH + 10] = ipSum >> 8;
  frame[ETH + 11] = ipSum & 0xff;
  frame[TCP_AT + 13] = last[TCP_AT + 13]!;
  // CHECKSUM_PARTIAL: the pseudo-header's sum, folded, not complemented.
  let sum = u16(frame, ETH + 12) + u16(frame, ETH + 14) + u16(frame, ETH + 16) + u16(frame, ETH + 18) + 6 + (ipLength - IP_HDR);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  frame[TCP_AT + 16] = sum >> 8;
  frame[TCP_AT + 17] = sum & 0xff;
  // struct virtio_net_hdr, little-endian (the legacy header is the host's order).
  out[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  out[1] = VIRTIO_NET_HDR_GSO_TCPV4;
  out[2] = headers & 0xff;
  out[3] = headers >> 8;
  out[4] = gsoSize & 0xff;
  out[5] = gsoSize >> 8;
  out[6] = TCP_AT & 0xff;
  out[7] = TCP_AT >> 8;
  out[8] = 16; // csum_offset: TCP's checksum field
  out[9] = 0;
  return at;
}

/** Whether another `payload` bytes keep the joined datagram within IPv4's 64 KB. */
function fitsSuper(headerBytes: number, payloadSoFar: number, payload: number): boolean {
  return headerBytes - ETH + payloadSoFar + payload <= MAX_IP_LENGTH;
}

/**
 * The writer's side: from the frames waiting (frame 0 first), the run that
 * can leave as one write, built into `out` behind its virtio-net header.
 * One instance per writer, reused for every write (nothing allocated per
 * frame); the figures of the last build stay readable until the next.
 */
export class SegmentJoiner {
  readonly out = new Uint8Array(SUPER_FRAME_BYTES);
  /** Of the last build: frames taken, their bytes, and the bytes to write. */
  frames = 0;
  bytes = 0;
  writeBytes = 0;
  private readonly run: Uint8Array[] = [];
  private readonly lengths: number[] = [];

  /** `frameAt(i)` and `lengthAt(i)` give waiting frame i of `count` (each
   *  at most `maxFrame` bytes, the first already checked). */
  constructor(
    private readonly frameAt: (i: number) => Uint8Array,
    private readonly lengthAt: (i: number) => number,
    private readonly maxFrame: number,
  ) {}

  build(count: number): void {
    const { run, lengths } = this;
    const first = this.frameAt(0);
    const len = this.lengthAt(0);
    const gsoSize = joinablePayload(first, len);
    run.length = 0;
    lengths.length = 0;
    run.push(first);
    lengths.push(len);
    this.bytes = len;
    let payload = gsoSize;
    let prevPayload = gsoSize;
    for (let i = 1; gsoSize > 0 && i < count && prevPayload === gsoSize; i++) {
      const next = this.frameAt(i);
      const nextLen = this.lengthAt(i);
      const nextPayload = nextLen >= ETH && nextLen <= this.maxFrame ? joinablePayload(next, nextLen) : -1;
      if (nextPayload <= 0 || nextPayload > gsoSize || !continues(run[run.length - 1]!, prevPayload, next) || !fitsSuper(len - gsoSize, payload, nextPayload)) break;
      run.push(next);
      lengths.push(nextLen);
      this.bytes += nextLen;
      payload += nextPayload;
      prevPayload = nextPayload;
    }
    this.frames = run.length;
    if (run.length > 1) {
      this.writeBytes = joinSegments(this.out, run, lengths, gsoSize);
      return;
    }
    plainHeader(this.out);
    this.out.set(first.subarray(0, len), VNET_HDR_LEN);
    this.writeBytes = VNET_HDR_LEN + len;
  }
}

// ---- Receiving: the kernel's super-segments taken apart --------------------
//
// With TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4) the kernel may hand the TAP a
// TCP super-segment of up to 64 KB (its own TSO, or GRO) whose checksum it
// left partial, and single frames with a partial checksum. The stack takes
// frames of at most one MTU with their checksums done, so the reader thread
// does what a NIC does on the way out: one frame per gso_size bytes, each
// with the first one's headers, its sequence number, IPv4 identification
// and lengths advanced, FIN and PSH only on the last, CWR only on the first,
// and both checksums computed.

const VIRTIO_NET_HDR_GSO_ECN = 0x80;
const FIN = 0x01;
const CWR = 0x80;

/** One's complement sum of bytes [from, to), added to `sum` (RFC 1071). */
function sumBytes(b: Uint8Array, from: number, to: number, sum: number): number {
  let i = from;
  for (; i + 1 < to; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (i < to) sum += b[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** Finish a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM): the field at
 *  csumStart + csumOffset holds the pseudo-header's sum; the rest is summed
 *  from csumStart to the end. False when the offsets do not fit the frame. */
export function completeChecksum(f: Uint8Array, len: number, vnet: Uint8Array): boolean {
  const start = vnet[6]! | (vnet[7]! << 8);
  const field = start + (vnet[8]! | (vnet[9]! << 8));
  if (field + 2 > len) return false;
  const sum = ~sumBytes(f, start, len, 0) & 0xffff;
  f[field] = sum >> 8;
  f[field + 1] = sum & 0xff;
  return true;
}

export type VnetKind = 'plain' | 'partial' | 'tcp4' | 'unknown';

/** What the kernel's virtio-net header says of the frame behind it. */
export function vnetKind(vnet: Uint8Array): VnetKind {
  const gso = vnet[1]! & ~VIRTIO_NET_HDR_GSO_ECN;
  if (gso === VIRTIO_NET_HDR_GSO_TCPV4) return 'tcp4';
  if (gso !== VIRTIO_NET_HDR_GSO_NONE) return 'unknown';
  return (vnet[0]! & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0 ? 'partial' : 'plain';
}

/** The gso_size of a super-segment's header. */
export function gsoSizeOf(vnet: Uint8Array): number {
  return vnet[4]! | (vnet[5]! << 8);
}

/**
 * Take the TCP/IPv4 super-segment `f` (`len` bytes, a frame with Ethernet
 * header) apart into frames of at most `gsoSize` payload bytes, each written
 * into the buffer `slot(i)` gives (null: no room, the rest is dropped).
 * `publish(i, length)` is called for each frame made. Returns how many
 * frames `f` holds (those made, and those there was no room for), or -1
 * when `f` is not a TCP/IPv4 segment that can be taken apart.
 */
export function splitSegments(
  f: Uint8Array,
  len: number,
  gsoSize: number,
  slot: (i: number) => Uint8Array | null,
  publish: (i: number, length: number) => void,
): number {
  if (len < TCP_AT + 20 || f[12] !== 0x08 || f[13] !== 0x00 || (f[ETH]! >> 4) !== 4 || f[ETH + 9] !== 6) return -1;
  const ihl = (f[ETH]! & 0x0f) * 4;
  const tcp = ETH + ihl;
  const doff = (f[tcp + 12]! >> 4) * 4;
  const headers = tcp + doff;
  if (ihl < 20 || doff < 20 || headers > len || gsoSize <= 0) return -1;
  const payload = len - headers;
  const count = Math.max(1, Math.ceil(payload / gsoSize));
  const id0 = u16(f, ETH + 4);
  const seq0 = u32(f, tcp + 4);
  const flags = f[tcp + 13]!;
  // The pseudo-header's addresses and protocol, the same for every frame.
  const pseudo = sumBytes(f, ETH + 12, ETH + 20, 6);
  for (let i = 0; i < count; i++) {
    const out = slot(i);
    if (out === null) return count;
    const from = headers + i * gsoSize;
    const size = Math.min(gsoSize, len - from);
    const total = ihl + doff + size;
    out.set(f.subarray(0, headers));
    out.set(f.subarray(from, from + size), headers);
    out[ETH + 2] = total >> 8;
    out[ETH + 3] = total & 0xff;
    const id = (id0 + i) & 0xffff;
    out[ETH + 4] = id >> 8;
    out[ETH + 5] = id & 0xff;
    out[ETH + 10] = 0;
    out[ETH + 11] = 0;
    const ipSum = ~sumBytes(out, ETH, tcp, 0) & 0xffff;
    out[ETH + 10] = ipSum >> 8;
    out[ETH + 11] = ipSum & 0xff;
    const seq = (seq0 + i * gsoSize) >>> 0;
    out[tcp + 4] = seq >>> 24;
    out[tcp + 5] = (seq >>> 16) & 0xff;
    out[tcp + 6] = (seq >>> 8) & 0xff;
    out[tcp + 7] = seq & 0xff;
    let fl = flags;
    if (i !== count - 1) fl &= ~(FIN | PSH);
    if (i !== 0) fl &= ~CWR;
    out[tcp + 13] = fl;
    out[tcp + 16] = 0;
    out[tcp + 17] = 0;
    const sum = ~sumBytes(out, tcp, headers + size, pseudo + doff + size) & 0xffff;
    out[tcp + 16] = sum >> 8;
    out[tcp + 17] = sum & 0xff;
    publish(i, headers + size);
  }
  return count;
}
