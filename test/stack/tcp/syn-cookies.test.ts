// SYN cookies (RFC 4987; stack/tcp/syn-cookies.ts): the keyed hash against
// SipHash-2-4's published vectors, the cookie codec, and TCP answering a SYN
// flood at a full backlog without keeping state, while a legitimate client
// still connects through a cookie and forged or replayed ACKs are refused.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ACK, add, PSH, RST, SYN, TcpPeer } from '../../helpers/tcp-peer.js';
import { COOKIE_MSS, MAX_AGE, SynCookies, sipHash24 } from '../../../stack/tcp/syn-cookies.js';
import type { Connection } from '../../../stack/tcp/connection.js';

const ENGINES = ['wasm', 'ts'] as const;
const MINUTE = 60_000;

function hex64(r: readonly [number, number]): string {
  return r[0].toString(16).padStart(8, '0') + r[1].toString(16).padStart(8, '0');
}

describe('SipHash-2-4', () => {
  // Key 00 01 .. 0f, message 00 01 .. (n-1): the reference implementation's vectors.
  const key = Uint32Array.of(0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c);
  const message = (n: number) => Uint8Array.from({ length: n }, (_, i) => i);
  it.each([
    [0, '726fdb47dd0e0e31'],
    [1, '74f839c593dc67fd'],
    [8, '93f5f5799a932462'],
    [15, 'a129ca6149be45e5'],
    [63, '958a324ceb064572'],
  ])('of %i bytes is %s', (n, expected) => {
    expect(hex64(sipHash24(key, message(n)))).toBe(expected);
  });
});

describe('the cookie codec', () => {
  const secret = Uint32Array.of(1, 2, 3, 4, 5, 6, 7, 8);
  const tuple = [0x0a000001, 80, 0x0a000002, 40000] as const;

  it('round-trips every 4-tuple and ISN, with the largest table MSS not above the peer\'s', () => {
    const cookies = new SynCookies(secret);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 9000 }),
        fc.integer({ min: 0, max: 1e12 }),
        (la, lp, ra, rp, isn, mss, now) => {
          const made = cookies.make(now, la, lp, ra, rp, isn, mss);
          const wanted = [...COOKIE_MSS].reverse().find((m) => m <= mss) ?? COOKIE_MSS[0];
          expect(made.mss).toBe(wanted);
          // Valid at once and up to MAX_AGE whole minutes later.
          const minuteStart = Math.floor(now / MINUTE) * MINUTE;
          for (const later of [now, minuteStart + MAX_AGE * MINUTE + MINUTE - 1]) {
            expect(cookies.check(later, la, lp, ra, rp, isn, made.iss)).toEqual({ ok: true, mss: made.mss });
          }
          expect(cookies.check(minuteStart + (MAX_AGE + 1) * MINUTE, la, lp, ra, rp, isn, made.iss)).toEqual({ ok: false, why: 'expired' });
        },
      ),
      { numRuns: 500 },
    );
  });

  it('rejects a cookie for another 4-tuple, another ISN, or another secret', () => {
    const cookies = new SynCookies(secret);
    const { iss } = cookies.make(0, ...tuple, 1000, 1460);
    const refused = (c: ReturnType<SynCookies['check']>) => !c.ok;
    expect(refused(cookies.check(0, tuple[0], tuple[1], tuple[2], tuple[3] + 1, 1000, iss))).toBe(true);
    expect(refused(cookies.check(0, tuple[0], tuple[1], tuple[2] + 1, tuple[3], 1000, iss))).toBe(true);
    expect(refused(cookies.check(0, ...tuple, 1001, iss))).toBe(true);
    expect(refused(new SynCookies(Uint32Array.of(1, 2, 3, 4, 5, 6, 7, 9)).check(0, ...tuple, 1000, iss))).toBe(true);
  });

  it('accepts almost no random acknowledgement number (a forged ACK)', () => {
    const cookies = new SynCookies(secret);
    let accepted = 0;
    // Chance per try is about (MAX_AGE + 1) * 4 / 2^32; 20,000 tries pass none
    // unless the check is broken (p of one false accept ~ 6e-5).
    for (let i = 0; i < 20_000; i++) {
      const guess = (Math.random() * 0x100000000) >>> 0;
      if (cookies.check(5 * MINUTE, ...tuple, 1000, guess).ok) accepted++;
    }
    expect(accepted).toBe(0);
  });

  it('needs a secret of eight words', () => {
    expect(() => new SynCookies(new Uint32Array(4))).toThrow(RangeError);
  });
});

describe.each(ENGINES)('TCP with SYN cookies (%s)', (engine) => {
  /** A listener with a backlog of 2, filled by two embryonic connections. */
  async function fullBacklog() {
    const p = await TcpPeer.create(engine);
    const listener = p.tcp.listen(80, { backlog: 2 });
    for (const sport of [1001, 1002]) {
      p.inject({ flags: SYN, seq: 7, sport, mss: 1460 });
      p.expect({ flags: SYN | ACK, ack: 8 });
    }
    expect(p.tcp.stats().backlog[0]).toMatchObject({ synReceived: 2 });
    return { p, listener };
  }

  it('answers 100,000 SYNs at a full backlog with cookies and creates no control block', async () => {
    const { p } = await fullBacklog();
    const before = p.tcp.stats();
    for (let i = 0; i < 100_000; i++) {
      p.inject({ flags: SYN, seq: i * 7919, sport: 1024 + (i % 60000), src: `10.9.${(i >>> 8) & 0xff}.${i & 0xff}`, mss: 1460, wscale: 7, sackOk: true });
      if (i % 5000 === 4999) {
        // Each SYN got one SYN-ACK: MSS only, no window scale, no SACK-permitted.
        const sent = p.drain();
        expect(sent).toHaveLength(5000);
        for (const s of sent) {
          expect(s.flags).toBe(SYN | ACK);
          expect([s.mss, s.wscale, s.sackOk]).toEqual([1460, 0xff, false]);
        }
      }
    }
    const after = p.tcp.stats();
    expect(after.connections).toBe(before.connections);
    expect(after.byState.SYN_RECEIVED).toBe(2);
    expect(after.counters.synCookiesSent).toBe(100_000);
    expect(after.counters.passiveOpens).toBe(before.counters.passiveOpens);
    expect(p.hot.chunksInUse() - p.tcp.tableChunks, "chunks beyond the fixed tables").toBe(0);
  });

  it('a legitimate client completes its handshake through a cookie and exchanges data', async () => {
    const { p, listener } = await fullBacklog();
    const accepted: Connection[] = [];
    listener.onConnection = (c) => accepted.push(c);
    p.inject({ flags: SYN, seq: 5000, sport: 2000, mss: 1400, wscale: 7, sackOk: true });
    const synAck = p.expect({ flags: SYN | ACK, ack: 5001, mss: 1460 });
    expect(p.tcp.stats().connections).toBe(2); // still only the two embryonic ones
    p.inject({ flags: ACK, seq: 5001, ack: add(synAck.seq, 1), sport: 2000, window: 1000 });
    expect(accepted).toHaveLength(1);
    const s = p.tcp.stats();
    expect(s.counters.synCookiesAccepted).toBe(1);
    expect(s.byState.ESTABLISHED).toBe(1);
    const conn = accepted[0]!;
    expect(conn.remotePort).toBe(2000);
    conn.setNoDelay(true);

    // Data from the client arrives in order; ours starts at cookie + 1, unscaled.
    const got: number[] = [];
    conn.onData = (v) => got.push(...v);
    p.inject({ flags: ACK | PSH, seq: 5001, ack: add(synAck.seq, 1), sport: 2000, window: 1000, payload: Uint8Array.of(1, 2, 3) });
    expect(got).toEqual([1, 2, 3]);
    // The client's window (1000) is taken unscaled: one 1000-byte segment.
    conn.write(new Uint8Array(3000));
    let out = p.drain().filter((x) => x.payload.length > 0);
    expect(out.map((x) => [x.seq, x.payload.length])).toEqual([[add(synAck.seq, 1), 1000]]);
    // With room, segments are the client's MSS 1400 rounded down to the table's 1300.
    p.inject({ flags: ACK, seq: 5004, ack: add(synAck.seq, 1001), sport: 2000, window: 60000 });
    out = p.drain().filter((x) => x.payload.length > 0);
    expect(out.map((x) => x.payload.length)).toEqual([1300, 700]);
    expect(out.every((x) => x.sack.length === 0 && x.wscale === 0xff)).toBe(true);
  });

  it('a forged ACK gets a reset and creates nothing', async () => {
    const { p } = await fullBacklog();
    p.inject({ flags: SYN, seq: 5000, sport: 2000, mss: 1460 });
    const synAck = p.expect({ flags: SYN | ACK });
    p.inject({ flags: ACK, seq: 5001, ack: add(synAck.seq, 2), sport: 2000 }); // off by one
    p.expect({ flags: RST, seq: add(synAck.seq, 2) });
    p.inject({ flags: ACK, seq: 5001, ack: add(synAck.seq, 1), sport: 2001 }); // another port
    p.expect({ flags: RST });
    const s = p.tcp.stats();
    expect(s.counters.synCookiesInvalid).toBe(2);
    expect(s.counters.synCookiesAccepted).toBe(0);
    expect(s.connections).toBe(2);
  });

  it('an ACK replayed after the cookie\'s lifetime is refused', async () => {
    const { p } = await fullBacklog();
    p.inject({ flags: SYN, seq: 5000, sport: 2000, mss: 1460 });
    const synAck = p.expect({ flags: SYN | ACK });
    p.advance((MAX_AGE + 1) * MINUTE);
    p.drain(); // the embryonic connections' SYN-ACK retransmissions
    // The backlog is still full (or empty again): send the cookie's ACK now.
    p.inject({ flags: ACK, seq: 5001, ack: add(synAck.seq, 1), sport: 2000 });
    p.expect({ flags: RST });
    expect(p.tcp.stats().counters.synCookiesExpired).toBe(1);
    expect(p.tcp.stats().counters.synCookiesAccepted).toBe(0);
  });

  it('a valid cookie with the accept queue full is dropped without a reset; the retransmitted ACK gets in once there is room', async () => {
    const p = await TcpPeer.create(engine);
    const listener = p.tcp.listen(80, { backlog: 1 });
    // One established connection the application has not taken: the backlog is full.
    p.inject({ flags: SYN, seq: 7, sport: 1001, mss: 1460 });
    const first = p.expect({ flags: SYN | ACK });
    p.inject({ flags: ACK, seq: 8, ack: add(first.seq, 1), sport: 1001 });
    expect(p.tcp.stats().backlog[0]).toMatchObject({ synReceived: 0, acceptQueue: 1 });
    p.inject({ flags: SYN, seq: 5000, sport: 2000, mss: 1460 });
    const synAck = p.expect({ flags: SYN | ACK });
    p.inject({ flags: ACK, seq: 5001, ack: add(synAck.seq, 1), sport: 2000 });
    p.expectNone();
    expect(p.tcp.stats().counters.synCookiesQueueFull).toBe(1);
    // The application takes the queued connection; the client's ACK comes again.
    const taken = await listener.next();
    expect(taken.done).toBe(false);
    p.inject({ flags: ACK, seq: 5001, ack: add(synAck.seq, 1), sport: 2000 });
    expect(p.tcp.stats().counters.synCookiesAccepted).toBe(1);
    expect(p.tcp.stats().byState.ESTABLISHED).toBe(2);
  });

  it('with synCookies off, SYNs beyond the backlog are dropped and counted', async () => {
    const p = await TcpPeer.create(engine, { tcp: { synCookies: false } });
    p.tcp.listen(80, { backlog: 1 });
    p.inject({ flags: SYN, seq: 7, sport: 1001, mss: 1460 });
    p.expect({ flags: SYN | ACK });
    p.inject({ flags: SYN, seq: 7, sport: 1002, mss: 1460 });
    p.expectNone();
    expect(p.tcp.stats().counters.dropSynBacklogFull).toBe(1);
    expect(p.tcp.stats().counters.synCookiesSent).toBe(0);
  });

  it('every connection made through a cookie ends with nothing held', async () => {
    const { p, listener } = await fullBacklog();
    const accepted: Connection[] = [];
    listener.onConnection = (c) => accepted.push(c);
    p.inject({ flags: SYN, seq: 5000, sport: 2000, mss: 1460 });
    const synAck = p.expect({ flags: SYN | ACK });
    p.inject({ flags: ACK, seq: 5001, ack: add(synAck.seq, 1), sport: 2000 });
    accepted[0]!.abort();
    listener.close();
    p.advance(10 * MINUTE);
    p.expectNothingHeld();
  });
});
