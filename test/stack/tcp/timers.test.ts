// Timers on the virtual clock: RFC 6298 retransmission with Karn's rule and
// backoff, give-ups, fast retransmit and NewReno recovery, persist probes,
// keepalive and the connect timeout.

import { describe, expect, it } from 'vitest';
import { ACK, add, FIN, PSH, RST, SYN, TcpPeer } from '../../helpers/tcp-peer.js';
import { OwnerKind, ownerTag } from '../../../stack/hotpath/engine.js';
import { TX_RETRY_MS } from '../../../stack/tcp/timer-kinds.js';

const ENGINES = ['wasm', 'ts'] as const;

describe.each(ENGINES)('TCP timers (%s)', (engine) => {
  it('retransmits unacknowledged data with exponential backoff, then gives up (RST, timeout)', async () => {
    const p = await TcpPeer.create(engine, { tcp: { maxRetries: 4 } });
    const { conn, ours } = await p.accept();
    conn.write(new Uint8Array(100));
    const first = p.expect({ flags: ACK | PSH, seq: ours, len: 100 });
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      p.fireNext();
      const s = p.expect({ seq: ours, len: 100 });
      times.push(s.at - first.at);
    }
    // The handshake measured an RTT of ~0, so the RTO sits at its 200 ms floor
    // (RFC 6298 2.4) and doubles on each timeout (5.5).
    expect(times).toEqual([200, 600, 1400, 3000]);
    p.fireNext();
    p.expect({ flags: RST | ACK });
    expect(await conn.closed).toEqual({ reason: 'timeout', detail: 'retransmit' });
    const s = p.tcp.stats();
    expect(s.counters.giveUpRetransmit).toBe(1);
    expect(s.counters.retransmitTimeouts).toBe(4);
    expect(s.connections).toBe(0);
  });

  it('SYN retransmission backs off and gives up after synRetries: connect() rejects ETIMEDOUT', async () => {
    const p = await TcpPeer.create(engine, { tcp: { synRetries: 3 } });
    const pending = p.tcp.connect('10.0.0.2', 80).then(() => null, (e: unknown) => e);
    const syn = p.expect({ flags: SYN });
    for (const at of [1000, 3000, 7000]) {
      p.fireNext();
      const s = p.expect({ flags: SYN, seq: syn.seq });
      expect(s.at).toBe(at);
    }
    p.fireNext();
    p.expectNone();
    expect(await pending).toMatchObject({ code: 'ETIMEDOUT', message: expect.stringMatching(/connection timed out: timeout \(syn\)$/) });
    expect(p.tcp.stats().connections).toBe(0);
    expect(p.tcp.stats().counters.giveUpSyn).toBe(1);
    expect(p.tcp.stats().counters.synRetransmits).toBe(3);
  });

  it('SYN-ACK retransmission, then the embryonic connection is dropped', async () => {
    const p = await TcpPeer.create(engine, { tcp: { synRetries: 2 } });
    p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 50 });
    const sa = p.expect({ flags: SYN | ACK });
    p.fireNext();
    p.expect({ flags: SYN | ACK, seq: sa.seq, ack: 51 });
    p.fireNext();
    p.expect({ flags: SYN | ACK, seq: sa.seq });
    p.fireNext();
    expect(p.tcp.stats().connections).toBe(0);
    expect(p.tcp.stats().backlog[0]!.synReceived).toBe(0);
  });

  it('connect timeout ends the attempt with ETIMEDOUT (connect)', async () => {
    const p = await TcpPeer.create(engine);
    const pending = p.tcp.connect('10.0.0.2', 80, { timeout: 2500 }).then(() => null, (e: unknown) => e);
    p.advance(2500);
    const err = (await pending) as Error;
    expect(err).toMatchObject({ code: 'ETIMEDOUT', message: expect.stringMatching(/connection timed out: timeout \(connect\)$/) });
    expect(p.tcp.stats().counters.giveUpConnectTimeout).toBe(1);
    expect(p.timers.size).toBe(0);
  });

  it('RTO follows the measured RTT (SRTT + 4 RTTVAR, min 200 ms)', async () => {
    const p = await TcpPeer.create(engine);
    const pending = p.tcp.connect('10.0.0.2', 80);
    const syn = p.expect({ flags: SYN });
    p.advance(100);
    p.inject({ flags: SYN | ACK, seq: 1, ack: add(syn.seq, 1), sport: 80, dport: syn.sport, mss: 1460 });
    p.expect({ flags: ACK });
    const conn = await pending;
    p.port = syn.sport;
    p.peerPort = 80;
    conn.write(new Uint8Array(10));
    const d = p.expect({ len: 10 });
    p.fireNext();
    // R = 100: SRTT = 100, RTTVAR = 50, RTO = 300.
    expect(p.expect({ len: 10 }).at - d.at).toBe(300);
    expect(conn.inspect()!.rto).toBe(600); // backed off
  });

  it("Karn's rule: an ACK for retransmitted data gives no RTT sample; the backed-off RTO stays", async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const tcb = conn.inspect()!;
    const srtt8 = tcb.srtt8;
    conn.write(new Uint8Array(10));
    p.expect({ len: 10 });
    p.fireNext();
    p.expect({ len: 10 });
    const backedOff = tcb.rto;
    p.advance(50);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 10) });
    expect(tcb.srtt8).toBe(srtt8);
    expect(tcb.rto).toBe(backedOff);
    // New data, acknowledged without retransmission, gives a fresh sample.
    conn.write(new Uint8Array(10));
    p.expect({ len: 10 });
    p.advance(40);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 20) });
    expect(tcb.srtt8).not.toBe(srtt8);
    expect(tcb.rto).toBeLessThan(backedOff);
  });

  it('fast retransmit on the third duplicate ACK; NewReno retransmits the next hole on a partial ACK', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    conn.setNoDelay(true);
    conn.write(new Uint8Array(1460 * 6));
    expect(p.drain()).toHaveLength(6);
    const tcb = conn.inspect()!;
    // Segments 1 and 3 were lost: the peer ACKs segment 0, then duplicates.
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1460) });
    for (let i = 0; i < 2; i++) p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1460) });
    p.expectNone();
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1460) });
    p.expect({ seq: add(ours, 1460), len: 1460 });
    expect(p.tcp.stats().counters.fastRetransmits).toBe(1);
    expect(tcb.inRecovery).toBe(true);
    // Partial ACK up to the second hole: retransmit it at once.
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1460 * 3) });
    p.expect({ seq: add(ours, 1460 * 3), len: 1460 });
    expect(p.tcp.stats().counters.partialAckRetransmits).toBe(1);
    // Full ACK ends recovery with cwnd = ssthresh-bounded.
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1460 * 6) });
    expect(tcb.inRecovery).toBe(false);
    expect(tcb.cwnd).toBeLessThanOrEqual(tcb.ssthresh);
  });

  it('slow start grows cwnd from the initial window; a timeout resets it to one MSS', async () => {
    const p = await TcpPeer.create(engine, { tcp: { sndBuf: 200_000 } });
    const { conn, theirs, ours } = await p.accept();
    conn.setNoDelay(true);
    const tcb = conn.inspect()!;
    expect(tcb.cwnd).toBe(14600); // min(10*MSS, max(2*MSS, 14600))
    conn.write(new Uint8Array(60000));
    const burst = p.drain();
    expect(burst.reduce((n, s) => n + s.payload.length, 0)).toBe(14600);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 14600) });
    expect(tcb.cwnd).toBe(14600 + 1460);
    p.drain();
    p.fireNext(); // RTO
    expect(tcb.cwnd).toBe(1460);
    expect(p.drain()).toHaveLength(1);
  });

  it('zero window: persist probes back off and never give up while answered; the window opening resumes sending', async () => {
    const p = await TcpPeer.create(engine, { tcp: { maxRetries: 3 } });
    const { conn, theirs, ours } = await p.accept();
    conn.setNoDelay(true);
    conn.write(new Uint8Array(100));
    p.expect({ len: 100 });
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 100), window: 0 });
    conn.write(new Uint8Array(50));
    p.expectNone();
    expect(p.tcp.stats().timers.persist).toBe(1);
    expect(p.tcp.stats().timers.retransmit).toBe(0);
    const gaps: number[] = [];
    let last = p.now();
    for (let i = 0; i < 6; i++) {
      p.fireNext();
      const probe = p.expect({ flags: ACK, seq: add(ours, 99), len: 0 });
      gaps.push(probe.at - last);
      last = probe.at;
      // The peer answers: still no room.
      p.inject({ flags: ACK, seq: theirs, ack: add(ours, 100), window: 0 });
    }
    expect(gaps[1]).toBe(2 * gaps[0]!);
    expect(gaps[2]).toBe(2 * gaps[1]!);
    expect(p.tcp.stats().connections).toBe(1); // 6 probes > maxRetries, but answered
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 100), window: 1000 });
    p.expect({ flags: ACK | PSH, seq: add(ours, 100), len: 50 });
    expect(p.tcp.stats().timers.persist).toBe(0);
  });

  it('zero window: unanswered probes give up after maxRetries', async () => {
    const p = await TcpPeer.create(engine, { tcp: { maxRetries: 3 } });
    const { conn, theirs, ours } = await p.accept();
    conn.write(new Uint8Array(10));
    p.expect({ len: 10 });
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 10), window: 0 });
    conn.write(new Uint8Array(10));
    for (let i = 0; i < 3; i++) {
      p.fireNext();
      p.expect({ flags: ACK, len: 0 });
    }
    p.fireNext();
    expect(await conn.closed).toEqual({ reason: 'timeout', detail: 'persist' });
    expect(p.tcp.stats().counters.giveUpPersist).toBe(1);
  });

  it('keepalive: probes after the idle time, ends the connection when unanswered', async () => {
    const p = await TcpPeer.create(engine, {
      tcp: { keepalive: true, keepaliveIdle: 10_000, keepaliveInterval: 1_000, keepaliveCount: 3 },
    });
    const { conn, theirs, ours } = await p.accept();
    p.advance(9_999);
    p.expectNone();
    p.advance(1);
    p.expect({ flags: ACK, seq: add(ours, -1), ack: theirs, len: 0 });
    // Answered: back to idle.
    p.inject({ flags: ACK, seq: theirs, ack: ours });
    p.advance(9_999);
    p.expectNone();
    p.advance(1);
    p.expect({ flags: ACK, seq: add(ours, -1) });
    p.advance(1_000);
    p.expect({ flags: ACK, seq: add(ours, -1) });
    p.advance(1_000);
    p.expect({ flags: ACK, seq: add(ours, -1) });
    p.advance(1_000);
    p.expect({ flags: RST | ACK });
    expect(await conn.closed).toEqual({ reason: 'keepalive' });
    expect(p.tcp.stats().counters.giveUpKeepalive).toBe(1);
  });

  it('keepalive is off by default and per connection with setKeepAlive()', async () => {
    const p = await TcpPeer.create(engine, { tcp: { keepaliveIdle: 1000 } });
    const { conn } = await p.accept();
    expect(p.tcp.stats().timers.keepalive).toBe(0);
    conn.setKeepAlive(true);
    expect(p.tcp.stats().timers.keepalive).toBe(1);
    conn.setKeepAlive(false);
    expect(p.tcp.stats().timers.keepalive).toBe(0);
  });

  it('a write the arena has no chunk for: the Retry timer tells the writer to come back, and then the bytes go', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, ours } = await p.accept();
    let wakes = 0;
    conn.onWritable = () => wakes++;
    const held: number[] = [];
    for (let c = p.hot.alloc(ownerTag(OwnerKind.App, 1)); c !== 0; c = p.hot.alloc(ownerTag(OwnerKind.App, 1))) held.push(c);
    expect(conn.write(new Uint8Array(1000).fill(7))).toBe(0);
    expect(p.tcp.stats().timers.retry).toBe(1);
    p.advance(TX_RETRY_MS);
    expect(wakes).toBe(1); // the timer fired: the writer is told to come back
    p.expectNone(); // with nothing queued there is nothing to send
    for (const c of held) p.hot.free(c);
    expect(conn.write(new Uint8Array(1000).fill(7))).toBe(1000);
    p.expect({ flags: ACK | PSH, seq: ours, len: 1000 });
    p.advance(TX_RETRY_MS);
    expect(wakes).toBe(1); // a write that fit arms no retry
    expect(p.tcp.stats().timers.retry).toBe(0);
  });

  it('a FIN is retransmitted like data', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, ours } = await p.accept();
    conn.close();
    p.expect({ flags: FIN | ACK, seq: ours });
    p.fireNext();
    p.expect({ flags: FIN | ACK, seq: ours });
  });
});

describe.each(ENGINES)('TCP timers after a SYN timeout (%s)', (engine) => {
  it('RFC 6298 5.7: a handshake that needed a SYN retransmission starts data with RTO >= 3 s', async () => {
    const p = await TcpPeer.create(engine);
    const pending = p.tcp.connect('10.0.0.2', 80);
    const syn = p.expect({ flags: SYN });
    p.fireNext();
    p.expect({ flags: SYN });
    p.inject({ flags: SYN | ACK, seq: 1, ack: add(syn.seq, 1), sport: 80, dport: syn.sport });
    const conn = await pending;
    expect(conn.inspect()!.rto).toBe(3000);
  });
});
