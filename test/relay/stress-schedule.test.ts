import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Slot, StartSchedule } from '../../relay/stress/schedule.js';

/** Simulates clients that finish only when their partner runs too; returns how many steps a run took. */
function simulate(pairs: number, concurrency: number, pick: (n: number) => number, randomInt?: (n: number) => number): number {
  const schedule = new StartSchedule(pairs, concurrency, randomInt);
  const running: Slot[] = [];
  let finishedPairs = 0;
  for (let step = 0; step < 10 * pairs + 10; step++) {
    for (let slot = schedule.next(); slot !== null; slot = schedule.next()) running.push(slot);
    expect(running.length).toBeLessThanOrEqual(concurrency);
    const complete = running.filter((s) => s.role === 'send' && running.some((o) => o.pair === s.pair && o.role === 'recv'));
    if (complete.length === 0) {
      // Nothing can finish: only acceptable once everything is done.
      expect(schedule.queued + running.length).toBe(0);
      return step;
    }
    const done = complete[pick(complete.length)].pair;
    for (let i = running.length - 1; i >= 0; i--) {
      if (running[i].pair === done) schedule.finished(running.splice(i, 1)[0]);
    }
    finishedPairs++;
  }
  expect(finishedPairs).toBe(pairs);
  return -1;
}

describe('stress start schedule', () => {
  it('never deadlocks: every pair completes for any order and bound', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 2, max: 20 }), fc.infiniteStream(fc.nat()), (pairs, bound, stream) => {
        const it = stream[Symbol.iterator]();
        const rand = (n: number) => it.next().value % n;
        const steps = simulate(pairs, bound, rand, rand);
        expect(steps).toBe(pairs);
      }),
      { numRuns: 300 },
    );
  });

  it('starts every client exactly once, in a shuffled order', () => {
    const schedule = new StartSchedule(50, 200);
    const seen: string[] = [];
    for (let slot = schedule.next(); slot !== null; slot = schedule.next()) seen.push(`${slot.pair}:${slot.role}`);
    expect(new Set(seen).size).toBe(100);
    const inOrder = Array.from({ length: 50 }, (_, i) => [`${i}:send`, `${i}:recv`]).flat();
    expect(seen).not.toEqual(inOrder);
  });

  it('rejects a bound below 2', () => {
    expect(() => new StartSchedule(3, 1)).toThrow(RangeError);
  });
});
