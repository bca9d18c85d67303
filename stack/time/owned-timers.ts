// Timers of objects made as they come (a clock's alarms, an application's
// connections and rooms), on the stack's id-keyed TimerQueue: an object gets
// an owner id while it has a timer armed and gives it back when its last one
// fires or is cancelled, so ids (and the queue's positions) track the objects
// with timers, never all the objects ever made. The object keeps its id in
// `timerSlot` (-1 without one); nothing else refers to it once its timers are
// gone.

import type { TimerKind } from '../layers.js';
import { TimerQueue } from './timers.js';

export interface TimerHolder {
  /** Owner id while a timer is armed, -1 otherwise (this module sets it). */
  timerSlot: number;
}

export class OwnedTimers<T extends TimerHolder> {
  private readonly queue: TimerQueue;
  /** The object holding each owner id (undefined: free). */
  private readonly holders: (T | undefined)[] = [];
  private readonly free: number[] = [];

  constructor(slotsPerOwner = 1) {
    this.queue = new TimerQueue(0, slotsPerOwner);
  }

  get size(): number {
    return this.queue.size;
  }

  arm(owner: T, kind: TimerKind, deadline: number): void {
    if (owner.timerSlot < 0) this.attach(owner);
    this.queue.arm(owner.timerSlot, kind, deadline);
  }

  cancel(owner: T, kind: TimerKind): void {
    if (owner.timerSlot < 0) return;
    this.queue.cancel(owner.timerSlot, kind);
    this.detachIfIdle(owner);
  }

  isArmed(owner: T, kind: TimerKind): boolean {
    return owner.timerSlot >= 0 && this.queue.isArmed(owner.timerSlot, kind);
  }

  nextDeadline(): number {
    return this.queue.nextDeadline();
  }

  countByKind(kind: TimerKind): number {
    return this.queue.countByKind(kind);
  }

  /** As TimerQueue.expire, with the objects handed to `fire`. */
  expire(now: number, fire: (owner: T, kind: TimerKind) => void): number {
    return this.queue.expire(now, (id, kind) => {
      const owner = this.holders[id]!;
      this.detachIfIdle(owner);
      fire(owner, kind);
    });
  }

  private attach(owner: T): void {
    let id = this.free.pop();
    if (id === undefined) {
      id = this.holders.length;
      this.holders.push(undefined);
      if (id >= this.queue.ownerCount) this.queue.growOwners(Math.max(16, 2 * this.queue.ownerCount));
    }
    this.holders[id] = owner;
    owner.timerSlot = id;
  }

  private detachIfIdle(owner: T): void {
    const id = owner.timerSlot;
    if (id < 0 || this.queue.hasAny(id)) return;
    this.holders[id] = undefined;
    this.free.push(id);
    owner.timerSlot = -1;
  }
}
