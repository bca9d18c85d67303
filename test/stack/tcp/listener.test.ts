// A listener's queue and iteration (stack/tcp/listener.ts): connections
// handed out once, the queue losing one that ends before it is taken, a
// closed listener rejecting accept() and ending iteration, and connections
// the application took surviving the listener's close.

import { describe, expect, it } from 'vitest';
import { TcpError } from '../../../stack/tcp/errors.js';
import type { Listener } from '../../../stack/tcp/listener.js';
import { ACK, add, RST, SYN, TcpPeer } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;

/** Complete a handshake from peer port `sport`, leaving the connection queued. */
function handshake(p: TcpPeer, sport: number, peerIss = 1000): { theirs: number; ours: number } {
  p.inject({ flags: SYN, seq: peerIss, mss: 1460, sport });
  const synAck = p.expect({ flags: SYN | ACK, ack: add(peerIss, 1) });
  p.inject({ flags: ACK, seq: add(peerIss, 1), ack: add(synAck.seq, 1), sport });
  return { theirs: add(peerIss, 1), ours: add(synAck.seq, 1) };
}

describe.each(ENGINES)('listener (%s)', (engine) => {
  it('queues what nobody takes, hands each out once, and forgets one that ends before it is taken', async () => {
    const p = await TcpPeer.create(engine);
    const listener = p.tcp.listen(p.port);
    const a = handshake(p, 40001);
    handshake(p, 40002);
    handshake(p, 40003);
    expect(listener.queued).toBe(3);
    // The first in the queue is reset by its peer before anyone takes it.
    p.inject({ flags: RST, seq: a.theirs, sport: 40001 });
    expect(listener.queued).toBe(2);
    const first = await listener.accept();
    const second = await listener.accept();
    expect([first.remotePort, second.remotePort]).toEqual([40002, 40003]);
    expect(listener.queued).toBe(0);
  });

  it('once closed: accept() rejects with ECONNABORTED, next() and iteration are done', async () => {
    const p = await TcpPeer.create(engine);
    const listener = p.tcp.listen(p.port);
    const waiting = listener.accept();
    listener.close();
    await expect(waiting).rejects.toThrow(new TcpError('ECONNABORTED', `listener on port ${p.port} closed`));
    const err = await listener.accept().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TcpError);
    expect((err as TcpError).code).toBe('ECONNABORTED');
    expect(await listener.next()).toEqual({ done: true, value: undefined });
    const seen: unknown[] = [];
    for await (const c of listener as Listener) seen.push(c);
    expect(seen).toEqual([]);
  });

  it('leaving a for-await loop ends the iteration, not the listener', async () => {
    const p = await TcpPeer.create(engine);
    const listener = p.tcp.listen(p.port);
    handshake(p, 40001);
    const it = listener[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    expect(await it.return!()).toEqual({ done: true, value: undefined });
    expect(listener.closed).toBe(false);
    handshake(p, 40002);
    expect((await listener.accept()).remotePort).toBe(40002);
  });

  it('connections the application took, by onConnection or a waiting accept(), outlive the listener', async () => {
    const p = await TcpPeer.create(engine);
    const listener = p.tcp.listen(p.port);
    const waiting = listener.accept();
    handshake(p, 40001);
    const byAccept = await waiting;
    const taken: unknown[] = [];
    listener.onConnection = (c) => taken.push(c);
    handshake(p, 40002);
    expect(taken).toHaveLength(1);
    listener.close();
    p.drain();
    expect(byAccept.closeInfo).toBeNull();
    expect((taken[0] as typeof byAccept).closeInfo).toBeNull();
    expect(p.tcp.stats().connections).toBe(2);
  });
});
