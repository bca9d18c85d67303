// A FIN that arrives out of order (RFC 9293 3.10.7.4 eighth: a FIN takes
// effect only in order). Held when it comes right after data held for
// reassembly, so filling the hole ends the stream at once; dropped (counted)
// otherwise, and the peer's retransmission ends it. Both engines: in-order
// data that fills the hole takes the slow path while data is held.

import { describe, expect, it } from 'vitest';
import type { Connection } from '../../../stack/tcp/connection.js';
import { State } from '../../../stack/tcp/state.js';
import { ACK, add, FIN, TcpPeer } from '../../helpers/tcp-peer.js';
import { pattern as bytes } from '../../helpers/stack-pair.js';

const ENGINES = ['wasm', 'ts'] as const;

/** Whether the application has been told the stream ended. */
function endOf(conn: Connection): () => boolean {
  let ended = false;
  conn.onData = () => {};
  conn.onEnd = () => (ended = true);
  return () => ended;
}


describe.each(ENGINES)('an out-of-order FIN (%s)', (engine) => {
  it('right after held data: kept, and the hole filling delivers the data, then the end, in one ACK', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const data = bytes(2000);
    const got: number[] = [];
    const ended = endOf(conn);
    conn.onData = (v) => got.push(...v);
    p.inject({ flags: ACK | FIN, seq: add(theirs, 1000), ack: ours, payload: data.subarray(1000, 2000) });
    p.expect({ flags: ACK, ack: theirs }); // the hole, at once
    expect(p.tcp.stats().counters.finHeld).toBe(1);
    expect(ended()).toBe(false);
    expect(p.liveTcbs()[0]!.state).toBe(State.Established);
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: data.subarray(0, 1000) });
    // All 2,000 bytes and the FIN acknowledged together.
    p.expect({ flags: ACK, ack: add(theirs, 2001) });
    expect(got).toEqual(Array.from(data));
    expect(ended()).toBe(true);
    expect(p.liveTcbs()[0]!.state).toBe(State.CloseWait);
    expect(p.tcpChunks().reassembly).toBe(0);
    expect(p.tcp.stats().counters.finOutOfOrderDropped).toBe(0);
  });

  it('a bare FIN right after held data is kept too', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const ended = endOf(conn);
    p.inject({ flags: ACK, seq: add(theirs, 100), ack: ours, payload: bytes(100) });
    p.expect({ flags: ACK, ack: theirs });
    p.inject({ flags: ACK | FIN, seq: add(theirs, 200), ack: ours });
    p.expect({ flags: ACK, ack: theirs });
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(100) });
    p.expect({ flags: ACK, ack: add(theirs, 201) });
    expect(ended()).toBe(true);
  });

  it('with nothing held right before it: dropped, counted; the retransmitted FIN ends the stream', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const ended = endOf(conn);
    p.inject({ flags: ACK | FIN, seq: add(theirs, 500), ack: ours });
    p.expect({ flags: ACK, ack: theirs });
    expect(p.tcp.stats().counters.finOutOfOrderDropped).toBe(1);
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(500) });
    p.advance(40); // the delayed ACK
    expect(p.drain().at(-1)!.ack).toBe(add(theirs, 500));
    expect(ended()).toBe(false);
    p.inject({ flags: ACK | FIN, seq: add(theirs, 500), ack: ours });
    p.expect({ flags: ACK, ack: add(theirs, 501) });
    expect(ended()).toBe(true);
  });

  it('a second FIN at another sequence number does not move the held one', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const ended = endOf(conn);
    p.inject({ flags: ACK | FIN, seq: add(theirs, 100), ack: ours, payload: bytes(100) });
    p.expect({ flags: ACK, ack: theirs });
    p.inject({ flags: ACK | FIN, seq: add(theirs, 150), ack: ours, payload: bytes(100) });
    p.expect({ flags: ACK, ack: theirs });
    expect(p.tcp.stats().counters.finHeld).toBe(1);
    expect(p.tcp.stats().counters.finOutOfOrderDropped).toBe(1);
    // The hole fills; the data after the held FIN (150..250 overlapped it) does not end the stream early.
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(100) });
    const ack = p.drain().at(-1)!;
    expect(ended()).toBe(false);
    expect(ack.ack).toBe(add(theirs, 250));
  });

  it('is forgotten with the held data when the arena prunes it, and the connection still ends on the resent FIN', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const ended = endOf(conn);
    p.inject({ flags: ACK | FIN, seq: add(theirs, 100), ack: ours, payload: bytes(100) });
    p.expect({ flags: ACK, ack: theirs });
    const tcb = p.liveTcbs()[0]!;
    tcb.reassembly.clear(); // what Tcp.pruneOutOfOrder does under arena pressure
    expect(tcb.finHeld).toBe(false);
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(100) });
    p.advance(40); // the delayed ACK
    expect(p.drain().at(-1)!.ack).toBe(add(theirs, 100));
    expect(ended()).toBe(false);
    p.inject({ flags: ACK | FIN, seq: add(theirs, 100), ack: ours, payload: bytes(100) });
    p.expect({ flags: ACK, ack: add(theirs, 201) });
    expect(ended()).toBe(true);
    p.tcp.shutdown();
    p.expectNothingHeld();
  });
});
