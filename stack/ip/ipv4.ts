// IPv4 (RFC 791) for a host on one Ethernet interface: accepts datagrams for
// our address and the broadcasts, reassembles fragments, dispatches to the
// transport registered for the protocol, and sends for transports
// (TransportLower): route to the destination or the gateway, fill the IPv4 and
// Ethernet words of the encode record, encode, then send or hand to ARP.
// Outgoing datagrams are never fragmented: transports size them with
// maxTransportLength().

import type { HotPath } from '../hotpath/engine.js';
import { OwnerKind, ownerTag } from '../hotpath/engine.js';
import { CHUNK_SIZE, D, E, ETH_HLEN, F, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_HLEN, Kind, Reason } from '../hotpath/layout.js';
import type { Clock } from '../clock.js';
import type { TransportHandler, TransportLower } from '../layers.js';
import type { TimerQueue } from '../time/timers.js';
import { IPV4_BROADCAST, prefixMask, sameSubnet, subnetBroadcast } from '../address.js';
import { Drop, type DropCounters } from '../stats.js';
import type { Ethernet } from '../link/ethernet.js';
import type { Arp } from '../link/arp.js';
import { Icmp, type IcmpLimits, type IcmpLower } from './icmp.js';
import { Fragments, type FragmentLimits, type ReassemblyTarget } from './fragments.js';

export interface Ipv4Config {
  address: number;
  prefix: number;
  /** 0 = no gateway: off-link destinations are dropped (noRoute). */
  gateway: number;
  /** TTL of the datagrams we send. */
  ttl: number;
  /** A transparent proxy (the user-mode gateway): TCP connections may use
   *  local addresses that are not this interface's, and unfragmented TCP
   *  datagrams to any address go up to TCP, which keeps only those that
   *  belong to such a connection. Default false. */
  transparent?: boolean;
}

const TX_TAG = ownerTag(OwnerKind.Tx, 0);
/** Don't Fragment: set on TCP segments (they are sized to the path MTU). */
const IP_DF = 0x4000;
const UNREACHABLE_PROTOCOL = 2;
/** route()'s answers besides a next hop awaiting ARP (0.0.0.0 and 255.255.255.255
 *  are never next hops: the former is no route, the latter a broadcast). */
const NO_ROUTE = 0;
const RESOLVED = 0xffffffff;

export class Ipv4 implements TransportLower, IcmpLower, ReassemblyTarget {
  readonly localAddress: number;
  readonly transparent: boolean;
  readonly transportAt = ETH_HLEN + IPV4_HLEN;
  readonly mask: number;
  readonly gateway: number;
  readonly icmp: Icmp;
  readonly fragments: Fragments;

  private readonly broadcast: number;
  private readonly handlers: (TransportHandler | null)[] = new Array<TransportHandler | null>(256).fill(null);
  private nextId = 0;
  private stopped = false;

  constructor(
    readonly hot: HotPath,
    readonly clock: Clock,
    private readonly eth: Ethernet,
    private readonly arp: Arp,
    timers: TimerQueue,
    private readonly drops: DropCounters,
    private readonly config: Ipv4Config,
    limits: IcmpLimits & FragmentLimits,
    /** The first of limits.fragDatagrams timer owner ids, for reassembly. */
    fragmentTimerBase: number,
  ) {
    this.localAddress = config.address;
    this.transparent = config.transparent === true;
    this.mask = prefixMask(config.prefix);
    this.gateway = config.gateway;
    // /31 and /32 have no directed broadcast (RFC 3021).
    this.broadcast = config.prefix < 31 ? subnetBroadcast(config.address, this.mask) : IPV4_BROADCAST;
    if (this.gateway !== 0 && !sameSubnet(this.gateway, config.address, this.mask)) {
      throw new Error('IPv4 gateway is not inside the interface subnet');
    }
    this.icmp = new Icmp(hot, this, clock, drops, limits);
    this.fragments = new Fragments(hot, timers, clock, drops, limits, this, fragmentTimerBase);
    this.register(IPPROTO_ICMP, this.icmp);
  }

  /** Route datagrams of IP protocol `proto` to `handler`. */
  register(proto: number, handler: TransportHandler): void {
    this.handlers[proto] = handler;
  }

  isBroadcast(address: number): boolean {
    return address === IPV4_BROADCAST || address === this.broadcast;
  }

  /** An IPv4 datagram in hot.decoded, validated by decode. */
  input(): void {
    const d = this.hot.decoded;
    const dst = d[D.IP_DST]!;
    if (dst !== this.localAddress && !this.isBroadcast(dst)) {
      // A transparent proxy's connections answer for other addresses.
      if (this.transparent && d[D.KIND] === Kind.Tcp) return this.dispatch(IPPROTO_TCP);
      return this.drops.count(Drop.NotOurAddress);
    }
    if (d[D.KIND] === Kind.Ipv4Fragment) return this.fragments.input();
    this.dispatch(d[D.IP_PROTO]!);
  }

  /** A reassembled datagram at `ipOff` (20-byte header, then payload): decode its
   *  transport and make the record describe it as if it had arrived whole. */
  deliverDatagram(ipOff: number): void {
    const bytes = this.hot.bytes;
    const d = this.hot.decoded;
    const total = (bytes[ipOff + 2]! << 8) | bytes[ipOff + 3]!;
    const proto = bytes[ipOff + 9]!;
    const kind = kindOf(proto);
    if (kind !== Kind.Ipv4Other) {
      const reason = this.hot.decodeTransport(proto, ipOff + IPV4_HLEN, total - IPV4_HLEN, d[D.IP_SRC]!, d[D.IP_DST]!);
      if (reason !== Reason.Ok) return this.drops.reason(reason);
    }
    d[D.KIND] = kind;
    d[D.IP_OFF] = ipOff;
    d[D.IP_HLEN] = IPV4_HLEN;
    d[D.IP_TOTAL_LEN] = total;
    d[D.IP_FRAG] = 0;
    d[D.L4_OFF] = ipOff + IPV4_HLEN;
    d[D.L4_LEN] = total - IPV4_HLEN;
    this.dispatch(proto);
  }

  private dispatch(proto: number): void {
    const handler = this.handlers[proto];
    if (handler) return handler.input();
    this.drops.count(Drop.ProtoUnreachable);
    const d = this.hot.decoded;
    this.icmp.sendUnreachable(
      UNREACHABLE_PROTOCOL, d[D.IP_OFF]!, d[D.IP_HLEN]! + d[D.L4_LEN]!, d[D.IP_SRC]!, d[D.IP_DST]!, d[D.IP_FRAG]!,
    );
  }

  // ---- TransportLower --------------------------------------------------------

  /** MTU - 20, and never more than one arena chunk can carry. */
  maxTransportLength(_dst: number): number {
    return this.eth.maxFrameLength - ETH_HLEN - IPV4_HLEN;
  }

  allocTx(): number {
    return this.hot.alloc(TX_TAG);
  }

  freeTx(slot: number): void {
    this.hot.free(slot);
  }

  sendTcp(slot: number, payloadLen: number, dst: number, src: number = this.localAddress): boolean {
    const hop = this.route(dst, IP_DF, src);
    if (hop === NO_ROUTE) return this.discard(slot);
    return this.transmit(slot, this.hot.encodeTcp(slot, payloadLen), hop);
  }

  routeBurst(dst: number, src: number): boolean {
    if (this.stopped || dst === this.localAddress || this.isBroadcast(dst) || dst === 0) return false;
    const hop = this.nextHop(dst);
    if (hop === 0 || !this.arp.fillDestination(hop)) return false;
    this.fillIpv4Words(dst, src, IP_DF);
    return true;
  }

  sendBurst(count: number): void {
    const f = this.hot.fast;
    this.nextId = this.hot.request[E.IP_ID]! & 0xffff;
    for (let i = 0; i < count; i++) this.eth.send(f[F.BURST_SLOTS + i]!, f[F.BURST_LENS + i]!);
  }

  sendUdp(slot: number, payloadLen: number, dst: number): boolean {
    const hop = this.route(dst, 0);
    if (hop === NO_ROUTE) return this.discard(slot);
    return this.transmit(slot, this.hot.encodeUdp(slot, payloadLen), hop);
  }

  sendIcmp(slot: number, payloadLen: number, dst: number): boolean {
    const hop = this.route(dst, 0);
    if (hop === NO_ROUTE) return this.discard(slot);
    return this.transmit(slot, this.hot.encodeIcmp(slot, payloadLen), hop);
  }

  sendUnreachable(code: number, ipOff: number, length: number, src: number, dst: number, frag: number): void {
    this.icmp.sendUnreachable(code, ipOff, length, src, dst, frag);
  }

  /** After stack shutdown nothing more is sent (counted as stopped). */
  stop(): void {
    this.stopped = true;
  }

  // ---- Sending -----------------------------------------------------------------

  /**
   * Choose the next hop for `dst` and fill the IPv4 and MAC words of the
   * encode record. Returns what transmit() needs: RESOLVED (the MAC is in the
   * record: send now), the next hop's address (its MAC is not known yet: the
   * frame waits for ARP), or NO_ROUTE (counted) when `dst` cannot be reached.
   */
  private route(dst: number, frag: number, src: number = this.localAddress): number {
    if (this.stopped) {
      this.drops.count(Drop.Stopped);
      return NO_ROUTE;
    }
    const req = this.hot.request;
    let next = RESOLVED;
    if (this.isBroadcast(dst)) {
      req[E.DST_MAC_HI] = 0xffff;
      req[E.DST_MAC_LO] = 0xffffffff;
    } else {
      if (dst === this.localAddress) {
        this.drops.count(Drop.Loopback);
        return NO_ROUTE;
      }
      const hop = this.nextHop(dst);
      if (dst === 0 || hop === 0) {
        this.drops.count(Drop.NoRoute);
        return NO_ROUTE;
      }
      if (!this.arp.fillDestination(hop)) next = hop;
    }
    this.fillIpv4Words(dst, src, frag);
    this.nextId = (this.nextId + 1) & 0xffff;
    return next;
  }

  /** On-link destinations are their own next hop; the rest go to the gateway (0: none). */
  private nextHop(dst: number): number {
    return sameSubnet(dst, this.localAddress, this.mask) ? dst : this.gateway;
  }

  /** Our MAC and the IPv4 words of the encode record, with the next id. */
  private fillIpv4Words(dst: number, src: number, frag: number): void {
    const req = this.hot.request;
    req[E.SRC_MAC_HI] = this.eth.macHi;
    req[E.SRC_MAC_LO] = this.eth.macLo;
    req[E.IP_SRC] = src;
    req[E.IP_DST] = dst;
    req[E.IP_TTL] = this.config.ttl;
    req[E.IP_TOS] = 0;
    req[E.IP_ID] = this.nextId;
    req[E.IP_FRAG] = frag;
  }

  /** Send the encoded frame now (hop RESOLVED), or park it with ARP until `hop` resolves. */
  private transmit(slot: number, len: number, hop: number): boolean {
    if (len <= 0 || len > this.eth.maxFrameLength || len > CHUNK_SIZE) {
      this.drops.count(Drop.TxInvalid);
      return this.discard(slot);
    }
    if (hop === RESOLVED) return this.eth.send(slot, len);
    return this.arp.enqueue(hop, slot, len);
  }

  private discard(slot: number): false {
    this.hot.free(slot);
    return false;
  }
}

function kindOf(proto: number): Kind {
  if (proto === IPPROTO_TCP) return Kind.Tcp;
  if (proto === IPPROTO_UDP) return Kind.Udp;
  if (proto === IPPROTO_ICMP) return Kind.Icmp;
  return Kind.Ipv4Other;
}
