// RFC 9293 3.10.7.4, first check, at the edges of the receive window: the
// four cases of the acceptability table (segment length zero or not, window
// zero or not), what an acceptable segment that sticks out of the window
// keeps, and how an unacceptable one is answered (an ACK, rate-limited for
// pure ACKs). Then RFC 5961 at the same edges: a RST resets only at exactly
// RCV.NXT, elsewhere in the window it earns a challenge ACK, outside it
// nothing; a SYN in a synchronized state is always answered with an ACK.
//
// The window is RCV.WND = 4000 bytes (rcvBuf 4000, no window scaling), so
// with RCV.NXT = N the acceptable sequence numbers are N .. N + 3999.

import { describe, expect, it } from 'vitest';
import { ACK, add, PSH, RST, SYN, TcpPeer } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;
const W = 4000;

function bytes(n: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff);
}

describe.each(ENGINES)('RFC 9293 segment acceptability (%s)', (engine) => {
  async function setup() {
    const p = await TcpPeer.create(engine, { tcp: { rcvBuf: W, windowScaling: false } });
    const e = await p.accept();
    const got: number[] = [];
    e.conn.onData = (v) => got.push(...v);
    const c = () => p.tcp.stats().counters;
    return { p, ...e, got, c };
  }

  it('the SYN-ACK announced exactly RCV.WND', async () => {
    const p = await TcpPeer.create(engine, { tcp: { rcvBuf: W, windowScaling: false } });
    p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 1 });
    p.expect({ flags: SYN | ACK, window: W });
  });

  it('zero-length segments: acceptable when RCV.NXT <= SEG.SEQ < RCV.NXT + RCV.WND', async () => {
    const { p, theirs, ours, c } = await setup();
    for (const [seq, ok] of [
      [add(theirs, -1), false],
      [theirs, true],
      [add(theirs, W - 1), true],
      [add(theirs, W), false],
      [add(theirs, -(2 ** 31)), false],
    ] as const) {
      const before = c().dropNotAcceptable;
      p.inject({ flags: ACK, seq, ack: ours });
      expect(c().dropNotAcceptable - before, `SEG.SEQ = RCV.NXT ${seq - theirs}`).toBe(ok ? 0 : 1);
      p.advance(1000); // past the pure-ACK answer limit
      p.drain();
    }
  });

  it('data: acceptable when its first or its last byte is in the window; the rest is trimmed', async () => {
    const { p, theirs, ours, got, c } = await setup();
    // Entirely old: unacceptable, answered with an ACK (data is always answered).
    p.inject({ flags: ACK, seq: add(theirs, -10), ack: ours, payload: bytes(10) });
    p.expect({ flags: ACK, seq: ours, ack: theirs });
    expect(c().dropNotAcceptable).toBe(1);
    // Last byte new: acceptable; only that byte is delivered.
    p.inject({ flags: ACK | PSH, seq: add(theirs, -9), ack: ours, payload: bytes(10) });
    expect(got).toEqual([bytes(10)[9]]);
    expect(c().dropNotAcceptable).toBe(1);
    const nxt = add(theirs, 1);
    p.advance(1000);
    // The ACK for that byte kept the right edge where it was (a 1-byte
    // increase is below the receiver's SWS threshold): RCV.NXT + RCV.WND = N + W.
    expect(p.drain().at(-1)).toMatchObject({ ack: nxt, window: W - 1 });
    const right = add(theirs, W);
    // First byte just inside the right edge: acceptable, held out of order, trimmed to one byte.
    p.inject({ flags: ACK, seq: add(right, -1), ack: ours, payload: bytes(10) });
    expect(c().dropNotAcceptable).toBe(1);
    expect(c().dropOutOfWindowData).toBe(9);
    p.expect({ flags: ACK, ack: nxt }); // the hole is reported at once
    // First byte on the right edge: unacceptable.
    p.inject({ flags: ACK, seq: right, ack: ours, payload: bytes(10) });
    expect(c().dropNotAcceptable).toBe(2);
    p.expect({ flags: ACK, ack: nxt });
    expect(got).toHaveLength(1);
  });

  it('a zero window accepts only a zero-length segment at exactly RCV.NXT', async () => {
    const p = await TcpPeer.create(engine, { tcp: { rcvBuf: W, windowScaling: false } });
    const { theirs, ours } = await p.accept();
    // Nobody reads: W bytes fill the window.
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(2000) });
    p.inject({ flags: ACK, seq: add(theirs, 2000), ack: ours, payload: bytes(2000) });
    const full = p.drain().at(-1)!;
    expect(full.window).toBe(0);
    const nxt = add(theirs, W);
    const c = () => p.tcp.stats().counters;
    p.inject({ flags: ACK, seq: nxt, ack: ours });
    expect(c().dropNotAcceptable).toBe(0);
    p.inject({ flags: ACK, seq: add(nxt, 1), ack: ours });
    expect(c().dropNotAcceptable).toBe(1);
    // One byte at RCV.NXT (a window probe): its byte is not taken; the answer
    // repeats RCV.NXT and the closed window.
    const held = p.tcp.stats().counters.bytesIn;
    p.inject({ flags: ACK, seq: nxt, ack: ours, payload: bytes(1) });
    p.expect({ flags: ACK, seq: ours, ack: nxt, window: 0 });
    expect(p.tcp.stats().counters.bytesIn).toBe(held);
  });

  it('unacceptable pure ACKs are answered at most once per 500 ms per connection; data always', async () => {
    const { p, theirs, ours, c } = await setup();
    const old = { flags: ACK, seq: add(theirs, -100), ack: ours };
    p.inject(old);
    p.expect({ flags: ACK, ack: theirs });
    p.inject(old);
    p.advance(499);
    p.inject(old);
    p.expectNone();
    expect(c().oowAcksRateLimited).toBe(2);
    p.advance(1);
    p.inject(old);
    p.expect({ flags: ACK, ack: theirs });
    // A segment with data is answered even inside the interval.
    p.inject({ ...old, payload: bytes(5) });
    p.expect({ flags: ACK, ack: theirs });
    expect(c().oowAcksRateLimited).toBe(2);
  });
});

describe.each(ENGINES)('RFC 5961 at the window edges (%s)', (engine) => {
  async function setup() {
    const p = await TcpPeer.create(engine, { tcp: { rcvBuf: W, windowScaling: false } });
    const e = await p.accept();
    return { p, ...e };
  }

  it('RST: exact RCV.NXT resets; elsewhere in the window a challenge ACK; outside, nothing', async () => {
    for (const [offset, outcome] of [
      [-1, 'none'],
      [1, 'challenge'],
      [W - 1, 'challenge'],
      [W, 'none'],
      [0, 'reset'],
    ] as const) {
      const { p, conn, theirs, ours } = await setup();
      p.inject({ flags: RST, seq: add(theirs, offset) });
      const c = p.tcp.stats().counters;
      if (outcome === 'reset') {
        p.expectNone();
        expect(await conn.closed).toEqual({ reason: 'reset' });
        expect(c.rstReceived).toBe(1);
      } else if (outcome === 'challenge') {
        p.expect({ flags: ACK, seq: ours, ack: theirs });
        expect(c.challengeForRst).toBe(1);
        expect(p.tcp.stats().byState.ESTABLISHED).toBe(1);
      } else {
        p.expectNone();
        expect(c.dropNotAcceptable).toBe(1);
        expect(p.tcp.stats().byState.ESTABLISHED).toBe(1);
      }
    }
  });

  it('RST|ACK follows the same rule: the ACK bit gives it no more weight', async () => {
    const { p, theirs, ours } = await setup();
    p.inject({ flags: RST | ACK, seq: add(theirs, 1), ack: ours });
    p.expect({ flags: ACK, seq: ours, ack: theirs });
    expect(p.tcp.stats().byState.ESTABLISHED).toBe(1);
    p.inject({ flags: RST | ACK, seq: theirs, ack: ours });
    expect(p.tcp.stats().connections).toBe(0);
  });

  it('a RST with data at RCV.NXT still resets (its text is not delivered)', async () => {
    const { p, conn, theirs } = await setup();
    const got: number[] = [];
    conn.onData = (v) => got.push(...v);
    p.inject({ flags: RST, seq: theirs, payload: bytes(10) });
    expect(await conn.closed).toEqual({ reason: 'reset' });
    expect(got).toEqual([]);
  });

  it('SYN at RCV.NXT, in the window and outside it: an ACK each time, never a reset', async () => {
    const { p, theirs, ours } = await setup();
    for (const offset of [0, W - 1, W, -1]) {
      p.inject({ flags: SYN, seq: add(theirs, offset) });
      p.expect({ flags: ACK, seq: ours, ack: theirs });
      p.advance(1000);
    }
    const c = p.tcp.stats().counters;
    expect(c.challengeForSyn).toBe(2);
    expect(c.dropNotAcceptable).toBe(2);
    expect(p.tcp.stats().byState.ESTABLISHED).toBe(1);
  });
});
