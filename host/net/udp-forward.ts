// A UDP host forward: a dgram socket on a loopback address. Each host peer
// (address, port) gets its own gateway UDP socket, so that the guest's replies
// (datagrams from the guest's port to that socket) find their way back to the
// right peer. The peer table is bounded (the least recently active peer is
// evicted when full) and idle peers expire, on one alarm of the stack's clock.

import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { toIpv4, type Alarm, type Clock, type Stack, type UdpSocket } from '../../stack/index.js';
import type { HostForward } from './hostfwd.js';
import { listenError } from './tcp-forward.js';

export interface UdpForwardOptions {
  stack: Stack;
  clock: Clock;
  guestAddress: string;
  /** Host peers tracked at once. */
  maxPeers: number;
  /** A peer silent for this long (ms, either direction) is forgotten. */
  idleMs: number;
}

export interface UdpCounters {
  /** Peers in the table. */
  active: number;
  /** Peers ever added. */
  total: number;
  bytesToGuest: number;
  bytesToHost: number;
  datagramsToGuest: number;
  datagramsToHost: number;
  /** Datagrams dropped: too large for the guest link, arena or queue full, host send error. */
  errors: number;
}

interface Peer {
  key: string;
  address: string;
  port: number;
  socket: UdpSocket;
  lastActive: number;
}

export class UdpForward {
  readonly counters: UdpCounters = {
    active: 0, total: 0, bytesToGuest: 0, bytesToHost: 0, datagramsToGuest: 0, datagramsToHost: 0, errors: 0,
  };
  private readonly host: Socket;
  /** Least recently active first (an entry moves to the end on activity). */
  private readonly peers = new Map<string, Peer>();
  private readonly alarm: Alarm;
  private readonly guest: number;
  private closed = false;
  private abortListen: (() => void) | null = null;

  constructor(
    readonly rule: HostForward,
    private readonly opts: UdpForwardOptions,
  ) {
    this.guest = toIpv4(opts.guestAddress);
    this.host = createSocket('udp4');
    this.host.on('message', this.onHostMessage);
    this.host.on('error', () => this.counters.errors++);
    this.alarm = opts.clock.createAlarm(this.expire);
  }

  listen(): Promise<void> {
    const { hostAddress, hostPort } = this.rule;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => reject(listenError(err, 'udp', hostAddress, hostPort));
      this.host.once('error', onError);
      // close() during the bind: Node then drops the bind without a word.
      this.abortListen = () => reject(new Error(`${hostAddress}:${hostPort}: the user network closed before it was ready`));
      this.host.bind({ address: hostAddress, port: hostPort, exclusive: true }, () => {
        this.host.removeListener('error', onError);
        this.abortListen = null;
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abortListen?.();
    this.alarm.cancel();
    for (const peer of this.peers.values()) peer.socket.close();
    this.peers.clear();
    this.counters.active = 0;
    await new Promise<void>((resolve) => {
      try {
        this.host.close(() => resolve());
      } catch {
        resolve(); // never bound
      }
    });
  }

  private readonly onHostMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    if (this.closed) return;
    const peer = this.peerFor(rinfo);
    if (!peer) return;
    this.touch(peer);
    let sent = false;
    try {
      sent = peer.socket.send(msg, this.guest, this.rule.guestPort);
    } catch {
      // Larger than the guest link's MTU allows: dropped, as a router would.
    }
    if (!sent) {
      this.counters.errors++;
      return;
    }
    this.counters.datagramsToGuest++;
    this.counters.bytesToGuest += msg.length;
  };

  private peerFor(rinfo: RemoteInfo): Peer | null {
    const key = `${rinfo.address}:${rinfo.port}`;
    const known = this.peers.get(key);
    if (known) return known;
    if (this.peers.size >= this.opts.maxPeers) this.forget(this.peers.values().next().value!);
    let socket: UdpSocket;
    try {
      socket = this.opts.stack.udp.bind(0);
    } catch {
      this.counters.errors++; // socket table full or stack shut down
      return null;
    }
    const peer: Peer = { key, address: rinfo.address, port: rinfo.port, socket, lastActive: 0 };
    socket.onMessage((data, address, port) => this.onGuestMessage(peer, data, address, port));
    this.peers.set(key, peer);
    this.counters.total++;
    this.counters.active++;
    if (this.peers.size === 1) this.alarm.reschedule(this.opts.clock.now() + this.opts.idleMs);
    return peer;
  }

  /** A datagram to the peer's gateway socket; only the guest's forwarded port may answer. */
  private onGuestMessage(peer: Peer, data: Uint8Array, address: number, port: number): void {
    if (address !== this.guest || port !== this.rule.guestPort) return;
    this.touch(peer);
    this.counters.datagramsToHost++;
    this.counters.bytesToHost += data.length;
    // The view is only valid during the call: send a copy.
    this.host.send(Buffer.from(data), peer.port, peer.address);
  }

  private touch(peer: Peer): void {
    peer.lastActive = this.opts.clock.now();
    this.peers.delete(peer.key);
    this.peers.set(peer.key, peer);
  }

  private forget(peer: Peer): void {
    this.peers.delete(peer.key);
    peer.socket.close();
    this.counters.active--;
  }

  /** Drop idle peers from the head, then wake up when the next one would expire. */
  private readonly expire = (): void => {
    const now = this.opts.clock.now();
    for (const peer of this.peers.values()) {
      if (now - peer.lastActive < this.opts.idleMs) {
        this.alarm.reschedule(peer.lastActive + this.opts.idleMs);
        return;
      }
      this.forget(peer);
    }
  };
}
