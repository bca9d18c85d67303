// Admission control (stack/admission.ts): the heap guard's decisions against
// a fake heap, the connection-table signal, and a stack that drops SYNs and
// refuses connect() under heap pressure, tells its application, and comes
// back to its baseline once the heap is low again.

import { describe, expect, it } from 'vitest';
import { ADMISSION_DEFAULTS, Admission, type HeapProbe } from '../../stack/admission.js';
import { Simulation, Stack, stackLevels } from '../../stack/index.js';
import { createEngine } from '../../host/hotpath.js';

const MIB = 1024 * 1024;

/** A heap whose use the test sets; collect() drops it to `live`. */
class FakeHeap implements HeapProbe {
  usedBytes = 0;
  live = 0;
  collections = 0;
  constructor(readonly limitBytes = 16 * MIB, readonly canCollect = true) {}
  used(): number {
    return this.usedBytes;
  }
  limit(): number {
    return this.limitBytes;
  }
  get collect(): (() => void) | undefined {
    if (!this.canCollect) return undefined;
    return () => {
      this.collections++;
      this.usedBytes = this.live;
    };
  }
}

function guard(heap: HeapProbe | null, clock = { t: 0 }) {
  const a = new Admission({ ...ADMISSION_DEFAULTS, heap }, () => clock.t);
  const changes: boolean[] = [];
  a.onChange = (p) => changes.push(p);
  return { a, changes, clock };
}

describe('Admission: the heap guard', () => {
  it('admits below the high-water mark without collecting', () => {
    const heap = new FakeHeap();
    const { a, changes } = guard(heap);
    heap.usedBytes = heap.live = 0.79 * 16 * MIB;
    expect(a.admit()).toBe(true);
    expect(heap.collections).toBe(0);
    expect(changes).toEqual([]);
  });

  it('a sample over the mark that is garbage is cleared by one collection, and admits', () => {
    const heap = new FakeHeap();
    const { a, changes } = guard(heap);
    heap.usedBytes = 0.95 * 16 * MIB; // mostly garbage
    heap.live = 0.5 * 16 * MIB;
    expect(a.admit()).toBe(true);
    expect(heap.collections).toBe(1);
    expect(changes).toEqual([]);
    expect(a.stats().counters.refusedHeap).toBe(0);
  });

  it('live data over the mark: refuses, signals once, counts each refusal', () => {
    const heap = new FakeHeap();
    const { a, changes, clock } = guard(heap);
    heap.usedBytes = heap.live = 0.85 * 16 * MIB;
    expect(a.admit()).toBe(false);
    clock.t += 5;
    expect(a.admit()).toBe(false);
    expect(changes).toEqual([true]);
    expect(a.pressure).toBe(true);
    const s = a.stats();
    expect(s.counters.refusedHeap).toBe(2);
    expect(s.counters.pressureEntered).toBe(1);
    expect(s.heapHighWater).toBe(Math.floor(0.8 * 16 * MIB));
    // At most one forced collection per collectEveryMs.
    expect(heap.collections).toBe(1);
  });

  it('stays under pressure between the marks (hysteresis) and leaves below the low one', () => {
    const heap = new FakeHeap();
    const { a, changes, clock } = guard(heap);
    heap.usedBytes = heap.live = 0.85 * 16 * MIB;
    a.admit();
    heap.usedBytes = heap.live = 0.75 * 16 * MIB; // below high, above low
    clock.t += 2000;
    expect(a.recheck()).toBe(true);
    expect(a.admit()).toBe(false);
    heap.usedBytes = heap.live = 0.65 * 16 * MIB;
    clock.t += 2000;
    expect(a.recheck()).toBe(false);
    expect(a.admit()).toBe(true);
    expect(changes).toEqual([true, false]);
    expect(a.stats().counters.pressureLeft).toBe(1);
  });

  it('without collect(), raw samples decide', () => {
    const heap = new FakeHeap(16 * MIB, false);
    const { a } = guard(heap);
    heap.usedBytes = 0.9 * 16 * MIB;
    expect(a.admit()).toBe(false);
    heap.usedBytes = 0.1 * 16 * MIB;
    expect(a.recheck()).toBe(false);
    expect(a.admit()).toBe(true);
  });

  it('a cached sample decides within sampleEveryMs', () => {
    const heap = new FakeHeap();
    const { a, clock } = guard(heap);
    a.admit();
    a.admit();
    expect(a.stats().counters.samples).toBe(1);
    clock.t += ADMISSION_DEFAULTS.sampleEveryMs;
    a.admit();
    expect(a.stats().counters.samples).toBe(2);
  });

  it('no probe: always admits', () => {
    const { a } = guard(null);
    expect(a.admit()).toBe(true);
    expect(a.stats().heapUsed).toBe(0);
  });

  it('rejects marks out of order', () => {
    const base = { ...ADMISSION_DEFAULTS, heap: null };
    expect(() => new Admission({ ...base, heapLowWater: 0.9, heapHighWater: 0.8 }, () => 0)).toThrow(RangeError);
    expect(() => new Admission({ ...base, heapHighWater: 1 }, () => 0)).toThrow(RangeError);
    expect(() => new Admission({ ...base, connectionsLowWater: 0 }, () => 0)).toThrow(RangeError);
  });
});

describe('Admission: the connection table', () => {
  it('signals at 90% of maxConnections and ends below 80%', () => {
    const { a, changes } = guard(null);
    a.connections(89, 100);
    expect(changes).toEqual([]);
    a.connections(90, 100);
    a.connections(85, 100);
    expect(changes).toEqual([true]);
    a.connections(79, 100);
    expect(changes).toEqual([true, false]);
    expect(a.stats().connectionPressure).toBe(false);
  });
});

describe.each(['wasm', 'ts'] as const)('a stack under heap pressure (%s)', (engine) => {
  async function pair(heap: FakeHeap) {
    const sim = new Simulation();
    const make = async (address: string, withHeap: boolean) =>
      new Stack({
        device: sim.switch.attach(),
        hotpath: await createEngine(engine, 4 * MIB),
        clock: sim.clock,
        ipv4: { address, prefix: 24 },
        ...(withHeap ? { admission: { heap } } : {}),
      });
    return { sim, server: await make('10.0.0.1', true), client: await make('10.0.0.2', false) };
  }

  it('drops SYNs while the heap is over its mark, tells the app, and admits again once it is low', async () => {
    const heap = new FakeHeap();
    const { sim, server, client } = await pair(heap);
    const listener = server.tcp.listen(7);
    let accepted = 0;
    listener.onConnection = (c) => {
      accepted++;
      c.close();
    };
    const signals: boolean[] = [];
    server.onPressure = (p) => signals.push(p);
    await sim.complete(sim.sleep(10_000)); // past the boot-time gratuitous ARPs
    const baseline = stackLevels(server.stats());

    heap.usedBytes = heap.live = 0.9 * 16 * MIB;
    const pending = client.tcp.connect('10.0.0.1', 7);
    await sim.complete(sim.sleep(500)); // the SYN, dropped; the recheck timer armed
    expect(server.stats().tcp.counters.dropSynPressure).toBe(1);
    expect(server.stats().tcp.connections).toBe(0);
    expect(signals).toEqual([true]);
    expect(server.stats().timers.byKind.pressureRecheck).toBe(1);
    await expect(server.tcp.connect('10.0.0.2', 9)).rejects.toMatchObject({ code: 'ENOBUFS' });
    expect(server.stats().tcp.counters.connectRefusedPressure).toBeGreaterThanOrEqual(1);

    // The heap empties; the recheck ends pressure; the client's SYN retransmission gets in.
    heap.usedBytes = heap.live = 0.3 * 16 * MIB;
    const conn = await sim.complete(pending);
    expect(signals).toEqual([true, false]);
    expect(accepted).toBe(1);
    conn.close();
    await sim.complete(sim.sleep(5 * 60_000));
    expect(stackLevels(server.stats())).toEqual(baseline);
    server.shutdown();
    client.shutdown();
  });
});
