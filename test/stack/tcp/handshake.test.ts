// Opening connections (RFC 9293 3.5): passive and active open, simultaneous
// open, MSS negotiation, and the first data.

import { describe, expect, it } from 'vitest';
import { ACK, add, FIN, PSH, REMOTE_PORT, RST, settle, SYN, TcpPeer } from '../../helpers/tcp-peer.js';
import type { Connection } from '../../../stack/tcp/connection.js';

const ENGINES = ['wasm', 'ts'] as const;

describe.each(ENGINES)('TCP open (%s)', (engine) => {
  it('passive open: SYN -> SYN-ACK with our MSS -> ESTABLISHED, accepted', async () => {
    const p = await TcpPeer.create(engine);
    const listener = p.tcp.listen(80);
    const accepted: Connection[] = [];
    listener.onConnection = (c) => accepted.push(c);
    p.inject({ flags: SYN, seq: 1000, mss: 1400 });
    expect(p.tcp.stats().byState.SYN_RECEIVED).toBe(1);
    const synAck = p.expect({ flags: SYN | ACK, ack: 1001, mss: 1460, sport: 80, dport: REMOTE_PORT });
    expect(accepted).toHaveLength(0);
    p.inject({ flags: ACK, seq: 1001, ack: add(synAck.seq, 1) });
    p.expectNone();
    expect(accepted).toHaveLength(1);
    const s = p.tcp.stats();
    expect(s.byState.ESTABLISHED).toBe(1);
    expect(s.byState.SYN_RECEIVED).toBe(0);
    expect(accepted[0]!.remoteAddress).toBe('10.0.0.2');
    expect(accepted[0]!.remotePort).toBe(REMOTE_PORT);
    expect(accepted[0]!.localPort).toBe(80);
  });

  it('active open: SYN with MSS, SYN-ACK -> ACK, connect() resolves', async () => {
    const p = await TcpPeer.create(engine);
    const pending = p.tcp.connect('10.0.0.2', 80);
    const syn = p.expect({ flags: SYN, dport: 80, mss: 1460, ack: 0 });
    expect(syn.sport).toBeGreaterThanOrEqual(49152);
    expect(p.tcp.stats().byState.SYN_SENT).toBe(1);
    p.inject({ flags: SYN | ACK, seq: 5000, ack: add(syn.seq, 1), sport: 80, dport: syn.sport, mss: 1000 });
    p.expect({ flags: ACK, seq: add(syn.seq, 1), ack: 5001 });
    const conn = await pending;
    expect(conn.localPort).toBe(syn.sport);
    expect(p.tcp.stats().byState.ESTABLISHED).toBe(1);
    // The peer's MSS limits our segments.
    conn.setNoDelay(true);
    expect(conn.write(new Uint8Array(2500))).toBe(2500);
    p.expect({ flags: ACK, len: 1000 });
    p.expect({ flags: ACK, len: 1000 });
    p.expect({ flags: ACK | PSH, len: 500 });
  });

  it('uses 536 as the send MSS when the peer sends no MSS option', async () => {
    const p = await TcpPeer.create(engine);
    const pending = p.tcp.connect('10.0.0.2', 80);
    const syn = p.expect({ flags: SYN });
    p.inject({ flags: SYN | ACK, seq: 5000, ack: add(syn.seq, 1), sport: 80, dport: syn.sport });
    p.expect({ flags: ACK });
    const conn = await pending;
    conn.write(new Uint8Array(1000));
    p.expect({ flags: ACK, len: 536 });
    // Nagle holds the small tail until the first segment is acknowledged.
    p.expectNone();
    p.inject({ flags: ACK, seq: 5001, ack: add(syn.seq, 537), sport: 80, dport: syn.sport });
    p.expect({ flags: ACK | PSH, seq: add(syn.seq, 537), len: 464 });
  });

  it('our MSS follows the MTU (MTU - 40)', async () => {
    const p = await TcpPeer.create(engine, { mtu: 1000 });
    p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 1, mss: 1460 });
    p.expect({ flags: SYN | ACK, mss: 960 });
  });

  it('simultaneous open: SYN crosses SYN -> SYN_RECEIVED -> ESTABLISHED', async () => {
    const p = await TcpPeer.create(engine);
    const pending = p.tcp.connect('10.0.0.2', 80, { localPort: 5555 });
    const syn = p.expect({ flags: SYN, sport: 5555 });
    p.inject({ flags: SYN, seq: 7000, sport: 80, dport: 5555, mss: 1460 });
    expect(p.tcp.stats().byState.SYN_RECEIVED).toBe(1);
    p.expect({ flags: SYN | ACK, seq: syn.seq, ack: 7001 });
    p.inject({ flags: SYN | ACK, seq: 7000, ack: add(syn.seq, 1), sport: 80, dport: 5555 });
    // A SYN in SYN_RECEIVED for an active open is a duplicate: challenge ACK, no reset.
    p.inject({ flags: ACK, seq: 7001, ack: add(syn.seq, 1), sport: 80, dport: 5555 });
    const conn = await pending;
    expect(conn.localPort).toBe(5555);
    expect(p.tcp.stats().byState.ESTABLISHED).toBe(1);
  });

  it('RST answering our SYN refuses the connection and releases it', async () => {
    const p = await TcpPeer.create(engine);
    const pending = p.tcp.connect('10.0.0.2', 80);
    const syn = p.expect({ flags: SYN });
    p.inject({ flags: RST | ACK, seq: 0, ack: add(syn.seq, 1), sport: 80, dport: syn.sport });
    await expect(pending).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    const s = p.tcp.stats();
    expect(s.connections).toBe(0);
    expect(Object.values(s.timers).reduce((a, b) => a + b, 0)).toBe(0);
    expect(s.counters.closedBy.refused).toBe(1);
  });

  it('SYN_SENT: an ACK for something we did not send gets a RST and is dropped', async () => {
    const p = await TcpPeer.create(engine);
    void p.tcp.connect('10.0.0.2', 80).catch(() => {});
    const syn = p.expect({ flags: SYN });
    p.inject({ flags: ACK, seq: 300, ack: add(syn.seq, 1000), sport: 80, dport: syn.sport });
    p.expect({ flags: RST, seq: add(syn.seq, 1000) });
    // An unacceptable RST is ignored.
    p.inject({ flags: RST | ACK, seq: 0, ack: add(syn.seq, 5), sport: 80, dport: syn.sport });
    p.expectNone();
    // A RST without ACK is ignored too.
    p.inject({ flags: RST, seq: 0, sport: 80, dport: syn.sport });
    expect(p.tcp.stats().byState.SYN_SENT).toBe(1);
    p.tcp.shutdown();
  });

  it('a listener queues established connections for its iterator and accept()', async () => {
    const p = await TcpPeer.create(engine);
    const listener = p.tcp.listen(80, { backlog: 4 });
    for (const port of [1001, 1002]) {
      p.inject({ flags: SYN, seq: 100, sport: port });
      const sa = p.expect({ flags: SYN | ACK });
      p.inject({ flags: ACK, seq: 101, ack: add(sa.seq, 1), sport: port });
    }
    expect(p.tcp.stats().backlog).toEqual([{ port: 80, limit: 4, synReceived: 0, acceptQueue: 2 }]);
    const it = listener[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).toBe(false);
    expect((first.value as Connection).remotePort).toBe(1001);
    const second = await listener.accept();
    expect(second.remotePort).toBe(1002);
    expect(p.tcp.stats().backlog[0]!.acceptQueue).toBe(0);
    // A waiting next() ends when the listener closes.
    const waiting = it.next();
    listener.close();
    expect((await waiting).done).toBe(true);
    await settle();
  });

  it('data on the SYN-ACK is processed', async () => {
    const p = await TcpPeer.create(engine);
    const pending = p.tcp.connect('10.0.0.2', 80);
    const syn = p.expect({ flags: SYN });
    p.inject({
      flags: SYN | ACK, seq: 9000, ack: add(syn.seq, 1), sport: 80, dport: syn.sport,
      payload: new TextEncoder().encode('hello'),
    });
    p.expect({ flags: ACK, ack: 9000 + 1 + 5 });
    p.inject({ flags: FIN | ACK, seq: 9006, ack: add(syn.seq, 1), sport: 80, dport: syn.sport });
    p.expect({ flags: ACK, ack: 9007 });
    const conn = await pending;
    const reader = conn.readable.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('hello');
    expect((await reader.read()).done).toBe(true);
    expect(p.tcp.stats().byState.CLOSE_WAIT).toBe(1);
  });
});

describe.each(ENGINES)('TCP open, more (%s)', (engine) => {
  it('the handshake ACK may carry data and FIN: ESTABLISHED -> CLOSE_WAIT, all delivered', async () => {
    const p = await TcpPeer.create(engine);
    const listener = p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 1000, mss: 1460 });
    const sa = p.expect({ flags: SYN | ACK });
    p.inject({ flags: ACK | FIN, seq: 1001, ack: add(sa.seq, 1), payload: Uint8Array.of(7, 8, 9) });
    p.expect({ flags: ACK, ack: 1005 });
    const conn = await listener.accept();
    expect(p.tcp.stats().byState.CLOSE_WAIT).toBe(1);
    const reader = conn.readable.getReader();
    expect(Array.from((await reader.read()).value!)).toEqual([7, 8, 9]);
    expect((await reader.read()).done).toBe(true);
  });

  it('RFC 6528 ISNs: keyed by the 4-tuple and advancing with a 4 us clock', async () => {
    const p = await TcpPeer.create(engine);
    void p.tcp.connect('10.0.0.2', 80, { localPort: 3000 }).catch(() => {});
    const a = p.expect({ flags: SYN }).seq;
    void p.tcp.connect('10.0.0.2', 81, { localPort: 3000 }).catch(() => {});
    const b = p.expect({ flags: SYN }).seq;
    expect(a).not.toBe(b);
    p.tcp.shutdown();
    const q = await TcpPeer.create(engine);
    void q.tcp.connect('10.0.0.2', 80, { localPort: 3000, timeout: 500 }).catch(() => {});
    const c = q.expect({ flags: SYN }).seq;
    expect(c).not.toBe(a); // a different stack has a different secret
    q.advance(1000); // the attempt times out; the 4-tuple is free again
    q.drain();
    void q.tcp.connect('10.0.0.2', 80, { localPort: 3000 }).catch(() => {});
    const d = q.expect({ flags: SYN }).seq;
    expect((d - c) >>> 0).toBe(250_000); // same tuple, 1 s later: 250000 ticks of 4 us
  });
});

describe.each(ENGINES)('TCP open, retransmitted SYN (%s)', (engine) => {
  it('SYN_RECEIVED: the peer retransmitting its SYN gets the SYN-ACK again at once', async () => {
    const p = await TcpPeer.create(engine);
    p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 1000, mss: 1460 });
    const sa = p.expect({ flags: SYN | ACK, ack: 1001 });
    p.inject({ flags: SYN, seq: 1000, mss: 1460 });
    p.expect({ flags: SYN | ACK, seq: sa.seq, ack: 1001 });
    expect(p.tcp.stats().connections).toBe(1);
  });
});

describe.each(ENGINES)('TCP wildcard listener (%s)', (engine) => {
  it('listenAny() takes SYNs to ports without their own listener', async () => {
    const p = await TcpPeer.create(engine);
    const any = p.tcp.listenAny();
    const own = p.tcp.listen(80);
    p.port = 4321;
    const a = await p.accept({ listener: any });
    expect(a.conn.localPort).toBe(4321);
    p.port = 80;
    const b = await p.accept({ listener: own, sport: 999 });
    expect(b.conn.localPort).toBe(80);
    expect(() => p.tcp.listenAny()).toThrow(/EADDRINUSE/);
    any.close();
    p.inject({ flags: SYN, seq: 1, dport: 4444 });
    p.expect({ flags: RST | ACK });
    expect(p.tcp.stats().listeners).toBe(1);
  });
});
