// A simulation driver: stacks on a VirtualClock joined by a VSwitch, with
// ordinary async application code running against them. Tests and benchmarks
// call `await sim.run(() => done)`; virtual time jumps from alarm to alarm, so a
// transfer that would take minutes on a slow lossy link takes as long as the CPU
// work it needs.
//
// Loop strategy (why it is fast and still lets async code keep up):
// - A step fires the alarms of the earliest pending instant (VirtualClock.fireNext):
//   switch deliveries, stack timers, sleeps. Stack code runs synchronously inside.
// - Application code runs in promise callbacks. Between steps the loop yields a
//   few microtask turns (`await undefined`, ~50 ns each): continuations queued
//   by the step (a read that resolved, a write that drained) run, and so do
//   short await chains they start. That covers typical application code at the
//   same virtual instant without paying for a macrotask.
// - Every `macrotaskEvery` steps, and whenever no alarm is pending, the loop
//   yields one macrotask turn (setImmediate where the host has it, else a
//   MessageChannel message; never setTimeout(0), which waits about 1 ms). That
//   drains the microtask queue completely and lets process.nextTick and other
//   macrotask-based code progress. A macrotask costs a few µs, so it is
//   amortized over many steps.
// - No alarm pending and `until()` still false after a few macrotask turns: the
//   scenario waits on something outside the virtual clock (a real timer, I/O)
//   or on nothing at all, so run() throws "simulation stalled" instead of hanging.
// - maxTime (virtual ms from the start of run()) and maxSteps bound a scenario
//   that never ends (a periodic timer, a retransmission storm, a livelock at one
//   instant); the error names the virtual time.

import { VirtualClock, type VirtualClockOptions } from './time/virtual-clock.js';
import { VSwitch, type VSwitchOptions } from './vswitch/vswitch.js';

export interface SimulationOptions {
  /** Seed of the switch's fault injection (default 1). */
  seed?: number;
  /** Wall-clock ms at virtual time 0 (pcap timestamps). */
  epochMs?: number;
  clock?: Omit<VirtualClockOptions, 'epochMs'>;
  switch?: Omit<VSwitchOptions, 'seed'>;
  /** Microtask turns yielded after every step (default 8). */
  microtaskTurns?: number;
  /** Steps between macrotask turns (default 64). */
  macrotaskEvery?: number;
}

export interface RunOptions {
  /** Virtual ms from the start of this run() that until() may take (default one day). */
  maxTime?: number;
  /** Steps this run() may take (default 50 million). */
  maxSteps?: number;
}

export class SimulationStalledError extends Error {
  override readonly name = 'SimulationStalledError';
}

export class SimulationLimitError extends Error {
  override readonly name = 'SimulationLimitError';
}

const DEFAULT_MAX_TIME_MS = 24 * 3600 * 1000;
const DEFAULT_MAX_STEPS = 50_000_000;
const DEFAULT_MICROTASK_TURNS = 8;
const DEFAULT_MACROTASK_EVERY = 64;
/** Macrotask turns granted to an idle scenario before it counts as stalled. */
const STALL_TURNS = 3;

export class Simulation {
  readonly clock: VirtualClock;
  readonly switch: VSwitch;
  /** Steps taken over this simulation's life (for benchmarks and diagnostics). */
  steps = 0;
  private readonly microtaskTurns: number;
  private readonly macrotaskEvery: number;
  private readonly macrotask: () => Promise<void>;

  constructor(opts: SimulationOptions = {}) {
    this.clock = new VirtualClock({ ...opts.clock, epochMs: opts.epochMs });
    this.switch = new VSwitch(this.clock, { ...opts.switch, seed: opts.seed });
    this.microtaskTurns = opts.microtaskTurns ?? DEFAULT_MICROTASK_TURNS;
    this.macrotaskEvery = Math.max(1, opts.macrotaskEvery ?? DEFAULT_MACROTASK_EVERY);
    this.macrotask = macrotaskYield();
  }

  /** Run until `until()` is true (checked between steps). Throws
   *  SimulationStalledError or SimulationLimitError; an exception thrown by an
   *  alarm callback (a stack, the switch, a receiver) propagates. */
  async run(until: () => boolean, opts: RunOptions = {}): Promise<void> {
    const start = this.clock.now();
    const maxTime = opts.maxTime ?? DEFAULT_MAX_TIME_MS;
    const maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS;
    let steps = 0;
    let sinceMacrotask = 0;
    for (;;) {
      for (let i = 0; i < this.microtaskTurns; i++) await undefined;
      if (until()) return;
      let next = this.clock.nextAlarmAt();
      if (next === Infinity || sinceMacrotask >= this.macrotaskEvery) {
        sinceMacrotask = 0;
        if (await this.idle(until)) return;
        next = this.clock.nextAlarmAt();
      }
      if (next - start > maxTime) {
        throw new SimulationLimitError(
          `simulation exceeded maxTime: at virtual time ${this.clock.now()} ms the condition is still false ` +
            `and the next alarm (${next} ms) is more than ${maxTime} ms after the start (${start} ms)`,
        );
      }
      if (steps >= maxSteps) {
        throw new SimulationLimitError(
          `simulation exceeded maxSteps (${maxSteps}) at virtual time ${this.clock.now()} ms ` +
            `(started at ${start} ms); the condition is still false`,
        );
      }
      steps++;
      this.steps++;
      sinceMacrotask++;
      this.clock.fireNext();
    }
  }

  /** Run until `task` settles, then return its value (or throw its error). */
  async complete<T>(task: Promise<T>, opts?: RunOptions): Promise<T> {
    let settled = false;
    const done = (): void => {
      settled = true;
    };
    task.then(done, done);
    await this.run(() => settled, opts);
    return task;
  }

  /** A promise resolved after `ms` of virtual time. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.clock.createAlarm(resolve).reschedule(this.clock.now() + ms);
    });
  }

  /** Macrotask turns until an alarm is pending or the condition holds; true if
   *  it holds. Throws when neither happens (a stall). */
  private async idle(until: () => boolean): Promise<boolean> {
    for (let turn = 0; turn < STALL_TURNS; turn++) {
      await this.macrotask();
      if (until()) return true;
      if (this.clock.nextAlarmAt() !== Infinity) return false;
    }
    throw new SimulationStalledError(
      `simulation stalled at virtual time ${this.clock.now()} ms: the condition is false and no alarm is ` +
        'pending (is something waiting on a real timer or I/O instead of the virtual clock?)',
    );
  }
}

interface MacrotaskHost {
  setImmediate?: (callback: () => void) => unknown;
  MessageChannel?: typeof MessageChannel;
  setTimeout?: (callback: () => void, ms: number) => unknown;
}

/** A function that resolves after one macrotask turn of the host. Exported for
 *  tests; `host` defaults to globalThis. */
export function macrotaskYield(host: MacrotaskHost = globalThis as unknown as MacrotaskHost): () => Promise<void> {
  const setImmediate = host.setImmediate;
  if (typeof setImmediate === 'function') {
    return () => new Promise((resolve) => void setImmediate(resolve));
  }
  if (typeof host.MessageChannel === 'function') {
    return messageChannelYield(new host.MessageChannel());
  }
  // Last resort for hosts with neither (rare): clamped to >= 1 ms in most hosts.
  const setTimeout = host.setTimeout!;
  return () => new Promise((resolve) => void setTimeout(resolve, 0));
}

function messageChannelYield(channel: MessageChannel): () => Promise<void> {
  const waiting: (() => void)[] = [];
  // Node keeps the process alive while a port is referenced: hold a reference
  // only while a turn is pending (browsers have no such notion).
  const port = channel.port1 as MessagePort & { ref?: () => void; unref?: () => void };
  const hold = (on: boolean): void => {
    const method = on ? port.ref : port.unref;
    if (typeof method === 'function') method.call(port);
  };
  port.onmessage = () => {
    waiting.shift()?.();
    if (waiting.length === 0) hold(false);
  };
  hold(false);
  return () =>
    new Promise((resolve) => {
      waiting.push(resolve);
      hold(true);
      channel.port2.postMessage(null);
    });
}
