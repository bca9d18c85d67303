// The clock of a running stack: performance.now() for monotonic time, Date.now()
// for wall time, and the host's setTimeout for alarms. Platform-neutral: it uses
// only globals that browsers, Node and edge runtimes all offer.

import type { Alarm, Clock } from '../clock.js';

/** setTimeout's delay is a signed 32-bit count of ms; longer waits are chained. */
const MAX_TIMEOUT_MS = 0x7fffffff;

type TimerHandle = ReturnType<typeof setTimeout>;

class RealAlarm implements Alarm {
  /** The single host timer this alarm holds, if scheduled. */
  private handle: TimerHandle | undefined = undefined;
  private at = Infinity;

  constructor(
    private readonly clock: RealClock,
    private readonly fire: () => void,
  ) {}

  reschedule(at: number): void {
    if (Number.isNaN(at)) throw new RangeError('Alarm.reschedule: time is NaN');
    this.cancel();
    if (at === Infinity) return;
    this.at = at;
    this.startTimer();
  }

  cancel(): void {
    if (this.handle !== undefined) {
      // Node keeps the (empty) timer list of a cleared *unref'd* timer until
      // its duration has passed (lib/timers.js unenroll deletes only refed
      // lists); with one list per distinct delay, every reschedule of a far
      // deadline (the relay's 1 h -t) would leave one behind for that long.
      // Ref'd again just before clearing, the list goes with the timer.
      const maybeRef = this.handle as { ref?: () => unknown };
      if (typeof maybeRef.ref === 'function') maybeRef.ref();
      clearTimeout(this.handle);
    }
    this.handle = undefined;
    this.at = Infinity;
  }

  private startTimer(): void {
    const delay = Math.min(Math.max(0, this.at - this.clock.now()), MAX_TIMEOUT_MS);
    const handle = setTimeout(this.onTimeout, delay);
    // Node: an idle stack's wake-up must not keep the process alive.
    const maybeRef = handle as { unref?: () => unknown };
    if (typeof maybeRef.unref === 'function') maybeRef.unref();
    this.handle = handle;
  }

  private readonly onTimeout = (): void => {
    this.handle = undefined;
    // Host timers may fire a little early relative to performance.now() (they
    // round differently), and long waits are chained: the contract is "at or
    // after", so wait out the remainder.
    if (this.clock.now() < this.at) {
      this.startTimer();
      return;
    }
    this.at = Infinity;
    this.fire();
  };
}

export class RealClock implements Clock {
  now(): number {
    return performance.now();
  }

  wallNow(): number {
    return Date.now();
  }

  createAlarm(fire: () => void): Alarm {
    return new RealAlarm(this, fire);
  }
}
