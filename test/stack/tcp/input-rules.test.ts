// Segment arrival rule by rule (RFC 9293 3.10.7.3 and 3.10.7.4), with the
// counters stats() reports for each decision: SYN_SENT's checks in their
// order, what the handshake sets up (the peer's window, scaled or not, and
// MAX.SND.WND), SYN_RECEIVED's duplicate-SYN shortcut, ACK processing (old
// ACKs, the SND.WL1/SND.WL2 window-update rule, RFC 5961's MAX.SND.WND bound,
// SND.NXT after a go-back-N rewind), and the receive side's accounting.

import { describe, expect, it } from 'vitest';
import { ACK, add, FIN, PSH, RST, SYN, TcpPeer } from '../../helpers/tcp-peer.js';
import { OwnerKind, ownerTag } from '../../../stack/hotpath/engine.js';
import type { TcpOptions } from '../../../stack/tcp/options.js';

const ENGINES = ['wasm', 'ts'] as const;

function bytes(n: number, seed = 3): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
}

describe.each(ENGINES)('SYN_SENT (RFC 9293 3.10.7.3) (%s)', (engine) => {
  async function connecting(tcp: Partial<TcpOptions> = {}) {
    const p = await TcpPeer.create(engine, { tcp });
    const pending = p.tcp.connect('10.0.0.2', 80);
    const settled = pending.then((c) => c, (e: unknown) => e);
    const syn = p.expect({ flags: SYN });
    const from = { sport: 80, dport: syn.sport };
    return { p, pending: settled, syn, from, c: () => p.tcp.stats().counters };
  }

  it('first: an ACK that does not acknowledge our SYN gets <SEQ=SEG.ACK><CTL=RST> (counted)', async () => {
    const { p, syn, from, c } = await connecting();
    for (const ack of [syn.seq, add(syn.seq, 2)]) {
      p.inject({ flags: ACK, seq: 300, ack, ...from });
      p.expect({ flags: RST, seq: ack });
    }
    expect(c().dropBadSynSent).toBe(2);
    expect(c().rstSentBadAck).toBe(2);
    expect(p.tcp.stats().byState.SYN_SENT).toBe(1);
  });

  it('a RST|ACK with an unacceptable ACK is dropped without a reply', async () => {
    const { p, syn, from, c } = await connecting();
    p.inject({ flags: RST | ACK, seq: 0, ack: add(syn.seq, 7), ...from });
    p.expectNone();
    expect(c().dropBadSynSent).toBe(1);
    expect(c().rstSentBadAck).toBe(0);
    expect(c().rstReceived).toBe(0);
    expect(p.tcp.stats().byState.SYN_SENT).toBe(1);
  });

  it('second: a RST without ACK is ignored (counted); one acknowledging our SYN refuses', async () => {
    const { p, syn, from, c, pending } = await connecting();
    p.inject({ flags: RST, seq: 0, ...from });
    expect(c().rstIgnored).toBe(1);
    expect(c().rstReceived).toBe(0);
    expect(p.tcp.stats().byState.SYN_SENT).toBe(1);
    p.inject({ flags: RST | ACK, seq: 0, ack: add(syn.seq, 1), ...from });
    expect(await pending).toMatchObject({ code: 'ECONNREFUSED' });
    expect(c().rstReceived).toBe(1);
    expect(c().rstIgnored).toBe(1);
  });

  it('fifth: an acceptable ACK with neither SYN nor RST is dropped; the open goes on', async () => {
    const { p, syn, from, c } = await connecting();
    p.inject({ flags: ACK, seq: 300, ack: add(syn.seq, 1), ...from });
    p.expectNone();
    expect(c().dropBadSynSent).toBe(1);
    expect(c().established).toBe(0);
    expect(p.tcp.stats().byState.SYN_SENT).toBe(1);
  });

  it('the windows our SYN and handshake ACK announce are rcvBuf (unscaled), whatever SYN-ACK arrives', async () => {
    const { p, syn, from } = await connecting({ rcvBuf: 4000, windowScaling: false });
    expect(syn.window).toBe(4000);
    p.inject({ flags: SYN | ACK, seq: 900, ack: add(syn.seq, 1), mss: 1460, ...from });
    p.expect({ flags: ACK, ack: 901, window: 4000 });
    // The promise holds: the byte at RCV.NXT + 3999 is taken, one at + 4000 is not.
    p.port = syn.sport;
    p.peerPort = 80;
    p.inject({ flags: ACK, seq: add(901, 4000), ack: add(syn.seq, 1), payload: bytes(1) });
    expect(p.tcp.stats().counters.dropNotAcceptable).toBe(1);
    p.inject({ flags: ACK, seq: add(901, 3999), ack: add(syn.seq, 1), payload: bytes(1) });
    expect(p.tcp.stats().counters.dropNotAcceptable).toBe(1);
  });

  it('the connect() timeout is cancelled once established', async () => {
    const p = await TcpPeer.create(engine);
    const pending = p.tcp.connect('10.0.0.2', 80, { timeout: 5000 });
    const syn = p.expect({ flags: SYN });
    expect(p.tcp.stats().timers.connect).toBe(1);
    p.inject({ flags: SYN | ACK, seq: 900, ack: add(syn.seq, 1), sport: 80, dport: syn.sport, mss: 1460 });
    await pending;
    expect(p.tcp.stats().timers.connect).toBe(0);
  });

  it('simultaneous open ended by a RST: refused, and not counted as a dropped embryo', async () => {
    const { p, syn, from, pending, c } = await connecting();
    p.inject({ flags: SYN, seq: 900, mss: 1460, ...from });
    p.expect({ flags: SYN | ACK, seq: syn.seq, ack: 901 });
    p.inject({ flags: RST, seq: 901, ...from });
    expect(await pending).toMatchObject({ code: 'ECONNREFUSED' });
    expect(c().embryonicDropped).toBe(0);
    expect(c().closedBy.refused).toBe(1);
  });
});

describe.each(ENGINES)('handshake results (%s)', (engine) => {
  it('passive open: the peer\'s window comes from the handshake ACK, scaled by its shift', async () => {
    const p = await TcpPeer.create(engine);
    expect(p.tcp.stats().counters.established).toBe(0);
    const e = await p.accept({ wscale: 4, window: 100 });
    expect(p.tcp.stats().counters.established).toBe(1);
    const tcb = e.conn.inspect()!;
    expect(tcb.sndWnd).toBe(1600);
    e.conn.setNoDelay(true);
    e.conn.write(new Uint8Array(5000));
    expect(p.drain().map((s) => s.payload.length)).toEqual([1460]);
  });

  it('MAX.SND.WND keeps the largest window offered, including the SYN\'s', async () => {
    const p = await TcpPeer.create(engine);
    p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 1000, mss: 1460, window: 10_000 });
    const sa = p.expect({ flags: SYN | ACK });
    p.inject({ flags: ACK, seq: 1001, ack: add(sa.seq, 1), window: 1000 });
    const tcb = p.liveTcbs()[0]!;
    expect(tcb.sndWnd).toBe(1000);
    expect(tcb.maxSndWnd).toBe(10_000);
    // RFC 5961 5.2: an ACK down to SND.UNA - MAX.SND.WND is old but acceptable.
    const ours = add(sa.seq, 1);
    const got: number[] = [];
    tcb.conn!.onData = (v) => got.push(...v);
    p.inject({ flags: ACK, seq: 1001, ack: add(ours, -5000), window: 1000, payload: bytes(3) });
    expect(got).toHaveLength(3);
    expect(p.tcp.stats().counters.dropAckTooOld).toBe(0);
  });

  it('MAX.SND.WND grows with later windows and never shrinks', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept({ window: 1000 });
    const got: number[] = [];
    conn.onData = (v) => got.push(...v);
    let seq = theirs;
    const send = (ack: number, window: number) => {
      p.inject({ flags: ACK, seq, ack, window, payload: bytes(1) });
      seq = add(seq, 1);
    };
    send(ours, 60_000); // grows to 60000
    send(add(ours, -30_000), 60_000); // old ACK within 60000: taken
    expect(got).toHaveLength(2);
    send(ours, 2000); // the window shrinks; the maximum stays
    send(add(ours, -30_000), 2000);
    expect(got).toHaveLength(4);
    expect(conn.inspect()!.maxSndWnd).toBe(60_000);
    expect(p.tcp.stats().counters.dropAckTooOld).toBe(0);
    // Beyond it: challenged, dropped.
    p.inject({ flags: ACK, seq, ack: add(ours, -60_001), window: 2000, payload: bytes(1) });
    expect(got).toHaveLength(4);
    expect(p.tcp.stats().counters.dropAckTooOld).toBe(1);
  });
});

describe.each(ENGINES)('SYN_RECEIVED (%s)', (engine) => {
  it('only an exact repeat of the peer\'s SYN gets the SYN-ACK again; a RST at the SYN\'s number is dropped', async () => {
    const p = await TcpPeer.create(engine);
    p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 100, mss: 1460 });
    const sa = p.expect({ flags: SYN | ACK, ack: 101 });
    p.inject({ flags: RST, seq: 100 });
    p.expectNone();
    p.inject({ flags: RST | ACK, seq: 100, ack: add(sa.seq, 1) });
    p.expectNone();
    expect(p.tcp.stats().byState.SYN_RECEIVED).toBe(1);
    expect(p.tcp.stats().counters.synRetransmits).toBe(0);
    p.inject({ flags: SYN, seq: 100, mss: 1460 });
    p.expect({ flags: SYN | ACK, seq: sa.seq, ack: 101 });
    expect(p.tcp.stats().counters.synRetransmits).toBe(1);
  });

  it('a SYN with another sequence number ends the embryo: closed as a reset, counted', async () => {
    const p = await TcpPeer.create(engine);
    p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 100, mss: 1460 });
    p.expect({ flags: SYN | ACK });
    p.inject({ flags: SYN, seq: 105, mss: 1460 });
    const c = p.tcp.stats().counters;
    expect(c.embryonicDropped).toBe(1);
    expect(c.closedBy).toMatchObject({ reset: 1 });
    expect(Object.keys(c.closedBy)).toEqual(['reset']);
  });

  it('an ACK outside (SND.UNA, SND.NXT] is answered with a RST (counted)', async () => {
    const p = await TcpPeer.create(engine);
    p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 100, mss: 1460 });
    const sa = p.expect({ flags: SYN | ACK });
    p.inject({ flags: ACK, seq: 101, ack: sa.seq });
    p.expect({ flags: RST, seq: sa.seq });
    expect(p.tcp.stats().counters.rstSentBadAck).toBe(1);
    expect(p.tcp.stats().byState.SYN_RECEIVED).toBe(1);
  });

  it('ESTABLISHED: a SYN repeating the peer\'s first one is old: an ACK, not a SYN-ACK', async () => {
    const p = await TcpPeer.create(engine);
    const { theirs, ours } = await p.accept({ peerIss: 1000 });
    p.inject({ flags: SYN, seq: 1000, mss: 1460 });
    p.expect({ flags: ACK, seq: ours, ack: theirs });
    expect(p.tcp.stats().counters.synRetransmits).toBe(0);
    expect(p.tcp.stats().byState.ESTABLISHED).toBe(1);
  });
});

describe.each(ENGINES)('ACK processing (RFC 9293 3.10.7.4 fifth) (%s)', (engine) => {
  async function sending(tcp: Partial<TcpOptions> = {}) {
    const p = await TcpPeer.create(engine, { tcp: { sndBuf: 256 * 1024, ...tcp } });
    const e = await p.accept({ mss: 1000 });
    e.conn.setNoDelay(true);
    return { p, ...e, tcb: e.conn.inspect()! };
  }

  it('old ACKs (below SND.UNA) are not duplicates: three of them start no fast retransmit', async () => {
    const { p, conn, theirs, ours, tcb } = await sending();
    conn.write(new Uint8Array(20_000));
    p.drain();
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 2000) });
    p.drain();
    for (let i = 0; i < 3; i++) p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1000) });
    expect(tcb.dupAcks).toBe(0);
    expect(p.tcp.stats().counters.fastRetransmits).toBe(0);
  });

  it('a FIN repeating SND.UNA is not a duplicate ACK', async () => {
    const { p, conn, theirs, ours, tcb } = await sending();
    conn.write(new Uint8Array(5000));
    p.drain();
    p.inject({ flags: ACK | FIN, seq: theirs, ack: ours });
    p.inject({ flags: ACK, seq: add(theirs, 1), ack: ours });
    expect(tcb.dupAcks).toBe(1);
  });

  it('the window is taken only from a segment not older than the last one used (SND.WL1, SND.WL2)', async () => {
    const { p, theirs, ours, tcb } = await sending();
    p.inject({ flags: ACK, seq: theirs, ack: ours, window: 5000, payload: bytes(10) });
    expect(tcb.sndWnd).toBe(5000);
    p.inject({ flags: ACK, seq: add(theirs, 10), ack: ours, window: 6000, payload: bytes(10) });
    expect(tcb.sndWnd).toBe(6000);
    // A retransmission from before (SEG.SEQ < SND.WL1) with new bytes: its window is stale.
    p.inject({ flags: ACK, seq: theirs, ack: ours, window: 1000, payload: bytes(25) });
    expect(tcb.sndWnd).toBe(6000);
    expect(tcb.rcvNxt).toBe(add(theirs, 25));
    // The same SEG.SEQ as the last update, same ACK: taken.
    p.inject({ flags: ACK, seq: add(theirs, 25), ack: ours, window: 7000 });
    p.inject({ flags: ACK, seq: add(theirs, 25), ack: ours, window: 3000 });
    expect(tcb.sndWnd).toBe(3000);
  });

  it('an ACK below SND.UNA carries no window update', async () => {
    const { p, conn, theirs, ours, tcb } = await sending();
    conn.write(new Uint8Array(3000));
    p.drain();
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 3000), window: 8000 });
    expect(tcb.sndWnd).toBe(8000);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1000), window: 500, payload: bytes(5) });
    expect(tcb.rcvNxt).toBe(add(theirs, 5)); // the data was taken
    expect(tcb.sndWnd).toBe(8000);
  });

  it('after a go-back-N rewind, an ACK beyond SND.NXT moves SND.NXT up: nothing acknowledged is sent again', async () => {
    const { p, conn, theirs, ours, tcb } = await sending();
    conn.write(new Uint8Array(5000));
    expect(p.drain().filter((s) => s.payload.length > 0)).toHaveLength(5);
    p.fireNext(); // timeout: SND.NXT back to SND.UNA, one segment resent
    expect(p.drain().map((s) => s.seq)).toEqual([ours]);
    // All five had arrived: the peer acknowledges them all.
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 5000) });
    expect(tcb.sndNxt).toBe(add(ours, 5000));
    expect(p.drain().filter((s) => s.payload.length > 0)).toEqual([]);
    conn.write(new Uint8Array(100));
    expect(p.drain().map((s) => [s.seq, s.payload.length])).toEqual([[add(ours, 5000), 100]]);
  });
});

describe.each(ENGINES)('receiving (RFC 9293 3.10.7.4 seventh) (%s)', (engine) => {
  it('bytesIn counts in-order bytes, and bytes a filled hole releases from reassembly', async () => {
    const p = await TcpPeer.create(engine);
    const { theirs, ours } = await p.accept();
    const c = () => p.tcp.stats().counters;
    p.inject({ flags: ACK, seq: add(theirs, 100), ack: ours, payload: bytes(50) });
    expect(c().bytesIn).toBe(0);
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(100) });
    expect(c().bytesIn).toBe(150);
  });

  it('a segment that exactly fills the window is taken whole, and its ACK may wait', async () => {
    const p = await TcpPeer.create(engine, { tcp: { rcvBuf: 1000, windowScaling: false } });
    const { theirs, ours } = await p.accept();
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(1000) });
    expect(p.tcp.stats().counters.dropOutOfWindowData).toBe(0);
    expect(p.tcp.stats().counters.bytesIn).toBe(1000);
    p.expectNone();
    p.advance(40);
    p.expect({ flags: ACK, ack: add(theirs, 1000), window: 0 });
  });

  it('the delayed-ACK timer runs from the first unacknowledged segment, not the last', async () => {
    const p = await TcpPeer.create(engine);
    const { theirs, ours } = await p.accept();
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(100) });
    p.advance(30);
    p.inject({ flags: ACK, seq: add(theirs, 100), ack: ours, payload: bytes(100) });
    p.advance(9);
    p.expectNone();
    p.advance(1);
    const ack = p.expect({ flags: ACK, ack: add(theirs, 200) });
    expect(ack.at).toBe(p.now());
    p.advance(100);
    p.expectNone();
  });

  it('out-of-order data the reassembly cannot hold is dropped (counted) and the hole reported', async () => {
    const p = await TcpPeer.create(engine, { tcp: { maxReassemblySegments: 1 } });
    const { theirs, ours } = await p.accept();
    p.inject({ flags: ACK, seq: add(theirs, 100), ack: ours, payload: bytes(10) });
    p.expect({ flags: ACK, ack: theirs });
    expect(p.tcp.stats().counters.dropReassemblyFull).toBe(0);
    p.inject({ flags: ACK, seq: add(theirs, 300), ack: ours, payload: bytes(10) });
    p.expect({ flags: ACK, ack: theirs });
    expect(p.tcp.stats().counters.dropReassemblyFull).toBe(1);
  });

  it('after close(), out-of-order data is not held either (counted), and the window stays open', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    conn.close();
    p.drain();
    p.inject({ flags: ACK, seq: add(theirs, 100), ack: add(ours, 1), payload: bytes(10) });
    expect(p.tcp.stats().counters.dropReassemblyFull).toBe(1);
    expect(p.tcp.stats().chunks.reassembly).toBe(0);
  });

  it('in-order data partly stored when the arena runs out: only what was stored is counted and acknowledged', async () => {
    const p = await TcpPeer.create(engine);
    const { theirs, ours } = await p.accept();
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: bytes(1000) }); // in a recv chunk of 2048
    // Leave the arena one free chunk: the RX slot of the next segment.
    const held: number[] = [];
    for (;;) {
      const chunk = p.hot.alloc(ownerTag(OwnerKind.App, 0));
      if (chunk === 0) break;
      held.push(chunk);
    }
    p.hot.free(held.pop()!);
    p.inject({ flags: ACK | PSH, seq: add(theirs, 1000), ack: ours, payload: bytes(1400) });
    const c = p.tcp.stats().counters;
    expect(c.bytesIn).toBe(2048);
    expect(c.dropRecvNoMemory).toBe(1400 - 1048);
    for (const chunk of held) p.hot.free(chunk);
    p.advance(200);
    expect(p.drain().at(-1)!.ack).toBe(add(theirs, 2048));
  });

  it('an orphaned FIN_WAIT_2 times out finWait2Timeout after it began, not after close()', async () => {
    const p = await TcpPeer.create(engine, { tcp: { finWait2Timeout: 10_000 } });
    const { conn, theirs, ours } = await p.accept();
    conn.close(); // ESTABLISHED: FIN_WAIT_1
    p.expect({ flags: FIN | ACK, seq: ours });
    expect(p.tcp.stats().timers.finWait2).toBe(0);
    p.advance(100);
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1) }); // FIN_WAIT_2 from here
    p.drain();
    const began = p.now();
    p.advance(9_999);
    expect(p.tcp.stats().byState.FIN_WAIT_2).toBe(1);
    p.advance(1);
    expect(await conn.closed).toEqual({ reason: 'timeout', detail: 'finWait2' });
    expect(p.now() - began).toBe(10_000);
  });
});
