// UDP (RFC 768): the transport and its socket API.
//
// A socket receives in one of three ways, chosen by the application:
// - onMessage(handler): datagrams are handed over synchronously as they arrive;
//   `data` is a view into the arena, valid only during the call (copy to keep).
// - recv() / for await: resolves with a copy of the next datagram, or null once
//   the socket is closed. One recv() may be pending at a time.
// - neither: datagrams wait in a bounded per-socket queue, one arena chunk each
//   (owner kind UdpQueue), until the application asks.
// close() frees the queue and settles a pending recv() with null, so nothing
// the socket held outlives it.

import type { HotPath } from '../hotpath/engine.js';
import { OwnerKind, ownerTag } from '../hotpath/engine.js';
import { D, E, UDP_HLEN } from '../hotpath/layout.js';
import type { TransportHandler, TransportLower } from '../layers.js';
import { toIpv4, type Ipv4Input } from '../address.js';
import { Drop, type DropCounters } from '../stats.js';

export interface UdpLimits {
  /** Sockets bound at once. */
  udpSockets: number;
  /** Datagrams waiting per socket (one arena chunk each). */
  udpQueueDatagrams: number;
}

export const UDP_DEFAULTS: UdpLimits = { udpSockets: 1024, udpQueueDatagrams: 64 };

/** A received datagram: a copy of the payload, and where it came from (u32 address). */
export interface UdpDatagram {
  data: Uint8Array;
  address: number;
  port: number;
}

/** `data` is a view into the arena, valid only during the call. */
export type UdpMessageHandler = (data: Uint8Array, address: number, port: number) => void;

const EPHEMERAL_FIRST = 49152;
const EPHEMERAL_COUNT = 65536 - EPHEMERAL_FIRST;
const PORT_UNREACHABLE = 3;

export class UdpSocket {
  private readonly slots: Int32Array;
  private readonly lens: Int32Array;
  private readonly addrs: Uint32Array;
  private readonly ports: Uint16Array;
  private head = 0;
  private count = 0;
  private handler: UdpMessageHandler | null = null;
  private waiter: ((datagram: UdpDatagram | null) => void) | null = null;
  private closed = false;

  /** @internal Created by Udp.bind(). */
  constructor(
    private readonly udp: Udp,
    readonly port: number,
    queueBound: number,
  ) {
    this.slots = new Int32Array(queueBound);
    this.lens = new Int32Array(queueBound);
    this.addrs = new Uint32Array(queueBound);
    this.ports = new Uint16Array(queueBound);
  }

  /** Datagrams waiting in the queue. */
  get queued(): number {
    return this.count;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Send one datagram. Throws on a closed socket, a bad address or port, or a
   *  payload over MTU - 28 bytes; false when it could not be sent now (arena
   *  full, no route, ARP queue full; counted in stats().drops). */
  send(data: Uint8Array, address: Ipv4Input, port: number): boolean {
    if (this.closed) throw new Error(`UDP socket ${this.port} is closed`);
    return this.udp.send(this.port, data, toIpv4(address), port);
  }

  /** Deliver datagrams to `handler` (null: back to queueing). Queued ones go first. */
  onMessage(handler: UdpMessageHandler | null): void {
    if (this.closed) throw new Error(`UDP socket ${this.port} is closed`);
    this.handler = handler;
    while (this.handler !== null && this.count > 0) {
      const len = this.lens[this.head]!;
      const address = this.addrs[this.head]!;
      const port = this.ports[this.head]!;
      // Detached before the call, so the handler may recv(), close() or swap handlers.
      const slot = this.shift();
      try {
        this.handler(this.udp.hot.bytes.subarray(slot, slot + len), address, port);
      } finally {
        this.udp.hot.free(slot);
      }
    }
  }

  /** The next datagram (a copy), or null once the socket is closed. */
  recv(): Promise<UdpDatagram | null> {
    if (this.closed) return Promise.resolve(null);
    if (this.count > 0) return Promise.resolve(this.takeCopy());
    if (this.waiter !== null) throw new Error(`UDP socket ${this.port}: a recv() is already pending`);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Datagrams until the socket closes. */
  async *[Symbol.asyncIterator](): AsyncGenerator<UdpDatagram, void, undefined> {
    for (;;) {
      const datagram = await this.recv();
      if (datagram === null) return;
      yield datagram;
    }
  }

  /** Unbind, free every queued datagram, end a pending recv() with null. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handler = null;
    while (this.count > 0) this.udp.hot.free(this.shift());
    this.udp.unbind(this);
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.(null);
  }

  /** @internal A datagram for this socket, payload at [off, off+len) during the call. */
  deliver(off: number, len: number, address: number, port: number): void {
    const bytes = this.udp.hot.bytes;
    if (this.handler !== null) return this.handler(bytes.subarray(off, off + len), address, port);
    if (this.waiter !== null) {
      const waiter = this.waiter;
      this.waiter = null;
      return waiter({ data: bytes.slice(off, off + len), address, port });
    }
    this.enqueue(off, len, address, port);
  }

  private enqueue(off: number, len: number, address: number, port: number): void {
    if (this.count >= this.slots.length) return this.udp.drops.count(Drop.UdpQueueFull);
    const slot = this.udp.hot.alloc(ownerTag(OwnerKind.UdpQueue, this.port));
    if (slot === 0) return this.udp.drops.count(Drop.UdpArenaFull);
    this.udp.hot.bytes.copyWithin(slot, off, off + len);
    const tail = (this.head + this.count) % this.slots.length;
    this.slots[tail] = slot;
    this.lens[tail] = len;
    this.addrs[tail] = address;
    this.ports[tail] = port;
    this.count++;
    this.udp.queued++;
    this.udp.queuedBytes += len;
  }

  private takeCopy(): UdpDatagram {
    const len = this.lens[this.head]!;
    const address = this.addrs[this.head]!;
    const port = this.ports[this.head]!;
    const slot = this.shift();
    const data = this.udp.hot.bytes.slice(slot, slot + len);
    this.udp.hot.free(slot);
    return { data, address, port };
  }

  /** Remove the head of the queue and return its chunk, which the caller frees. */
  private shift(): number {
    const slot = this.slots[this.head]!;
    this.udp.queued--;
    this.udp.queuedBytes -= this.lens[this.head]!;
    this.head = (this.head + 1) % this.slots.length;
    this.count--;
    return slot;
  }
}

export class Udp implements TransportHandler {
  /** Datagrams and payload bytes queued over all sockets (gauges). */
  queued = 0;
  queuedBytes = 0;

  private readonly sockets = new Map<number, UdpSocket>();
  private nextEphemeral = 0;
  private stopped = false;

  constructor(
    private readonly lower: TransportLower,
    /** @internal */ readonly drops: DropCounters,
    private readonly limits: UdpLimits,
  ) {}

  /** @internal */
  get hot(): HotPath {
    return this.lower.hot;
  }

  /** Sockets bound. */
  get socketCount(): number {
    return this.sockets.size;
  }

  /** Largest payload one datagram can carry (MTU - 28). */
  maxPayload(dst: Ipv4Input = 0): number {
    return this.lower.maxTransportLength(toIpv4(dst)) - UDP_HLEN;
  }

  /** Bind `port` (0: an ephemeral port, 49152-65535). Throws if it is taken,
   *  out of range, or the socket table is full. */
  bind(port = 0): UdpSocket {
    if (this.stopped) throw new Error('the stack is shut down');
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`invalid UDP port: ${port}`);
    if (this.sockets.size >= this.limits.udpSockets) {
      throw new Error(`UDP socket table full (${this.limits.udpSockets} sockets)`);
    }
    if (port === 0) port = this.ephemeralPort();
    if (this.sockets.has(port)) throw new Error(`UDP port ${port} is already bound`);
    const socket = new UdpSocket(this, port, this.limits.udpQueueDatagrams);
    this.sockets.set(port, socket);
    return socket;
  }

  /** A UDP datagram for us in hot.decoded. */
  input(): void {
    const d = this.lower.hot.decoded;
    const socket = this.sockets.get(d[D.DPORT]!);
    if (socket === undefined) {
      this.drops.count(Drop.UdpNoPort);
      return this.lower.sendUnreachable(
        PORT_UNREACHABLE, d[D.IP_OFF]!, d[D.IP_HLEN]! + d[D.L4_LEN]!, d[D.IP_SRC]!, d[D.IP_DST]!, d[D.IP_FRAG]!,
      );
    }
    socket.deliver(d[D.PAYLOAD_OFF]!, d[D.PAYLOAD_LEN]!, d[D.IP_SRC]!, d[D.SPORT]!);
  }

  /** Close every socket (stack shutdown). */
  shutdown(): void {
    this.stopped = true;
    for (const socket of this.sockets.values()) socket.close();
  }

  /** @internal */
  send(sport: number, data: Uint8Array, dst: number, dport: number): boolean {
    if (!Number.isInteger(dport) || dport < 1 || dport > 65535) throw new RangeError(`invalid UDP port: ${dport}`);
    const max = this.lower.maxTransportLength(dst) - UDP_HLEN;
    if (data.length > max) {
      throw new RangeError(`UDP payload of ${data.length} bytes exceeds the ${max}-byte limit (MTU - 28)`);
    }
    const slot = this.lower.allocTx();
    if (slot === 0) {
      this.drops.count(Drop.TxArenaFull);
      return false;
    }
    this.lower.hot.bytes.set(data, slot + this.lower.transportAt + UDP_HLEN);
    const req = this.lower.hot.request;
    req[E.SPORT] = sport;
    req[E.DPORT] = dport;
    return this.lower.sendUdp(slot, data.length, dst);
  }

  /** @internal */
  unbind(socket: UdpSocket): void {
    if (this.sockets.get(socket.port) === socket) this.sockets.delete(socket.port);
  }

  private ephemeralPort(): number {
    for (let i = 0; i < EPHEMERAL_COUNT; i++) {
      const port = EPHEMERAL_FIRST + ((this.nextEphemeral + i) % EPHEMERAL_COUNT);
      if (!this.sockets.has(port)) {
        this.nextEphemeral = (port - EPHEMERAL_FIRST + 1) % EPHEMERAL_COUNT;
        return port;
      }
    }
    throw new Error('no free ephemeral UDP port');
  }
}
