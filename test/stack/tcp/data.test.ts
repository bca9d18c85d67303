// Moving bytes: receive queue and reassembly, delayed ACK, Nagle, send buffer
// and ACK processing, window updates, both socket APIs.

import { describe, expect, it } from 'vitest';
import { ACK, add, FIN, PSH, settle, TcpPeer } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

describe.each(ENGINES)('TCP data (%s)', (engine) => {
  it('delayed ACK: one segment is acknowledged after delayedAckMs (40 ms, under minRto)', async () => {
    const p = await TcpPeer.create(engine);
    expect(p.tcp.opts.delayedAckMs).toBe(40);
    expect(p.tcp.opts.delayedAckMs).toBeLessThan(p.tcp.opts.minRto);
    const { theirs, ours } = await p.accept();
    p.inject({ flags: ACK | PSH, seq: theirs, ack: ours, payload: bytes(100) });
    p.expectNone();
    p.advance(39);
    p.expectNone();
    p.advance(1);
    p.expect({ flags: ACK, ack: add(theirs, 100), seq: ours });
    expect(p.tcp.stats().counters.delayedAcks).toBe(1);
  });

  it('delayed ACK: every second full-size segment is acknowledged at once', async () => {
    const p = await TcpPeer.create(engine);
    const { theirs, ours } = await p.accept();
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(1460) });
    p.expectNone();
    p.inject({ flags: ACK, seq: add(theirs, 1460), ack: ours, payload: bytes(1460) });
    p.expect({ flags: ACK, ack: add(theirs, 2920) });
    // The delayed-ACK timer went with it.
    expect(p.tcp.stats().timers.delayedAck).toBe(0);
  });

  it('readable stream: bytes leave the arena only when pulled; the window reopens with an update', async () => {
    const p = await TcpPeer.create(engine, { tcp: { rcvBuf: 8192 } });
    const { conn, theirs, ours } = await p.accept();
    const data = bytes(8192);
    let seq = theirs;
    for (let off = 0; off < data.length; off += 1024) {
      p.inject({ flags: ACK, seq, ack: ours, payload: data.subarray(off, off + 1024) });
      seq = add(seq, 1024);
    }
    p.advance(200); // the last two segments are under 2*MSS: the delayed ACK covers them
    const acks = p.drain();
    const last = acks[acks.length - 1]!;
    expect(last.ack).toBe(seq);
    expect(last.window).toBe(0); // nothing read yet: the buffer is full
    expect(p.tcpChunks().recv).toBe(4);
    const reader = conn.readable.getReader();
    const got = await reader.read();
    expect(got.value).toEqual(data);
    expect(p.tcpChunks().recv).toBe(0);
    // The window opened from 0 to 8192: a window update goes out.
    p.expect({ flags: ACK, ack: seq, window: 8192 });
    expect(p.tcp.stats().counters.windowUpdates).toBe(1);
  });

  it('onData: zero-copy views, consumed when the callback returns; pause/resume', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const got: number[] = [];
    conn.onData = (view) => got.push(...view);
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(300) });
    expect(got).toEqual(Array.from(bytes(300)));
    expect(p.tcpChunks().recv).toBe(0);
    conn.pause();
    p.inject({ flags: ACK, seq: add(theirs, 300), ack: ours, payload: bytes(50, 9) });
    expect(got).toHaveLength(300);
    expect(conn.readableLength).toBe(50);
    conn.resume();
    expect(got.slice(300)).toEqual(Array.from(bytes(50, 9)));
    let ended = false;
    conn.onEnd = () => (ended = true);
    p.inject({ flags: ACK | FIN, seq: add(theirs, 350), ack: ours });
    expect(ended).toBe(true);
    p.expect({ flags: ACK, ack: add(theirs, 351) });
  });

  it('out-of-order segments wait in reassembly; the hole filling delivers all and ACKs at once', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const data = bytes(3000);
    const got: number[] = [];
    conn.onData = (v) => got.push(...v);
    p.inject({ flags: ACK, seq: add(theirs, 1000), ack: ours, payload: data.subarray(1000, 2000) });
    p.expect({ flags: ACK, ack: theirs }); // immediate duplicate ACK
    p.inject({ flags: ACK, seq: add(theirs, 2000), ack: ours, payload: data.subarray(2000, 3000) });
    p.expect({ flags: ACK, ack: theirs });
    // A duplicate of held data is not stored twice.
    p.inject({ flags: ACK, seq: add(theirs, 1500), ack: ours, payload: data.subarray(1500, 2500) });
    p.expect({ flags: ACK, ack: theirs });
    expect(p.liveTcbs()[0]!.reassembly.bytes).toBe(2000);
    // 2,000 bytes packed into one 2 KiB chunk, beside the out-of-order chunk (ranges, SACK board).
    expect(p.tcpChunks().reassembly).toBe(2);
    expect(got).toHaveLength(0);
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: data.subarray(0, 1000) });
    p.expect({ flags: ACK, ack: add(theirs, 3000) });
    expect(got).toEqual(Array.from(data));
    expect(p.tcpChunks().reassembly).toBe(0);
  });

  it('overlapping retransmissions are trimmed to what is new', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const data = bytes(200);
    const got: number[] = [];
    conn.onData = (v) => got.push(...v);
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: data.subarray(0, 100) });
    p.inject({ flags: ACK, seq: add(theirs, 50), ack: ours, payload: data.subarray(50, 200) });
    expect(got).toEqual(Array.from(data));
    // A complete duplicate is ACKed at once and not delivered again.
    p.drain();
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: data.subarray(0, 100) });
    p.expect({ flags: ACK, ack: add(theirs, 200) });
    expect(got).toHaveLength(200);
  });

  it('sending: write() copies into send chunks; ACKs free whole chunks', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    conn.setNoDelay(true);
    expect(conn.write(bytes(5000))).toBe(5000);
    const segs = p.drain();
    expect(segs.map((s) => s.payload.length)).toEqual([1460, 1460, 1460, 620]);
    expect(segs[0]!.seq).toBe(ours);
    expect(Array.from(segs.flatMap((s) => Array.from(s.payload)))).toEqual(Array.from(bytes(5000)));
    expect(p.tcpChunks().send).toBe(3);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 2920) });
    expect(p.tcpChunks().send).toBe(2); // bytes 2048.. remain: chunk 0 freed
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 5000) });
    expect(p.tcpChunks().send).toBe(0);
    expect(p.tcp.stats().timers.retransmit).toBe(0);
  });

  it('send buffer bound: write() accepts up to sndBuf, onWritable fires as ACKs free space', async () => {
    const p = await TcpPeer.create(engine, { tcp: { sndBuf: 4096 } });
    const { conn, theirs, ours } = await p.accept();
    expect(conn.write(bytes(10000))).toBe(4096);
    expect(conn.writableSpace).toBe(0);
    let writable = 0;
    conn.onWritable = () => writable++;
    const sent = p.drain().reduce((n, s) => n + s.payload.length, 0);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, sent) });
    expect(writable).toBe(1);
    expect(conn.writableSpace).toBe(sent);
  });

  it('writable stream: write() resolves when the bytes are in the send buffer (backpressure)', async () => {
    const p = await TcpPeer.create(engine, { tcp: { sndBuf: 2048 } });
    const { conn, theirs, ours } = await p.accept();
    conn.setNoDelay(true);
    const writer = conn.writable.getWriter();
    let done = false;
    const w = writer.write(bytes(5000)).then(() => (done = true));
    await settle();
    expect(done).toBe(false);
    let acked = 0;
    for (let i = 0; i < 10 && !done; i++) {
      acked += p.drain().reduce((n, s) => n + s.payload.length, 0);
      p.inject({ flags: ACK, seq: theirs, ack: add(ours, acked) });
      await settle();
    }
    await w;
    expect(done).toBe(true);
    await writer.close();
    const rest = p.drain();
    expect(rest[rest.length - 1]!.flags & FIN).toBe(FIN);
  });

  it('Nagle: small writes wait for the ACK of unacknowledged data; noDelay sends at once', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    conn.write(bytes(10));
    p.expect({ flags: ACK | PSH, len: 10 });
    conn.write(bytes(10));
    conn.write(bytes(10));
    p.expectNone(); // held: 10 bytes are in flight
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 10) });
    p.expect({ flags: ACK | PSH, seq: add(ours, 10), len: 20 }); // coalesced
    conn.setNoDelay(true);
    conn.write(bytes(5));
    p.expect({ flags: ACK | PSH, seq: add(ours, 30), len: 5 });
  });

  it('receive window: never shrinks, trims data beyond the right edge', async () => {
    const p = await TcpPeer.create(engine, { tcp: { rcvBuf: 4096 } });
    const { theirs, ours } = await p.accept();
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(3000) });
    p.inject({ flags: ACK, seq: add(theirs, 3000), ack: ours, payload: bytes(1400) });
    // Only 1096 bytes fit; the rest is dropped (counted) and an ACK says where we are.
    const ack = p.drain().pop()!;
    expect(ack.ack).toBe(add(theirs, 4096));
    expect(ack.window).toBe(0);
    expect(p.tcp.stats().counters.dropOutOfWindowData).toBe(304);
  });

  it('half-close: end() sends FIN, reading continues until the peer FIN', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    conn.end();
    p.expect({ flags: ACK | FIN, seq: ours });
    expect(p.tcp.stats().byState.FIN_WAIT_1).toBe(1);
    expect(() => conn.write(bytes(1))).toThrow(/EPIPE/);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1) });
    expect(p.tcp.stats().byState.FIN_WAIT_2).toBe(1);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1), payload: bytes(100) });
    const reader = conn.readable.getReader();
    expect((await reader.read()).value).toEqual(bytes(100));
    p.inject({ flags: ACK | FIN, seq: add(theirs, 100), ack: add(ours, 1), payload: bytes(10, 3) });
    p.expect({ flags: ACK, ack: add(theirs, 111) });
    // TIME_WAIT released the control block, yet the last bytes still reach the reader.
    expect(p.tcp.stats().connections).toBe(0);
    expect((await reader.read()).value).toEqual(bytes(10, 3));
    expect((await reader.read()).done).toBe(true);
    expect(await conn.closed).toEqual({ reason: 'closed' });
  });
});

describe.each(ENGINES)('TCP data at the end of a connection (%s)', (engine) => {
  it('graceful end with unread bytes: a paused onData still gets them, then onEnd, then onClose', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const events: string[] = [];
    conn.onData = (v) => events.push(`data ${v.length}`);
    conn.onEnd = () => events.push('end');
    conn.onClose = (info) => events.push(`close ${info.reason}`);
    conn.pause();
    conn.end();
    p.expect({ flags: FIN | ACK });
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1), payload: bytes(100) });
    expect(events).toEqual([]);
    p.inject({ flags: FIN | ACK, seq: add(theirs, 100), ack: add(ours, 1) });
    expect(events).toEqual(['data 100', 'end', 'close closed']);
    expect(p.tcpChunks().recv).toBe(0);
  });

  it('close(): bytes arriving afterwards are acknowledged and discarded (counted)', async () => {
    const p = await TcpPeer.create(engine, { tcp: { rcvBuf: 4096 } });
    const { conn, theirs, ours } = await p.accept();
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(800) });
    p.inject({ flags: ACK, seq: add(theirs, 800), ack: ours, payload: bytes(800) });
    p.expectNone(); // the ACK is delayed (less than two full segments)
    conn.close();
    // One segment: our FIN, acknowledging the bytes and offering the reopened window.
    p.expect({ flags: FIN | ACK, ack: add(theirs, 1600), window: 4096 });
    p.expectNone();
    p.inject({ flags: ACK, seq: add(theirs, 1600), ack: add(ours, 1), payload: bytes(1000) });
    p.inject({ flags: ACK, seq: add(theirs, 2600), ack: add(ours, 1), payload: bytes(1000) });
    p.inject({ flags: ACK, seq: add(theirs, 3600), ack: add(ours, 1), payload: bytes(1000) });
    p.advance(200);
    const last = p.drain().pop()!;
    expect([last.ack, last.window]).toEqual([add(theirs, 4600), 4096]);
    expect(p.tcp.stats().counters.dropAfterReadClose).toBe(3000);
    expect(p.tcpChunks().recv).toBe(0);
  });
});

describe.each(ENGINES)('TCP close with a stream write pending (%s)', (engine) => {
  it('close() while a stream write waits for room: the FIN follows all its bytes', async () => {
    const p = await TcpPeer.create(engine, { tcp: { sndBuf: 2048 } });
    const { conn, theirs, ours } = await p.accept();
    conn.setNoDelay(true);
    const writer = conn.writable.getWriter();
    const w = writer.write(bytes(5000)).then(() => 'ok', (e: Error) => e.message);
    await settle();
    conn.close();
    let acked = 0;
    let fin = false;
    for (let i = 0; i < 20 && !fin; i++) {
      for (const s of p.drain()) {
        acked = (s.seq - ours + s.payload.length) >>> 0;
        if (s.flags & FIN) fin = true;
      }
      p.inject({ flags: ACK, seq: theirs, ack: add(ours, acked) });
      await settle();
    }
    expect(fin).toBe(true);
    expect(acked).toBe(5000);
    expect(await w).toBe('ok');
  });
});
