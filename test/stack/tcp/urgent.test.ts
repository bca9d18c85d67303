// Urgent data (RFC 9293 3.8.5, RFC 6093): there is no out-of-band byte here;
// data sent with URG is delivered in line, in order, with the rest of the
// stream, whatever the urgent pointer says, and counted (urgentInLine). We
// never set URG ourselves. Both engines: URG takes the slow path.

import { describe, expect, it } from 'vitest';
import { ACK, add, PSH, TcpPeer, URG } from '../../helpers/tcp-peer.js';
import { pattern as bytes } from '../../helpers/stack-pair.js';

const ENGINES = ['wasm', 'ts'] as const;


describe.each(ENGINES)('urgent data (%s)', (engine) => {
  it('is delivered in line and in order, whatever the pointer, and acknowledged like any data', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const data = bytes(3000);
    const got: number[] = [];
    conn.onData = (v) => got.push(...v);
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: data.subarray(0, 1000) });
    // The pointer in this segment, past its end, and zero.
    p.inject({ flags: ACK | URG | PSH, seq: add(theirs, 1000), ack: ours, payload: data.subarray(1000, 1500), urgent: 10 });
    p.inject({ flags: ACK | URG, seq: add(theirs, 1500), ack: ours, payload: data.subarray(1500, 2000), urgent: 9000 });
    p.inject({ flags: ACK | URG, seq: add(theirs, 2000), ack: ours, payload: data.subarray(2000, 3000), urgent: 0 });
    p.advance(40);
    const acks = p.drain();
    expect(acks.at(-1)!.ack).toBe(add(theirs, 3000));
    expect(acks.every((s) => (s.flags & URG) === 0)).toBe(true);
    expect(got).toEqual(Array.from(data));
    expect(p.tcp.stats().counters.urgentInLine).toBe(3);
  });

  it('out of order with URG: held, then delivered in place when the hole fills', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const data = bytes(1000, 5);
    const got: number[] = [];
    conn.onData = (v) => got.push(...v);
    p.inject({ flags: ACK | URG, seq: add(theirs, 500), ack: ours, payload: data.subarray(500), urgent: 1 });
    p.expect({ flags: ACK, ack: theirs });
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: data.subarray(0, 500) });
    p.expect({ flags: ACK, ack: add(theirs, 1000) });
    expect(got).toEqual(Array.from(data));
  });

  it('a bare URG with no data changes nothing and is not counted', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const got: number[] = [];
    conn.onData = (v) => got.push(...v);
    p.inject({ flags: ACK | URG, seq: theirs, ack: ours, urgent: 5 });
    p.expectNone();
    expect(got).toEqual([]);
    expect(p.tcp.stats().counters.urgentInLine).toBe(0);
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(10) });
    p.advance(40);
    p.expect({ flags: ACK, ack: add(theirs, 10) });
    expect(got).toHaveLength(10);
  });
});
