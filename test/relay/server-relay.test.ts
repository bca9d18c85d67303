// The relay's state machine (docs/bob-protocol.md §2-3) driven through fake sockets
// on a virtual clock. Each scenario ends with every gauge back to zero.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HandshakeDecoder } from '../../relay/handshake/decoder.js';
import { encodeFrame, type Frame, type Packet } from '../../relay/handshake/packet.js';
import type { RelayLimits } from '../../relay/server/limits.js';
import { resolveLimits } from '../../relay/server/limits.js';
import { Relay } from '../../relay/server/relay.js';
import { IGNORED_EVENTS, type RelaySocket, type SocketEvents } from '../../relay/server/socket.js';
import { EMPTY_LEVELS, relayLevels } from '../../relay/server/stats.js';
import type { Peer } from '../../relay/server/peer.js';
import { PeerTable } from '../../relay/server/tables.js';
import { VirtualClock } from '../../stack/time/virtual-clock.js';

// ---- fake sockets ---------------------------------------------------------------

/** One accepted socket: the relay's side is RelaySocket; the test plays the peer. */
class FakeSocket implements RelaySocket {
  /** Set once accept() returns; a socket refused inside accept() reports to nobody. */
  events: SocketEvents = IGNORED_EVENTS;
  ended = false;
  destroyed = false;
  closed = false;
  paused = false;
  pauses = 0;
  resumes = 0;
  /** While true, write() says "queue full". */
  full = false;
  private readonly written: Uint8Array[] = [];
  private taken = 0;
  /** What the peer sent while the relay had the socket paused. */
  private readonly inbox: (Uint8Array | 'eof')[] = [];
  private readonly decoder = new HandshakeDecoder();

  constructor(readonly identity: string) {}

  // RelaySocket
  write(bytes: Uint8Array): boolean {
    if (this.ended || this.closed) return true;
    this.written.push(bytes.slice());
    return !this.full;
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
    this.close(); // reported at once, as an abort on our stack does
  }
  pause(): void {
    this.paused = true;
    this.pauses++;
  }
  resume(): void {
    this.paused = false;
    this.resumes++;
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
  /** The socket is gone: the peer closed after our FIN, or reset. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.events.close();
  }
  drain(): void {
    this.full = false;
    this.events.drain();
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

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function filled(length: number, byte: number): Uint8Array {
  return new Uint8Array(length).fill(byte);
}

function wire(...frames: Frame[]): Uint8Array {
  return concat(frames.map(encodeFrame));
}

// Crypto payloads: the relay never looks inside them. X contains a 00, as real ones may.
const PUB = Uint8Array.from({ length: 34 }, (_, i) => (i * 7) & 0xff);
const X = Uint8Array.from({ length: 32 }, (_, i) => (i === 5 ? 0 : 0x40 + i));
const Y = filled(32, 0x59);
const V2 = filled(64, 0x32);
const V3 = filled(64, 0x33);

const helloServer: Packet = { name: 'Hello_as_a_server', public: PUB };
const helloClient: Packet = { name: 'Hello_as_a_client' };
const xPacket = (identity: string): Packet => ({ name: 'X_and_client_identity', X, identity: ascii(identity) });
const yPacket: Packet = { name: 'Y_and_server_validator', Y, validator: V2 };
const v3Packet: Packet = { name: 'Client_validator', validator: V3 };

// ---- harness ---------------------------------------------------------------------

function setup(limits: Partial<RelayLimits> = {}) {
  const clock = new VirtualClock();
  const relay = new Relay({ clock, limits });
  const sockets: FakeSocket[] = [];
  let nextPort = 40000;
  const h = {
    clock,
    relay,
    limits: resolveLimits(limits),
    /** A new connection to 9000 or 9001 from `ip`. */
    connect(port: 'handshake' | 'secure', ip = '127.0.0.1'): FakeSocket {
      const socket = new FakeSocket(`${ip}:${nextPort++}`);
      const events = port === 'handshake' ? relay.acceptHandshake(socket) : relay.acceptSecure(socket);
      if (!socket.closed) socket.events = events;
      sockets.push(socket);
      return socket;
    },
    /** A registered sender. */
    sender(): FakeSocket {
      const s = h.connect('handshake');
      s.sendFrame(0, helloServer);
      s.take();
      return s;
    },
    /** A registered receiver (its 03 and 04s taken). */
    receiver(): FakeSocket {
      const c = h.connect('handshake');
      c.sendFrame(0, helloClient);
      c.take();
      return c;
    },
    advance(seconds: number): void {
      clock.advance(seconds * 1000);
    },
    counters() {
      return relay.stats().counters;
    },
    /** Peers close their side once the relay closed its own (and read everything). */
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

type Harness = ReturnType<typeof setup>;

/** S (uid 1) and C (uid 2) through the whole handshake; returns them after 0a/0e. */
function handshakePair(h: Harness): { S: FakeSocket; C: FakeSocket } {
  const S = h.sender();
  const C = h.connect('handshake');
  C.sendFrame(0, helloClient);
  const [, newServer] = C.frames();
  const s = (newServer.packet as { uid: number }).uid;
  C.sendFrame(s, xPacket(C.identity));
  const c = S.frames()[0].uid;
  S.sendFrame(c, yPacket);
  C.sendFrame(s, v3Packet);
  S.sendFrame(c, { name: 'Agreement' });
  C.sendFrame(s, { name: 'Accepted' });
  S.take();
  C.take();
  return { S, C };
}

/** A handshake pair, then both in the room: returns the 9001 sockets. */
function roomPair(h: Harness): { S: FakeSocket; C: FakeSocket; sid: string; cid: string } {
  const { S, C } = handshakePair(h);
  h.settle();
  const S2 = h.connect('secure');
  const C2 = h.connect('secure');
  S2.send(ascii(`${C.identity}\n`));
  C2.send(ascii(`${S.identity}\n`));
  expect(S2.take()).toEqual(ascii('00'));
  expect(C2.take()).toEqual(ascii('00'));
  return { S: S2, C: C2, sid: S.identity, cid: C.identity };
}

// ---- handshake --------------------------------------------------------------------

describe('relay handshake (9000)', () => {
  it('relays one sender and one receiver byte for byte (§2.5)', () => {
    const h = setup();
    const S = h.connect('handshake'); // 127.0.0.1:40000
    S.sendFrame(0, helloServer);
    expect(S.take()).toEqual(ascii('000002127.0.0.1:40000\0'));

    const C = h.connect('handshake'); // 127.0.0.1:40001, uid 2
    C.sendFrame(0, helloClient);
    expect(C.take()).toEqual(concat([ascii('000003127.0.0.1:40001\0'), ascii('0000040001'), PUB, ascii('127.0.0.1:40000\0')]));

    C.sendFrame(1, xPacket('127.0.0.1:40001'));
    expect(S.take()).toEqual(concat([ascii('000207'), X, ascii('127.0.0.1:40001\0')]));

    S.sendFrame(2, yPacket);
    expect(C.take()).toEqual(concat([ascii('000106'), Y, V2]));

    C.sendFrame(1, v3Packet);
    expect(S.take()).toEqual(concat([ascii('000205'), V3]));

    S.sendFrame(2, { name: 'Agreement' });
    expect(C.take()).toEqual(ascii('000108'));
    expect(S.ended || C.ended).toBe(false);

    C.sendFrame(1, { name: 'Accepted' });
    expect(S.take()).toEqual(ascii('00020a'));
    expect(C.take()).toEqual(ascii('00000e'));
    expect(S.ended && C.ended).toBe(true);

    const stats = h.relay.stats();
    expect(stats.peers).toEqual({ unregistered: 0, senders: 0, receivers: 0 });
    expect(stats.rooms).toEqual({ pending: 1, waiting: 0, piping: 0 });
    expect(stats.counters).toMatchObject({ sendersRegistered: 1, receiversRegistered: 1, forwarded: 4, paired: 1, closedNotices: 0 });
    h.expectEmpty();
    expect(h.counters().roomsExpired).toBe(1);
  });

  it('accepts packets split or joined across reads, and hex in either case', () => {
    const h = setup();
    const S = h.sender(); // uid 1
    const C = h.connect('handshake'); // uid 2
    const fromC = concat([ascii('000001'), ascii('000107'), X, ascii(`${C.identity}\0`)]);
    for (const byte of fromC) C.send(Uint8Array.of(byte));
    expect(S.take()).toEqual(concat([ascii('000207'), X, ascii(`${C.identity}\0`)]));
    S.send(concat([ascii('000206'), Y, V2, ascii('000208')]));
    expect(C.frames().map((f) => f.packet.name)).toEqual(['Client_identity', 'New_server', 'Y_and_server_validator', 'Agreement']);
    S.send(concat([ascii('000A06'), Y, V2])); // uid 0x000a: nobody, a no-op
    expect(C.take()).toHaveLength(0);
    expect(h.counters().unknownDestination).toBe(1);
    C.send(ascii('00010A')); // uppercase type; the relay writes lowercase
    expect(S.take()).toEqual(ascii('00020a'));
    h.expectEmpty();
  });

  it('two senders, one wrong password: 0d 01 is forwarded and the pair dropped; the other pair completes (§2.5)', () => {
    const h = setup();
    const S1 = h.sender(); // uid 1
    const S2 = h.sender(); // uid 2
    const C = h.connect('handshake'); // uid 3
    C.sendFrame(0, helloClient);
    expect(C.frames().map((f) => [f.packet.name, (f.packet as { uid?: number }).uid])).toEqual([
      ['Client_identity', undefined],
      ['New_server', 1],
      ['New_server', 2],
    ]);
    C.sendFrame(1, xPacket(C.identity));
    C.sendFrame(2, xPacket(C.identity));
    expect(S1.frames()).toEqual([{ uid: 3, packet: xPacket(C.identity) }]);
    expect(S2.frames()).toEqual([{ uid: 3, packet: xPacket(C.identity) }]);
    S1.sendFrame(3, yPacket);
    S2.sendFrame(3, yPacket);
    C.take();
    C.sendFrame(1, v3Packet);
    C.sendFrame(2, { name: 'Spoke_failure', code: 1 });
    expect(S2.take()).toEqual(ascii('00030d\x01'));
    // The relay dropped C–S2: S2's later packets to C go nowhere.
    S2.sendFrame(3, yPacket);
    expect(C.take()).toHaveLength(0);
    expect(h.counters().notCandidate).toBe(1);

    S1.take();
    S1.sendFrame(3, { name: 'Agreement' });
    C.sendFrame(1, { name: 'Accepted' });
    expect(S1.take()).toEqual(ascii('00030a'));
    expect(C.take()).toEqual(ascii('000108' + '00000e'));
    // S2 was no longer a candidate of C: it is not told, and stays registered.
    expect(S2.take()).toHaveLength(0);
    expect(h.relay.stats().peers).toEqual({ unregistered: 0, senders: 1, receivers: 0 });
    expect(h.counters().spokeFailures).toBe(1);
    // Until -t, where it gets 0f and is closed.
    h.advance(3600);
    expect(S2.take()).toEqual(ascii('00000f'));
    expect(S2.ended).toBe(true);
    h.expectEmpty();
  });

  it('tells the other candidates of an accepted pair with 09', () => {
    const h = setup();
    const S1 = h.sender();
    const S2 = h.sender();
    const C = h.receiver(); // uid 3, candidate of both
    C.sendFrame(1, { name: 'Accepted' });
    expect(S1.take()).toEqual(ascii('00030a'));
    expect(S2.take()).toEqual(ascii('0000090003'));
    expect(h.counters().closedNotices).toBe(1);
    h.expectEmpty();
  });

  it('a receiver that refuses (0b) drops the candidacy; nothing reaches the sender', () => {
    const h = setup();
    const S = h.sender();
    const C = h.receiver();
    C.sendFrame(1, { name: 'Refused' });
    C.sendFrame(1, v3Packet);
    expect(S.take()).toHaveLength(0);
    expect(h.counters()).toMatchObject({ refusedPairs: 1, notCandidate: 1 });
    // A repeated Hello introduces them again (§2.2: 04s sent again, same uid).
    C.sendFrame(0, helloClient);
    expect(C.frames().map((f) => f.packet.name)).toEqual(['Client_identity', 'New_server']);
    C.sendFrame(1, v3Packet);
    expect(S.take()).toEqual(concat([ascii('000205'), V3]));
    expect(h.counters().helloRepeated).toBe(1);
    h.expectEmpty();
  });

  it('ignores what §2.2 ignores, and drops 07s whose identity is not the receiver’s', () => {
    const h = setup();
    const S = h.sender();
    const C = h.receiver();
    const U = h.connect('handshake');
    U.sendFrame(1, v3Packet); // unregistered
    C.sendFrame(0, helloServer); // Hello of the other role
    S.sendFrame(2, v3Packet); // 05 from a sender
    C.sendFrame(0, { name: 'Timeout' }); // relay-only type
    C.sendFrame(1, helloClient); // Hello with uid ≠ 0
    C.sendFrame(0, { name: 'Relay_failure', letter: 'N', uid: 0 }); // logged only
    C.sendFrame(1, xPacket('10.6.6.6:6666')); // not its identity
    expect(S.take()).toHaveLength(0);
    expect(C.take()).toHaveLength(0);
    expect(U.take()).toHaveLength(0);
    expect(h.counters()).toMatchObject({ ignored: 5, relayFailures: 1, identityMismatch: 1, forwarded: 0 });
    h.expectEmpty();
  });

  it('deletes a peer that disconnects mid-handshake at once, with 09 to its candidates (§7)', () => {
    const h = setup();
    const S = h.sender();
    const C = h.receiver();
    C.sendFrame(1, xPacket(C.identity));
    S.take();
    C.fin();
    expect(S.take()).toEqual(ascii('0000090002'));
    expect(C.ended).toBe(true);
    expect(h.relay.stats().peers).toEqual({ unregistered: 0, senders: 1, receivers: 0 });
    S.sendFrame(2, yPacket);
    expect(h.counters()).toMatchObject({ peerEof: 1, unknownDestination: 1 });

    // A reset does the same.
    const C2 = h.receiver();
    C2.close();
    expect(S.take()).toEqual(ascii('0000090003'));
    expect(h.counters().peerReset).toBe(1);
    h.expectEmpty();
  });

  it('times out a registered peer after -t: 0f then close, 09 to its candidates (§2.3)', () => {
    const h = setup();
    const S = h.sender(); // t = 0
    h.advance(100);
    const C = h.receiver(); // t = 100 s
    h.advance(3500 - 0.001);
    expect(S.take()).toHaveLength(0);
    h.advance(0.001);
    expect(S.take()).toEqual(ascii('00000f'));
    expect(S.ended).toBe(true);
    expect(C.take()).toEqual(ascii('0000090001'));
    h.settle();
    h.advance(100);
    expect(C.take()).toEqual(ascii('00000f'));
    expect(h.counters().handshakeTimeout).toBe(2);
    h.expectEmpty();
  });

  it('honours a shorter -t, and closes a connection that never says Hello', () => {
    const h = setup({ handshakeTimeoutSec: 5 });
    const S = h.sender();
    const silent = h.connect('handshake');
    h.advance(5);
    expect(S.take()).toEqual(ascii('00000f'));
    expect(silent.take()).toHaveLength(0);
    expect(silent.ended).toBe(true);
    expect(h.counters()).toMatchObject({ handshakeTimeout: 1, helloTimeout: 1 });

    const h2 = setup();
    const quiet = h2.connect('handshake');
    h2.advance(30);
    expect(quiet.ended).toBe(true);
    expect(h2.counters().helloTimeout).toBe(1);
    h.expectEmpty();
    h2.expectEmpty();
  });

  it('closes on malformed packets and oversized identities, telling candidates, counting each', () => {
    const h = setup();
    const bad = h.connect('handshake');
    bad.send(ascii('zz'));
    expect(bad.ended).toBe(true);

    const S = h.sender();
    const C = h.receiver();
    C.send(ascii('000010')); // type ≥ 0x10
    expect(C.ended).toBe(true);
    expect(S.take()).toEqual(ascii('0000090002'));

    const C2 = h.receiver(); // uid 3
    C2.send(concat([ascii('000107'), X, filled(h.limits.maxIdentityBytes + 1, 0x61)]));
    expect(C2.ended).toBe(true);
    expect(S.take()).toEqual(ascii('0000090003'));

    const C3 = h.receiver(); // uid 4
    C3.send(concat([ascii('000106'), Y])); // EOF inside a packet
    C3.fin();
    expect(C3.ended).toBe(true);

    expect(h.counters().parseErrors).toEqual({
      Invalid_header: 1,
      Invalid_packet: 1,
      Invalid_new_server: 0,
      Invalid_uid: 0,
      Identity_too_long: 1,
      End_of_input: 1,
    });
    expect(h.counters().parseError).toBe(4);
    h.expectEmpty();
  });

  it('bounds a slow-loris peer: it never buffers more than one packet and the timers close it', () => {
    const h = setup();
    const S = h.sender();
    // Before Hello: one byte every 10 s; the Hello timeout (30 s) ends it.
    const loris = h.connect('handshake');
    const hello = encodeFrame({ uid: 0, packet: helloServer });
    let sent = 0;
    while (!loris.ended) {
      loris.send(hello.subarray(sent, sent + 1));
      sent++;
      expect(h.relay.stats().bufferedBytes).toBeLessThanOrEqual(sent);
      h.advance(10);
    }
    expect(sent).toBe(3);
    expect(h.counters().helloTimeout).toBe(1);

    h.expectEmpty();

    // Registered, trickling bytes of 06s to S forever: buffered bytes stay
    // within one packet, and -t ends it.
    const h2 = setup();
    const C = h2.receiver(); // uid 1, t = 0
    h2.advance(10);
    const S2 = h2.sender(); // uid 2
    const y = encodeFrame({ uid: 2, packet: yPacket });
    let max = 0;
    for (let i = 0; !C.ended; i++) {
      C.send(y.subarray(i % y.length, (i % y.length) + 1));
      max = Math.max(max, h2.relay.stats().bufferedBytes);
      h2.advance(10);
    }
    expect(max).toBe(y.length - 1);
    expect(h2.counters().handshakeTimeout).toBe(1);
    expect(C.take().subarray(-6)).toEqual(ascii('00000f'));
    expect(S2.frames().at(-1)).toEqual({ uid: 0, packet: { name: 'Closed', uid: 1 } });
    h2.expectEmpty();
  });

  it('resets a peer that does not read once its queue passes maxQueuedBytes', () => {
    const h = setup({ maxQueuedBytes: 1024 });
    const C = h.receiver();
    C.full = true;
    const senders: FakeSocket[] = [];
    while (!C.destroyed) senders.push(h.sender());
    expect(senders.length).toBeGreaterThan(1024 / 70);
    expect(senders.length).toBeLessThan(1024 / 50);
    expect(h.counters().slowReader).toBe(1);
    // The senders it had been told about learn that it is gone.
    const last = senders.pop()!;
    for (const s of senders) expect(s.frames()).toEqual([{ uid: 0, packet: { name: 'Closed', uid: 1 } }]);
    expect(last.frames()).toEqual([]);
    h.expectEmpty();
  });

  it('refuses Hellos beyond maxPeers with 0f, and sockets beyond maxHandshakeSockets with a reset', () => {
    const h = setup({ maxPeers: 2, maxHandshakeSockets: 4 });
    h.sender();
    h.sender();
    const third = h.connect('handshake');
    third.sendFrame(0, helloClient);
    expect(third.take()).toEqual(ascii('00000f'));
    expect(third.ended).toBe(true);
    expect(h.counters().peersFull).toBe(1);

    h.connect('handshake'); // the 4th open socket (the refused one is still closing)
    const fifth = h.connect('handshake');
    expect(fifth.destroyed && fifth.closed).toBe(true);
    expect(h.counters().handshakeSocketsFull).toBe(1);
    h.expectEmpty();
  });

  it('allocates uids in 1..maxUid, skipping live ones, and refuses when none is free', () => {
    const h = setup({ maxUid: 4 });
    const R = h.receiver(); // uid 1
    const A = h.sender(); // 2
    h.sender(); // 3
    const C = h.sender(); // 4
    const D = h.connect('handshake');
    D.sendFrame(0, helloServer);
    expect(D.take()).toEqual(ascii('00000f'));
    expect(h.counters().uidsExhausted).toBe(1);
    const newServerUids = () => R.frames().flatMap((f) => (f.packet.name === 'New_server' ? [f.packet.uid] : []));
    expect(newServerUids()).toEqual([2, 3, 4]);

    A.fin(); // uid 2 is free; the allocator continues at 1 (live), then 2
    h.sender();
    C.fin(); // uid 4 is free; next is 3 (live), then 4
    h.sender();
    expect(R.frames().map((f) => [f.packet.name, (f.packet as { uid: number }).uid])).toEqual([
      ['Closed', 2],
      ['New_server', 2],
      ['Closed', 4],
      ['New_server', 4],
    ]);
    h.expectEmpty();
  });

  it('never allocates 0 or 0xffff', () => {
    const table = new PeerTable(0xfffe);
    const seen = new Set<number>();
    for (;;) {
      const uid = table.allocateUid();
      if (uid === 0) break;
      seen.add(uid);
      table.add({ candidates: new Set() } as unknown as Peer, 'sender', uid);
    }
    expect(seen.size).toBe(0xfffe);
    expect(seen.has(0) || seen.has(0xffff)).toBe(false);
  });

  it('answers an Accepted with 0f on both sides when every room is taken', () => {
    const h = setup({ maxRooms: 1 });
    handshakePair(h);
    const S = h.sender();
    const C = h.receiver();
    C.sendFrame(3, { name: 'Accepted' });
    expect(S.take()).toEqual(ascii('00000f'));
    expect(C.take()).toEqual(ascii('00000f'));
    expect(h.counters().roomsFull).toBe(1);
    h.expectEmpty();
  });

  it('resets a closed socket whose peer never finishes within lingerSec', () => {
    const h = setup();
    const bad = h.connect('handshake');
    bad.send(ascii('zz'));
    expect(bad.ended && !bad.closed).toBe(true);
    h.advance(h.limits.lingerSec);
    expect(bad.destroyed).toBe(true);
    expect(h.counters().lingerResets).toBe(1);
    h.expectEmpty();
  });

  it('close() resets everything', () => {
    const h = setup();
    const { S } = roomPair(h);
    const waiting = h.sender();
    h.relay.close();
    expect(S.destroyed && waiting.destroyed).toBe(true);
    const late = h.connect('handshake');
    expect(late.destroyed).toBe(true);
    expect(relayLevels(h.relay.stats())).toEqual(EMPTY_LEVELS);
  });
});

// ---- secure room ----------------------------------------------------------------------

describe('relay secure room (9001)', () => {
  it('pairs, pipes verbatim both ways, and ends both with ff ff ff ff on EOF (§3)', () => {
    const h = setup();
    const { S, C } = roomPair(h);
    expect(h.relay.stats().rooms).toEqual({ pending: 0, waiting: 0, piping: 1 });
    const toC = Uint8Array.from({ length: 5000 }, (_, i) => (i * 13) & 0xff);
    S.send(toC.subarray(0, 1234));
    S.send(toC.subarray(1234));
    expect(C.take()).toEqual(toC);
    C.send(Uint8Array.of(0xff, 0xff, 0, 1));
    expect(S.take()).toEqual(Uint8Array.of(0xff, 0xff, 0, 1));
    C.fin();
    expect(S.take()).toEqual(Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    expect(C.take()).toEqual(Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    expect(S.ended && C.ended).toBe(true);
    expect(h.counters()).toMatchObject({ roomsPiped: 1, pipeEnded: 1, bytesPiped: 5004 });
    h.expectEmpty();
  });

  it('pipes whichever side arrives first, and a line split across reads', () => {
    const h = setup();
    const { S, C } = handshakePair(h);
    h.settle();
    const R = h.connect('secure');
    R.send(ascii(S.identity.slice(0, 4)));
    R.send(ascii(`${S.identity.slice(4)}\n`));
    expect(R.take()).toHaveLength(0);
    expect(R.paused).toBe(true);
    expect(h.relay.stats().rooms).toEqual({ pending: 0, waiting: 1, piping: 0 });
    const T = h.connect('secure');
    T.send(ascii(`${C.identity}\n`));
    expect(R.take()).toEqual(ascii('00'));
    expect(T.take()).toEqual(ascii('00'));
    T.close(); // a reset ends the pipe too
    expect(R.take()).toEqual(Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    h.expectEmpty();
  });

  it('answers 02 to an unknown line, a line over 100 bytes, and EOF before the line', () => {
    const h = setup();
    const a = h.connect('secure');
    a.send(ascii('127.0.0.1:1234\n'));
    expect(a.take()).toEqual(ascii('02'));
    expect(a.ended).toBe(true);

    const b = h.connect('secure');
    b.send(filled(60, 0x61));
    b.send(filled(41, 0x61));
    expect(b.take()).toEqual(ascii('02'));

    const c = h.connect('secure'); // exactly 100 bytes is a line (unknown here)
    c.send(concat([filled(100, 0x62), ascii('\n')]));
    expect(c.take()).toEqual(ascii('02'));

    const d = h.connect('secure');
    d.send(ascii('127.0.0.1:'));
    d.fin();
    expect(d.take()).toEqual(ascii('02'));
    expect(h.counters()).toMatchObject({ unknownLine: 2, lineTooLong: 1, lineEof: 1 });
    h.expectEmpty();
  });

  it('answers 01 when no line comes in time, and closes a lone waiter silently', () => {
    const h = setup();
    const idle = h.connect('secure');
    h.advance(h.limits.pairingTimeoutSec);
    expect(idle.take()).toEqual(ascii('01'));
    expect(idle.ended).toBe(true);

    const { C } = handshakePair(h);
    h.settle();
    const waiter = h.connect('secure');
    waiter.send(ascii(`${C.identity}\n`));
    h.advance(h.limits.pairingTimeoutSec);
    expect(waiter.take()).toHaveLength(0);
    expect(waiter.ended).toBe(true);
    expect(h.counters()).toMatchObject({ lineTimeout: 1, pairingTimeout: 1 });
    // The room was single use.
    expect(h.relay.stats().rooms).toEqual({ pending: 0, waiting: 0, piping: 0 });
    h.expectEmpty();
  });

  it('lets one socket wait per line, uses each room once, and checks the source IP', () => {
    const h = setup();
    const { S, C } = handshakePair(h);
    h.settle();
    const first = h.connect('secure');
    first.send(ascii(`${C.identity}\n`));
    const second = h.connect('secure');
    second.send(ascii(`${C.identity}\n`));
    expect(second.take()).toEqual(ascii('02'));
    const stranger = h.connect('secure', '10.1.2.3');
    stranger.send(ascii(`${S.identity}\n`));
    expect(stranger.take()).toEqual(ascii('02'));
    const partner = h.connect('secure');
    partner.send(ascii(`${S.identity}\n`));
    expect(first.take()).toEqual(ascii('00'));
    expect(partner.take()).toEqual(ascii('00'));
    const late = h.connect('secure');
    late.send(ascii(`${S.identity}\n`));
    expect(late.take()).toEqual(ascii('02'));
    expect(h.counters()).toMatchObject({ duplicateLine: 1, sourceMismatch: 1, unknownLine: 1 });
    h.expectEmpty();
  });

  it('pauses a reader while its partner’s queue is full and resumes it on drain', () => {
    const h = setup();
    const { S, C } = roomPair(h);
    C.full = true;
    S.send(filled(1000, 1));
    expect(S.paused).toBe(true);
    S.send(filled(500, 2)); // held by the transport while paused
    S.fin();
    expect(C.take()).toEqual(filled(1000, 1));
    C.drain();
    expect(S.paused).toBe(false);
    expect(C.take()).toEqual(concat([filled(500, 2), Uint8Array.of(0xff, 0xff, 0xff, 0xff)]));
    expect(h.counters()).toMatchObject({ pipePauses: 1, pipeResumes: 1 });
    expect(S.resumes).toBeGreaterThanOrEqual(2); // after pairing, after drain
    h.expectEmpty();
  });

  it('resets sockets beyond maxSecureSockets', () => {
    const h = setup({ maxSecureSockets: 2 });
    h.connect('secure');
    h.connect('secure');
    const third = h.connect('secure');
    expect(third.destroyed).toBe(true);
    expect(h.counters().secureSocketsFull).toBe(1);
    h.expectEmpty();
  });
});

// ---- properties ----------------------------------------------------------------------

describe('relay under random traffic', () => {
  // Weighted so that handshakes, pairs and pipes do happen, not only garbage.
  const packets: (Packet | 'X')[] = [
    'X', // 07 with the source's own identity
    'X',
    xPacket('10.6.6.6:6666'),
    yPacket,
    yPacket,
    v3Packet,
    v3Packet,
    { name: 'Agreement' },
    { name: 'Accepted' },
    { name: 'Accepted' },
    { name: 'Refused' },
    { name: 'Spoke_failure', code: 1 },
    { name: 'Relay_failure', letter: 'H', uid: 1 },
    { name: 'Closed', uid: 2 },
    { name: 'Timeout' },
  ];
  const who = fc.nat({ max: 7 });
  const action = fc.oneof(
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('connect' as const), secure: fc.boolean() }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('hello' as const), who, sender: fc.boolean() }) },
    {
      weight: 10,
      arbitrary: fc.record({ kind: fc.constant('frame' as const), who, uid: fc.nat({ max: 6 }), packet: fc.constantFrom(...packets) }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('bytes' as const), who, bytes: fc.uint8Array({ maxLength: 48 }) }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('line' as const), who, of: who }) },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constantFrom('fin' as const, 'close' as const, 'full' as const, 'drain' as const), who }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('advance' as const), seconds: fc.constantFrom(1, 29, 31, 600, 3600) }) },
  );

  it('never throws, never writes a 0c or an unparsable packet, and always returns to empty', () => {
    fc.assert(
      fc.property(fc.array(action, { minLength: 10, maxLength: 80, size: 'max' }), (actions) => {
        const h = setup({ maxPeers: 4, maxRooms: 2, maxUid: 5, maxQueuedBytes: 1024 });
        const handshake: FakeSocket[] = [];
        const secure: FakeSocket[] = [];
        const all: FakeSocket[] = [];
        const pick = (list: FakeSocket[], i: number) => list[i % Math.max(1, list.length)];
        // Two senders (uids 1, 2) and two receivers (3, 4) registered, three room sockets.
        for (let i = 0; i < 7; i++) {
          const socket = h.connect(i < 4 ? 'handshake' : 'secure');
          all.push(socket);
          (i < 4 ? handshake : secure).push(socket);
          if (i < 4) socket.sendFrame(0, i < 2 ? helloServer : helloClient);
        }
        for (const a of actions) {
          switch (a.kind) {
            case 'connect': {
              const socket = h.connect(a.secure ? 'secure' : 'handshake');
              all.push(socket);
              (a.secure ? secure : handshake).push(socket);
              break;
            }
            case 'advance':
              h.advance(a.seconds);
              break;
            case 'hello':
              pick(handshake, a.who)?.sendFrame(0, a.sender ? helloServer : helloClient);
              break;
            case 'frame': {
              const socket = pick(handshake, a.who);
              socket?.sendFrame(a.uid, a.packet === 'X' ? xPacket(socket.identity) : a.packet);
              break;
            }
            case 'line': {
              // Mostly the identity of a peer the relay closed: likely one of an accepted pair.
              const ended = handshake.filter((x) => x.ended);
              const target = pick(ended.length > 0 && a.of > 1 ? ended : handshake, a.of);
              if (target) pick(secure, a.who)?.send(ascii(`${target.identity}\n`));
              break;
            }
            case 'bytes':
              pick(all, a.who)?.send(a.bytes);
              break;
            case 'fin':
              pick(all, a.who)?.fin();
              break;
            case 'close':
              pick(all, a.who)?.close();
              break;
            case 'full': {
              const socket = pick(all, a.who);
              if (socket) socket.full = true;
              break;
            }
            case 'drain': {
              const socket = pick(all, a.who);
              if (socket && !socket.closed) socket.drain();
              break;
            }
          }
          h.settle();
        }
        for (const socket of handshake) {
          for (const frame of socket.frames()) expect(frame.packet.name).not.toBe('Relay_failure');
        }
        h.expectEmpty();
      }),
      { numRuns: 300 },
    );
  });
});

describe('relay limits', () => {
  it('checks every limit', () => {
    expect(resolveLimits()).toMatchObject({ handshakeTimeoutSec: 3600, maxPeers: 1024, maxRooms: 512, maxUid: 0xfffe, maxIdentityBytes: 64 });
    expect(() => resolveLimits({ maxUid: 0xffff })).toThrow(RangeError);
    expect(() => resolveLimits({ maxIdentityBytes: 65 })).toThrow(RangeError);
    expect(() => resolveLimits({ maxPeers: 1.5 })).toThrow(RangeError);
    expect(() => resolveLimits({ pairingTimeoutSec: 0 })).toThrow(RangeError);
    expect(() => resolveLimits({ checkRoomSource: 'yes' as unknown as boolean })).toThrow(RangeError);
  });
});
