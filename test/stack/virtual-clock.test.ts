// VirtualClock: alarms fire in time order (ties in scheduling order) at exactly
// their time, rescheduling from inside callbacks works, and advance/advanceTo/
// fireNext move time as documented. A few RealClock checks close the file.

import { describe, expect, it, vi } from 'vitest';
import { RealClock } from '../../stack/time/real-clock.js';
import { DEFAULT_EPOCH_MS, VirtualClock } from '../../stack/time/virtual-clock.js';

describe('VirtualClock', () => {
  it('starts at 0 with wall time = epoch + now', () => {
    const clock = new VirtualClock();
    expect(clock.now()).toBe(0);
    expect(clock.wallNow()).toBe(DEFAULT_EPOCH_MS);
    clock.advance(1234.5);
    expect(clock.wallNow()).toBe(DEFAULT_EPOCH_MS + 1234.5);
    const custom = new VirtualClock({ epochMs: 1_000_000 });
    custom.advance(5);
    expect(custom.wallNow()).toBe(1_000_005);
  });

  it('fires due alarms in time order, ties in scheduling order, each seeing its own time', () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    const make = (name: string) => clock.createAlarm(() => log.push(`${name}@${clock.now()}`));
    const a = make('a');
    const b = make('b');
    const c = make('c');
    const d = make('d');
    c.reschedule(30);
    a.reschedule(10);
    b.reschedule(10);
    d.reschedule(100);
    expect(clock.pendingAlarms).toBe(4);
    expect(clock.nextAlarmAt()).toBe(10);
    clock.advanceTo(50);
    expect(log).toEqual(['a@10', 'b@10', 'c@30']);
    expect(clock.now()).toBe(50);
    expect(clock.pendingAlarms).toBe(1);
    expect(clock.nextAlarmAt()).toBe(100);
  });

  it('treats a reschedule as replacing the earlier one (and as the latest for ties)', () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    const a = clock.createAlarm(() => log.push('a'));
    const b = clock.createAlarm(() => log.push('b'));
    a.reschedule(5);
    b.reschedule(5);
    a.reschedule(20);
    a.reschedule(5); // now after b
    clock.advance(100);
    expect(log).toEqual(['b', 'a']);
  });

  it('cancel prevents firing; an unscheduled alarm never fires; Infinity means never', () => {
    const clock = new VirtualClock();
    let fired = 0;
    const a = clock.createAlarm(() => fired++);
    clock.createAlarm(() => fired++); // never scheduled
    a.reschedule(10);
    a.cancel();
    a.cancel();
    clock.advance(100);
    a.reschedule(Infinity);
    expect(clock.pendingAlarms).toBe(0);
    expect(clock.nextAlarmAt()).toBe(Infinity);
    clock.advance(1e9);
    expect(fired).toBe(0);
    expect(() => a.reschedule(NaN)).toThrow(RangeError);
  });

  it('runs alarms rescheduled from inside a firing alarm, in the same advance when due', () => {
    const clock = new VirtualClock();
    const times: number[] = [];
    const periodic = clock.createAlarm(() => {
      times.push(clock.now());
      if (times.length < 5) periodic.reschedule(clock.now() + 10);
    });
    periodic.reschedule(10);
    clock.advanceTo(35);
    expect(times).toEqual([10, 20, 30]);
    clock.advanceTo(1000);
    expect(times).toEqual([10, 20, 30, 40, 50]);
    expect(clock.pendingAlarms).toBe(0);
  });

  it('lets a callback reschedule or cancel other alarms', () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    const b = clock.createAlarm(() => log.push(`b@${clock.now()}`));
    const c = clock.createAlarm(() => log.push(`c@${clock.now()}`));
    const a = clock.createAlarm(() => {
      log.push(`a@${clock.now()}`);
      b.reschedule(12); // later, still inside this advance
      c.cancel();
    });
    a.reschedule(10);
    b.reschedule(11);
    c.reschedule(11);
    clock.advanceTo(20);
    expect(log).toEqual(['a@10', 'b@12']);
  });

  it('fires an alarm rescheduled for the current instant (or the past) at the current time', () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    const late = clock.createAlarm(() => log.push(`late@${clock.now()}`));
    const first = clock.createAlarm(() => {
      log.push(`first@${clock.now()}`);
      late.reschedule(clock.now() - 3); // in the past: overdue, runs now
    });
    first.reschedule(10);
    clock.advanceTo(10);
    expect(log).toEqual(['first@10', 'late@10']);
    // Scheduled in the past between advances: fires on the next one, at "now".
    late.reschedule(2);
    expect(clock.nextAlarmAt()).toBe(2);
    clock.advance(0);
    expect(log).toEqual(['first@10', 'late@10', 'late@10']);
    expect(clock.now()).toBe(10);
  });

  it('advance(0) fires alarms due now; time never goes back', () => {
    const clock = new VirtualClock();
    let fired = 0;
    clock.advanceTo(7);
    clock.createAlarm(() => fired++).reschedule(7);
    clock.advance(0);
    expect(fired).toBe(1);
    expect(() => clock.advanceTo(6)).toThrow(RangeError);
    expect(() => clock.advance(-1)).toThrow(RangeError);
    expect(() => clock.advanceTo(Infinity)).toThrow(RangeError);
    expect(() => clock.advanceTo(NaN)).toThrow(RangeError);
    expect(clock.now()).toBe(7);
  });

  it('fireNext moves to the earliest alarm and fires that instant only', () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    clock.createAlarm(() => log.push('a')).reschedule(5);
    clock.createAlarm(() => log.push('b')).reschedule(5);
    clock.createAlarm(() => log.push('c')).reschedule(9);
    expect(clock.fireNext()).toBe(2);
    expect(clock.now()).toBe(5);
    expect(log).toEqual(['a', 'b']);
    expect(clock.fireNext()).toBe(1);
    expect(clock.now()).toBe(9);
    expect(clock.fireNext()).toBe(0);
    expect(clock.now()).toBe(9);
  });

  it('stops an alarm that keeps rescheduling itself for now instead of hanging', () => {
    const clock = new VirtualClock({ maxFiringsPerInstant: 10_000 });
    const alarm = clock.createAlarm(() => alarm.reschedule(clock.now()));
    alarm.reschedule(3);
    expect(() => clock.advance(10)).toThrow(/t=3 ms/);
  });

  it('propagates an exception from an alarm, stopping at that alarm', () => {
    const clock = new VirtualClock();
    let later = 0;
    clock.createAlarm(() => {
      throw new Error('boom');
    }).reschedule(4);
    clock.createAlarm(() => later++).reschedule(8);
    expect(() => clock.advanceTo(10)).toThrow('boom');
    expect(clock.now()).toBe(4);
    clock.advanceTo(10);
    expect(later).toBe(1);
  });

  it('handles many alarms (heap order under churn)', () => {
    const clock = new VirtualClock();
    const fired: number[] = [];
    const alarms = Array.from({ length: 1000 }, (_, i) => clock.createAlarm(() => fired.push(clock.now())));
    alarms.forEach((a, i) => a.reschedule((i * 7919) % 1000));
    alarms.forEach((a, i) => i % 3 === 0 && a.reschedule(((i * 104729) % 500) + 0.5));
    clock.advanceTo(2000);
    expect(fired).toHaveLength(1000);
    expect([...fired].sort((x, y) => x - y)).toEqual(fired);
  });
});

describe('RealClock', () => {
  it('reads monotonic and wall time from the host', () => {
    const clock = new RealClock();
    const a = clock.now();
    const b = clock.now();
    expect(b).toBeGreaterThanOrEqual(a);
    // Wall time is the host's Date: set the host's clock, and it follows.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.UTC(2024, 0, 1, 12));
      expect(clock.wallNow()).toBe(Date.UTC(2024, 0, 1, 12));
      vi.setSystemTime(Date.UTC(2031, 5, 30));
      expect(clock.wallNow()).toBe(Date.UTC(2031, 5, 30));
      // Monotonic time is not the wall clock: a jump of the latter leaves it alone.
      expect(clock.now()).toBeLessThan(Date.UTC(2000, 0, 1));
      expect(clock.now()).toBeGreaterThanOrEqual(b);
    } finally {
      vi.useRealTimers();
    }
  });

  it('fires an alarm at or after its time, once; reschedule replaces; cancel stops', async () => {
    const clock = new RealClock();
    const firedAt: number[] = [];
    let fired!: () => void;
    const firing = new Promise<void>((resolve) => (fired = resolve));
    const alarm = clock.createAlarm(() => {
      firedAt.push(clock.now());
      fired();
    });
    const due = clock.now() + 15;
    alarm.reschedule(clock.now() + 1000);
    alarm.reschedule(due); // replaces the first schedule
    let cancelled = 0;
    const other = clock.createAlarm(() => cancelled++);
    other.reschedule(clock.now() + 5);
    other.cancel();
    // Waits for the alarm itself, however late a loaded machine lets it fire.
    await firing;
    expect(firedAt[0]).toBeGreaterThanOrEqual(due);
    // The cancelled one was due first: uncancelled, it would have fired before.
    expect(cancelled).toBe(0);
    // Once: a further turn of the host's timers brings no second call.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(firedAt).toHaveLength(1);
  });

  it('holds one host timer per alarm, unref\'d so an idle stack does not keep Node alive', () => {
    const clock = new RealClock();
    const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timeouts();
    const alarm = clock.createAlarm(() => {});
    alarm.reschedule(clock.now() + 60_000);
    alarm.reschedule(clock.now() + 50_000);
    expect(timeouts()).toBe(before); // unref'd timers are not active resources
    // A referenced timer does show up: the probe can see the difference.
    const probe = setTimeout(() => {}, 60_000);
    expect(timeouts()).toBe(before + 1);
    clearTimeout(probe);
    alarm.cancel();
  });

  it('fires an alarm scheduled in the past asynchronously, never inside reschedule()', async () => {
    const clock = new RealClock();
    let fired = 0;
    let done!: () => void;
    const firing = new Promise<void>((resolve) => (done = resolve));
    const alarm = clock.createAlarm(() => {
      fired++;
      done();
    });
    alarm.reschedule(clock.now() - 100);
    expect(fired).toBe(0);
    await firing;
    expect(fired).toBe(1);
  });
});
