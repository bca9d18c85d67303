// D-SACK as a receiver (RFC 2883): when SACK was agreed and a segment brings
// bytes we already have, the ACK it gets reports them as its first SACK
// block, below the acknowledgment, so the sender can tell a needless
// retransmission from a loss; the blocks of held data follow. Once per
// duplicate; never without SACK. Both engines (duplicates take the slow path).

import { describe, expect, it } from 'vitest';
import { ACK, add, TcpPeer } from '../../helpers/tcp-peer.js';
import { pattern as bytes } from '../../helpers/stack-pair.js';

const ENGINES = ['wasm', 'ts'] as const;


describe.each(ENGINES)('D-SACK (%s)', (engine) => {
  it('a whole duplicate segment: acknowledged at once, reported as the first block, once', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept({ sackOk: true });
    conn.onData = () => {};
    const data = bytes(1000);
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: data });
    p.advance(40);
    p.expect({ flags: ACK, ack: add(theirs, 1000) });
    p.inject({ flags: ACK, seq: add(theirs, 200), ack: ours, payload: data.subarray(200, 700) });
    const dup = p.expect({ flags: ACK, ack: add(theirs, 1000) });
    expect(dup.sack).toEqual([add(theirs, 200), add(theirs, 700)]);
    expect(p.tcp.stats().counters.dsackSent).toBe(1);
    // The next ACK carries no report of it.
    p.inject({ flags: ACK, seq: add(theirs, 1000), ack: ours, payload: bytes(100) });
    p.advance(40);
    expect(p.expect({ flags: ACK, ack: add(theirs, 1100) }).sack).toEqual([]);
  });

  it('a segment partly new: the old part is reported, the new part taken', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept({ sackOk: true });
    const got: number[] = [];
    conn.onData = (v) => got.push(...v);
    const data = bytes(1500);
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: data.subarray(0, 1000) });
    p.inject({ flags: ACK, seq: add(theirs, 800), ack: ours, payload: data.subarray(800, 1500) });
    const acks = p.drain();
    const last = acks.at(-1)!;
    expect(last.ack).toBe(add(theirs, 1500));
    expect(last.sack).toEqual([add(theirs, 800), add(theirs, 1000)]);
    expect(got).toEqual(Array.from(data));
  });

  it('with held out-of-order data: the duplicate first, then the held block', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept({ sackOk: true });
    conn.onData = () => {};
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(500) });
    p.inject({ flags: ACK, seq: add(theirs, 1000), ack: ours, payload: bytes(500) }); // a hole at 500
    p.drain();
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(500) });
    const dup = p.expect({ flags: ACK, ack: add(theirs, 500) });
    expect(dup.sack).toEqual([theirs, add(theirs, 500), add(theirs, 1000), add(theirs, 1500)]);
  });

  it('without SACK agreed: no option, and a whole duplicate still gets its ACK at once', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept({ sackOk: false });
    conn.onData = () => {};
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(1000) });
    p.advance(40);
    p.drain();
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(1000) });
    expect(p.expect({ flags: ACK, ack: add(theirs, 1000) }).sack).toEqual([]);
    expect(p.tcp.stats().counters.dsackSent).toBe(0);
  });
});
