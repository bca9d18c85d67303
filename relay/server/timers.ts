// The relay's timers, in the spirit of docs/architecture.md §5: one timer structure (the
// stack's TimerQueue) and one Alarm on an injected Clock. Each connection or
// room owns at most one timer; what it means (Hello, -t, pairing, linger) is
// decided by the owner's state when it fires. No timer is a closure, so a
// released connection is garbage as soon as its timer is cancelled.
//
// The clock is the stack's Clock interface: RealClock on host sockets, the
// stack's own clock in a guest, a VirtualClock in tests.

import { type Alarm, type Clock, OwnedTimers, type TimerHolder, type TimerKind } from '../../stack/index.js';

/** Something that owns one relay timer. */
export interface Timed extends TimerHolder {
  onTimer(): void;
}

/** The single slot each owner uses. */
const DEADLINE = 0 as TimerKind;

export class RelayTimers {
  private readonly queue = new OwnedTimers<Timed>();
  private readonly alarm: Alarm;
  private alarmAt = Infinity;

  constructor(private readonly clock: Clock) {
    this.alarm = clock.createAlarm(this.onAlarm);
  }

  /** Monotonic milliseconds. */
  now(): number {
    return this.clock.now();
  }

  /** Armed timers. */
  get armed(): number {
    return this.queue.size;
  }

  /** Arm (or move) `owner`'s timer to fire at monotonic time `deadline` (ms). */
  armAt(owner: Timed, deadline: number): void {
    this.queue.arm(owner, DEADLINE, deadline);
    this.sync();
  }

  /** Arm (or move) `owner`'s timer to fire `seconds` from now. */
  armIn(owner: Timed, seconds: number): void {
    this.armAt(owner, this.clock.now() + seconds * 1000);
  }

  cancel(owner: Timed): void {
    this.queue.cancel(owner, DEADLINE);
    this.sync();
  }

  private readonly onAlarm = (): void => {
    this.alarmAt = Infinity;
    try {
      this.queue.expire(this.clock.now(), fire);
    } finally {
      this.sync();
    }
  };

  /** Keep the alarm at the queue's next deadline exactly. */
  private sync(): void {
    const next = this.queue.nextDeadline();
    if (next === this.alarmAt) return;
    this.alarmAt = next;
    if (next === Infinity) this.alarm.cancel();
    else this.alarm.reschedule(next);
  }
}

function fire(owner: Timed): void {
  owner.onTimer();
}
