// Simulation: async application code driven by the virtual clock and the
// switch completes at exact virtual times; stalls, maxTime and maxSteps end a
// run with an error naming the virtual time; the macrotask fallbacks work.

import { describe, expect, it } from 'vitest';
import { Simulation, SimulationLimitError, SimulationStalledError, macrotaskYield } from '../../stack/sim.js';
import type { VSwitchPort } from '../../stack/vswitch/vswitch.js';

/** Frame from `from` to `to` carrying a 32-bit number after the header. */
function message(from: VSwitchPort, to: VSwitchPort, n: number): Uint8Array {
  const f = new Uint8Array(64);
  f.set(to.mac, 0);
  f.set(from.mac, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  new DataView(f.buffer).setUint32(14, n);
  return f;
}

function numberOf(f: Uint8Array): number {
  return new DataView(f.buffer, f.byteOffset, f.byteLength).getUint32(14);
}

/** An echo server on `server` and a promise-based request() on `client`. */
function echoPair(sim: Simulation, clientFaults = {}) {
  const client = sim.switch.attach({ faults: clientFaults });
  const server = sim.switch.attach();
  server.setReceiver((f) => server.send(message(server, client, numberOf(f) + 1)));
  let pending: ((n: number) => void) | undefined;
  client.setReceiver((f) => pending?.(numberOf(f)));
  const request = (n: number): Promise<number> =>
    new Promise((resolve) => {
      pending = resolve;
      client.send(message(client, server, n));
    });
  return { client, server, request };
}

/** A few levels of ordinary async code around each request. */
async function layered(request: (n: number) => Promise<number>, n: number, depth: number): Promise<number> {
  if (depth === 0) return request(n);
  const reply = await layered(request, n, depth - 1);
  await Promise.resolve();
  return reply;
}

describe('Simulation', () => {
  it('runs async tasks that await clock-driven events, at exact virtual times', async () => {
    const sim = new Simulation({ seed: 1 });
    const { request } = echoPair(sim, { delay: 5 }); // RTT 10 ms
    const replyTimes: number[] = [];
    let done = false;
    void (async () => {
      for (let i = 0; i < 100; i++) {
        expect(await layered(request, i * 2, 3)).toBe(i * 2 + 1);
        replyTimes.push(sim.clock.now());
        await sim.sleep(1);
      }
      done = true;
    })();
    await sim.run(() => done);
    // Each reply 10 ms after the request, the next request 1 ms later.
    expect(replyTimes).toEqual(Array.from({ length: 100 }, (_, i) => 10 + i * 11));
    expect(sim.clock.now()).toBe(100 * 11);
  });

  it('complete() returns the task value and throws its error', async () => {
    const sim = new Simulation();
    const value = await sim.complete(
      (async () => {
        await sim.sleep(250);
        return sim.clock.now();
      })(),
    );
    expect(value).toBe(250);
    const failing = (async () => {
      await sim.sleep(5);
      throw new Error('task failed');
    })();
    await expect(sim.complete(failing)).rejects.toThrow('task failed');
  });

  it('lets long await chains and process.nextTick code finish before declaring a stall', async () => {
    const sim = new Simulation();
    let done = false;
    void (async () => {
      await sim.sleep(10);
      for (let i = 0; i < 200; i++) await Promise.resolve();
      await new Promise((resolve) => process.nextTick(resolve));
      await sim.sleep(10);
      done = true;
    })();
    await sim.run(() => done);
    expect(sim.clock.now()).toBe(20);
  });

  it('detects a stall: nothing scheduled and the condition false', async () => {
    const sim = new Simulation();
    const err = await sim.run(() => false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SimulationStalledError);
    expect((err as Error).message).toMatch(/simulation stalled at virtual time 0 ms/);
  });

  it('detects a task waiting on a real timer as a stall, naming the virtual time', async () => {
    const sim = new Simulation();
    let done = false;
    const timer = setTimeout(() => (done = true), 10_000);
    void sim.sleep(42);
    await expect(sim.run(() => done)).rejects.toThrow(/simulation stalled at virtual time 42 ms/);
    clearTimeout(timer);
  });

  it('throws when maxTime passes, naming the virtual time', async () => {
    const sim = new Simulation();
    const tick = sim.clock.createAlarm(() => tick.reschedule(sim.clock.now() + 10));
    tick.reschedule(10);
    const err = await sim.run(() => false, { maxTime: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SimulationLimitError);
    expect((err as Error).message).toMatch(/maxTime/);
    expect((err as Error).message).toMatch(/virtual time 1000 ms/);
    expect(sim.clock.now()).toBe(1000);
    // maxTime counts from the start of each run.
    await sim.run(() => sim.clock.now() >= 1500, { maxTime: 1000 });
    expect(sim.clock.now()).toBe(1500);
  });

  it('throws when maxSteps is exceeded, even if time stands still', async () => {
    const sim = new Simulation();
    void (async () => {
      for (;;) await sim.sleep(0);
    })();
    await expect(sim.run(() => false, { maxSteps: 500 })).rejects.toThrow(/maxSteps \(500\) at virtual time 0 ms/);
  });

  it('propagates an exception thrown by an alarm (here a receiver)', async () => {
    const sim = new Simulation();
    const a = sim.switch.attach();
    const b = sim.switch.attach();
    b.setReceiver(() => {
      throw new Error('receiver bug');
    });
    a.send(message(a, b, 1));
    await expect(sim.run(() => false)).rejects.toThrow('receiver bug');
  });

  it('drives a long ping-pong through the switch (many steps, no stall)', async () => {
    const sim = new Simulation({ seed: 3 });
    const { request } = echoPair(sim, { delay: 0.01 });
    const rounds = 20_000;
    const result = await sim.complete(
      (async () => {
        let n = 0;
        for (let i = 0; i < rounds; i++) n = await request(n);
        return n;
      })(),
    );
    expect(result).toBe(rounds);
    expect(sim.clock.now()).toBeCloseTo(rounds * 0.02, 6);
    expect(sim.switch.inFlight).toBe(0);
    expect(sim.steps).toBeGreaterThanOrEqual(rounds);
  });
});

describe('macrotaskYield', () => {
  it('uses a MessageChannel when the host has no setImmediate', async () => {
    const yieldTurn = macrotaskYield({ MessageChannel });
    let microtasksRan = false;
    void Promise.resolve().then(() => (microtasksRan = true));
    await yieldTurn();
    expect(microtasksRan).toBe(true);
    await Promise.all([yieldTurn(), yieldTurn(), yieldTurn()]);
  });

  it('falls back to setTimeout when the host has nothing else', async () => {
    // The host's timer, run by hand: each call is recorded and fires only when told.
    const timers: { cb: () => void; ms: number }[] = [];
    const yieldTurn = macrotaskYield({ setTimeout: (cb, ms) => void timers.push({ cb, ms }) });
    let resolved = false;
    const turn = yieldTurn().then(() => (resolved = true));
    expect(timers.map((t) => t.ms)).toEqual([0]); // one zero-delay timer per turn
    await Promise.resolve();
    await Promise.resolve();
    expect(resolved).toBe(false); // microtasks alone do not end the turn
    timers[0]!.cb();
    await turn;
    expect(resolved).toBe(true);
    void yieldTurn();
    expect(timers).toHaveLength(2);
  });
});
