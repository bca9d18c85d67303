// Shared helpers of the scenario tests (test/stack/scenarios): deterministic
// byte streams hashed on the fly, one-way transfers over the callback and the
// stream APIs, bounded concurrency, the stats invariants, the baseline check
// and forced-GC collection checks.
//
// The big transfers never hold their data: the sender generates it block by
// block from a seeded generator and hashes what the connection accepted; the
// receiver hashes the views onData hands it. Equal digests and byte counts
// mean the stream arrived intact.

import { expect } from 'vitest';
import { sha256 } from '@noble/hashes/sha2.js';
import type { Simulation } from '../../stack/sim.js';
import type { Stack } from '../../stack/stack.js';
import type { StackStats } from '../../stack/stats.js';
import type { Connection } from '../../stack/tcp/connection.js';
import type { CloseInfo } from '../../stack/tcp/stats.js';
import type { Tcb } from '../../stack/tcp/tcb.js';
import type { Tcp } from '../../stack/tcp/tcp.js';
import type { LinkFaults } from '../../stack/vswitch/vswitch.js';
import { advance, levels } from './stack-pair.js';

export const KiB = 1024;
export const MiB = 1024 * 1024;

/** A realistic wired link for every port: 1 Gbit/s and 0.25 ms each way on
 *  each side of the switch (about 1 ms round trip), so RTT estimates, RTOs
 *  and congestion windows take values they would take on a LAN. */
export const LAN: LinkFaults = { bandwidth: 1e9, delay: 0.25 };

/** LAN plus a fault, for one port's cable (both directions). */
export function lanWith(fault: LinkFaults): LinkFaults {
  return { ...LAN, ...fault };
}

// ---- deterministic bytes ------------------------------------------------------

const BLOCK_WORDS = 16 * 1024; // 64 KiB blocks

/**
 * `total` pseudo-random bytes from `seed` (xorshift32 over 32-bit words),
 * produced in 64 KiB blocks. The sequence depends only on the seed, never on
 * how the reader slices it: peek() shows the next bytes of the current block,
 * advance() consumes them.
 */
export class ByteStream {
  private readonly words: Uint32Array;
  private readonly block: Uint8Array;
  private x: number;
  private at = 0;
  private filled = 0;
  private left: number;

  constructor(
    seed: number,
    readonly total: number,
  ) {
    this.x = (Math.imul(seed + 1, 0x9e3779b1) >>> 0) || 1;
    this.left = total;
    // Small streams get a small block; the words come out the same either way.
    this.words = new Uint32Array(Math.max(1, Math.min(BLOCK_WORDS, Math.ceil(total / 4))));
    this.block = new Uint8Array(this.words.buffer);
  }

  get remaining(): number {
    return this.left;
  }

  /** Up to `max` of the next bytes (a view, valid until the next call). */
  peek(max: number): Uint8Array {
    if (this.at === this.filled) this.refill();
    return this.block.subarray(this.at, this.at + Math.min(max, this.filled - this.at, this.left));
  }

  advance(n: number): void {
    this.at += n;
    this.left -= n;
  }

  private refill(): void {
    let x = this.x;
    const w = this.words;
    for (let i = 0; i < w.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      w[i] = x;
    }
    this.x = x;
    this.at = 0;
    this.filled = this.block.length;
  }
}

/** The whole of a small stream, as one array (for files of a few KiB). */
export function streamBytes(seed: number, total: number): Uint8Array {
  const out = new Uint8Array(total);
  const s = new ByteStream(seed, total);
  while (s.remaining > 0) {
    const v = s.peek(s.remaining);
    out.set(v, total - s.remaining);
    s.advance(v.length);
  }
  return out;
}

export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function sha256Hex(bytes: Uint8Array): string {
  return hex(sha256(bytes));
}

/** What one side of a transfer saw: bytes and their SHA-256. */
export interface Digest {
  bytes: number;
  sha256: string;
}

// ---- transfers over the callback API --------------------------------------------

/** Largest write offered at once (the send buffer takes what fits). */
const WRITE_PIECE = 16 * KiB;

function closeError(what: string, info: CloseInfo): Error {
  return new Error(`${what}: connection ended early: ${JSON.stringify(info)}`);
}

/**
 * Write the stream with write() + onWritable, hashing what the connection
 * accepted, then end() (our FIN) unless `end` is false. Resolves with the
 * digest once everything was written; rejects if the connection ends first.
 */
export function sendStream(conn: Connection, src: ByteStream, end = true): Promise<Digest> {
  return new Promise((resolve, reject) => {
    const hash = sha256.create();
    let sent = 0;
    let done = false;
    const push = (): void => {
      if (done || conn.closeInfo) return;
      while (src.remaining > 0) {
        const view = src.peek(WRITE_PIECE);
        const n = conn.write(view);
        if (n > 0) hash.update(view.subarray(0, n));
        src.advance(n);
        sent += n;
        if (n < view.length) return; // onWritable calls again
      }
      done = true;
      if (end) conn.end();
      resolve({ bytes: sent, sha256: hex(hash.digest()) });
    };
    conn.onWritable = push;
    void conn.closed.then((info) => {
      if (!done) reject(closeError('sender', info));
    });
    push();
  });
}

/**
 * Hash everything received through onData until the peer's FIN. Resolves
 * with the digest at end of stream; rejects if the connection ends otherwise.
 */
export function receiveStream(conn: Connection): Promise<Digest> {
  return new Promise((resolve, reject) => {
    const hash = sha256.create();
    let got = 0;
    let ended = false;
    conn.onData = (view) => {
      hash.update(view);
      got += view.length;
    };
    conn.onEnd = () => {
      ended = true;
      resolve({ bytes: got, sha256: hex(hash.digest()) });
    };
    void conn.closed.then((info) => {
      if (!ended) reject(closeError('receiver', info));
    });
  });
}

// ---- transfers over the stream API ---------------------------------------------

/** Write the stream through conn.writable in uneven pieces, then close it (FIN). */
export async function writeStream(conn: Connection, src: ByteStream): Promise<Digest> {
  const writer = conn.writable.getWriter();
  const hash = sha256.create();
  let sent = 0;
  for (let piece = 1000; src.remaining > 0; piece = (piece * 7) % 40_000 + 1) {
    // The writer may keep the chunk until it is buffered: hand it a copy.
    const chunk = src.peek(piece).slice();
    src.advance(chunk.length);
    hash.update(chunk);
    sent += chunk.length;
    await writer.write(chunk);
  }
  await writer.close();
  return { bytes: sent, sha256: hex(hash.digest()) };
}

/** Read conn.readable to its end, hashing as it goes. */
export async function readStream(conn: Connection): Promise<Digest> {
  const reader = conn.readable.getReader();
  const hash = sha256.create();
  let got = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    hash.update(value);
    got += value.length;
  }
  return { bytes: got, sha256: hex(hash.digest()) };
}

// ---- concurrency ----------------------------------------------------------------

/**
 * Run task(0) .. task(count - 1) with at most `limit` in flight; resolves with
 * the results in index order. A failing task rejects the whole run (after the
 * others in flight have settled, so nothing keeps running unseen).
 */
export async function pool<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (next < count && failure === null) {
      const i = next++;
      try {
        results[i] = await task(i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  if (failure) throw (failure as { error: unknown }).error;
  return results;
}

// ---- invariants, baseline, collection --------------------------------------------

/** Paths of every negative number in a stats object (counters and gauges). */
function negatives(value: unknown, path: string, out: string[]): string[] {
  if (typeof value === 'number') {
    if (value < 0 || !Number.isFinite(value)) out.push(`${path}=${value}`);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => negatives(v, `${path}[${i}]`, out));
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) negatives(v, path ? `${path}.${k}` : k, out);
  }
  return out;
}

/**
 * The consistency of one stats() snapshot, whatever traffic produced it:
 * arena chunks in use equal the sum over owner kinds, TCP's chunk figures
 * equal the arena's, control blocks by state sum to the connection count,
 * armed timers equal the sum by layer, and no figure is negative.
 */
export function expectConsistent(s: StackStats, label = 'stats'): void {
  expect(negatives(s, '', []), `${label}: negative figures`).toEqual([]);
  const byKind = Object.values(s.arena.byKind).reduce((a, b) => a + b, 0);
  expect(byKind, `${label}: arena chunks in use vs sum by kind`).toBe(s.arena.chunksInUse);
  expect(s.arena.chunksInUse, `${label}: arena chunks in use vs total`).toBeLessThanOrEqual(s.arena.chunksTotal);
  expect(s.tcp.chunks, `${label}: TCP chunks vs arena by kind`).toEqual({
    send: s.arena.byKind.tcpSend,
    recv: s.arena.byKind.tcpRecv,
    reassembly: s.arena.byKind.tcpReassembly,
  });
  const { LISTEN: listen, TIME_WAIT: timeWait, CLOSED: closed, ...live } = s.tcp.byState;
  const inStates = Object.values(live).reduce((a, b) => a + b, 0);
  expect(closed, `${label}: control blocks counted as CLOSED`).toBe(0);
  expect(inStates, `${label}: control blocks by state vs connections`).toBe(s.tcp.connections);
  expect(listen, `${label}: LISTEN vs listeners`).toBe(s.tcp.listeners);
  expect(timeWait, `${label}: TIME_WAIT vs records`).toBe(s.tcp.timeWait);
  const t = s.timers.byKind;
  const tcpTimers = Object.values(s.tcp.timers).reduce((a, b) => a + b, 0);
  expect(tcpTimers, `${label}: TCP timers by kind`).toBe(t.tcp);
  expect(t.tcp + t.arpRetry + t.arpExpire + t.fragmentExpire + t.housekeeping, `${label}: timers by kind`).toBe(
    s.timers.armed,
  );
  expect(s.fragments.chunks, `${label}: fragment chunks`).toBe(s.arena.byKind.fragments);
  expect(s.arp.pending, `${label}: ARP pending vs entries`).toBeLessThanOrEqual(s.arp.entries);
}

/** Snapshot the gauges of each stack (after start-up has settled). */
export function baselines(stacks: Stack[]): unknown[] {
  return stacks.map((s) => levels(s));
}

/**
 * Let TIME_WAIT (2 * msl), ARP entries (60 s) and reassemblies (30 s) run
 * out, then require every gauge of every stack to equal its baseline exactly,
 * with no rejected arena free and consistent stats.
 */
export async function expectBackToBaseline(
  sim: Simulation,
  stacks: Stack[],
  base: unknown[],
  label = '',
): Promise<void> {
  await advance(sim, 120_000);
  stacks.forEach((stack, i) => {
    const s = stack.stats();
    expectConsistent(s, `${label} stack ${i}`);
    expect(levels(stack), `${label} stack ${i}: levels after quiescence`).toEqual(base[i]);
    expect(stack.hot.badFrees(), `${label} stack ${i}: bad frees`).toBe(0);
  });
}

/** Let promise callbacks and a few macrotasks run (nothing may still point at an object from the stack). */
export async function macrotasks(turns = 4): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
}

function forceGc(): () => void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') {
    throw new Error('globalThis.gc is missing: these tests must run with node --expose-gc (vitest.config.ts execArgv)');
  }
  return gc;
}

/** After a few macrotask turns and forced GCs, how many of `refs` still point at a live object. */
export async function survivors(refs: WeakRef<object>[]): Promise<number> {
  const gc = forceGc();
  let alive = refs.length;
  for (let round = 0; round < 6 && alive > 0; round++) {
    await macrotasks();
    gc();
    alive = refs.filter((r) => r.deref() !== undefined).length;
  }
  return alive;
}

/** Connections, watched through WeakRefs, and their control blocks, watched
 *  by handle: at the end every object must be collected and every record
 *  freed (its handle stale). */
export class Watch {
  readonly refs: WeakRef<object>[] = [];
  private readonly records: { tcp: Tcp; handle: number }[] = [];

  /** Watch conn (if any) and, given its Tcp, its control block (conn's, or `handle`). */
  add(conn: Connection | null, tcp?: Tcp, handle: number | undefined = conn?.handle): void {
    if (conn) this.refs.push(new WeakRef(conn));
    if (tcp && handle !== undefined && handle >= 0) this.records.push({ tcp, handle });
  }

  /** Objects and control blocks watched. */
  get watched(): number {
    return this.refs.length + this.records.length;
  }

  /** How many watched objects survive forced GC and records are still live (0: none). */
  async alive(): Promise<number> {
    const records = this.records.filter((r) => r.tcp.table.indexOf(r.handle) >= 0).length;
    return records + (await survivors(this.refs));
  }

  async expectCollected(label: string): Promise<void> {
    expect(this.refs.length, `${label}: objects watched`).toBeGreaterThan(0);
    expect(await survivors(this.refs), `${label}: watched objects still reachable after GC`).toBe(0);
    const live = this.records.filter((r) => r.tcp.table.indexOf(r.handle) >= 0);
    expect(live.length, `${label}: watched control blocks still in their table`).toBe(0);
  }
}

/** The control block connect() just created: the record TCP's table took last. */
export function newestTcb(stack: Stack): Tcb | null {
  const table = stack.tcp.table;
  return table.lastTaken < 0 ? null : stack.tcp.inspect(table.handleOf(table.lastTaken));
}

/**
 * Check expectConsistent() on every stack each `everyMs` of virtual time
 * while `work` runs: the invariants hold mid-flight, not only at rest.
 * Resolves with work's value; rejects on the first broken invariant.
 */
export async function whileChecking<T>(
  sim: Simulation,
  stacks: Stack[],
  everyMs: number,
  work: Promise<T>,
): Promise<T> {
  let finished = false;
  let checks = 0;
  const checker = (async () => {
    while (!finished) {
      await sim.sleep(everyMs);
      stacks.forEach((s, i) => expectConsistent(s.stats(), `check ${checks} stack ${i}`));
      checks++;
    }
  })();
  const [value] = await Promise.all([work.finally(() => (finished = true)), checker]);
  expect(checks, 'invariant checks made').toBeGreaterThan(0);
  return value;
}

/** Everything received until the peer's FIN, copied (for small replies). */
export function collect(conn: Connection): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const parts: Uint8Array[] = [];
    let ended = false;
    conn.onData = (view) => void parts.push(view.slice());
    conn.onEnd = () => {
      ended = true;
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let off = 0;
      for (const p of parts) {
        out.set(p, off);
        off += p.length;
      }
      resolve(out);
    };
    void conn.closed.then((info) => {
      if (!ended) reject(closeError('collector', info));
    });
  });
}
