// Fake sockets and a harness for driving the relay (relay/server/relay.ts) on
// a virtual clock from many source addresses, for the fairness, timeout,
// fan-out and pressure tests. Like server-relay.test.ts's, plus: any source
// IP, a count of write() calls per socket, and the order in which the relay
// closed sockets.

import { expect } from 'vitest';
import { HandshakeDecoder } from '../../relay/handshake/decoder.js';
import { encodeFrame, type Frame, type Packet } from '../../relay/handshake/packet.js';
import { type RelayLimits, resolveLimits } from '../../relay/server/limits.js';
import { Relay } from '../../relay/server/relay.js';
import { IGNORED_EVENTS, type RelaySocket, type SocketEvents } from '../../relay/server/socket.js';
import { EMPTY_LEVELS, relayLevels } from '../../relay/server/stats.js';
import { VirtualClock } from '../../stack/time/virtual-clock.js';

/** One accepted socket: the relay's side is RelaySocket; the test plays the peer. */
export class FakeSocket implements RelaySocket {
  events: SocketEvents = IGNORED_EVENTS;
  ended = false;
  destroyed = false;
  closed = false;
  paused = false;
  /** While true, write() says "queue full" (a peer that does not read). */
  full = false;
  /** write() calls so far. */
  writes = 0;
  private readonly written: Uint8Array[] = [];
  private taken = 0;
  private readonly inbox: (Uint8Array | 'eof')[] = [];
  private readonly decoder = new HandshakeDecoder();

  constructor(
    readonly identity: string,
    /** Where end() and destroy() are recorded, in order. */
    private readonly closings: FakeSocket[],
  ) {}

  get ip(): string {
    return this.identity.slice(0, this.identity.lastIndexOf(':'));
  }

  // RelaySocket
  write(bytes: Uint8Array): boolean {
    if (this.ended || this.closed) return true;
    this.writes++;
    this.written.push(bytes.slice());
    return !this.full;
  }
  end(): void {
    if (!this.ended && !this.destroyed) this.closings.push(this);
    this.ended = true;
  }
  destroy(): void {
    if (!this.ended && !this.destroyed) this.closings.push(this);
    this.destroyed = true;
    this.close();
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    while (!this.paused && this.inbox.length > 0) {
      const next = this.inbox.shift()!;
      if (next === 'eof') this.events.end();
      else this.events.data(next);
    }
  }

  // The peer's side
  send(bytes: Uint8Array): void {
    if (this.closed) return;
    if (this.paused) this.inbox.push(bytes.slice());
    else this.events.data(bytes);
  }
  sendFrame(uid: number, packet: Packet): void {
    this.send(encodeFrame({ uid, packet }));
  }
  fin(): void {
    if (this.closed) return;
    if (this.paused) this.inbox.push('eof');
    else this.events.end();
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.events.close();
  }
  /** Bytes written since the last take(). */
  take(): Uint8Array {
    const out = concat(this.written.slice(this.taken));
    this.taken = this.written.length;
    return out;
  }
  /** Frames written since the last take(). */
  frames(): Frame[] {
    const { frames, error } = this.decoder.push(this.take());
    expect(error).toBeNull();
    return frames;
  }
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

export const PUB = Uint8Array.from({ length: 34 }, (_, i) => (i * 7) & 0xff);
const X = Uint8Array.from({ length: 32 }, (_, i) => 0x40 + i);
export const helloServer: Packet = { name: 'Hello_as_a_server', public: PUB };
export const helloClient: Packet = { name: 'Hello_as_a_client' };
export const xPacket = (identity: string): Packet => ({ name: 'X_and_client_identity', X, identity: ascii(identity) });
export const CLOSE_MARKER = Uint8Array.of(0xff, 0xff, 0xff, 0xff);

export function setup(limits: Partial<RelayLimits> = {}) {
  const clock = new VirtualClock();
  const relay = new Relay({ clock, limits });
  const sockets: FakeSocket[] = [];
  const closings: FakeSocket[] = [];
  const nextPort = new Map<string, number>();
  const h = {
    clock,
    relay,
    closings,
    limits: resolveLimits(limits),
    /** A new connection to 9000 or 9001 from `ip` (a fresh port each time). */
    connect(port: 'handshake' | 'secure', ip = '127.0.0.1'): FakeSocket {
      const p = nextPort.get(ip) ?? 40000;
      nextPort.set(ip, p + 1);
      const socket = new FakeSocket(`${ip}:${p}`, closings);
      const events = port === 'handshake' ? relay.acceptHandshake(socket) : relay.acceptSecure(socket);
      if (!socket.closed) socket.events = events;
      sockets.push(socket);
      return socket;
    },
    /** A sender that said Hello (what it was written is taken). */
    sender(ip = '127.0.0.1'): FakeSocket {
      const s = h.connect('handshake', ip);
      s.sendFrame(0, helloServer);
      s.take();
      return s;
    },
    receiver(ip = '127.0.0.1'): FakeSocket {
      const c = h.connect('handshake', ip);
      c.sendFrame(0, helloClient);
      c.take();
      return c;
    },
    /** The uid a registered receiver was told `S` has, from the 04s it got (`frames`). */
    uidOf(S: FakeSocket, frames: Frame[]): number {
      const uid = findUid(S, frames);
      expect(uid).toBeDefined();
      return uid!;
    },
    advance(seconds: number): void {
      clock.advance(seconds * 1000);
    },
    counters() {
      return relay.stats().counters;
    },
    /** Peers close their side once the relay closed its own. */
    settle(): void {
      for (const s of sockets) if (s.ended && !s.closed) s.close();
    },
    /** Every peer hangs up, rooms expire: the relay holds nothing any more. */
    expectEmpty(): void {
      h.settle();
      for (const s of sockets) s.close();
      h.advance(h.limits.pairingTimeoutSec + 1);
      expect(relayLevels(relay.stats())).toEqual(EMPTY_LEVELS);
    },
  };
  return h;
}

export type Harness = ReturnType<typeof setup>;

function latin1(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

function findUid(S: FakeSocket, frames: Frame[]): number | undefined {
  const f = frames.find((x) => x.packet.name === 'New_server' && latin1(x.packet.identity) === S.identity);
  return f?.packet.name === 'New_server' ? f.packet.uid : undefined;
}

/**
 * A receiver from `ip` accepts a sender from `senderIp` (no real crypto: the
 * relay never looks inside), both go to 9001 and pipe `payload` to the
 * receiver, then the receiver ends. Returns what the receiver's room socket got.
 */
export function transfer(h: Harness, senderIp: string, receiverIp: string, payload: Uint8Array): Uint8Array {
  const S = h.sender(senderIp);
  const C = h.connect('handshake', receiverIp);
  C.sendFrame(0, helloClient);
  const s = h.uidOf(S, C.frames());
  C.sendFrame(s, { name: 'Accepted' });
  expect(S.frames().at(-1)?.packet.name).toBe('Accepted');
  expect(C.frames().at(-1)?.packet.name).toBe('Done');
  h.settle();
  const { S2, C2 } = enterRoom(h, S, C);
  S2.send(payload);
  const got = C2.take();
  C2.fin();
  h.settle();
  return got;
}

/** Both sides of an accepted pair connect to 9001 and get `00`. */
export function enterRoom(h: Harness, S: FakeSocket, C: FakeSocket): { S2: FakeSocket; C2: FakeSocket } {
  const S2 = h.connect('secure', S.ip);
  const C2 = h.connect('secure', C.ip);
  S2.send(ascii(`${C.identity}\n`));
  C2.send(ascii(`${S.identity}\n`));
  expect(S2.take()).toEqual(ascii('00'));
  expect(C2.take()).toEqual(ascii('00'));
  return { S2, C2 };
}

/**
 * A sender and a receiver from `ip` that accept each other (their handshake
 * sockets then closed); ok: the relay answered Done (a room was recorded).
 */
export function acceptedPair(h: Harness, ip: string): { S: FakeSocket; C: FakeSocket; ok: boolean } {
  const S = h.sender(ip);
  const C = h.connect('handshake', ip);
  C.sendFrame(0, helloClient);
  const s = findUid(S, C.frames());
  if (s !== undefined) C.sendFrame(s, { name: 'Accepted' });
  const ok = C.frames().at(-1)?.packet.name === 'Done';
  S.take();
  h.settle();
  return { S, C, ok };
}
