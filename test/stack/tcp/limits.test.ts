// Bounds and pressure: ephemeral ports, listen backlog, connection limit,
// arena pressure (window sized to what can be held, SYNs dropped, oldest
// embryonic connections reset).

import { describe, expect, it } from 'vitest';
import { OwnerKind, ownerTag } from '../../../stack/hotpath/engine.js';
import { ACK, add, RST, SYN, TcpPeer } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;

/** Take free arena chunks (as an application would) until `leave` remain. */
function fillArena(p: TcpPeer, leave: number): number[] {
  const taken: number[] = [];
  while (p.hot.chunkCount - p.hot.chunksInUse() > leave) {
    const c = p.hot.alloc(ownerTag(OwnerKind.App, 7));
    if (c === 0) break;
    taken.push(c);
  }
  return taken;
}

describe.each(ENGINES)('TCP limits (%s)', (engine) => {
  it('ephemeral ports: within the range (RFC 6056 alg. 4, see ports.test.ts), and exhaustion fails at once with EADDRINUSE', async () => {
    const p = await TcpPeer.create(engine, { tcp: { ephemeralLow: 50000, ephemeralHigh: 50003 } });
    const ports = new Set<number>();
    for (let i = 0; i < 4; i++) {
      void p.tcp.connect('10.0.0.2', 80).catch(() => {});
      ports.add(p.expect({ flags: SYN }).sport);
    }
    expect([...ports].sort()).toEqual([50000, 50001, 50002, 50003]);
    const err = await p.tcp.connect('10.0.0.2', 80).then(() => null, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'EADDRINUSE' });
    expect((err as Error).message).toMatch(/50000-50003/);
    expect(p.tcp.stats().counters.ephemeralExhausted).toBe(1);
    // Another remote endpoint can reuse the same local ports.
    void p.tcp.connect('10.0.0.2', 81).catch(() => {});
    p.expect({ flags: SYN, dport: 81 });
    p.tcp.shutdown();
  });

  it('an explicit local port already used for the same remote is refused', async () => {
    const p = await TcpPeer.create(engine);
    void p.tcp.connect('10.0.0.2', 80, { localPort: 4000 }).catch(() => {});
    await expect(p.tcp.connect('10.0.0.2', 80, { localPort: 4000 })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(() => p.tcp.listen(4001)).not.toThrow();
    expect(() => p.tcp.listen(4001)).toThrow(/EADDRINUSE/);
    p.tcp.shutdown();
  });

  it('listen backlog, without SYN cookies: SYNs beyond it are dropped (counted) until the application takes a connection', async () => {
    const p = await TcpPeer.create(engine, { tcp: { synCookies: false } });
    const listener = p.tcp.listen(80, { backlog: 2 });
    p.inject({ flags: SYN, seq: 1, sport: 3001 });
    const sa = p.expect({ flags: SYN | ACK });
    p.inject({ flags: ACK, seq: 2, ack: add(sa.seq, 1), sport: 3001 });
    p.inject({ flags: SYN, seq: 1, sport: 3002 });
    p.expect({ flags: SYN | ACK });
    p.inject({ flags: SYN, seq: 1, sport: 3003 });
    p.expectNone();
    expect(p.tcp.stats().counters.dropSynBacklogFull).toBe(1);
    expect(p.tcp.stats().backlog[0]).toEqual({ port: 80, limit: 2, synReceived: 1, acceptQueue: 1 });
    await listener.accept();
    p.inject({ flags: SYN, seq: 1, sport: 3003 });
    p.expect({ flags: SYN | ACK });
  });

  it('maxConnections bounds connect() (EMFILE) and passive opens (SYN dropped)', async () => {
    const p = await TcpPeer.create(engine, { tcp: { maxConnections: 2 } });
    p.tcp.listen(80);
    void p.tcp.connect('10.0.0.2', 80).catch(() => {});
    p.inject({ flags: SYN, seq: 1, sport: 3001 });
    p.drain();
    await expect(p.tcp.connect('10.0.0.2', 80)).rejects.toMatchObject({ code: 'EMFILE' });
    p.inject({ flags: SYN, seq: 1, sport: 3002 });
    p.expectNone();
    expect(p.tcp.stats().counters.dropSynConnLimit).toBe(1);
    p.tcp.shutdown();
  });

  it('arena pressure: the advertised window is what free chunks can hold', async () => {
    const p = await TcpPeer.create(engine);
    const reserve = p.tcp.opts.arenaReserve;
    // Free: the reserve, 2 chunks for the SYN's RX slot and the SYN-ACK's TX slot, 2 more.
    const taken = fillArena(p, reserve + 4);
    p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 1 });
    p.expect({ flags: SYN | ACK, window: 2 * 2048 });
    for (const c of taken) p.hot.free(c);
  });

  it('arena pressure: new SYNs are dropped and the oldest embryonic connection is reset', async () => {
    const p = await TcpPeer.create(engine);
    p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 1, sport: 3001 });
    const first = p.expect({ flags: SYN | ACK });
    p.advance(10);
    p.inject({ flags: SYN, seq: 1, sport: 3002 });
    p.expect({ flags: SYN | ACK });
    const taken = fillArena(p, 1);
    p.inject({ flags: SYN, seq: 1, sport: 3003 });
    const c = p.tcp.stats().counters;
    expect(c.dropSynNoMemory).toBe(1);
    expect(c.pressureResets).toBe(1);
    expect(p.tcp.stats().byState.SYN_RECEIVED).toBe(1);
    for (const chunk of taken) p.hot.free(chunk);
    // The reset embryo (port 3001) is gone: its ACK now meets the listener, which answers RST.
    p.drain();
    p.inject({ flags: ACK, seq: 2, ack: add(first.seq, 1), sport: 3001 });
    p.expect({ flags: RST, seq: add(first.seq, 1) });
    expect(p.timers.size).toBeGreaterThan(0); // the surviving embryo's SYN-ACK timer
  });

  it('arena pressure: in-order data that cannot be stored is dropped (counted), not acknowledged', async () => {
    const p = await TcpPeer.create(engine);
    const { theirs, ours } = await p.accept();
    const taken = fillArena(p, 1); // room for the RX slot only
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: new Uint8Array(1000) });
    expect(p.tcp.stats().counters.dropRecvNoMemory).toBe(1000);
    for (const c of taken) p.hot.free(c);
    p.advance(200);
    // Nothing was acknowledged beyond what was stored: the peer will retransmit.
    for (const s of p.drain()) expect(s.ack).toBe(theirs);
  });

  it('no TX chunk: output is retried shortly after (txNoSlot counted)', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, ours } = await p.accept();
    conn.setNoDelay(true);
    p.lower.failTx = true;
    conn.write(new Uint8Array(100));
    p.expectNone();
    expect(p.tcp.stats().counters.txNoSlot).toBeGreaterThan(0);
    p.lower.failTx = false;
    p.advance(10);
    p.expect({ seq: ours, len: 100 });
  });
});
