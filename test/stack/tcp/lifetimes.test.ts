// docs/architecture.md section 5, proved: every path that ends a connection goes through
// the one release function, after which TCP holds nothing for it (no control
// block, timer, chunk, table entry), and the Connection and its control block
// are garbage (WeakRefs cleared after a forced GC).

import { describe, expect, it } from 'vitest';
import type { Connection } from '../../../stack/tcp/connection.js';
import type { Listener } from '../../../stack/tcp/listener.js';
import type { CloseInfo } from '../../../stack/tcp/stats.js';
import type { Tcb } from '../../../stack/tcp/tcb.js';
import { ACK, add, collected, FIN, settle, SYN, TcpPeer, type PeerOptions } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;
const MSL = 1000;

interface Ended {
  conn: WeakRef<Connection> | null;
  /** The control block's handle while it lived. */
  handle: number;
  info: CloseInfo | Error;
}

/** What a scenario returns: the control block to watch, and how its end is observed. */
interface Scenario {
  name: string;
  options?: PeerOptions['tcp'];
  run(p: TcpPeer): Promise<{ conn: Connection | null; tcb: Tcb; end: Promise<CloseInfo | Error> }>;
  expected: CloseInfo | { code: string };
}

/** An established passive connection with both streams in use and bytes in every buffer. */
async function busy(p: TcpPeer) {
  const e = await p.accept();
  const { conn, theirs, ours } = e;
  conn.setNoDelay(true);
  const reader = conn.readable.getReader();
  void reader.read().catch(() => {});
  const writer = conn.writable.getWriter();
  void writer.write(new Uint8Array(3000)).catch(() => {});
  await settle();
  p.inject({ flags: ACK, seq: add(theirs, 2000), ack: ours, payload: new Uint8Array(500) }); // out of order
  return { ...e, tcb: conn.inspect()!, reader, writer };
}

/** TCP's count of connections ended, by reason. */
function closedBy(p: TcpPeer): Record<string, number> {
  return { ...p.tcp.stats().counters.closedBy };
}

/**
 * How an embryonic control block (no Connection to report it) ended: it must
 * have been released, and release() must have counted exactly one ending
 * since `before`, whose reason is the answer.
 */
function releasedAs(p: TcpPeer, tcb: Tcb, before: Record<string, number>): CloseInfo | Error {
  if (!tcb.released) return new Error('the control block was not released');
  if (p.tcp.table.indexOf(tcb.pointedHandle) >= 0) return new Error('the control block is still in the connection table');
  const after = closedBy(p);
  const ended = Object.keys(after).flatMap((reason) => Array(after[reason]! - (before[reason] ?? 0)).fill(reason) as string[]);
  if (ended.length !== 1) return new Error(`expected one ending counted, got ${JSON.stringify(ended)}`);
  return { reason: ended[0] as CloseInfo['reason'] };
}

const scenarios: Scenario[] = [
  {
    name: 'active close: TIME_WAIT entry, then record expiry',
    options: { msl: MSL },
    async run(p) {
      const { conn, theirs, ours, listener } = await p.accept();
      listener!.close();
      const tcb = conn.inspect()!;
      conn.close();
      p.inject({ flags: FIN | ACK, seq: theirs, ack: add(ours, 1) });
      return { conn, tcb, end: conn.closed };
    },
    expected: { reason: 'closed' },
  },
  {
    name: 'passive close: LAST_ACK acknowledged',
    async run(p) {
      const { conn, theirs, ours } = await p.accept();
      const tcb = conn.inspect()!;
      p.inject({ flags: FIN | ACK, seq: theirs, ack: ours });
      conn.close();
      p.inject({ flags: ACK, seq: add(theirs, 1), ack: add(ours, 1) });
      return { conn, tcb, end: conn.closed };
    },
    expected: { reason: 'closed' },
  },
  {
    name: 'RST received while reads, writes and reassembly are pending',
    async run(p) {
      const { conn, tcb, theirs } = await busy(p);
      p.inject({ flags: 0x04, seq: theirs });
      return { conn, tcb, end: conn.closed };
    },
    expected: { reason: 'reset' },
  },
  {
    name: 'abort() with buffers full',
    async run(p) {
      const { conn, tcb } = await busy(p);
      conn.abort();
      return { conn, tcb, end: conn.closed };
    },
    expected: { reason: 'aborted' },
  },
  {
    name: 'retransmission give-up',
    options: { maxRetries: 2 },
    async run(p) {
      const { conn, tcb } = await busy(p);
      for (let i = 0; i < 3; i++) p.fireNext();
      return { conn, tcb, end: conn.closed };
    },
    expected: { reason: 'timeout', detail: 'retransmit' },
  },
  {
    name: 'SYN give-up (connect rejects)',
    options: { synRetries: 1 },
    async run(p) {
      const end = p.tcp.connect('10.0.0.2', 80).then(() => new Error('connected?'), (e: Error) => e);
      const tcb = p.liveTcbs()[0]!;
      p.fireNext();
      p.fireNext();
      return { conn: null, tcb, end };
    },
    expected: { code: 'ETIMEDOUT' },
  },
  {
    name: 'connect timeout',
    async run(p) {
      const end = p.tcp.connect('10.0.0.2', 80, { timeout: 500 }).then(() => new Error('connected?'), (e: Error) => e);
      const tcb = p.liveTcbs()[0]!;
      p.advance(500);
      return { conn: null, tcb, end };
    },
    expected: { code: 'ETIMEDOUT' },
  },
  {
    name: 'keepalive failure',
    options: { keepalive: true, keepaliveIdle: 1000, keepaliveInterval: 100, keepaliveCount: 2 },
    async run(p) {
      const { conn } = await p.accept();
      const tcb = conn.inspect()!;
      p.advance(1300);
      return { conn, tcb, end: conn.closed };
    },
    expected: { reason: 'keepalive' },
  },
  {
    name: 'FIN_WAIT_2 timeout',
    options: { finWait2Timeout: 1000 },
    async run(p) {
      const { conn, theirs, ours } = await p.accept();
      const tcb = conn.inspect()!;
      conn.close();
      p.inject({ flags: ACK, seq: theirs, ack: add(ours, 1) });
      p.advance(1000);
      return { conn, tcb, end: conn.closed };
    },
    expected: { reason: 'timeout', detail: 'finWait2' },
  },
  {
    name: 'persist give-up',
    options: { maxRetries: 2 },
    async run(p) {
      const { conn, theirs, ours } = await p.accept({ window: 0 });
      const tcb = conn.inspect()!;
      conn.write(new Uint8Array(10));
      void theirs;
      void ours;
      for (let i = 0; i < 3; i++) p.fireNext();
      return { conn, tcb, end: conn.closed };
    },
    expected: { reason: 'timeout', detail: 'persist' },
  },
  {
    name: 'listener close with an established connection not yet taken',
    async run(p) {
      const listener = p.tcp.listen(80);
      p.inject({ flags: SYN, seq: 10 });
      const sa = p.expect({ flags: SYN | ACK });
      p.inject({ flags: ACK, seq: 11, ack: add(sa.seq, 1), payload: new Uint8Array(100) });
      const tcb = p.liveTcbs()[0]!;
      const conn = tcb.conn!;
      listener.close();
      return { conn, tcb, end: conn.closed };
    },
    expected: { reason: 'listenerClosed' },
  },
  {
    name: 'listener close with an embryonic connection',
    async run(p) {
      const listener = p.tcp.listen(80);
      p.inject({ flags: SYN, seq: 10 });
      const tcb = p.liveTcbs()[0]!;
      const before = closedBy(p);
      listener.close();
      return { conn: null, tcb, end: Promise.resolve(releasedAs(p, tcb, before)) };
    },
    expected: { reason: 'listenerClosed' },
  },
  {
    name: 'embryonic connection reset by the peer',
    async run(p) {
      p.tcp.listen(80);
      p.inject({ flags: SYN, seq: 10 });
      const tcb = p.liveTcbs()[0]!;
      const before = closedBy(p);
      p.inject({ flags: 0x04, seq: 11 });
      return { conn: null, tcb, end: Promise.resolve(releasedAs(p, tcb, before)) };
    },
    expected: { reason: 'reset' },
  },
  {
    name: 'stack shutdown with buffers full',
    async run(p) {
      const { conn, tcb } = await busy(p);
      expect(p.tcpChunks().send).toBeGreaterThan(0);
      expect(p.tcpChunks().reassembly).toBe(2); // the out-of-order chunk (ranges, SACK board) and one of bytes
      p.tcp.shutdown();
      return { conn, tcb, end: conn.closed };
    },
    expected: { reason: 'shutdown' },
  },
];

async function runScenario(p: TcpPeer, s: Scenario): Promise<Ended> {
  const { conn, tcb, end } = await s.run(p);
  const info = await end;
  return { conn: conn ? new WeakRef(conn) : null, handle: tcb.pointedHandle, info };
}

describe.each(ENGINES)('TCP lifetimes (%s)', (engine) => {
  it.each(scenarios.map((s) => [s.name, s] as const))('%s: nothing held afterwards, objects collected', async (_, s) => {
    const p = await TcpPeer.create(engine, { tcp: s.options });
    const ended = await runScenario(p, s);
    if ('code' in s.expected) expect(ended.info).toMatchObject(s.expected);
    else expect(ended.info).toEqual(s.expected);
    p.advance(2 * (s.options?.msl ?? 30_000)); // TIME_WAIT records expire
    for (const l of (p.tcp as unknown as { listeners: Set<{ close(): void }> }).listeners) l.close();
    p.drain();
    p.expectNothingHeld();
    expect(p.tcp.table.indexOf(ended.handle), 'control block record freed (its handle stale)').toBe(-1);
    expect(p.tcp.table.count, 'records in use').toBe(0);
    if (ended.conn) expect(await collected(ended.conn), 'Connection collected').toBe(true);
  });

  it('many connections opened and closed: stats return to baseline exactly', async () => {
    const p = await TcpPeer.create(engine, { tcp: { msl: MSL } });
    const listener = p.tcp.listen(80);
    // In a function of its own, so that no local of this test keeps the last connection.
    const refs = await openAndCloseMany(p, listener, 50);
    expect(p.tcp.stats().timeWait).toBe(25);
    p.advance(2 * MSL);
    listener.close();
    p.drain();
    p.expectNothingHeld();
    await collected(refs[0]!);
    const alive = refs.map((r, i) => (r.deref() ? i : -1)).filter((i) => i >= 0);
    expect(alive).toEqual([]);
  });
});

/** n connections: data both ways, then half of them closed actively, half passively. */
async function openAndCloseMany(p: TcpPeer, listener: Listener, n: number): Promise<WeakRef<Connection>[]> {
  const refs: WeakRef<Connection>[] = [];
  for (let i = 0; i < n; i++) {
    p.peerPort = 10000 + i;
    const { conn, theirs, ours } = await p.accept({ listener });
    refs.push(new WeakRef(conn));
    conn.write(new Uint8Array(100));
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 100), payload: new Uint8Array(50) });
    if (i % 2 === 0) {
      conn.close();
      p.inject({ flags: FIN | ACK, seq: add(theirs, 50), ack: add(ours, 101) });
    } else {
      p.inject({ flags: FIN | ACK, seq: add(theirs, 50), ack: add(ours, 100) });
      conn.close();
      p.inject({ flags: ACK, seq: add(theirs, 51), ack: add(ours, 101) });
    }
    p.drain();
  }
  return refs;
}
