// Resets and RFC 5961 blind-attack mitigations: RST generation for closed
// ports and bad ACKs (RFC 9293 3.5.2), the exact-match RST rule, challenge ACKs
// for in-window RSTs, SYNs in synchronized states and ACKs out of range, and
// their stack-wide rate limit.

import { describe, expect, it } from 'vitest';
import { ACK, add, FIN, RST, settle, SYN, TcpPeer } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;

describe.each(ENGINES)('TCP resets and RFC 5961 (%s)', (engine) => {
  it('closed port: SYN gets <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>', async () => {
    const p = await TcpPeer.create(engine);
    p.inject({ flags: SYN, seq: 777, dport: 81 });
    p.expect({ flags: RST | ACK, seq: 0, ack: 778, sport: 81 });
    p.inject({ flags: ACK, seq: 10, ack: 3000, dport: 81, payload: new Uint8Array(5) });
    p.expect({ flags: RST, seq: 3000 });
    p.inject({ flags: FIN, seq: 10, dport: 81, payload: new Uint8Array(5) });
    p.expect({ flags: RST | ACK, seq: 0, ack: 16 });
    // Never a RST for a RST.
    p.inject({ flags: RST, seq: 10, dport: 81 });
    p.expectNone();
    expect(p.tcp.stats().counters.rstSentClosedPort).toBe(3);
  });

  it('segments for another address are dropped silently', async () => {
    const p = await TcpPeer.create(engine);
    p.inject({ flags: SYN, seq: 1, dport: 81, dst: '10.0.0.99' });
    p.expectNone();
    expect(p.tcp.stats().counters.dropNotForUs).toBe(1);
  });

  it('LISTEN: RST ignored, ACK answered with RST, no state created', async () => {
    const p = await TcpPeer.create(engine);
    p.tcp.listen(80);
    p.inject({ flags: RST, seq: 1 });
    p.expectNone();
    p.inject({ flags: ACK, seq: 1, ack: 4242 });
    p.expect({ flags: RST, seq: 4242 });
    expect(p.tcp.stats().connections).toBe(0);
  });

  it('SYN_RECEIVED: an unacceptable ACK gets a RST; the embryo stays', async () => {
    const p = await TcpPeer.create(engine);
    p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 100 });
    const sa = p.expect({ flags: SYN | ACK });
    p.inject({ flags: ACK, seq: 101, ack: add(sa.seq, 50) });
    p.expect({ flags: RST, seq: add(sa.seq, 50) });
    expect(p.tcp.stats().byState.SYN_RECEIVED).toBe(1);
  });

  it('SYN_RECEIVED: an exact RST returns to LISTEN (the embryo is released)', async () => {
    const p = await TcpPeer.create(engine);
    p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 100 });
    p.expect({ flags: SYN | ACK });
    p.inject({ flags: RST, seq: 101 });
    const s = p.tcp.stats();
    expect(s.connections).toBe(0);
    expect(s.byState.LISTEN).toBe(1);
    expect(s.backlog[0]!.synReceived).toBe(0);
    expect(s.counters.embryonicDropped).toBe(1);
    expect(p.timers.size).toBe(0);
  });

  it('SYN_RECEIVED: a new SYN (different sequence) returns to LISTEN', async () => {
    const p = await TcpPeer.create(engine);
    p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 100 });
    p.expect({ flags: SYN | ACK });
    p.inject({ flags: SYN, seq: 101 });
    expect(p.tcp.stats().connections).toBe(0);
    expect(p.tcp.stats().counters.embryonicDropped).toBe(1);
  });

  it('ESTABLISHED: RST with SEQ = RCV.NXT resets; the connection is released', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs } = await p.accept();
    p.inject({ flags: RST, seq: theirs });
    expect(await conn.closed).toEqual({ reason: 'reset' });
    expect(p.tcp.stats().connections).toBe(0);
    expect(p.tcp.stats().counters.rstReceived).toBe(1);
  });

  it('RFC 5961 3.2: an in-window RST that is not exact gets a challenge ACK', async () => {
    const p = await TcpPeer.create(engine);
    const { theirs, ours } = await p.accept();
    p.inject({ flags: RST, seq: add(theirs, 1000) });
    p.expect({ flags: ACK, seq: ours, ack: theirs });
    expect(p.tcp.stats().byState.ESTABLISHED).toBe(1);
    expect(p.tcp.stats().counters.challengeForRst).toBe(1);
    // Out of the window: silently dropped.
    p.inject({ flags: RST, seq: add(theirs, 100000) });
    p.expectNone();
    p.inject({ flags: RST, seq: add(theirs, -1) });
    p.expectNone();
    expect(p.tcp.stats().byState.ESTABLISHED).toBe(1);
  });

  it('RFC 5961 4.2: a SYN in a synchronized state gets a challenge ACK', async () => {
    const p = await TcpPeer.create(engine);
    const { theirs, ours } = await p.accept();
    p.inject({ flags: SYN, seq: add(theirs, 5) });
    p.expect({ flags: ACK, seq: ours, ack: theirs });
    // Outside the window the sequence check answers first, with the same ACK.
    p.inject({ flags: SYN, seq: add(theirs, -500000) });
    p.expect({ flags: ACK, seq: ours, ack: theirs });
    expect(p.tcp.stats().byState.ESTABLISHED).toBe(1);
    expect(p.tcp.stats().counters.challengeForSyn).toBe(1);
    expect(p.tcp.stats().counters.dropNotAcceptable).toBe(1);
  });

  it('RFC 5961 5.2: ACKs beyond SND.NXT or below SND.UNA - MAX.SND.WND are dropped with a challenge ACK', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept({ window: 1000 });
    const got: number[] = [];
    conn.onData = (v) => got.push(...v);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 10), payload: new Uint8Array([1]) });
    p.expect({ flags: ACK, seq: ours, ack: theirs });
    expect(got).toHaveLength(0); // the data was dropped with the segment
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, -1001), payload: new Uint8Array([1]) });
    p.expect({ flags: ACK, seq: ours, ack: theirs });
    expect(got).toHaveLength(0);
    // Within [SND.UNA - MAX.SND.WND, SND.UNA]: an old duplicate ACK, data accepted.
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, -999), payload: new Uint8Array([1]) });
    expect(got).toEqual([1]);
    const c = p.tcp.stats().counters;
    expect(c.dropAckUnsent).toBe(1);
    expect(c.dropAckTooOld).toBe(1);
    expect(c.challengeForAck).toBe(2);
  });

  it('RFC 5961 7: challenge ACKs are limited per second for the whole stack (counted)', async () => {
    const p = await TcpPeer.create(engine, { tcp: { challengeAckLimit: 10 } });
    const { theirs } = await p.accept();
    for (let i = 0; i < 25; i++) p.inject({ flags: RST, seq: add(theirs, 100 + i) });
    expect(p.drain()).toHaveLength(10);
    expect(p.tcp.stats().counters.challengeAcksRateLimited).toBe(15);
    p.advance(1000);
    p.inject({ flags: RST, seq: add(theirs, 100) });
    expect(p.drain()).toHaveLength(1);
  });

  it('a segment outside the window is answered with an ACK and dropped', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    let n = 0;
    conn.onData = () => n++;
    p.inject({ flags: ACK, seq: add(theirs, 70000), ack: ours, payload: new Uint8Array(10) });
    p.expect({ flags: ACK, seq: ours, ack: theirs });
    expect(n).toBe(0);
    expect(p.tcp.stats().counters.dropNotAcceptable).toBe(1);
  });

  it('a segment without ACK in a synchronized state is dropped', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs } = await p.accept();
    let n = 0;
    conn.onData = () => n++;
    p.inject({ flags: 0x08, seq: theirs, payload: new Uint8Array(10) });
    p.expectNone();
    expect(n).toBe(0);
    expect(p.tcp.stats().counters.dropNoAck).toBe(1);
  });

  it('abort() sends RST and releases at once; pending reads and writes settle', async () => {
    const p = await TcpPeer.create(engine, { tcp: { sndBuf: 1000 } });
    const { conn, ours } = await p.accept();
    const reader = conn.readable.getReader();
    const read = reader.read().then(() => null, (e: unknown) => e);
    const writer = conn.writable.getWriter();
    const write = writer.write(new Uint8Array(5000)).then(() => null, (e: unknown) => e);
    await settle();
    p.drain();
    conn.abort();
    p.expect({ flags: RST | ACK, seq: add(ours, 1000) });
    expect(await read).toMatchObject({ code: 'ECONNABORTED' });
    expect(await write).toMatchObject({ code: 'ECONNABORTED' });
    expect(await conn.closed).toEqual({ reason: 'aborted' });
    expect(p.tcp.stats().connections).toBe(0);
    expect(p.tcpChunks()).toEqual({ send: 0, recv: 0, reassembly: 0 });
  });
});
