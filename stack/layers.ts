// Contracts between the layers of one stack. The walk is one-directional:
// the device hands a frame to Ethernet, Ethernet to ARP or IPv4, IPv4 to a
// transport registered for its protocol. Upper layers register handlers with
// lower ones; no layer reaches back up.

import type { HotPath } from './hotpath/engine.js';
import type { Clock } from './clock.js';

/** What IPv4 offers to a transport (TCP, UDP, ICMP users). */
export interface TransportLower {
  readonly hot: HotPath;
  readonly clock: Clock;
  /** This interface's IPv4 address (u32). */
  readonly localAddress: number;
  /** Where the transport header starts in a TX slot (Ethernet + IPv4 header:
   *  34). A transport writes its payload at slot + transportAt + its own
   *  header length, and never assumes the network layer's size. */
  readonly transportAt: number;
  /** A transparent proxy's interface (Ipv4Config.transparent): connections
   *  may use other local addresses, and TCP sees segments sent to them. */
  readonly transparent?: boolean;
  /** Largest transport payload + transport header that fits one IPv4 packet
   *  without fragmentation on the route to `dst` (MTU - 20). */
  maxTransportLength(dst: number): number;
  /** An arena chunk to build one outgoing frame in (owner kind Tx), or 0 when the
   *  arena is full (the caller counts and retries later; nothing is lost). */
  allocTx(): number;
  /** Return a TX chunk that will not be sent. */
  freeTx(slot: number): void;
  /**
   * Send the TCP segment built in `slot`. The caller has set the request record's
   * TCP words (SPORT, DPORT, TCP_*, OPT_*) and copied the payload to
   * slot + transportAt + hot.tcpHeaderLen(). This layer fills the IPv4 and Ethernet words,
   * calls hot.encodeTcp and hands the frame to the device (or to the ARP queue,
   * which then owns the slot). The slot is consumed either way.
   * Returns false if the frame was dropped (counted by this layer).
   * `src` is the source address: the interface's, or a transparent
   * connection's own.
   */
  sendTcp(slot: number, payloadLen: number, dst: number, src: number): boolean;
  /**
   * For a burst of TCP segments the engine builds in one call
   * (hot.tcpSendBurst): fill the encode request's link and IPv4 words for
   * frames to `dst` from `src`, E.IP_ID the next id. False, with nothing
   * counted, when the frames could not go straight to the device (the next
   * hop's MAC unknown, no route, the layer stopped): then send one by one
   * with sendTcp, which queues, counts and reports.
   */
  routeBurst(dst: number, src: number): boolean;
  /** Hand the `count` frames the engine built after routeBurst() (F.BURST_SLOTS,
   *  F.BURST_LENS) to the device, in order; the ids up to E.IP_ID are used. */
  sendBurst(count: number): void;
  /** Same for UDP: payload already at slot + transportAt + UDP_HLEN. */
  sendUdp(slot: number, payloadLen: number, dst: number): boolean;
  /** ICMP destination unreachable (port unreachable = code 3, protocol = 2)
   *  about a received datagram, described by the caller: its IPv4 header at
   *  ipOff, `length` bytes of it in all, and its addresses and fragment field
   *  (RFC 1122 3.2.2 forbids errors about broadcasts and later fragments).
   *  Rate-limited. */
  sendUnreachable(code: number, ipOff: number, length: number, src: number, dst: number, frag: number): void;
}

/**
 * A transport whose established connections take a segment in one engine
 * call (TCP, through hot.tcpInput): Ethernet hands it every frame first.
 */
export interface FastReceiver {
  /** The clock tcpInput is given, ms. */
  now(): number;
  /** tcpInput processed a segment whole; `result` has its FA action bits:
   *  finish what it leaves to JS (timers, the application, output). */
  fastInput(result: number): void;
  /** tcpInput left a TCP segment to the slow path, for this Slow reason:
   *  counted, then the frame walks the layers as any other. */
  slowInput(reason: number): void;
}

/** What a transport registers with IPv4 for its protocol number. */
export interface TransportHandler {
  /** A datagram for us, decoded into hot.decoded (KIND, SPORT, DPORT, PAYLOAD_OFF,
   *  PAYLOAD_LEN, ...). The bytes are valid only during the call: keep them by
   *  copying into chunks you own. */
  input(): void;
}

// ---------------------------------------------------------------------------
// Timers. One TimerQueue (stack/time/timers.ts) per stack holds every timer of
// every layer, keyed by (owner object, kind); no timer is a closure. The stack
// expires due timers and dispatches each by kind range to its layer.
export const enum TimerKind {
  // TCP: 0..7 (the TCP layer assigns meanings within its range)
  TcpFirst = 0,
  TcpLast = 7,
  // ARP: resolution retry and cache expiry
  ArpRetry = 8,
  ArpExpire = 9,
  // IPv4 fragment reassembly timeout
  FragmentExpire = 10,
  // Stack-wide housekeeping (rate-limit buckets, gratuitous ARP)
  Housekeeping = 11,
  // Admission: the heap looked at again while under pressure
  PressureRecheck = 12,
  Count = 13,
}

/** A timer's owner: an id from the range its layer reserved in the stack's
 *  TimerQueue (stack/time/timers.ts TimerIds): a control block's, an ARP
 *  entry's, ... The layer maps it back to what it owns. */
export type TimerOwner = number;
