// The relay under hostile peers (relay/server/limits.ts, "Fairness"): one
// source address hoarding registrations or rooms, idle and trickling pipes,
// idle registrations, and Hellos that fan out. Each scenario counts what the
// relay did, checks that a legitimate pair still completes, and ends with
// every gauge back at zero.

import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { main } from '../../relay/cli.js';
import { encodeFrame, type Frame } from '../../relay/handshake/packet.js';
import { parseRelayArgs } from '../../relay/server/guest-main.js';
import { parseLimit, RELAY_DEFAULTS, resolveLimits } from '../../relay/server/limits.js';
import {
  acceptedPair,
  ascii,
  CLOSE_MARKER,
  concat,
  enterRoom,
  type FakeSocket,
  helloClient,
  helloServer,
  setup,
  transfer,
  xPacket,
} from './relay-fakes.js';

const TIMEOUT = ascii('00000f');
const PAYLOAD = Uint8Array.from({ length: 3000 }, (_, i) => (i * 31) & 0xff);

/** A transfer that must get through: the payload reaches the receiver's room socket whole. */
function expectTransfer(h: ReturnType<typeof setup>, senderIp: string, receiverIp: string): void {
  expect(transfer(h, senderIp, receiverIp, PAYLOAD)).toEqual(PAYLOAD);
}

function names(frames: Frame[]): string[] {
  return frames.map((f) => f.packet.name);
}

describe('registrations shared between source addresses', () => {
  it('with default limits, a hoarding address cannot lock out another', () => {
    const h = setup();
    const { maxPeers, maxPeersPerSource } = h.limits;
    const flood = Array.from({ length: maxPeersPerSource }, () => h.sender('10.0.0.1'));
    // The per-source ceiling: the next Hello from that address gets 0f.
    const over = h.connect('handshake', '10.0.0.1');
    over.sendFrame(0, helloServer);
    expect(over.take()).toEqual(TIMEOUT);
    expect(h.counters().peersPerSourceFull).toBe(1);
    // A second flooder fills the table.
    for (let i = maxPeersPerSource; i < maxPeers; i++) h.sender('10.0.0.3');
    expect(h.relay.stats().peers.senders).toBe(maxPeers);
    expect(h.relay.stats().sources.peers).toBe(2);
    expect(h.counters().peersEvicted).toBe(0);

    // A legitimate pair from a third address: each Hello takes the largest
    // holder's oldest registration, which gets 0f.
    expectTransfer(h, '10.0.0.2', '10.0.0.2');
    expect(h.counters().peersEvicted).toBe(2);
    expect(flood[0]!.take()).toEqual(TIMEOUT);
    expect(flood[1]!.take()).toEqual(TIMEOUT);
    expect(flood[0]!.ended && flood[1]!.ended && !flood[2]!.ended).toBe(true);
    expect(h.counters()).toMatchObject({ peersFull: 0, paired: 1, roomsPiped: 1, pipeEnded: 1 });
    h.expectEmpty();
  });

  it('a full table converges to equal shares, and a hoarder loses its unpaired registrations first', () => {
    const h = setup({ maxPeers: 8, maxPeersPerSource: 6 });
    for (let i = 0; i < 6; i++) h.sender('10.0.0.1');
    for (let i = 0; i < 2; i++) h.sender('10.0.0.2');
    // 10.0.0.2 holds fewer: it takes from 10.0.0.1 until both hold four.
    for (let i = 0; i < 3; i++) h.sender('10.0.0.2');
    expect(h.counters()).toMatchObject({ peersEvicted: 2, peersFull: 1 });

    const h2 = setup({ maxPeers: 4 });
    const R = h2.receiver('10.0.0.1'); // the oldest
    const S1 = h2.sender('10.0.0.1');
    const S2 = h2.sender('10.0.0.1');
    const S3 = h2.sender('10.0.0.1');
    R.take();
    R.sendFrame(3, { name: 'Refused' }); // S2 (uid 3) has no candidate any more
    h2.sender('10.0.0.2');
    expect(S2.take()).toEqual(TIMEOUT);
    expect(R.ended).toBe(false);
    expect(names(R.frames())).toEqual(['New_server']); // about the newcomer
    // No unpaired one left: the oldest goes, and its candidates get 09.
    h2.sender('10.0.0.2');
    expect(R.take()).toEqual(TIMEOUT);
    expect(S1.take()).toEqual(ascii('0000090001'));
    expect(S3.take()).toEqual(ascii('0000090001'));
    expect(h2.counters().peersEvicted).toBe(2);
    h.expectEmpty();
    h2.expectEmpty();
  });

  it('the stress tools’ shape passes with default limits: 512 clients at once from one address', () => {
    const h = setup();
    const senders = Array.from({ length: 256 }, () => h.sender());
    const receivers = Array.from({ length: 256 }, () => h.connect('handshake'));
    const uids: number[] = [];
    receivers.forEach((C, i) => {
      C.sendFrame(0, helloClient);
      uids.push(h.uidOf(senders[i]!, C.frames()));
    });
    expect(h.relay.stats().peers).toEqual({ unregistered: 0, senders: 256, receivers: 256 });
    receivers.forEach((C, i) => C.sendFrame(uids[i]!, { name: 'Accepted' }));
    h.settle();
    const rooms = receivers.map((C, i) => enterRoom(h, senders[i]!, C));
    expect(h.relay.stats().rooms.piping).toBe(256);
    for (const { S2, C2 } of rooms) {
      S2.send(PAYLOAD);
      expect(C2.take()).toEqual(PAYLOAD);
      C2.fin();
    }
    expect(h.counters()).toMatchObject({
      peersFull: 0,
      peersPerSourceFull: 0,
      peersEvicted: 0,
      roomsFull: 0,
      roomsPerSourceFull: 0,
      roomsEvicted: 0,
      paired: 256,
      roomsPiped: 256,
      pipeEnded: 256,
    });
    h.expectEmpty();
  });
});

describe('rooms shared between source addresses', () => {
  /** n idle pipes between peers at `ip`. */
  function idlePipes(h: ReturnType<typeof setup>, ip: string, n: number): { S2: FakeSocket; C2: FakeSocket }[] {
    return Array.from({ length: n }, () => {
      const { S, C, ok } = acceptedPair(h, ip);
      expect(ok).toBe(true);
      return enterRoom(h, S, C);
    });
  }

  it('with default limits, idle pipes of a hoarding address cannot lock out another', () => {
    const h = setup();
    const { maxRooms, maxRoomsPerSource } = h.limits;
    const flood = idlePipes(h, '10.0.0.1', maxRoomsPerSource);
    // Its next Accepted is refused with 0f on both sides.
    const { S, C, ok } = acceptedPair(h, '10.0.0.1');
    expect(ok).toBe(false);
    expect(S.ended && C.ended).toBe(true);
    expect(h.counters().roomsPerSourceFull).toBe(1);
    idlePipes(h, '10.0.0.3', maxRooms - maxRoomsPerSource);
    expect(h.relay.stats().rooms.piping).toBe(maxRooms);

    // A pair from another address takes the hoarder's oldest room: both its sockets are reset.
    expectTransfer(h, '10.0.0.2', '10.0.0.2');
    expect(h.counters()).toMatchObject({ roomsEvicted: 1, roomsFull: 0 });
    expect(flood[0]!.S2.destroyed && flood[0]!.C2.destroyed).toBe(true);
    expect(flood[1]!.S2.destroyed || flood[1]!.C2.destroyed).toBe(false);
    h.expectEmpty();
  });

  it('takes a room not yet piping before a piping one, and refuses when the newcomer holds as many', () => {
    const h = setup({ maxRooms: 3 });
    const [first] = idlePipes(h, '10.0.0.1', 1);
    const pending = acceptedPair(h, '10.0.0.1'); // recorded, no socket yet
    idlePipes(h, '10.0.0.1', 1);
    expectTransfer(h, '10.0.0.2', '10.0.0.2');
    expect(h.counters().roomsEvicted).toBe(1);
    expect(first!.S2.destroyed).toBe(false);
    const late = h.connect('secure', '10.0.0.1');
    late.send(ascii(`${pending.C.identity}\n`));
    expect(late.take()).toEqual(ascii('02')); // that room is gone

    // 10.0.0.1 holds two rooms, 10.0.0.2 none (its pipe ended): 10.0.0.2
    // takes the free room, then one of 10.0.0.1's (1 < 2), then no more (2 > 1).
    expect(acceptedPair(h, '10.0.0.2').ok).toBe(true);
    expect(acceptedPair(h, '10.0.0.2').ok).toBe(true);
    expect(h.counters()).toMatchObject({ roomsEvicted: 2, roomsFull: 0 });
    expect(acceptedPair(h, '10.0.0.2').ok).toBe(false);
    expect(h.counters()).toMatchObject({ roomsEvicted: 2, roomsFull: 1 });
    h.expectEmpty();
  });
});

describe('pipes that never end', () => {
  it('idle pipes expire and free the rooms a legitimate pair needs', () => {
    const h = setup({ maxRooms: 2 });
    const idle = [0, 1].map(() => {
      const { S, C } = acceptedPair(h, '127.0.0.1');
      return enterRoom(h, S, C);
    });
    // The measured attack: two idle pipes hold every room.
    const refused = acceptedPair(h, '127.0.0.1');
    expect(refused.ok).toBe(false);
    expect(h.counters().roomsFull).toBe(1);

    h.advance(h.limits.pipeIdleTimeoutSec - 1);
    expect(idle.some(({ S2, C2 }) => S2.destroyed || C2.destroyed)).toBe(false);
    h.advance(1);
    for (const { S2, C2 } of idle) expect(S2.destroyed && C2.destroyed).toBe(true);
    expect(h.counters().pipeIdleTimeout).toBe(2);
    expect(h.relay.stats().rooms.piping).toBe(0);
    expectTransfer(h, '127.0.0.1', '127.0.0.1');
    h.expectEmpty();
  });

  it('a pipe that moves bytes is not idle; a trickle ends at the lifetime', () => {
    const h = setup();
    const { pipeIdleTimeoutSec: idle, pipeLifetimeSec: lifetime } = h.limits;
    const { S, C } = acceptedPair(h, '127.0.0.1');
    const { S2, C2 } = enterRoom(h, S, C);
    // One byte either way just before each idle deadline keeps it open...
    let elapsed = 0;
    for (let i = 0; elapsed + idle - 1 < lifetime; i++) {
      h.advance(idle - 1);
      elapsed += idle - 1;
      (i % 2 === 0 ? S2 : C2).send(Uint8Array.of(i & 0xff));
      expect(S2.destroyed || C2.destroyed).toBe(false);
    }
    expect(h.counters().pipeIdleTimeout).toBe(0);
    // ...until the lifetime, counted from 00.
    h.advance(lifetime - elapsed);
    expect(S2.destroyed && C2.destroyed).toBe(true);
    expect(h.counters()).toMatchObject({ pipeLifetimeExpired: 1, pipeIdleTimeout: 0 });
    h.expectEmpty();
  });

  it('an idle deadline is counted from the last byte, either way', () => {
    const h = setup();
    const { S, C } = acceptedPair(h, '127.0.0.1');
    const { S2, C2 } = enterRoom(h, S, C);
    h.advance(100);
    C2.send(Uint8Array.of(1)); // receiver to sender counts too
    h.advance(h.limits.pipeIdleTimeoutSec - 1);
    expect(S2.destroyed).toBe(false);
    h.advance(1);
    expect(S2.destroyed && C2.destroyed).toBe(true);
    expect(S2.take()).toEqual(Uint8Array.of(1)); // no ff ff ff ff: the pipe was cut
    expect(h.counters().pipeIdleTimeout).toBe(1);
    h.expectEmpty();
  });
});

describe('registrations that wait', () => {
  it('closes a connection without Hello after helloTimeoutSec', () => {
    const h = setup();
    const silent = h.connect('handshake', '10.9.9.9');
    silent.send(ascii('0000')); // half a header
    h.advance(h.limits.helloTimeoutSec - 1);
    expect(silent.ended).toBe(false);
    h.advance(1);
    expect(silent.ended).toBe(true);
    expect(silent.take()).toHaveLength(0);
    expect(h.counters().helloTimeout).toBe(1);
    h.expectEmpty();
  });

  it('gives a peer with no candidate unpairedTimeoutSec, then 0f; a candidate stops that clock', () => {
    const h = setup();
    const { unpairedTimeoutSec: unpaired, handshakeTimeoutSec: t } = h.limits;
    expect(unpaired).toBeLessThan(t);
    const alone = h.sender('10.0.0.1');
    h.advance(unpaired - 1);
    expect(alone.ended).toBe(false);
    h.advance(1);
    expect(alone.take()).toEqual(TIMEOUT);
    expect(alone.ended).toBe(true);
    expect(h.counters()).toMatchObject({ unpairedTimeout: 1, handshakeTimeout: 0 });

    // A sender with a candidate waits until -t.
    const S = h.sender('10.0.0.2');
    h.advance(unpaired - 1);
    const C = h.receiver('10.0.0.3');
    h.advance(t - unpaired);
    expect(S.ended).toBe(false);
    h.advance(1);
    expect(S.take()).toEqual(TIMEOUT);
    expect(h.counters().handshakeTimeout).toBe(1);
    // Its receiver was told (09) and has nobody now; its own -t, sooner than
    // its unpaired deadline, ends it.
    expect(names(C.frames())).toEqual(['Closed']);
    h.advance(unpaired - 2);
    expect(C.ended).toBe(false);
    h.advance(1);
    expect(C.take()).toEqual(TIMEOUT);
    expect(h.counters()).toMatchObject({ unpairedTimeout: 1, handshakeTimeout: 2 });
    h.expectEmpty();
  });

  it('a receiver whose only sender had another password is timed out unpaired, not at -t', () => {
    const h = setup();
    const S = h.sender('10.0.0.1');
    const C = h.receiver('10.0.0.2');
    h.advance(60);
    C.sendFrame(1, { name: 'Spoke_failure', code: 1 }); // wrong password: no candidates left
    S.take();
    h.advance(h.limits.unpairedTimeoutSec);
    expect(C.take()).toEqual(TIMEOUT);
    expect(S.take()).toEqual(TIMEOUT);
    expect(h.counters().unpairedTimeout).toBe(2);
    // A legitimate pair after them completes.
    expectTransfer(h, '10.0.0.3', '10.0.0.4');
    h.expectEmpty();
  });
});

describe('what one event may write', () => {
  it('a chunk of 10 000 Hellos from a receiver that does not read: one write, repeats bounded', () => {
    const h = setup();
    const senders = Array.from({ length: 60 }, () => h.sender('10.0.0.1'));
    const C = h.connect('handshake', '10.0.0.2');
    C.full = true;
    const hello = encodeFrame({ uid: 0, packet: helloClient });
    C.send(concat(Array.from({ length: 10_000 }, () => hello)));
    expect(C.writes).toBe(1);
    expect(names(C.frames())).toEqual(['Client_identity', ...senders.map(() => 'New_server')]);
    expect(h.counters()).toMatchObject({ helloRepeated: h.limits.maxHelloRepeats, helloRepeatsIgnored: 10_000 - 1 - h.limits.maxHelloRepeats });
    // Later chunks of Hellos write nothing at all.
    C.send(hello);
    C.send(hello);
    expect(C.writes).toBe(1);
    expect(C.destroyed).toBe(false);
    h.expectEmpty();
  });

  it('five receivers that do not read: one write each per event, not one per packet', () => {
    const h = setup({ maxHelloRepeats: 1000 });
    for (let i = 0; i < 60; i++) h.sender('10.0.0.1');
    const receivers = Array.from({ length: 5 }, () => h.connect('handshake', '10.0.0.2'));
    const hellos = concat(Array.from({ length: 1000 }, () => encodeFrame({ uid: 0, packet: helloClient })));
    for (const C of receivers) {
      C.full = true;
      C.send(hellos);
    }
    // Even with repeats allowed, what a chunk asks for twice is written once.
    expect(receivers.map((C) => C.writes)).toEqual([1, 1, 1, 1, 1]);
    for (const C of receivers) expect(C.frames()).toHaveLength(61);
    expect(h.counters().helloRepeated).toBe(5 * 999);
    h.expectEmpty();
  });

  it('a sender’s Hello reaches each receiver once per event, and a chunk of packets to one peer is one write', () => {
    const h = setup();
    const receivers = Array.from({ length: 20 }, () => h.receiver('10.0.0.2'));
    const S = h.connect('handshake', '10.0.0.1');
    const hello = encodeFrame({ uid: 0, packet: helloServer });
    S.send(concat([hello, hello, hello]));
    for (const C of receivers) {
      expect(C.writes).toBe(2); // its own 03 at registration, then the 04 about S
      expect(names(C.frames())).toEqual(['New_server']);
    }
    expect(names(S.frames())).toEqual(['Server_identity']);
    expect(S.writes).toBe(1);

    // 100 07s from one receiver to S in one chunk: one write to S, byte for byte.
    const C = receivers[0]!;
    const x = encodeFrame({ uid: 21, packet: xPacket(C.identity) });
    C.send(concat(Array.from({ length: 100 }, () => x)));
    expect(S.writes).toBe(2);
    const got = S.frames();
    expect(got).toHaveLength(100);
    expect(got.every((f) => f.uid === 1 && f.packet.name === 'X_and_client_identity')).toBe(true);
    expect(h.counters().forwarded).toBe(100);
    h.expectEmpty();
  });

  it('a receiver that still does not read is reset past maxQueuedBytes, and the others carry on', () => {
    const h = setup({ maxQueuedBytes: 4096 });
    for (let i = 0; i < 100; i++) h.sender('10.0.0.1'); // a 03 and 100 04s: ≈ 6 KB
    const C = h.connect('handshake', '10.0.0.2');
    C.full = true;
    C.sendFrame(0, helloClient);
    expect(C.destroyed).toBe(true);
    expect(C.writes).toBe(1);
    expect(h.counters().slowReader).toBe(1);
    expectTransfer(h, '10.0.0.3', '10.0.0.4');
    h.expectEmpty();
  });
});

describe('relay limits for fairness', () => {
  it('checks the new limits, and parses NAME=VALUE for the command line', () => {
    expect(resolveLimits()).toMatchObject({
      unpairedTimeoutSec: 300,
      pipeIdleTimeoutSec: 120,
      pipeLifetimeSec: 21600,
      maxPeersPerSource: 768,
      maxRoomsPerSource: 384,
      maxHelloRepeats: 3,
      pressureShedFraction: 0.5,
    });
    // The stress tools run 512 clients (256 rooms) at once from one address.
    expect(RELAY_DEFAULTS.maxPeersPerSource).toBeGreaterThanOrEqual(512);
    expect(RELAY_DEFAULTS.maxRoomsPerSource).toBeGreaterThanOrEqual(256);
    expect(() => resolveLimits({ maxPeersPerSource: 0 })).toThrow(RangeError);
    expect(() => resolveLimits({ maxRoomsPerSource: 2.5 })).toThrow(RangeError);
    expect(() => resolveLimits({ pressureShedFraction: 1.5 })).toThrow(RangeError);
    expect(() => resolveLimits({ pipeIdleTimeoutSec: 0 })).toThrow(RangeError);
    expect(() => resolveLimits({ maxHelloRepeats: -1 })).toThrow(RangeError);

    expect(parseLimit('unpairedTimeoutSec=60')).toEqual({ unpairedTimeoutSec: 60 });
    expect(parseLimit('checkRoomSource=false', { maxRooms: 8 })).toEqual({ maxRooms: 8, checkRoomSource: false });
    expect(() => parseLimit('maxRoomsPerSource=')).toThrow(RangeError);
    expect(() => parseLimit('maxRoomsPerSource=abc')).toThrow(RangeError);
    expect(() => parseLimit('noSuchLimit=1')).toThrow(RangeError);
    expect(() => parseLimit('checkRoomSource=yes')).toThrow(RangeError);
    expect(() => parseLimit('=1')).toThrow(RangeError);
  });

  it('takes --limit on `bob relay` and `uk run relay`, refusing a bad one before listening', async () => {
    let stderr = '';
    const io = {
      stdout: { write: () => true, isTTY: false },
      stderr: { write: (s: string) => (stderr += s), isTTY: false },
      stdin: Readable.from(['']),
      cwd: process.cwd(),
    };
    const code = await main(['relay', '127.0.0.1', '0', '--secure-port', '0', '--limit', 'maxRooms=8', '--limit', 'pipeIdleTimeoutSec=0'], io);
    expect(code).toBe(124);
    expect(stderr).toMatch(/--limit: relay limit pipeIdleTimeoutSec must be a number/);

    expect(parseRelayArgs(['--limit', 'maxPeersPerSource=100', '--limit=checkRoomSource=false'])).toMatchObject({
      limits: { maxPeersPerSource: 100, checkRoomSource: false },
    });
    expect(() => parseRelayArgs(['--limit', 'maxPeers=0'])).toThrow(/--limit: relay limit maxPeers/);
  });
});

// The pipe timer does not change how a pipe normally ends (§3).
describe('a normal pipe end is unchanged', () => {
  it('writes ff ff ff ff to both on EOF', () => {
    const h = setup();
    const { S, C } = acceptedPair(h, '127.0.0.1');
    const { S2, C2 } = enterRoom(h, S, C);
    C2.fin();
    expect(S2.take()).toEqual(CLOSE_MARKER);
    expect(C2.take()).toEqual(CLOSE_MARKER);
    expect(h.counters()).toMatchObject({ pipeEnded: 1, pipeIdleTimeout: 0 });
    h.expectEmpty();
  });
});

describe('fairness under random traffic from three addresses', () => {
  const ips = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];
  const who = fc.nat({ max: 11 });
  const action = fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('hello' as const), ip: fc.nat({ max: 2 }), sender: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('connect' as const), ip: fc.nat({ max: 2 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('pair' as const), ip: fc.nat({ max: 2 }) }) },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('frame' as const),
        who,
        uid: fc.integer({ min: 1, max: 7 }),
        name: fc.constantFrom('Accepted' as const, 'Accepted' as const, 'Refused' as const, 'Spoke_failure' as const, 'X' as const),
      }),
    },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('line' as const), of: who }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('bytes' as const), who, n: fc.nat({ max: 64 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('fin' as const, 'close' as const, 'full' as const, 'drain' as const), who }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('advance' as const), seconds: fc.constantFrom(1, 29, 119, 121, 299, 301, 3600) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('pressure' as const), on: fc.boolean() }) },
  );

  it('never exceeds a table or a share, never throws, and always returns to empty', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(fc.array(action, { minLength: 10, maxLength: 80, size: 'max' }), (actions) => {
        // Lines from any address pair (checkRoomSource off), so that rooms fill up.
        const limits = { maxPeers: 4, maxPeersPerSource: 3, maxRooms: 2, maxRoomsPerSource: 2, maxUid: 7, maxQueuedBytes: 1024, checkRoomSource: false };
        const h = setup(limits);
        const handshake: FakeSocket[] = [];
        const secure: FakeSocket[] = [];
        const pick = (list: FakeSocket[], i: number) => list[i % Math.max(1, list.length)];
        for (const a of actions) {
          switch (a.kind) {
            case 'hello':
              handshake.push(a.sender ? h.sender(ips[a.ip]) : h.receiver(ips[a.ip]));
              break;
            case 'connect':
              handshake.push(h.connect('handshake', ips[a.ip]));
              break;
            case 'pair': {
              // A sender and a receiver from one address that accept each other.
              const { S, C } = acceptedPair(h, ips[a.ip]!);
              handshake.push(S, C);
              break;
            }
            case 'frame': {
              const s = pick(handshake, a.who);
              if (s === undefined) break;
              if (a.name === 'X') s.sendFrame(a.uid, xPacket(s.identity));
              else if (a.name === 'Spoke_failure') s.sendFrame(a.uid, { name: 'Spoke_failure', code: 1 });
              else s.sendFrame(a.uid, { name: a.name });
              break;
            }
            case 'line': {
              // The partner's identity, from the partner's own address: pairs when both come.
              const target = pick(handshake.filter((x) => x.ended), a.of);
              if (target === undefined) break;
              const s = h.connect('secure', target.ip);
              secure.push(s);
              s.send(ascii(`${target.identity}\n`));
              break;
            }
            case 'bytes':
              pick(secure, a.who)?.send(new Uint8Array(a.n).fill(0x41));
              break;
            case 'fin':
              pick([...handshake, ...secure], a.who)?.fin();
              break;
            case 'close':
              pick([...handshake, ...secure], a.who)?.close();
              break;
            case 'full': {
              const s = pick(handshake, a.who);
              if (s) s.full = true;
              break;
            }
            case 'drain': {
              const s = pick(handshake, a.who);
              if (s && !s.closed) {
                s.full = false;
                s.events.drain();
              }
              break;
            }
            case 'advance':
              h.advance(a.seconds);
              break;
            case 'pressure':
              h.relay.pressure(a.on);
              break;
          }
          h.settle();
          const { peers, rooms, sources } = h.relay.stats();
          expect(peers.senders + peers.receivers).toBeLessThanOrEqual(limits.maxPeers);
          expect(rooms.pending + rooms.waiting + rooms.piping).toBeLessThanOrEqual(limits.maxRooms);
          expect(sources.peers).toBeLessThanOrEqual(ips.length);
        }
        for (const s of handshake) for (const f of s.frames()) expect(f.packet.name).not.toBe('Relay_failure');
        h.relay.pressure(false);
        h.expectEmpty();
        const c = h.counters();
        for (const k of ['peersEvicted', 'peersPerSourceFull', 'roomsEvicted', 'roomsPiped', 'pipeIdleTimeout', 'unpairedTimeout', 'pressureShedRegistered'] as const) {
          if (c[k] > 0) seen.add(k);
        }
      }),
      { numRuns: 200 },
    );
    // The traffic reached what this property is about (not only refusals).
    expect([...seen].sort()).toEqual(['peersEvicted', 'peersPerSourceFull', 'pipeIdleTimeout', 'pressureShedRegistered', 'roomsEvicted', 'roomsPiped', 'unpairedTimeout']);
  });
});
