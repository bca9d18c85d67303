// Closing (RFC 9293 3.6 and the state diagram of 3.3.2): active, passive and
// simultaneous close, FIN_WAIT_2 timeout, and the compact TIME_WAIT records.

import { describe, expect, it } from 'vitest';
import { ACK, add, FIN, RST, SYN, TcpPeer } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;
const MSL = 30_000;

function stateOf(p: TcpPeer): Record<string, number> {
  const by = p.tcp.stats().byState;
  return Object.fromEntries(Object.entries(by).filter(([, n]) => n > 0));
}

describe.each(ENGINES)('TCP close (%s)', (engine) => {
  it('active close: ESTABLISHED -> FIN_WAIT_1 -> FIN_WAIT_2 -> TIME_WAIT -> gone after 2*MSL', async () => {
    const p = await TcpPeer.create(engine, { tcp: { msl: MSL } });
    const { conn, listener, theirs, ours } = await p.accept();
    listener!.close();
    conn.close();
    p.expect({ flags: FIN | ACK, seq: ours, ack: theirs });
    expect(stateOf(p)).toEqual({ FIN_WAIT_1: 1 });
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1) });
    expect(stateOf(p)).toEqual({ FIN_WAIT_2: 1 });
    p.inject({ flags: FIN | ACK, seq: theirs, ack: add(ours, 1) });
    p.expect({ flags: ACK, seq: add(ours, 1), ack: add(theirs, 1) });
    // The control block is gone; a compact record stands in for it.
    expect(stateOf(p)).toEqual({ TIME_WAIT: 1 });
    expect(p.tcp.stats().connections).toBe(0);
    expect(p.tcp.stats().timers).toMatchObject({ timeWait: 1, retransmit: 0, finWait2: 0 });
    expect(await conn.closed).toEqual({ reason: 'closed' });
    p.advance(2 * MSL - 1);
    expect(p.tcp.stats().timeWait).toBe(1);
    p.advance(1);
    expect(p.tcp.stats().timeWait).toBe(0);
    expect(p.timers.size).toBe(0);
    expect(p.tcp.stats().counters.timeWaitExpired).toBe(1);
  });

  it('passive close: FIN -> CLOSE_WAIT, close() -> LAST_ACK, ACK -> CLOSED', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    let ended = false;
    conn.onEnd = () => (ended = true);
    p.inject({ flags: FIN | ACK, seq: theirs, ack: ours });
    p.expect({ flags: ACK, ack: add(theirs, 1) });
    expect(ended).toBe(true);
    expect(stateOf(p)).toMatchObject({ CLOSE_WAIT: 1 });
    conn.close();
    p.expect({ flags: FIN | ACK, seq: ours, ack: add(theirs, 1) });
    expect(stateOf(p)).toMatchObject({ LAST_ACK: 1 });
    p.inject({ flags: ACK, seq: add(theirs, 1), ack: add(ours, 1) });
    expect(p.tcp.stats().connections).toBe(0);
    expect(p.tcp.stats().timeWait).toBe(0);
    expect(await conn.closed).toEqual({ reason: 'closed' });
  });

  it('CLOSE_WAIT: we may still send before closing', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    p.inject({ flags: FIN | ACK, seq: theirs, ack: ours });
    p.expect({ flags: ACK });
    expect(conn.write(new Uint8Array([1, 2, 3]))).toBe(3);
    p.expect({ seq: ours, len: 3 });
    conn.end();
    p.expect({ flags: FIN | ACK, seq: add(ours, 3) });
  });

  it('simultaneous close: FIN_WAIT_1 -> CLOSING -> TIME_WAIT', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    conn.close();
    p.expect({ flags: FIN | ACK, seq: ours });
    // The peer's FIN crosses ours: it does not acknowledge our FIN yet.
    p.inject({ flags: FIN | ACK, seq: theirs, ack: ours });
    p.expect({ flags: ACK, ack: add(theirs, 1) });
    expect(stateOf(p)).toMatchObject({ CLOSING: 1 });
    p.inject({ flags: ACK, seq: add(theirs, 1), ack: add(ours, 1) });
    expect(stateOf(p)).toEqual({ LISTEN: 1, TIME_WAIT: 1 });
    expect(await conn.closed).toEqual({ reason: 'closed' });
  });

  it('FIN_WAIT_1 + FIN|ACK acknowledging our FIN -> TIME_WAIT directly', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    conn.close();
    p.expect({ flags: FIN | ACK });
    p.inject({ flags: FIN | ACK, seq: theirs, ack: add(ours, 1) });
    p.expect({ flags: ACK, ack: add(theirs, 1) });
    expect(stateOf(p)).toEqual({ LISTEN: 1, TIME_WAIT: 1 });
  });

  it('an orphaned FIN_WAIT_2 ends finWait2Timeout after it began, even if the peer keeps talking (default 60 s, configurable)', async () => {
    const p = await TcpPeer.create(engine, { tcp: { finWait2Timeout: 10_000 } });
    const { conn, theirs, ours } = await p.accept();
    conn.close();
    p.expect({ flags: FIN | ACK });
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1) });
    expect(stateOf(p)).toMatchObject({ FIN_WAIT_2: 1 });
    // Segments from the peer (keepalive-style ACKs) do not extend the wait.
    for (let t = 0; t < 9; t++) {
      p.advance(1_000);
      p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1) });
    }
    p.advance(999);
    expect(stateOf(p)).toMatchObject({ FIN_WAIT_2: 1 });
    p.advance(1);
    p.expect({ flags: RST | ACK });
    expect(p.tcp.stats().connections).toBe(0);
    expect(await conn.closed).toEqual({ reason: 'timeout', detail: 'finWait2' });
    expect(p.tcp.stats().counters.finWait2Timeouts).toBe(1);
  });

  it('an orphaned FIN_WAIT_2 with keepalive on: its timer takes keepalive\'s slot, and turning keepalive on again does not take it back', async () => {
    const p = await TcpPeer.create(engine, { tcp: { finWait2Timeout: 10_000, keepalive: true, keepaliveIdle: 2_000, keepaliveInterval: 1_000 } });
    const { conn, theirs, ours } = await p.accept();
    expect(p.tcp.stats().timers.keepalive).toBe(1);
    conn.close();
    p.expect({ flags: FIN | ACK });
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1) });
    expect(p.tcp.stats().timers).toMatchObject({ finWait2: 1, keepalive: 0 });
    conn.setKeepAlive(true);
    expect(p.tcp.stats().timers).toMatchObject({ finWait2: 1, keepalive: 0 });
    p.advance(9_999);
    p.expectNone(); // no keepalive probe in FIN_WAIT_2's place
    p.advance(1);
    p.expect({ flags: RST | ACK });
    expect(await conn.closed).toEqual({ reason: 'timeout', detail: 'finWait2' });
  });

  it('TIME_WAIT record: re-ACKs a retransmitted FIN and restarts 2*MSL; ignores RST; drops late ACKs', async () => {
    const p = await TcpPeer.create(engine, { tcp: { msl: MSL } });
    const { conn, theirs, ours } = await p.accept();
    conn.close();
    p.expect({ flags: FIN | ACK });
    p.inject({ flags: FIN | ACK, seq: theirs, ack: add(ours, 1) });
    p.expect({ flags: ACK });
    p.advance(40_000);
    p.inject({ flags: FIN | ACK, seq: theirs, ack: add(ours, 1) });
    p.expect({ flags: ACK, seq: add(ours, 1), ack: add(theirs, 1), window: 0 });
    expect(p.tcp.stats().counters.timeWaitReacked).toBe(1);
    p.advance(2 * MSL - 1);
    expect(p.tcp.stats().timeWait).toBe(1); // restarted at 40 s
    p.inject({ flags: RST, seq: add(theirs, 1) });
    expect(p.tcp.stats().timeWait).toBe(1); // RFC 1337
    p.inject({ flags: ACK, seq: add(theirs, 1), ack: add(ours, 1) });
    p.expectNone();
    p.advance(1);
    expect(p.tcp.stats().timeWait).toBe(0);
  });

  it('TIME_WAIT record: a new SYN with a higher sequence number opens a new connection', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, listener, theirs, ours } = await p.accept();
    conn.close();
    p.expect({ flags: FIN | ACK });
    p.inject({ flags: FIN | ACK, seq: theirs, ack: add(ours, 1) });
    p.expect({ flags: ACK });
    // An old SYN (below RCV.NXT) is answered with an ACK, not accepted.
    p.inject({ flags: SYN, seq: theirs });
    p.expect({ flags: ACK, ack: add(theirs, 1) });
    expect(p.tcp.stats().timeWait).toBe(1);
    const next = await p.accept({ peerIss: add(theirs, 100000), listener });
    expect(next.conn.remotePort).toBe(conn.remotePort);
    expect(p.tcp.stats().timeWait).toBe(0);
    expect(p.tcp.stats().counters.timeWaitReused).toBe(1);
  });

  it('the TIME_WAIT table is bounded: the oldest record is recycled', async () => {
    const p = await TcpPeer.create(engine, { tcp: { maxTimeWait: 2 } });
    const listener = p.tcp.listen(80);
    for (const sport of [2001, 2002, 2003]) {
      const { conn, theirs, ours } = await p.accept({ sport, listener });
      conn.close();
      p.expect({ flags: FIN | ACK });
      p.inject({ flags: FIN | ACK, seq: theirs, ack: add(ours, 1), sport });
      p.expect({ flags: ACK });
    }
    const s = p.tcp.stats();
    expect(s.timeWait).toBe(2);
    expect(s.counters.timeWaitRecycled).toBe(1);
    // The recycled 4-tuple is now a closed port... but the listener answers a bare ACK with RST.
    p.inject({ flags: FIN | ACK, seq: 1001, ack: 5, sport: 2001 });
    p.expect({ flags: RST, seq: 5 });
  });
});

describe.each(ENGINES)('TCP close, half-close and FIN_WAIT_2 (%s)', (engine) => {
  it('FIN_WAIT_2 after end() has no timeout while the application reads; close() starts it', async () => {
    const p = await TcpPeer.create(engine, { tcp: { finWait2Timeout: 10_000 } });
    const { conn, theirs, ours } = await p.accept();
    conn.end();
    p.expect({ flags: FIN | ACK });
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1) });
    expect(p.tcp.stats().timers.finWait2).toBe(0);
    p.advance(100_000);
    expect(p.tcp.stats().byState.FIN_WAIT_2).toBe(1);
    conn.close();
    expect(p.tcp.stats().timers.finWait2).toBe(1);
    p.advance(10_000);
    expect(await conn.closed).toEqual({ reason: 'timeout', detail: 'finWait2' });
  });
});
