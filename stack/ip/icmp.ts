// ICMP (RFC 792) as far as a host needs it: echo replies, and the
// destination-unreachable errors transports ask for, rate-limited by a token
// bucket (RFC 1812 4.3.2.8) and never about ICMP errors, broadcasts or
// non-initial fragments (RFC 1122 3.2.2).

import type { HotPath } from '../hotpath/engine.js';
import { D, E, ICMP_HLEN, IPPROTO_ICMP } from '../hotpath/layout.js';
import type { Clock } from '../clock.js';
import type { TransportHandler } from '../layers.js';
import { Drop, type DropCounters } from '../stats.js';

export interface IcmpLimits {
  /** Errors allowed per second on average. */
  icmpRatePerSec: number;
  /** Errors allowed in a burst. */
  icmpBurst: number;
}

export const ICMP_DEFAULTS: IcmpLimits = { icmpRatePerSec: 10, icmpBurst: 10 };

/** What ICMP needs from IPv4 to send. */
export interface IcmpLower {
  readonly localAddress: number;
  /** Where the ICMP header starts in a TX slot (TransportLower.transportAt). */
  readonly transportAt: number;
  maxTransportLength(dst: number): number;
  allocTx(): number;
  isBroadcast(address: number): boolean;
  /** ICMP words of the encode record set, payload at slot + transportAt + ICMP_HLEN; consumes the slot. */
  sendIcmp(slot: number, payloadLen: number, dst: number): boolean;
}

const ECHO_REPLY = 0;
const DEST_UNREACHABLE = 3;
const ECHO_REQUEST = 8;
const TIME_EXCEEDED = 11;

/** An ICMP error about a datagram we sent (RFC 792: its IPv4 header and
 *  first 8 transport bytes are quoted), for the transport that sent it. */
export interface IcmpErrorReport {
  type: number;
  code: number;
  localAddr: number;
  remoteAddr: number;
  localPort: number;
  remotePort: number;
  /** The quoted transport header's bytes 4..7 (TCP: the sequence number). */
  seq: number;
}

export interface IcmpErrorSink {
  icmpError(report: IcmpErrorReport): void;
}
/** An error quotes the offending datagram up to a 576-byte error (RFC 1812 4.3.2.3). */
const MAX_QUOTE = 576 - 20 - ICMP_HLEN;
const IP_OFFSET_MASK = 0x1fff;

function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** ICMP types that are errors (an error is never sent about one of these). */
function isErrorType(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

export class Icmp implements TransportHandler {
  echoReplies = 0;
  unreachables = 0;
  /** Destination-unreachable and time-exceeded messages handed to a transport. */
  errorsIn = 0;

  private readonly sinks = new Map<number, IcmpErrorSink>();

  private tokens: number;
  private refilledAt: number;

  constructor(
    private readonly hot: HotPath,
    private readonly ip: IcmpLower,
    private readonly clock: Clock,
    private readonly drops: DropCounters,
    private readonly limits: IcmpLimits,
  ) {
    this.tokens = limits.icmpBurst;
    this.refilledAt = clock.now();
  }

  /** The transport of IP protocol `proto` hears the errors about what it sent. */
  registerErrorSink(proto: number, sink: IcmpErrorSink): void {
    this.sinks.set(proto, sink);
  }

  /** An ICMP message for us in hot.decoded: answer echo requests, pass errors
   *  about our datagrams to their transport, ignore the rest. */
  input(): void {
    const d = this.hot.decoded;
    const type = d[D.ICMP_TYPE]!;
    if (d[D.IP_DST] !== this.ip.localAddress) return this.drops.count(Drop.IcmpIgnored);
    if (type === DEST_UNREACHABLE || type === TIME_EXCEEDED) return this.errorArrives(type, d[D.ICMP_CODE]!, d[D.PAYLOAD_OFF]!, d[D.PAYLOAD_LEN]!);
    if (type !== ECHO_REQUEST) return this.drops.count(Drop.IcmpIgnored);
    const src = d[D.IP_SRC]!;
    const len = d[D.PAYLOAD_LEN]!;
    if (len + ICMP_HLEN > this.ip.maxTransportLength(src)) return this.drops.count(Drop.IcmpTooBig);
    const slot = this.ip.allocTx();
    if (slot === 0) return this.drops.count(Drop.TxArenaFull);
    const off = d[D.PAYLOAD_OFF]!;
    this.hot.bytes.copyWithin(slot + this.ip.transportAt + ICMP_HLEN, off, off + len);
    const req = this.hot.request;
    req[E.ICMP_TYPE] = ECHO_REPLY;
    req[E.ICMP_CODE] = 0;
    req[E.ICMP_REST] = d[D.ICMP_REST]!; // identifier and sequence number
    if (this.ip.sendIcmp(slot, len, src)) this.echoReplies++;
  }

  /** An error quoting [off, off + len): a datagram we sent, its IPv4 header
   *  and at least 8 bytes of its transport header, from our address; anything
   *  else is ignored (counted). The transport checks the rest (RFC 5927). */
  private errorArrives(type: number, code: number, off: number, len: number): void {
    const b = this.hot.bytes;
    const ihl = (b[off]! & 0x0f) * 4;
    const sink = len >= 28 ? this.sinks.get(b[off + 9]!) : undefined;
    if (sink === undefined || b[off]! >> 4 !== 4 || ihl < 20 || len < ihl + 8 || u32(b, off + 12) !== this.ip.localAddress) {
      return this.drops.count(Drop.IcmpIgnored);
    }
    const t = off + ihl;
    this.errorsIn++;
    sink.icmpError({
      type,
      code,
      localAddr: u32(b, off + 12),
      remoteAddr: u32(b, off + 16),
      localPort: (b[t]! << 8) | b[t + 1]!,
      remotePort: (b[t + 2]! << 8) | b[t + 3]!,
      seq: u32(b, t + 4),
    });
  }

  /** Destination unreachable (code 2: protocol, 3: port) about the datagram
   *  whose IPv4 header is at ipOff, `length` bytes in all (IcmpLower's caller
   *  describes it: ICMP reads no shared record). */
  sendUnreachable(code: number, ipOff: number, length: number, src: number, dst: number, frag: number): void {
    if (!this.errorAllowed(ipOff, length, src, dst, frag)) return;
    if (!this.takeToken()) return this.drops.count(Drop.IcmpRateLimited);
    const quote = Math.min(length, MAX_QUOTE, this.ip.maxTransportLength(src) - ICMP_HLEN);
    const slot = this.ip.allocTx();
    if (slot === 0) return this.drops.count(Drop.TxArenaFull);
    this.hot.bytes.copyWithin(slot + this.ip.transportAt + ICMP_HLEN, ipOff, ipOff + quote);
    const req = this.hot.request;
    req[E.ICMP_TYPE] = DEST_UNREACHABLE;
    req[E.ICMP_CODE] = code;
    req[E.ICMP_REST] = 0;
    if (this.ip.sendIcmp(slot, quote, src)) this.unreachables++;
  }

  /** RFC 1122 3.2.2: no error about an error, a broadcast, a non-initial fragment,
   *  or a datagram without a unicast source. */
  private errorAllowed(ipOff: number, length: number, src: number, dst: number, frag: number): boolean {
    if (src === 0 || this.ip.isBroadcast(src) || this.ip.isBroadcast(dst)) return false;
    if ((frag & IP_OFFSET_MASK) !== 0) return false;
    const bytes = this.hot.bytes;
    const hlen = (bytes[ipOff]! & 0x0f) * 4;
    if (bytes[ipOff + 9] === IPPROTO_ICMP && length > hlen) return !isErrorType(bytes[ipOff + hlen]!);
    return true;
  }

  /** Token bucket, refilled lazily from the clock (no timer needed). */
  private takeToken(): boolean {
    const now = this.clock.now();
    const { icmpRatePerSec: rate, icmpBurst: burst } = this.limits;
    this.tokens = Math.min(burst, this.tokens + ((now - this.refilledAt) * rate) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
