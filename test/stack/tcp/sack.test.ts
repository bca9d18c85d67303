// RFC 2018 SACK, receiver side (the sender's use of blocks: sack-sender.test.ts):
// SACK-permitted in our SYNs, used only when
// both SYNs carry it; then every ACK sent while out-of-order data is held
// reports it, the block with the most recent segment first, and a data
// segment carries only the blocks that fit beside its payload within the MSS.

import { describe, expect, it } from 'vitest';
import type { Connection } from '../../../stack/tcp/connection.js';
import { advance, expectBaseline, levels, makeStacks, pattern } from '../../helpers/stack-pair.js';
import { ACK, add, PSH, SYN, TcpPeer, type Established } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;

/** An accepted connection whose peer offered SACK-permitted; the app reads nothing. */
async function sackConnection(engine: 'wasm' | 'ts', sack = true): Promise<{ p: TcpPeer; e: Established }> {
  const p = await TcpPeer.create(engine, { tcp: { sack } });
  const e = await p.accept({ sackOk: true });
  e.conn.pause();
  return { p, e };
}

describe.each(ENGINES)('TCP SACK, receiver side (%s)', (engine) => {
  it('SYNs: ours offer SACK-permitted; a SYN-ACK offers it only to a peer that did', async () => {
    const p = await TcpPeer.create(engine);
    void p.tcp.connect('10.0.0.2', 80).catch(() => {});
    expect(p.expect({ flags: SYN }).sackOk).toBe(true);
    p.tcp.listen(81);
    p.inject({ flags: SYN, seq: 1, dport: 81, mss: 1460, sackOk: true });
    expect(p.expect({ flags: SYN | ACK }).sackOk).toBe(true);
    p.inject({ flags: SYN, seq: 1, dport: 81, sport: 40001, mss: 1460 });
    expect(p.expect({ flags: SYN | ACK }).sackOk).toBe(false);
    const off = await TcpPeer.create(engine, { tcp: { sack: false } });
    void off.tcp.connect('10.0.0.2', 80).catch(() => {});
    expect(off.expect({ flags: SYN }).sackOk).toBe(false);
  });

  it('reports held blocks, the most recent first, merges them as holes fill, and stops once in order', async () => {
    const { p, e } = await sackConnection(engine);
    const seg = (n: number) => add(e.theirs, n * 100); // segment n covers [theirs + 100n, +100)
    const send = (n: number) =>
      p.inject({ flags: ACK | PSH, seq: seg(n), ack: e.ours, payload: new Uint8Array(100) });
    send(0);
    p.advance(100);
    expect(p.expect({ flags: ACK, ack: seg(1) }).sack).toEqual([]);
    send(2); // hole at 1
    expect(p.expect({ flags: ACK, ack: seg(1) }).sack).toEqual([seg(2), seg(3)]);
    send(5); // holes at 1, 3-4
    expect(p.expect({ flags: ACK, ack: seg(1) }).sack).toEqual([seg(5), seg(6), seg(2), seg(3)]);
    send(7);
    expect(p.expect({ flags: ACK, ack: seg(1) }).sack).toEqual([seg(7), seg(8), seg(2), seg(3), seg(5), seg(6)]);
    send(4); // joins 5: [4, 6)
    expect(p.expect({ flags: ACK, ack: seg(1) }).sack).toEqual([seg(4), seg(6), seg(2), seg(3), seg(7), seg(8)]);
    send(3); // joins 2 and 4-5: [2, 6)
    expect(p.expect({ flags: ACK, ack: seg(1) }).sack).toEqual([seg(2), seg(6), seg(7), seg(8)]);
    send(1); // fills the first hole: [7, 8) is left
    expect(p.expect({ flags: ACK, ack: seg(6) }).sack).toEqual([seg(7), seg(8)]);
    send(6);
    expect(p.expect({ flags: ACK, ack: seg(8) }).sack).toEqual([]);
    expect(e.conn.readableLength).toBe(800);
  });

  it('sends at most 4 blocks', async () => {
    const { p, e } = await sackConnection(engine);
    for (let n = 1; n <= 11; n += 2) {
      p.inject({ flags: ACK | PSH, seq: add(e.theirs, n * 100), ack: e.ours, payload: new Uint8Array(100) });
    }
    const last = p.drain().at(-1)!;
    expect(last.sack).toHaveLength(8);
    expect(last.sack.slice(0, 2)).toEqual([add(e.theirs, 1100), add(e.theirs, 1200)]);
  });

  it('a data segment carries only the blocks that fit beside its payload within the MSS', async () => {
    const { p, e } = await sackConnection(engine);
    e.conn.setNoDelay(true);
    for (let n = 1; n <= 7; n += 2) {
      p.inject({ flags: ACK | PSH, seq: add(e.theirs, n * 100), ack: e.ours, payload: new Uint8Array(100) });
    }
    p.drain();
    // Room beside the payload within the MSS of 1460: 12 bytes hold one block
    // (4 + 8), 36 hold four, none is left beside a full segment.
    e.conn.write(new Uint8Array(1448));
    expect(p.expect({ flags: ACK | PSH, len: 1448 }).sack).toHaveLength(2);
    p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, 1448) });
    e.conn.write(new Uint8Array(1424));
    expect(p.expect({ flags: ACK | PSH, len: 1424 }).sack).toHaveLength(8);
    p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, 2872) });
    e.conn.write(new Uint8Array(1460));
    expect(p.expect({ flags: ACK | PSH, len: 1460 }).sack).toEqual([]);
  });

  it('without SACK negotiated, ACKs carry no blocks', async () => {
    for (const [sack, sackOk] of [[false, true], [true, false]] as const) {
      const p = await TcpPeer.create(engine, { tcp: { sack } });
      const e = await p.accept({ sackOk });
      p.inject({ flags: ACK | PSH, seq: add(e.theirs, 100), ack: e.ours, payload: new Uint8Array(100) });
      const ack = p.expect({ flags: ACK, ack: e.theirs });
      expect(ack.sack).toEqual([]);
      expect(ack.sackOk).toBe(false);
    }
  });
});

// Two of our stacks over a lossy, reordering link negotiate SACK, use it on
// both sides, and the data arrives intact with every resource back to its
// baseline.
describe.each(ENGINES)('TCP SACK between two stacks on a lossy link (%s)', (engine) => {
  it('1 MiB each way arrives intact; blocks were sent and used; nothing is left held', async () => {
    const { sim, nodes } = await makeStacks(engine, 2, {
      memoryBytes: 4 * 1024 * 1024,
      port: { faults: { loss: 0.02, reorder: 0.05, reorderDelay: 3, delay: 2 } },
      tcp: { msl: 1000 },
    });
    const [a, b] = [nodes[0]!, nodes[1]!];
    await advance(sim, 10_000);
    const baseline = [levels(a.stack), levels(b.stack)];
    const up = pattern(1024 * 1024, 3);
    const listener = b.stack.tcp.listen(9000);
    const echo = (async () => {
      const conn = await listener.accept();
      return collect(conn, up.length, true);
    })();
    const conn = await sim.complete(a.stack.tcp.connect(b.ip, 9000));
    const back = collect(conn, up.length, false);
    let sent = 0;
    const push = (): void => {
      while (sent < up.length) {
        const n = conn.write(up.subarray(sent, Math.min(sent + 16_384, up.length)));
        if (n === 0) return;
        sent += n;
      }
      conn.end();
    };
    conn.onWritable = push;
    push();
    const [there, here] = await sim.complete(Promise.all([echo, back]), { maxTime: 600_000 });
    expect(there.every((x, i) => x === up[i])).toBe(true);
    expect(here.every((x, i) => x === up[i])).toBe(true);
    const [ca, cb] = [a.stack.tcp.stats().counters, b.stack.tcp.stats().counters];
    expect(ca.sackAcksSent + cb.sackAcksSent).toBeGreaterThan(0);
    // And the senders used those blocks to resend holes in fast recovery.
    expect(ca.sackRetransmits + cb.sackRetransmits).toBeGreaterThan(0);
    listener.close();
    await expectBaseline(sim, [a.stack, b.stack], baseline);
  });
});

/** Read `size` bytes; with echoBack, also write them back and end after the
 *  peer's FIN once everything is echoed. */
function collect(conn: Connection, size: number, echoBack: boolean): Promise<Uint8Array> {
  return new Promise((resolve) => {
    const got = new Uint8Array(size);
    let at = 0;
    let ended = false;
    const pending: Uint8Array[] = [];
    const flush = (): void => {
      while (pending.length > 0) {
        const head = pending[0]!;
        const n = conn.write(head);
        if (n < head.length) {
          pending[0] = head.subarray(n);
          return;
        }
        pending.shift();
      }
      if (ended) conn.end();
    };
    conn.onData = (view) => {
      got.set(view, at);
      at += view.length;
      if (echoBack) {
        pending.push(view.slice());
        flush();
      }
    };
    if (echoBack) conn.onWritable = flush;
    conn.onEnd = () => {
      ended = true;
      if (echoBack) flush();
      resolve(got.subarray(0, at));
    };
  });
}
