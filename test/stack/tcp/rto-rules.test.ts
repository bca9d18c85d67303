// RFC 6298 round-trip timing, checked through when retransmissions go out:
// one segment is timed at a time, from its first transmission to the ACK that
// covers it (section 3: "at least once per RTT"); the first sample sets
// SRTT = R and RTTVAR = R/2 (2.2), later ones follow 2.3; RTO = SRTT + 4 RTTVAR
// within [minRto, maxRto] (2.4, 2.5), doubled on each timeout (5.5) up to the
// maximum. The expected values come from the RFC's formulas, in exact
// arithmetic, with SRTT rounded up to the millisecond.

import { describe, expect, it } from 'vitest';
import { ACK, add, SYN, TcpPeer } from '../../helpers/tcp-peer.js';
import type { TcpOptions } from '../../../stack/tcp/options.js';

const ENGINES = ['wasm', 'ts'] as const;

/** RFC 6298 2.2 and 2.3 over a list of samples (ms); the RTO those give. */
function modelRto(samples: number[], minRto = 200, maxRto = 60_000): number {
  let srtt = 0;
  let rttvar = 0;
  samples.forEach((r, i) => {
    if (i === 0) {
      srtt = r;
      rttvar = r / 2;
    } else {
      rttvar = 0.75 * rttvar + 0.25 * Math.abs(srtt - r);
      srtt = 0.875 * srtt + 0.125 * r;
    }
  });
  return Math.min(Math.max(Math.ceil(srtt) + Math.max(1, 4 * rttvar), minRto), maxRto);
}

/**
 * An active open whose SYN had to be retransmitted, so that (Karn) the
 * handshake gave no RTT sample and the first sample comes from data.
 */
async function openWithoutSample(engine: (typeof ENGINES)[number], tcp: Partial<TcpOptions> = {}) {
  const p = await TcpPeer.create(engine, { tcp });
  const pending = p.tcp.connect('10.0.0.2', 80);
  const syn = p.expect({ flags: SYN });
  p.fireNext();
  p.expect({ flags: SYN, seq: syn.seq });
  p.inject({ flags: SYN | ACK, seq: 5000, ack: add(syn.seq, 1), sport: 80, dport: syn.sport, mss: 1460 });
  p.expect({ flags: ACK });
  const conn = await pending;
  p.port = syn.sport;
  p.peerPort = 80;
  conn.setNoDelay(true);
  return { p, conn, ours: add(syn.seq, 1), theirs: 5001 };
}

/** Write one byte and return how long after it went out its first retransmission did. */
function retransmitDelay(p: TcpPeer, conn: { write(b: Uint8Array): unknown }, seq: number): number {
  conn.write(new Uint8Array(1));
  const first = p.expect({ seq, len: 1 });
  p.fireNext();
  const again = p.expect({ seq, len: 1 });
  return again.at - first.at;
}

describe.each(ENGINES)('RFC 6298 timing (%s)', (engine) => {
  it('the first sample sets RTO = 3R; it is measured from the first of two segments in flight', async () => {
    const { p, conn, ours, theirs } = await openWithoutSample(engine);
    conn.write(new Uint8Array(100));
    p.expect({ seq: ours, len: 100 });
    p.advance(50);
    conn.write(new Uint8Array(100)); // in flight with the first: not timed
    p.expect({ seq: add(ours, 100), len: 100 });
    p.advance(50);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 200) });
    expect(modelRto([100])).toBe(300);
    expect(retransmitDelay(p, conn, add(ours, 200))).toBe(300);
  });

  it('after a sample, the next new segment is timed afresh (2.3)', async () => {
    const { p, conn, ours, theirs } = await openWithoutSample(engine);
    conn.write(new Uint8Array(100));
    p.expect({ len: 100 });
    p.advance(100);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 100) }); // R = 100
    p.advance(10_000); // idle: no segment is being timed
    conn.write(new Uint8Array(100));
    p.expect({ seq: add(ours, 100), len: 100 });
    p.advance(40);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 200) }); // R = 40
    expect(modelRto([100, 40])).toBe(303);
    expect(retransmitDelay(p, conn, add(ours, 200))).toBe(303);
  });

  it('an ACK short of the timed segment takes no sample; the one that covers it does', async () => {
    const { p, conn, ours, theirs } = await openWithoutSample(engine);
    conn.write(new Uint8Array(100));
    p.expect({ len: 100 });
    p.advance(30);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 60) }); // part of it
    p.advance(70);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 100) }); // all of it: R = 100
    expect(retransmitDelay(p, conn, add(ours, 100))).toBe(modelRto([100]));
  });

  it('RTO stays within [minRto, maxRto] and each timeout doubles it up to maxRto', async () => {
    const { p, conn, ours, theirs } = await openWithoutSample(engine, { minRto: 250, maxRto: 1000, maxRetries: 6 });
    // A 10 ms sample: 3R = 30 is raised to minRto.
    conn.write(new Uint8Array(10));
    p.expect({ len: 10 });
    p.advance(10);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 10) });
    expect(modelRto([10], 250, 1000)).toBe(250);
    conn.write(new Uint8Array(1));
    const first = p.expect({ seq: add(ours, 10), len: 1 });
    const gaps: number[] = [];
    let last = first.at;
    for (let i = 0; i < 5; i++) {
      p.fireNext();
      const s = p.expect({ seq: add(ours, 10), len: 1 });
      gaps.push(s.at - last);
      last = s.at;
    }
    expect(gaps).toEqual([250, 500, 1000, 1000, 1000]);
  });

  it('a connection made from a SYN cookie has no sample yet: its first data waits the initial RTO (2.1), not 3 s (5.7)', async () => {
    const p = await TcpPeer.create(engine, { tcp: { initialRto: 1000 } });
    const listener = p.tcp.listen(80, { backlog: 1 });
    p.inject({ flags: SYN, seq: 7, sport: 1001, mss: 1460 }); // fills the backlog
    p.expect({ flags: SYN | ACK });
    p.inject({ flags: SYN, seq: 5000, sport: 2000, mss: 1460 });
    const cookie = p.expect({ flags: SYN | ACK, ack: 5001 });
    expect(p.tcp.stats().counters.synCookiesSent).toBe(1);
    const accepted: { write(b: Uint8Array): unknown; setNoDelay(on: boolean): void }[] = [];
    listener.onConnection = (c) => accepted.push(c);
    p.inject({ flags: ACK, seq: 5001, ack: add(cookie.seq, 1), sport: 2000 });
    expect(accepted).toHaveLength(1);
    const conn = accepted[0]!;
    conn.setNoDelay(true);
    const ours = add(cookie.seq, 1);
    conn.write(new Uint8Array(1));
    const first = p.drain().find((s) => s.dport === 2000 && s.payload.length === 1)!;
    expect(first.seq).toBe(ours);
    p.advance(1000);
    const again = p.drain().filter((s) => s.dport === 2000 && s.payload.length === 1);
    expect(again.map((s) => s.at - first.at)).toEqual([1000]);
  });

  it('a sample above maxRto / 3 gives RTO = maxRto', async () => {
    const { p, conn, ours, theirs } = await openWithoutSample(engine, { maxRto: 2000 });
    conn.write(new Uint8Array(10));
    p.expect({ len: 10 });
    p.advance(1500);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 10) });
    expect(retransmitDelay(p, conn, add(ours, 10))).toBe(2000);
  });
});
