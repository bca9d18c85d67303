// Batches (Tcp.setBatching, NetDevice.setBatchEnd): the engine takes each
// fast-path segment whole as it comes, and what it leaves to JS (timers, the
// application, output) is done once per connection when the device says the
// batch ended. What that must give: one ACK for a batch's data, the
// application told once, one wake-up of a writer and one burst for all the
// room a batch of ACKs made, the delayed-ACK timer when an ACK is still owed,
// and nothing at all for a connection that ended in the middle of the batch.

import { describe, expect, it } from 'vitest';
import { ACK, add, PSH, RST, TcpPeer } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

describe.each(ENGINES)('TCP in batches (%s)', (engine) => {
  it('data segments of one batch: nothing goes out and the application hears nothing until the batch ends, then one ACK covers them all', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const calls: number[] = [];
    conn.onData = (view: Uint8Array) => calls.push(view.length);
    p.tcp.setBatching(true);
    const before = p.tcp.stats().counters.fastPathSegments;
    for (let i = 0; i < 4; i++) p.inject({ flags: ACK | PSH, seq: add(theirs, i * 1000), ack: ours, payload: bytes(1000, i) });
    expect(p.tcp.stats().counters.fastPathSegments - before).toBe(4);
    expect(p.drain()).toEqual([]);
    expect(calls).toEqual([]);
    p.tcp.endBatch();
    const out = p.drain();
    expect(out.map((s) => ({ flags: s.flags, ack: s.ack, len: s.payload.length }))).toEqual([{ flags: ACK, ack: add(theirs, 4000), len: 0 }]);
    expect(calls.reduce((a, b) => a + b, 0)).toBe(4000);
    // Told once: one onData per contiguous run of the receive queue, not one per segment.
    expect(calls.length).toBeLessThan(4);
    // A second end with nothing in between does nothing.
    p.tcp.endBatch();
    expect(p.drain()).toEqual([]);
  });

  it('frame by frame, the same four segments get an ACK every second full-sized pair (the contrast)', async () => {
    const p = await TcpPeer.create(engine);
    const { theirs, ours } = await p.accept();
    for (let i = 0; i < 4; i++) p.inject({ flags: ACK | PSH, seq: add(theirs, i * 1460), ack: ours, payload: bytes(1460, i) });
    expect(p.drain().map((s) => s.ack)).toEqual([add(theirs, 2920), add(theirs, 5840)]);
  });

  it('a lone segment in a batch: at the end its ACK is still owed, so the delayed-ACK timer sends it', async () => {
    const p = await TcpPeer.create(engine, { tcp: { delayedAckMs: 40 } });
    const { theirs, ours } = await p.accept();
    p.tcp.setBatching(true);
    p.inject({ flags: ACK | PSH, seq: theirs, ack: ours, payload: bytes(100) });
    p.tcp.endBatch();
    expect(p.drain()).toEqual([]);
    expect(p.tcp.stats().timers.delayedAck).toBe(1);
    p.advance(39);
    expect(p.drain()).toEqual([]);
    p.advance(1);
    expect(p.drain().map((s) => s.ack)).toEqual([add(theirs, 100)]);
    expect(p.tcp.stats().counters.delayedAcks).toBe(1);
  });

  it('the ACKs of one batch: the writer is woken once, one burst sends what they let go, the retransmission timer runs for it', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const offered = 1024 * 1024;
    const taken = conn.write(bytes(offered));
    expect(taken).toBeLessThan(offered); // the send buffer is full: onWritable follows room
    const flight = p.drain().length; // the initial window
    let wakes = 0;
    conn.onWritable = () => wakes++;
    p.tcp.setBatching(true);
    p.advance(10);
    for (let i = 1; i <= 4; i++) p.inject({ flags: ACK, seq: theirs, ack: add(ours, i * 1460) });
    expect(wakes).toBe(0);
    expect(p.drain()).toEqual([]);
    p.tcp.endBatch();
    expect(wakes).toBe(1);
    // Slow start: four segments acknowledged, cwnd four segments larger: eight new ones, in one burst.
    const burst = p.drain();
    expect(burst.map((s) => s.seq)).toEqual(Array.from({ length: 8 }, (_, i) => add(ours, (flight + i) * 1460)));
    expect(p.tcp.stats().timers.retransmit).toBe(1);
    expect(p.tcp.stats().counters.burstSegments).toBe(flight + 8);
  });

  it('a connection reset in the middle of its batch is skipped at the end: no ACK, no callback, nothing held', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours, listener } = await p.accept();
    const seen: string[] = [];
    conn.onData = () => seen.push('data');
    conn.onClose = (info) => seen.push(info.reason);
    p.tcp.setBatching(true);
    p.inject({ flags: ACK | PSH, seq: theirs, ack: ours, payload: bytes(500) });
    p.inject({ flags: RST, seq: add(theirs, 500), ack: ours });
    expect(p.tcp.stats().connections).toBe(0);
    // Its record is free, and may already serve another connection in the same batch.
    p.peerPort++;
    p.tcp.setBatching(false);
    const next = await p.accept({ listener });
    p.tcp.setBatching(true);
    p.tcp.endBatch();
    expect(p.drain()).toEqual([]);
    expect(seen).toEqual(['reset']);
    next.conn.abort();
    listener!.close();
    p.drain();
    p.expectNothingHeld();
  });

  it('turning batches off finishes what is pending, and segments are then answered one by one again', async () => {
    const p = await TcpPeer.create(engine);
    const { theirs, ours } = await p.accept();
    p.tcp.setBatching(true);
    p.inject({ flags: ACK | PSH, seq: theirs, ack: ours, payload: bytes(1460) });
    p.inject({ flags: ACK | PSH, seq: add(theirs, 1460), ack: ours, payload: bytes(1460) });
    expect(p.drain()).toEqual([]);
    p.tcp.setBatching(false);
    expect(p.drain().map((s) => s.ack)).toEqual([add(theirs, 2920)]);
    p.inject({ flags: ACK | PSH, seq: add(theirs, 2920), ack: ours, payload: bytes(1460) });
    p.inject({ flags: ACK | PSH, seq: add(theirs, 4380), ack: ours, payload: bytes(1460) });
    expect(p.drain().map((s) => s.ack)).toEqual([add(theirs, 5840)]);
  });
});
