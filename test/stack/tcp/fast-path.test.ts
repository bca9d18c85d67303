// The engine's fast path inside TCP: which segments it takes whole, which it
// leaves to the TypeScript path and why (stats().counters.slowPath), that the
// connection ends up where the TypeScript rules alone would put it, and that
// a bulk transfer between two stacks runs almost entirely on it.

import { describe, expect, it } from 'vitest';
import { ACK, add, FIN, PSH, RST, SYN, TcpPeer } from '../../helpers/tcp-peer.js';
import { advance, expectBaseline, levels, makeStacks } from '../../helpers/stack-pair.js';

const ENGINES = ['wasm', 'ts'] as const;

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

describe.each(ENGINES)('TCP fast path (%s)', (engine) => {
  it('takes in-order data and new ACKs whole, and leaves every other kind of segment to the TypeScript path, counted by reason', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const got: number[] = [];
    conn.onData = (view: Uint8Array) => got.push(view.length);
    const base = p.tcp.stats().counters;
    // In-order data: fast.
    p.inject({ flags: ACK | PSH, seq: theirs, ack: ours, payload: bytes(100) });
    let c = p.tcp.stats().counters;
    expect(c.fastPathSegments - base.fastPathSegments).toBe(1);
    expect(c.bytesIn - base.bytesIn).toBe(100);
    // A duplicate ACK (nothing new, no data): ack.
    p.inject({ flags: ACK, seq: add(theirs, 100), ack: ours });
    // A duplicate ACK with SACK blocks: ack again (the blocks do not make it fast).
    p.inject({ flags: ACK, seq: add(theirs, 100), ack: ours, sack: [add(ours, 0), add(ours, 0)] });
    // Out of order (a hole): sequence.
    p.inject({ flags: ACK, seq: add(theirs, 600), ack: ours, payload: bytes(100) });
    // While out-of-order data is held, even in-order data takes the slow path (recovery); it fills the hole.
    p.inject({ flags: ACK, seq: add(theirs, 100), ack: ours, payload: bytes(500) });
    // FIN: flags.
    p.inject({ flags: ACK | FIN, seq: add(theirs, 700), ack: ours });
    c = p.tcp.stats().counters;
    const delta = (name: string): number => c.slowPath[name]! - base.slowPath[name]!;
    expect(['sequence', 'ack', 'options', 'recovery', 'flags'].map(delta)).toEqual([1, 2, 0, 1, 1]);
    expect(c.fastPathSegments - base.fastPathSegments).toBe(1);
    // CLOSE_WAIT now: data there is for the TypeScript rules (state).
    p.inject({ flags: ACK, seq: add(theirs, 701), ack: ours, payload: bytes(10) });
    c = p.tcp.stats().counters;
    expect(delta('state')).toBe(1);
    expect(got.reduce((a, b) => a + b, 0)).toBe(700);
    // A segment for no connection at all.
    p.inject({ flags: ACK, seq: 1, ack: 1, dport: 81 });
    expect(p.tcp.stats().counters.slowPath.noConnection).toBeGreaterThanOrEqual(1);
  });

  it('a new ACK on the fast path frees the acknowledged bytes, samples the RTT, grows cwnd and wakes the writer', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    conn.write(bytes(2920));
    const sent = p.drain();
    expect(sent.map((s) => s.payload.length)).toEqual([1460, 1460]);
    expect(p.tcp.stats().counters.burstSegments).toBe(2);
    const tcb = p.liveTcbs()[0]!;
    const cwnd = tcb.cwnd;
    const srtt8 = tcb.srtt8;
    p.advance(30);
    const before = p.tcp.stats().counters.fastPathSegments;
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 2920) });
    expect(p.tcp.stats().counters.fastPathSegments).toBe(before + 1);
    expect(tcb.sendBuf.length).toBe(0);
    expect(p.tcpChunks().send).toBe(0);
    expect(tcb.srtt8).toBe(srtt8 - (srtt8 >>> 3) + 30); // SRTT = 7/8 SRTT + 1/8 R, eighths (RFC 6298 2.3)
    expect(tcb.cwnd).toBe(cwnd + 1460); // slow start: one SMSS per ACK at most (RFC 5681 3.1)
    // Everything acknowledged: the retransmission timer stopped.
    expect(p.tcp.stats().timers.retransmit).toBe(0);
  });

  it('a new ACK with SACK blocks is taken whole, and its blocks go on the scoreboard as the TypeScript path puts them', async () => {
    const run = async (fastPath: boolean) => {
      const p = await TcpPeer.create(engine, { tcp: { fastPath } });
      const { conn, theirs, ours } = await p.accept({ sackOk: true });
      conn.write(bytes(6 * 1460));
      expect(p.drain()).toHaveLength(6);
      // The first segment arrives; the third and fifth are held by the peer, the others lost.
      const blocks = [add(ours, 2 * 1460), add(ours, 3 * 1460), add(ours, 4 * 1460), add(ours, 5 * 1460)];
      p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1460), sack: blocks });
      const tcb = p.liveTcbs()[0]!;
      const b = tcb.sackBoard;
      const board = { count: b.count, sacked: b.sackedBytes(), highest: b.highest() - ours };
      const c = p.tcp.stats().counters;
      return { board, fast: c.fastPathSegments, una: tcb.sndUna - ours, ignored: c.sackBlocksIgnored, out: p.drain().map((s) => s.seq - ours) };
    };
    const fast = await run(true);
    const slow = await run(false);
    expect(fast.fast).toBe(1); // this ACK (the handshake's last is the slow path's: SYN_RECEIVED)
    expect(slow.fast).toBe(0);
    expect(fast.board).toEqual({ count: 2, sacked: 2 * 1460, highest: 5 * 1460 });
    expect(fast).toEqual({ ...slow, fast: fast.fast });
    // With blocks held, the next segments are the slow path's (loss recovery).
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept({ sackOk: true });
    conn.write(bytes(4 * 1460));
    p.drain();
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1460), sack: [add(ours, 2920), add(ours, 4380)] });
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1460), sack: [add(ours, 2920), add(ours, 5840)] });
    expect(p.tcp.stats().counters.slowPath.recovery).toBe(1);
    // A connection that did not agree to SACK ignores the blocks, on either path.
    const q = await TcpPeer.create(engine);
    const e = await q.accept();
    e.conn.write(bytes(2 * 1460));
    q.drain();
    q.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, 1460), sack: [add(e.ours, 1460), add(e.ours, 2920)] });
    expect(q.tcp.stats().counters.fastPathSegments).toBe(1);
    expect(q.liveTcbs()[0]!.sackBoard.count).toBe(0);
  });

  it('a reset on an established connection still ends it (RST is never fast)', async () => {
    const p = await TcpPeer.create(engine);
    const { theirs, ours } = await p.accept();
    p.inject({ flags: RST, seq: theirs, ack: ours });
    expect(p.tcp.stats().connections).toBe(0);
    expect(p.tcp.stats().counters.slowPath.flags).toBe(1);
    p.inject({ flags: SYN, seq: 5, ack: 0, dport: 81 });
    p.expectNothingHeld();
  });

  it('off (fastPath: false): the engine takes nothing, and the same exchange gives the same segments', async () => {
    const run = async (fastPath: boolean) => {
      const p = await TcpPeer.create(engine, { tcp: { fastPath } });
      const { conn, theirs, ours } = await p.accept({ peerIss: 1000 });
      conn.write(bytes(5000));
      p.inject({ flags: ACK | PSH, seq: theirs, ack: add(ours, 1460), payload: bytes(3000) });
      p.inject({ flags: ACK, seq: add(theirs, 3000), ack: add(ours, 4380) });
      p.advance(100);
      const out = p.drain().map((s) => ({ ...s, seq: s.seq - ours, ack: s.ack - theirs }));
      return { out, counters: p.tcp.stats().counters };
    };
    const fast = await run(true);
    const slow = await run(false);
    expect(slow.counters.fastPathSegments).toBe(0);
    expect(slow.counters.burstSegments).toBe(0);
    expect(fast.counters.fastPathSegments).toBeGreaterThan(0);
    const wire = (out: typeof fast.out) => out.map(({ flags, seq, ack, payload, window }) => ({ flags, seq, ack, window, payload: [...payload] }));
    expect(wire(fast.out)).toEqual(wire(slow.out));
    expect(fast.out.length).toBeGreaterThan(3);
  });
});

describe.each(ENGINES)('a bulk transfer between two stacks (%s)', (engine) => {
  it('runs at least 95% of received segments on the fast path, and every byte arrives in order', async () => {
    const { sim, nodes } = await makeStacks(engine, 2);
    const [a, b] = [nodes[0]!, nodes[1]!];
    await advance(sim, 10_000); // start-up ARP announcements done: the idle baseline
    const baseline = [levels(a.stack), levels(b.stack)];
    const total = 1024 * 1024;
    let received = 0;
    let mismatch = -1;
    const listener = b.stack.tcp.listen(9000);
    listener.onConnection = (conn) => {
      conn.onData = (view) => {
        for (let i = 0; i < view.length; i++) if (mismatch < 0 && view[i] !== ((received + i) * 31) % 251) mismatch = received + i;
        received += view.length;
      };
      conn.onEnd = () => conn.close();
    };
    const conn = await sim.complete(a.stack.tcp.connect(b.ip, 9000));
    const chunk = new Uint8Array(256 * 1024);
    let sent = 0;
    const pump = (): void => {
      while (sent < total) {
        const n = Math.min(chunk.length, total - sent);
        for (let i = 0; i < n; i++) chunk[i] = ((sent + i) * 31) % 251;
        const took = conn.write(chunk.subarray(0, n));
        sent += took;
        if (took < n) return;
      }
      conn.close();
    };
    conn.onWritable = pump;
    pump();
    expect(await sim.complete(conn.closed, { maxTime: 60_000 })).toEqual({ reason: 'closed' });
    expect(mismatch).toBe(-1);
    expect(received).toBe(total);
    const rx = b.stack.tcp.stats().counters;
    const tx = a.stack.tcp.stats().counters;
    expect(rx.fastPathSegments / rx.segmentsIn).toBeGreaterThanOrEqual(0.95);
    expect(tx.fastPathSegments / tx.segmentsIn).toBeGreaterThanOrEqual(0.95);
    expect(tx.burstSegments / tx.segmentsOut).toBeGreaterThanOrEqual(0.95);
    listener.close();
    await expectBaseline(sim, [a.stack, b.stack], baseline);
  });
});
