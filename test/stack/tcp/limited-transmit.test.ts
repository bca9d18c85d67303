// RFC 3042 limited transmit: the first two duplicate ACKs each let one new
// segment out beyond cwnd (which stays as it was), so a loss in a small window
// still collects the three duplicates fast retransmit needs.

import { describe, expect, it } from 'vitest';
import { ACK, add, TcpPeer } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;
const MSS = 1460;

describe.each(ENGINES)('TCP limited transmit (%s)', (engine) => {
  it('sends one new segment on each of the first two duplicate ACKs, then fast-retransmits', async () => {
    const p = await TcpPeer.create(engine);
    const e = await p.accept();
    e.conn.setNoDelay(true);
    e.conn.write(new Uint8Array(14 * MSS));
    const S = (i: number) => add(e.ours, i * MSS);
    // The initial window: 10 segments.
    expect(p.drain().map((s) => s.seq)).toEqual(Array.from({ length: 10 }, (_, i) => S(i)));
    const cwnd = p.liveTcbs()[0]!.cwnd;
    const dup = () => {
      p.inject({ flags: ACK, seq: e.theirs, ack: S(0) });
      return p.drain().filter((s) => s.payload.length > 0).map((s) => s.seq);
    };
    expect(dup()).toEqual([S(10)]);
    expect(dup()).toEqual([S(11)]);
    expect(p.liveTcbs()[0]!.cwnd).toBe(cwnd);
    expect(dup()).toEqual([S(0)]); // the third: fast retransmit
    expect(p.tcp.stats().counters.fastRetransmits).toBe(1);
    expect(p.tcp.stats().counters.retransmitTimeouts).toBe(0);
  });

  it('recovers a loss among two segments in flight without a timeout', async () => {
    const p = await TcpPeer.create(engine);
    const e = await p.accept();
    e.conn.setNoDelay(true);
    const S = (i: number) => add(e.ours, i * MSS);
    // A congestion window of two segments (as after losses), so that without
    // limited transmit a lost segment could bring one duplicate ACK at most.
    p.liveTcbs()[0]!.cwnd = 2 * MSS;
    e.conn.write(new Uint8Array(6 * MSS));
    expect(p.drain().map((s) => s.seq)).toEqual([S(0), S(1)]);
    // Segment 0 is lost; each later segment that arrives repeats the ACK.
    const sent: number[] = [];
    for (let i = 0; i < 3; i++) {
      p.inject({ flags: ACK, seq: e.theirs, ack: S(0) });
      for (const s of p.drain()) if (s.payload.length > 0) sent.push((s.seq - e.ours) / MSS);
    }
    // Two new segments, the fast retransmit, then one more as fast recovery's
    // inflated window (ssthresh 2 + 3 segments, 4 in flight) allows.
    expect(sent).toEqual([2, 3, 0, 4]);
    expect(p.tcp.stats().counters.fastRetransmits).toBe(1);
    expect(p.tcp.stats().counters.retransmitTimeouts).toBe(0);
  });
});
