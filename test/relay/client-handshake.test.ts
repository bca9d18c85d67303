// The clients' handshake machines against each other, without sockets: a
// small router stands in for the relay's forwarding rules (docs/bob-protocol.md
// §2.2: uid rewritten to the source, 0a answered with 0a to the sender and
// 0e to the receiver, 0b dropped), so each rule of §2.4 can be checked
// packet by packet.
import { describe, expect, it } from 'vitest';
import { encodeFrame, type Frame } from '../../relay/handshake/packet.js';
import { HandshakeDecoder } from '../../relay/handshake/decoder.js';
import { ExitCode } from '../../relay/client/errors.js';
import type { HandshakeMachine, Step } from '../../relay/client/handshake-common.js';
import { ReceiverHandshake } from '../../relay/client/receiver-handshake.js';
import { SenderHandshake } from '../../relay/client/sender-handshake.js';
import { serverInit } from '../../relay/spoke/spake2ee.js';

const COUNT = 16;

interface Peer {
  readonly uid: number;
  readonly identity: string;
  readonly machine: HandshakeMachine;
  readonly steps: Step[];
}

/** Delivers packets the way a bob relay forwards them; answers questions with `answer`. */
class Router {
  readonly peers = new Map<number, Peer>();
  readonly toRelay: Array<{ from: number; frame: Frame }> = [];
  answer = true;

  add(uid: number, machine: HandshakeMachine): Peer {
    const peer = { uid, identity: `127.0.0.1:${40000 + uid}`, machine, steps: [] };
    this.peers.set(uid, peer);
    return peer;
  }

  hello(peer: Peer): void {
    for (const frame of peer.machine.start()) this.route(peer, frame);
  }

  deliver(peer: Peer, frame: Frame): void {
    // Every packet goes through the real codec, as it would on the wire.
    const decoded = new HandshakeDecoder().push(encodeFrame(frame));
    expect(decoded.error).toBeNull();
    const step = peer.machine.handle(decoded.frames[0]);
    peer.steps.push(step);
    for (const out of step.send) this.route(peer, out);
    if (step.ask && peer.machine instanceof ReceiverHandshake) {
      for (const out of peer.machine.answer(step.ask.uid, this.answer)) this.route(peer, out);
    }
  }

  route(from: Peer, frame: Frame): void {
    const p = frame.packet;
    const id = new TextEncoder().encode(from.identity);
    if (p.name === 'Hello_as_a_server') return this.registerSender(from, p.public, id);
    if (p.name === 'Hello_as_a_client') return this.registerReceiver(from, id);
    if (frame.uid === 0 || p.name === 'Refused') {
      this.toRelay.push({ from: from.uid, frame });
      return;
    }
    const to = this.peers.get(frame.uid);
    if (to === undefined) return;
    this.deliver(to, { uid: from.uid, packet: p });
    if (p.name === 'Accepted') this.deliver(from, { uid: 0, packet: { name: 'Done' } });
  }

  readonly senders: Array<{ peer: Peer; public: Uint8Array; identity: Uint8Array }> = [];
  readonly receivers: Peer[] = [];

  registerSender(peer: Peer, publicBytes: Uint8Array, identity: Uint8Array): void {
    this.deliver(peer, { uid: 0, packet: { name: 'Server_identity', identity } });
    this.senders.push({ peer, public: publicBytes, identity });
    for (const r of this.receivers) this.newServer(r, this.senders[this.senders.length - 1]);
  }

  registerReceiver(peer: Peer, identity: Uint8Array): void {
    this.deliver(peer, { uid: 0, packet: { name: 'Client_identity', identity } });
    this.receivers.push(peer);
    for (const s of this.senders) this.newServer(peer, s);
  }

  newServer(receiver: Peer, s: { peer: Peer; public: Uint8Array; identity: Uint8Array }): void {
    this.deliver(receiver, { uid: 0, packet: { name: 'New_server', uid: s.peer.uid, public: s.public, identity: s.identity } });
  }
}

function sender(password: string, failFast = false): SenderHandshake {
  const init = serverInit(password, { count: COUNT });
  return new SenderHandshake({ publicBytes: init.public, secret: init.secret, failFast });
}

function outcome(peer: Peer) {
  return peer.steps.find((s) => s.paired !== undefined || s.error !== undefined);
}

describe('client handshake machines', () => {
  it('pair a sender and a receiver with the same password, with identical keys', () => {
    const router = new Router();
    const s = router.add(1, sender('correct-horse'));
    const c = router.add(2, new ReceiverHandshake({ password: 'correct-horse' }));
    router.hello(s);
    router.hello(c);
    const sent = outcome(s)?.paired;
    const received = outcome(c)?.paired;
    expect(sent).toBeDefined();
    expect(received).toBeDefined();
    expect(new TextDecoder().decode(sent!.peerIdentity)).toBe(c.identity);
    expect(new TextDecoder().decode(received!.peerIdentity)).toBe(s.identity);
    expect(sent!.keys).toEqual(received!.keys);
    expect(router.toRelay).toEqual([]);
  });

  it('work in either arrival order', () => {
    const router = new Router();
    const c = router.add(2, new ReceiverHandshake({ password: 'pw-order' }));
    const s = router.add(1, sender('pw-order'));
    router.hello(c);
    router.hello(s);
    const sent = outcome(s)?.paired;
    const received = outcome(c)?.paired;
    expect(sent).toBeDefined();
    expect(received).toBeDefined();
    expect(new TextDecoder().decode(sent!.peerIdentity)).toBe(c.identity);
    expect(new TextDecoder().decode(received!.peerIdentity)).toBe(s.identity);
    // Both sides derived the same record keys (one per direction) and ciphers.
    expect(sent!.keys.k0).toHaveLength(64);
    expect(sent!.keys.k1).toHaveLength(64);
    expect(sent!.keys.k0).not.toEqual(sent!.keys.k1);
    expect(sent!.keys).toEqual(received!.keys);
    expect(router.toRelay).toEqual([]);
  });

  it('report a wrong password on both sides with 0d 01 and keep waiting (like bob)', () => {
    const router = new Router();
    const s = router.add(1, sender('right'));
    const c = router.add(2, new ReceiverHandshake({ password: 'wrong' }));
    router.hello(s);
    router.hello(c);
    expect(outcome(s)).toBeUndefined();
    expect(outcome(c)).toBeUndefined();
    const sentByC = c.steps.flatMap((st) => st.send);
    expect(sentByC.at(-1)?.packet).toEqual({ name: 'Spoke_failure', code: 1 });
    expect(s.machine.giveUp(5).code).toBe(ExitCode.WrongPassword);
    expect(c.machine.giveUp(5).code).toBe(ExitCode.WrongPassword);
    expect(c.machine.giveUp(5).message).toMatch(/^Wrong password: 1 sender used another one/);
  });

  it('give up at once on a wrong password with failFast', () => {
    const router = new Router();
    const s = router.add(1, sender('right', true));
    const c = router.add(2, new ReceiverHandshake({ password: 'wrong', failFast: true }));
    router.hello(s);
    router.hello(c);
    expect(outcome(c)?.error?.code).toBe(ExitCode.WrongPassword);
    expect(outcome(c)?.error?.message).toBe(`Wrong password: the sender ${s.identity} uses another one`);
    expect(outcome(s)?.error?.code).toBe(ExitCode.WrongPassword);
  });

  it('let a receiver seeing two senders pick the one with its password', () => {
    const router = new Router();
    const wrong = router.add(1, sender('other'));
    const right = router.add(3, sender('mine'));
    const c = router.add(2, new ReceiverHandshake({ password: 'mine' }));
    router.hello(wrong);
    router.hello(right);
    router.hello(c);
    expect(outcome(wrong)).toBeUndefined();
    expect(outcome(right)?.paired).toBeDefined();
    expect(new TextDecoder().decode(outcome(c)!.paired!.peerIdentity)).toBe(right.identity);
  });

  it('send 0b on refusal, keep waiting, and give up with Refused', () => {
    const router = new Router();
    router.answer = false;
    const s = router.add(1, sender('pw'));
    const c = router.add(2, new ReceiverHandshake({ password: 'pw' }));
    router.hello(s);
    router.hello(c);
    expect(router.toRelay.map((r) => r.frame.packet.name)).toEqual(['Refused']);
    expect(outcome(c)).toBeUndefined();
    expect(c.machine.giveUp(2).code).toBe(ExitCode.Refused);
    expect(s.machine.giveUp(2).code).toBe(ExitCode.Refused); // agreed, never accepted
  });

  it('answer packets about unknown peers as bob does (0c C / S / H) and time out cleanly', () => {
    const s = sender('pw');
    s.handle({ uid: 0, packet: { name: 'Server_identity', identity: new TextEncoder().encode('127.0.0.1:1') } });
    expect(s.handle({ uid: 7, packet: { name: 'Client_validator', validator: new Uint8Array(64) } }).send[0].packet).toEqual({
      name: 'Relay_failure',
      letter: 'C',
      uid: 7,
    });
    expect(s.handle({ uid: 7, packet: { name: 'Accepted' } }).send[0].packet).toMatchObject({ letter: 'H', uid: 7 });
    expect(s.handle({ uid: 0, packet: { name: 'Timeout' } }).error?.code).toBe(ExitCode.Timeout);
    expect(s.handle({ uid: 0, packet: { name: 'Closed', uid: 0 } }).error?.message).toBe('Connection closed by relay');
    expect(s.giveUp(1).code).toBe(ExitCode.Timeout);

    const c = new ReceiverHandshake({ password: 'pw' });
    c.handle({ uid: 0, packet: { name: 'Client_identity', identity: new TextEncoder().encode('127.0.0.1:2') } });
    const y = c.handle({ uid: 9, packet: { name: 'Y_and_server_validator', Y: new Uint8Array(32), validator: new Uint8Array(64) } });
    expect(y.send[0].packet).toMatchObject({ name: 'Relay_failure', letter: 'S', uid: 9 });
    // 0e without agreement: fail, and never send the `0c N0000` bob relays cannot parse (§7).
    const done = c.handle({ uid: 0, packet: { name: 'Done' } });
    expect(done.send).toEqual([]);
    expect(done.error?.code).toBe(ExitCode.Failure);
  });

  it('refuse a public packet with a PBKDF2 count above the cap with 0d 03', () => {
    const init = serverInit('pw', { count: 2000 });
    const c = new ReceiverHandshake({ password: 'pw', maxCount: 1000 });
    c.handle({ uid: 0, packet: { name: 'Client_identity', identity: new TextEncoder().encode('127.0.0.1:2') } });
    const step = c.handle({
      uid: 0,
      packet: { name: 'New_server', uid: 5, public: init.public, identity: new TextEncoder().encode('127.0.0.1:1') },
    });
    expect(step.send).toEqual([{ uid: 5, packet: { name: 'Spoke_failure', code: 3 } }]);
  });
});
