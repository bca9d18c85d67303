// A clock that moves only when told to. Tests and simulations drive it with
// advance()/advanceTo(); every alarm fires at exactly its scheduled time, in time
// order (ties in scheduling order), so a scenario is deterministic and takes no
// real time however long it lasts in virtual time.

import type { Alarm, Clock } from '../clock.js';
import { TimerKind } from '../layers.js';
import { OwnedTimers, type TimerHolder } from './owned-timers.js';

/** Wall time at virtual time 0: 2024-01-01T00:00:00Z, so pcap timestamps of a
 *  simulated run are plausible and identical from run to run. */
export const DEFAULT_EPOCH_MS = Date.UTC(2024, 0, 1);

/** Each alarm is a TimerQueue owner with a single timer, kept in this slot. */
const ALARM_SLOT = TimerKind.TcpFirst;

/** Firings at one virtual instant after which advanceTo() gives up: an alarm that
 *  keeps rescheduling itself for "now" would otherwise spin forever. */
const DEFAULT_MAX_FIRINGS_PER_INSTANT = 10_000_000;

export interface VirtualClockOptions {
  /** Wall-clock milliseconds at virtual time 0 (default 2024-01-01T00:00:00Z). */
  epochMs?: number;
  /** See DEFAULT_MAX_FIRINGS_PER_INSTANT. */
  maxFiringsPerInstant?: number;
}

class VirtualAlarm implements Alarm, TimerHolder {
  timerSlot = -1;

  constructor(
    private readonly queue: OwnedTimers<VirtualAlarm>,
    readonly fire: () => void,
  ) {}

  reschedule(at: number): void {
    if (Number.isNaN(at)) throw new RangeError('Alarm.reschedule: time is NaN');
    // "At or after Infinity" is never: the same as no wake-up.
    if (at === Infinity) this.queue.cancel(this, ALARM_SLOT);
    else this.queue.arm(this, ALARM_SLOT, at);
  }

  cancel(): void {
    this.queue.cancel(this, ALARM_SLOT);
  }
}

export class VirtualClock implements Clock {
  private current = 0;
  private readonly alarms = new OwnedTimers<VirtualAlarm>();
  private readonly epochMs: number;
  private readonly maxFiringsPerInstant: number;

  constructor(opts: VirtualClockOptions = {}) {
    this.epochMs = opts.epochMs ?? DEFAULT_EPOCH_MS;
    this.maxFiringsPerInstant = opts.maxFiringsPerInstant ?? DEFAULT_MAX_FIRINGS_PER_INSTANT;
  }

  now(): number {
    return this.current;
  }

  wallNow(): number {
    return this.epochMs + this.current;
  }

  createAlarm(fire: () => void): Alarm {
    return new VirtualAlarm(this.alarms, fire);
  }

  /** When the earliest alarm is due (Infinity if none is scheduled). */
  nextAlarmAt(): number {
    return this.alarms.nextDeadline();
  }

  /** Number of scheduled alarms. */
  get pendingAlarms(): number {
    return this.alarms.size;
  }

  /** Move time forward by `ms`, firing the alarms that come due on the way. */
  advance(ms: number): void {
    if (!(ms >= 0 && ms < Infinity)) throw new RangeError(`VirtualClock.advance: ${ms} is not a duration`);
    this.advanceTo(this.current + ms);
  }

  /**
   * Move time forward to `t`, firing every alarm due at or before `t` in time
   * order. During each callback now() is the alarm's scheduled time (or the
   * current time, for an alarm scheduled in the past). Alarms scheduled by the
   * callbacks for <= t fire in the same call. Ends with now() === t.
   */
  advanceTo(t: number): void {
    if (!Number.isFinite(t) || t < this.current) {
      throw new RangeError(`VirtualClock.advanceTo(${t}): time is ${this.current} ms; it moves forward only`);
    }
    let instant = this.current;
    let firedAtInstant = 0;
    while (this.alarms.nextDeadline() <= t) {
      this.current = Math.max(this.current, this.alarms.nextDeadline());
      if (this.current !== instant) {
        instant = this.current;
        firedAtInstant = 0;
      }
      firedAtInstant += this.alarms.expire(this.current, fireAlarm);
      if (firedAtInstant > this.maxFiringsPerInstant) {
        throw new Error(
          `VirtualClock: more than ${this.maxFiringsPerInstant} alarms fired at t=${this.current} ms; ` +
            'an alarm keeps rescheduling itself for the current time',
        );
      }
    }
    this.current = t;
  }

  /**
   * One simulation step: move to the earliest alarm's time (never backwards) and
   * fire the alarms due then, plus those rescheduled for that instant while they
   * run, up to TimerQueue.expire's bound. Returns how many fired (0: no alarm).
   */
  fireNext(): number {
    const next = this.alarms.nextDeadline();
    if (next === Infinity) return 0;
    this.current = Math.max(this.current, next);
    return this.alarms.expire(this.current, fireAlarm);
  }
}

function fireAlarm(alarm: VirtualAlarm): void {
  alarm.fire();
}
