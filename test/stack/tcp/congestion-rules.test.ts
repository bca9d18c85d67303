// Congestion control arithmetic, segment by segment: the initial window of
// RFC 5681 3.1 / RFC 6928, slow start with byte counting (L = 1 SMSS) and
// congestion avoidance (RFC 5681 eq. 2 and 3), the timeout's ssthresh and loss
// window (eq. 4), and NewReno fast recovery (RFC 6582 3.2: entry, inflation,
// partial and full acknowledgements, and 4.1's guard after a timeout). What
// goes on the wire is checked against what the RFC's numbers allow; cwnd and
// ssthresh are checked against the RFC's formulas as a model.

import { describe, expect, it } from 'vitest';
import { initialWindow } from '../../../stack/tcp/congestion.js';
import { ACK, add, TcpPeer, type Established } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;

/** Payload bytes of the data segments sent since the last read. */
function sentData(p: TcpPeer): number[] {
  return p.drain().filter((s) => s.payload.length > 0).map((s) => s.payload.length);
}

/** Established with the peer announcing `mss`, Nagle off, SACK not negotiated. */
async function setup(engine: (typeof ENGINES)[number], mss: number, tcp = {}): Promise<{ p: TcpPeer; e: Established }> {
  const p = await TcpPeer.create(engine, { tcp: { sndBuf: 256 * 1024, ...tcp } });
  const e = await p.accept({ mss, window: 65535 });
  e.conn.setNoDelay(true);
  return { p, e };
}

describe('RFC 6928 initial window', () => {
  it('is 2*SMSS above an SMSS of 7300 (jumbo frames; a TX chunk caps ours below that)', () => {
    expect([initialWindow(7300), initialWindow(8960), initialWindow(1460), initialWindow(100)]).toEqual([14600, 17920, 14600, 1000]);
  });
});

describe.each(ENGINES)('TCP congestion control (%s)', (engine) => {
  it('initial window: min(10*SMSS, max(2*SMSS, 14600)) bytes go out before any ACK', async () => {
    for (const [mss, segments, lastLen] of [
      [100, 10, 100], // 10 * SMSS = 1000 < 14600
      [536, 10, 536], // 5360
      [1000, 10, 1000], // 10000
      [1460, 10, 1460], // 14600 either way
    ] as const) {
      const { p, e } = await setup(engine, mss);
      e.conn.write(new Uint8Array(40_000));
      const sent = sentData(p);
      expect(sent, `SMSS ${mss}`).toHaveLength(segments);
      expect(sent.every((n) => n === mss)).toBe(true);
      expect(sent.at(-1)).toBe(lastLen);
      expect(e.conn.inspect()!.cwnd).toBe(Math.min(10 * mss, Math.max(2 * mss, 14600)));
    }
  });

  it('slow start counts bytes acknowledged, at most one SMSS per ACK (RFC 5681 eq. 2, L = 1 SMSS)', async () => {
    const { p, e } = await setup(engine, 1000);
    const tcb = e.conn.inspect()!;
    e.conn.write(new Uint8Array(100_000));
    expect(sentData(p)).toHaveLength(10);
    // One segment acknowledged: cwnd 11000, 9000 in flight: two more segments.
    p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, 1000) });
    expect(tcb.cwnd).toBe(11_000);
    expect(sentData(p)).toEqual([1000, 1000]);
    // Three segments in one ACK still grow cwnd by one SMSS only: 12000, with
    // 8000 in flight: four segments, not six.
    p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, 4000) });
    expect(tcb.cwnd).toBe(12_000);
    expect(sentData(p)).toHaveLength(4);
    // Less than an SMSS acknowledged: cwnd grows by what was acknowledged.
    p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, 4300) });
    expect(tcb.cwnd).toBe(12_300);
  });

  it('a timeout sets ssthresh = max(FlightSize / 2, 2*SMSS) and cwnd = 1 SMSS; growth turns linear at ssthresh', async () => {
    const { p, e } = await setup(engine, 1000);
    const tcb = e.conn.inspect()!;
    e.conn.write(new Uint8Array(100_000));
    expect(sentData(p)).toHaveLength(10);
    p.fireNext(); // RTO: 10000 bytes in flight
    expect(tcb.ssthresh).toBe(5000);
    expect(tcb.cwnd).toBe(1000);
    expect(sentData(p)).toEqual([1000]); // go back N, one segment
    // Acknowledge one segment at a time and follow RFC 5681's two regimes.
    let model = 1000;
    let una = 0;
    for (let i = 0; i < 12; i++) {
      una += 1000;
      p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, una) });
      model += model < 5000 ? 1000 : Math.max(1, Math.floor((1000 * 1000) / model));
      expect(tcb.cwnd, `after ACK ${i + 1}`).toBe(model);
      p.drain();
    }
    expect(model).toBeGreaterThan(5000); // the run did reach congestion avoidance
    expect(model).toBeLessThan(5000 + 8 * 1000); // and grew by less than an SMSS per ACK there
  });

  it('a small flight after a timeout still leaves ssthresh at 2*SMSS', async () => {
    const { p, e } = await setup(engine, 1000);
    const tcb = e.conn.inspect()!;
    e.conn.write(new Uint8Array(1000));
    expect(sentData(p)).toEqual([1000]);
    p.fireNext();
    expect(tcb.ssthresh).toBe(2000); // FlightSize / 2 = 500 < 2*SMSS
    expect(tcb.cwnd).toBe(1000);
  });
});

describe.each(ENGINES)('TCP NewReno fast recovery (%s)', (engine) => {
  /** 10 segments of 1000 out, then the peer repeats ACK = the first byte. */
  async function lossOfFirst() {
    const { p, e } = await setup(engine, 1000);
    const tcb = e.conn.inspect()!;
    e.conn.write(new Uint8Array(100_000));
    expect(sentData(p)).toHaveLength(10);
    const dup = () => {
      p.inject({ flags: ACK, seq: e.theirs, ack: e.ours });
      return p.drain().filter((s) => s.payload.length > 0).map((s) => (s.seq - e.ours) / 1000);
    };
    return { p, e, tcb, dup };
  }

  it('enters on the third duplicate: ssthresh = FlightSize / 2, cwnd = ssthresh + 3 SMSS, then inflates by one SMSS per duplicate', async () => {
    const { p, tcb, dup } = await lossOfFirst();
    expect(dup()).toEqual([10]); // limited transmit
    expect(dup()).toEqual([11]);
    expect(dup()).toEqual([0]); // fast retransmit
    // FlightSize was 12 segments.
    expect(tcb.ssthresh).toBe(6000);
    expect(tcb.cwnd).toBe(9000);
    expect(tcb.inRecovery).toBe(true);
    // 12 segments are outstanding: cwnd must pass 12000 before a new one goes.
    expect(dup()).toEqual([]);
    expect(tcb.cwnd).toBe(10_000);
    expect(dup()).toEqual([]);
    expect(dup()).toEqual([]);
    expect(tcb.cwnd).toBe(12_000);
    expect(dup()).toEqual([12]);
    expect(dup()).toEqual([13]);
    expect(p.tcp.stats().counters.fastRetransmits).toBe(1);
  });

  it('a partial ACK retransmits the next segment and deflates cwnd by the amount acknowledged, less one SMSS back', async () => {
    const { p, e, tcb, dup } = await lossOfFirst();
    for (let i = 0; i < 3; i++) dup();
    for (let i = 0; i < 4; i++) dup(); // cwnd 13000, segment 12 sent
    expect(tcb.cwnd).toBe(13_000);
    // The retransmission filled the first hole; segment 4 was lost too.
    p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, 4000) });
    const out = p.drain().filter((s) => s.payload.length > 0);
    expect(out[0]!.seq).toBe(add(e.ours, 4000));
    expect(tcb.inRecovery).toBe(true);
    // cwnd - acked + SMSS = 13000 - 4000 + 1000.
    expect(tcb.cwnd).toBe(10_000);
    expect(p.tcp.stats().counters.partialAckRetransmits).toBe(1);
    // A partial ACK of less than an SMSS deflates by what it acknowledged only.
    p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, 4500) });
    expect(tcb.cwnd).toBe(9500);
    // One of exactly an SMSS takes it out and adds it back.
    p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, 5500) });
    expect(tcb.cwnd).toBe(9500);
    expect(tcb.inRecovery).toBe(true);
  });

  it('a timeout during recovery ends it: the next ACK is slow start from one SMSS', async () => {
    const { p, e, tcb, dup } = await lossOfFirst();
    for (let i = 0; i < 3; i++) dup();
    expect(tcb.inRecovery).toBe(true);
    p.fireNext(); // the retransmission was lost as well
    expect(tcb.inRecovery).toBe(false);
    expect(tcb.cwnd).toBe(1000);
    expect(tcb.dupAcks).toBe(0);
    p.drain();
    p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, 1000) });
    expect(tcb.cwnd).toBe(2000);
    expect(p.tcp.stats().counters.partialAckRetransmits).toBe(0);
  });

  it('a full ACK (at or beyond "recover") ends recovery with cwnd = min(ssthresh, FlightSize + SMSS)', async () => {
    const { p, e, tcb, dup } = await lossOfFirst();
    for (let i = 0; i < 3; i++) dup(); // recover = 12 segments
    p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, 12_000) });
    expect(tcb.inRecovery).toBe(false);
    expect(tcb.dupAcks).toBe(0);
    // Nothing is in flight after the ACK: FlightSize + SMSS = 1000 < ssthresh.
    expect(tcb.cwnd).toBe(1000);
    expect(p.tcp.stats().counters.partialAckRetransmits).toBe(0);
  });

  it('a full ACK with data still in flight deflates to ssthresh', async () => {
    const { p, e, tcb, dup } = await lossOfFirst();
    for (let i = 0; i < 3; i++) dup();
    for (let i = 0; i < 6; i++) dup(); // segments 12, 13, 14 sent: 15 segments out
    expect(dup()).toEqual([15]);
    // recover was 12 segments: ACK 12000 is a full ACK with 4 segments still out.
    p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, 12_000) });
    expect(tcb.inRecovery).toBe(false);
    expect(tcb.cwnd).toBe(Math.min(6000, 4000 + 1000));
  });

  it('RFC 6582 4.1: duplicates for data sent before a timeout do not start another recovery', async () => {
    const { p, e } = await setup(engine, 1000);
    const tcb = e.conn.inspect()!;
    e.conn.write(new Uint8Array(100_000));
    sentData(p);
    p.fireNext(); // timeout: recover = SND.MAX (10 segments), cwnd 1 SMSS
    expect(sentData(p)).toEqual([1000]);
    const ssthresh = tcb.ssthresh;
    // The peer ACKs the retransmission and some of the old flight, then repeats itself.
    p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, 3000) });
    p.drain();
    for (let i = 0; i < 4; i++) p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, 3000) });
    expect(p.tcp.stats().counters.fastRetransmits).toBe(0);
    expect(tcb.inRecovery).toBe(false);
    expect(tcb.ssthresh).toBe(ssthresh);
  });

  it('duplicates beyond "recover" after a timeout do start a recovery', async () => {
    const { p, e } = await setup(engine, 1000);
    const tcb = e.conn.inspect()!;
    e.conn.write(new Uint8Array(100_000));
    sentData(p);
    p.fireNext();
    p.drain();
    // Everything sent before the timeout is acknowledged; new data goes out.
    let una = 0;
    while (una < 11_000) {
      una += 1000;
      p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, una) });
    }
    p.drain();
    expect(tcb.sndMax - tcb.sndUna).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, una) });
    expect(p.tcp.stats().counters.fastRetransmits).toBe(1);
    expect(tcb.inRecovery).toBe(true);
  });

  it('only a pure ACK with an unchanged window and data outstanding counts as a duplicate (RFC 5681 section 2)', async () => {
    const { p, e } = await setup(engine, 1000);
    const tcb = e.conn.inspect()!;
    e.conn.write(new Uint8Array(100_000));
    sentData(p);
    const same = { flags: ACK, seq: e.theirs, ack: e.ours };
    // A window change, or data, or a FIN: none is a duplicate.
    p.inject({ ...same, window: 60_000 });
    p.inject({ ...same, window: 60_000, payload: new Uint8Array(10) });
    expect(tcb.dupAcks).toBe(0);
    p.inject({ ...same, seq: add(e.theirs, 10), window: 60_000 });
    p.inject({ ...same, seq: add(e.theirs, 10), window: 60_000 });
    expect(tcb.dupAcks).toBe(2);
    // With nothing outstanding, the same ACK is no duplicate either.
    const q = await setup(engine, 1000);
    q.p.inject({ flags: ACK, seq: q.e.theirs, ack: q.e.ours });
    q.p.inject({ flags: ACK, seq: q.e.theirs, ack: q.e.ours });
    expect(q.e.conn.inspect()!.dupAcks).toBe(0);
  });
});
