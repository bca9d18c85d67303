// The compact TIME_WAIT table on its own: random add/remove/restart/expire
// sequences against a plain model (a list in expiry order), over few ports and
// addresses so that 4-tuples collide in the hash and probe runs wrap; the
// bounds; and that the table holds its records outside the JS heap (the heap
// after a full GC does not grow with the records it holds).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TcpTimer } from '../../../stack/tcp/timer-kinds.js';
import { NO_RECORD, TimeWaitTable } from '../../../stack/tcp/time-wait.js';
import { remoteKeyOf } from '../../../stack/tcp/tcb.js';
import { TimerQueue } from '../../../stack/time/timers.js';

/** Our address in every record (the table keys on it too; see the transparent tests in tcp/transparent.test.ts). */
const LOCAL = 0x0a000001;
const DURATION = 60_000;

interface ModelRecord {
  localPort: number;
  remoteAddr: number;
  remotePort: number;
  rcvNxt: number;
  sndNxt: number;
  expiry: number;
}

const tuple = fc.record({
  localPort: fc.constantFrom(1, 9000, 65535),
  remoteAddr: fc.constantFrom(0x0a000202, 0xffffffff, 0, 0x7f000001),
  remotePort: fc.integer({ min: 0, max: 5 }).map((p) => 49152 + p),
});

interface Tuple {
  localPort: number;
  remoteAddr: number;
  remotePort: number;
}

type Command =
  | { op: 'add'; t: Tuple; rcvNxt: number; sndNxt: number; dt: number }
  | { op: 'remove'; t: Tuple }
  | { op: 'restart'; t: Tuple; dt: number }
  | { op: 'expire'; dt: number };

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('add' as const), t: tuple, rcvNxt: fc.nat(0xffffffff), sndNxt: fc.nat(0xffffffff), dt: fc.nat(5000) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('remove' as const), t: tuple }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('restart' as const), t: tuple, dt: fc.nat(5000) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('expire' as const), dt: fc.nat(40_000) }) },
);

function same(a: Tuple, b: Tuple): boolean {
  return a.localPort === b.localPort && a.remoteAddr === b.remoteAddr && a.remotePort === b.remotePort;
}

function runAgainstModel(limit: number, seed: number, commands: Command[]): void {
  const timers = new TimerQueue(1);
  const table = new TimeWaitTable(timers, limit, DURATION, seed, 0);
  let model: ModelRecord[] = []; // oldest first
  let now = 0;
  const find = (c: { t: Tuple }): number => table.lookup(c.t.localPort, remoteKeyOf(c.t.remoteAddr, c.t.remotePort));
  for (const cmd of commands) {
    switch (cmd.op) {
      case 'add': {
        now += cmd.dt;
        const before = model.filter((r) => !same(r, cmd.t));
        const recycled = before.length >= limit;
        model = [...(recycled ? before.slice(1) : before), { ...cmd.t, rcvNxt: cmd.rcvNxt, sndNxt: cmd.sndNxt, expiry: now + DURATION }];
        expect(table.add(LOCAL, cmd.t.localPort, cmd.t.remoteAddr, cmd.t.remotePort, cmd.rcvNxt, cmd.sndNxt, now)).toBe(recycled);
        break;
      }
      case 'remove': {
        const slot = find(cmd);
        expect(slot !== NO_RECORD).toBe(model.some((r) => same(r, cmd.t)));
        if (slot !== NO_RECORD) table.remove(slot);
        model = model.filter((r) => !same(r, cmd.t));
        break;
      }
      case 'restart': {
        now += cmd.dt;
        const slot = find(cmd);
        const i = model.findIndex((r) => same(r, cmd.t));
        expect(slot !== NO_RECORD).toBe(i >= 0);
        if (i >= 0) {
          table.restart(slot, now);
          model = [...model.slice(0, i), ...model.slice(i + 1), { ...model[i], expiry: now + DURATION }];
        }
        break;
      }
      case 'expire': {
        now += cmd.dt;
        const gone = model.filter((r) => r.expiry <= now).length;
        model = model.filter((r) => r.expiry > now);
        expect(table.expire(now)).toBe(gone);
        break;
      }
    }
    // Every model record is found with its fields; the table holds nothing else.
    expect(table.size).toBe(model.length);
    for (const r of model) {
      const slot = table.lookup(r.localPort, remoteKeyOf(r.remoteAddr, r.remotePort));
      expect(slot).not.toBe(NO_RECORD);
      expect({
        localPort: table.localPortOf(slot), remoteAddr: table.remoteAddrOf(slot), remotePort: table.remotePortOf(slot),
        rcvNxt: table.rcvNxtOf(slot), sndNxt: table.sndNxtOf(slot), expiry: table.expiryOf(slot),
      }).toEqual(r);
    }
    // One timer, at the oldest record's expiry, or none.
    expect(timers.isArmed(table.timerId, TcpTimer.TimeWait)).toBe(model.length > 0);
    if (model.length > 0) expect(timers.deadlineOf(table.timerId, TcpTimer.TimeWait)).toBe(model[0].expiry);
  }
}

describe('TIME_WAIT table', () => {
  it('agrees with a list model under random add/remove/restart/expire (hash collisions, wrapping probe runs, recycling)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.nat(0xffffffff), fc.array(command, { maxLength: 120 }), (limit, seed, cmds) =>
        runAgainstModel(limit, seed, cmds),
      ),
      { numRuns: 400 },
    );
  });

  it('refuses a size that is not a whole number in 1..2^20', () => {
    const timers = new TimerQueue(1);
    for (const bad of [0, -1, 1.5, 2 ** 20 + 1, Number.NaN]) {
      expect(() => new TimeWaitTable(timers, bad, DURATION, 0, 0)).toThrow(RangeError);
    }
  });

  it('keeps its records in memory it is given (an arena region in a stack), bytesFor(limit) of it', () => {
    const limit = 100;
    const bytes = TimeWaitTable.bytesFor(limit);
    expect(bytes).toBe(limit * 36 + 256 * 4);
    const memory = new ArrayBuffer(bytes + 16);
    const table = new TimeWaitTable(new TimerQueue(1), limit, DURATION, 3, 0, { buffer: memory, at: 8 });
    table.add(LOCAL, 80, 0x0a000001, 1024, 5, 6, 0);
    expect(table.has(80, remoteKeyOf(0x0a000001, 1024))).toBe(true);
    // The record went into the given bytes, and none outside them.
    const all = new Uint8Array(memory);
    expect(all.subarray(8, 8 + bytes).some((b) => b !== 0)).toBe(true);
    expect([...all.subarray(0, 8), ...all.subarray(8 + bytes)].every((b) => b === 0)).toBe(true);
    // Too little room, or misaligned, is refused.
    expect(() => new TimeWaitTable(new TimerQueue(1), limit, DURATION, 3, 0, { buffer: memory, at: 24 })).toThrow(/do not fit/);
    expect(() => new TimeWaitTable(new TimerQueue(1), limit, DURATION, 3, 0, { buffer: memory, at: 4 })).toThrow(/do not fit/);
  });

  it('clear() drops every record and the timer', () => {
    const timers = new TimerQueue(1);
    const table = new TimeWaitTable(timers, 64, DURATION, 7, 0);
    for (let p = 0; p < 100; p++) table.add(LOCAL, 80, 0x0a000001, 1024 + p, p, p, p);
    expect(table.size).toBe(64);
    table.clear();
    expect(table.size).toBe(0);
    expect(timers.isArmed(table.timerId, TcpTimer.TimeWait)).toBe(false);
    expect(table.has(80, remoteKeyOf(0x0a000001, 1024 + 99))).toBe(false);
  });

  it('holds its records outside the JS heap: 4096 records and 100,000 more churned through add no heap', () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error('run with --expose-gc (vitest.config.ts passes it)');
    const timers = new TimerQueue(1);
    const table = new TimeWaitTable(timers, 4096, DURATION, 1, 0);
    const churn = (n: number): void => {
      for (let i = 0; i < n; i++) table.add(LOCAL, 9000 + (i & 3), 0x0a000002 + (i % 97), 1024 + (i % 60_000), i * 7, i * 13, i);
    };
    // Warm the same code path first (twice, so V8 has optimized it), so that
    // compiled code and feedback are not counted as records.
    churn(100_000);
    table.clear();
    churn(100_000);
    table.clear();
    gc();
    const before = process.memoryUsage().heapUsed;
    churn(100_000);
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    expect(table.size).toBe(4096);
    // A record as a JS object with its Map entries costs ~150 B: 4096 of them
    // ~600 KB. The margin absorbs V8's own noise under a loaded test run.
    expect(grown).toBeLessThan(128 * 1024);
  });
});
