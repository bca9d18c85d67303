// The stack's one timer structure (docs/architecture.md section 5): a binary min-heap of
// (owner, kind, deadline) entries for every timer of every layer of a stack.
//
// Why this shape:
// - No closures: a timer is data (an owner object and a kind number), so an armed
//   timer never captures a connection in a callback; the stack dispatches fired
//   timers by kind.
// - No maps: each owner's `timerIndex[kind]` holds the entry's heap position
//   (-1 when unarmed). Arm, re-arm and cancel are O(log n) by position.
// - Deterministic: equal deadlines fire in arming order (a sequence number), so a
//   run on the virtual clock repeats exactly.
// - Collectable: the heap drops its reference to an owner as soon as the entry is
//   cancelled or fired, so a released connection is garbage once its last timer
//   is gone.

import { TimerKind, type TimerOwner } from '../layers.js';

const INITIAL_CAPACITY = 64;

/** Extra firings allowed per expire() call beyond the timers present at its start:
 *  room for callbacks that re-arm for "now", while a callback that always does so
 *  cannot keep expire() spinning forever. */
const REARM_ALLOWANCE = 1024;

export class TimerQueue<T extends TimerOwner> {
  // Parallel arrays, one slot per heap position. `owners` grows and shrinks with
  // the heap (push/pop), so no stale owner reference survives past its removal.
  private readonly owners: T[] = [];
  private kinds = new Uint8Array(INITIAL_CAPACITY);
  private deadlines = new Float64Array(INITIAL_CAPACITY);
  private seqs = new Float64Array(INITIAL_CAPACITY);
  private nextSeq = 0;
  private readonly perKind = new Int32Array(TimerKind.Count);

  /** Number of armed timers. */
  get size(): number {
    return this.owners.length;
  }

  /** Arm `owner`'s timer `kind` for monotonic time `deadline` (ms). Re-arming an
   *  armed timer moves it and counts as a new arming for tie-breaking. */
  arm(owner: T, kind: TimerKind, deadline: number): void {
    if (Number.isNaN(deadline)) throw new RangeError('TimerQueue.arm: deadline is NaN');
    if (!(kind >= 0 && kind < TimerKind.Count && kind % 1 === 0)) {
      throw new RangeError(`TimerQueue.arm: no timer kind ${kind}`);
    }
    const seq = this.nextSeq++;
    const i = owner.timerIndex[kind];
    if (i >= 0) {
      this.checkEntry(owner, kind, i);
      this.deadlines[i] = deadline;
      this.seqs[i] = seq;
      this.restore(i);
      return;
    }
    const at = this.owners.length;
    this.ensureCapacity(at + 1);
    this.owners.push(owner);
    this.perKind[kind]++;
    this.siftUp(at, owner, kind, deadline, seq);
  }

  /** Disarm `owner`'s timer `kind`; no effect if it is not armed. */
  cancel(owner: T, kind: TimerKind): void {
    const i = owner.timerIndex[kind];
    if (i < 0) return;
    this.checkEntry(owner, kind, i);
    this.removeAt(i);
  }

  /** Disarm every timer of `owner` (the release path of a connection). */
  cancelAll(owner: T): void {
    const index = owner.timerIndex;
    for (let kind = 0; kind < index.length; kind++) {
      if (index[kind] >= 0) this.cancel(owner, kind as TimerKind);
    }
  }

  isArmed(owner: T, kind: TimerKind): boolean {
    return owner.timerIndex[kind] >= 0;
  }

  /** The deadline of an armed timer, Infinity when unarmed. */
  deadlineOf(owner: T, kind: TimerKind): number {
    const i = owner.timerIndex[kind];
    return i < 0 ? Infinity : this.deadlines[i];
  }

  /** Armed timers of one kind (for stack.stats()). */
  countByKind(kind: TimerKind): number {
    return this.perKind[kind];
  }

  /** The earliest deadline, Infinity when no timer is armed. */
  nextDeadline(): number {
    return this.owners.length > 0 ? this.deadlines[0] : Infinity;
  }

  /**
   * Fire every timer whose deadline is <= now, earliest first (ties in arming
   * order). Each timer is removed before its callback runs, so the callback may
   * re-arm it. Timers armed during the call for <= now fire in the same call, up
   * to a bound of (timers at the start + 1024) firings, after which it returns
   * and the caller runs it again on its next turn. Returns the number fired.
   * If a callback throws, the timers not yet fired stay armed.
   */
  expire(now: number, fire: (owner: T, kind: TimerKind) => void): number {
    const limit = this.owners.length + REARM_ALLOWANCE;
    let fired = 0;
    while (fired < limit && this.owners.length > 0 && this.deadlines[0] <= now) {
      const owner = this.owners[0];
      const kind = this.kinds[0] as TimerKind;
      this.removeAt(0);
      fired++;
      fire(owner, kind);
    }
    return fired;
  }

  // ---- heap internals -------------------------------------------------------

  /** Guards against an owner whose index points elsewhere (for example an owner
   *  shared between two queues): a silent mismatch would corrupt both. */
  private checkEntry(owner: T, kind: TimerKind, i: number): void {
    if (this.owners[i] !== owner || this.kinds[i] !== kind) {
      throw new Error(`TimerQueue: timerIndex[${kind}] = ${i} does not point at this owner's entry`);
    }
  }

  private removeAt(i: number): void {
    const owner = this.owners[i];
    const kind = this.kinds[i];
    owner.timerIndex[kind] = -1;
    this.perKind[kind]--;
    const last = this.owners.length - 1;
    const lastOwner = this.owners.pop()!;
    if (i === last) return;
    // Move the last entry into the hole and restore heap order from there.
    this.put(i, lastOwner, this.kinds[last], this.deadlines[last], this.seqs[last]);
    this.restore(i);
  }

  /** Entry i's key changed (or it was moved): sift it whichever way is needed. */
  private restore(i: number): void {
    const owner = this.owners[i];
    const kind = this.kinds[i];
    const deadline = this.deadlines[i];
    const seq = this.seqs[i];
    const parent = (i - 1) >> 1;
    if (i > 0 && before(deadline, seq, this.deadlines[parent], this.seqs[parent])) {
      this.siftUp(i, owner, kind, deadline, seq);
    } else {
      this.siftDown(i, owner, kind, deadline, seq);
    }
  }

  /** Place the given entry at hole i or above, moving later parents down. */
  private siftUp(i: number, owner: T, kind: number, deadline: number, seq: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(deadline, seq, this.deadlines[parent], this.seqs[parent])) break;
      this.moveTo(parent, i);
      i = parent;
    }
    this.put(i, owner, kind, deadline, seq);
  }

  /** Place the given entry at hole i or below, moving earlier children up. */
  private siftDown(i: number, owner: T, kind: number, deadline: number, seq: number): void {
    const n = this.owners.length;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && before(this.deadlines[right], this.seqs[right], this.deadlines[child], this.seqs[child])) {
        child = right;
      }
      if (!before(this.deadlines[child], this.seqs[child], deadline, seq)) break;
      this.moveTo(child, i);
      i = child;
    }
    this.put(i, owner, kind, deadline, seq);
  }

  private moveTo(from: number, to: number): void {
    this.put(to, this.owners[from], this.kinds[from], this.deadlines[from], this.seqs[from]);
  }

  private put(i: number, owner: T, kind: number, deadline: number, seq: number): void {
    this.owners[i] = owner;
    this.kinds[i] = kind;
    this.deadlines[i] = deadline;
    this.seqs[i] = seq;
    owner.timerIndex[kind] = i;
  }

  private ensureCapacity(n: number): void {
    if (n <= this.deadlines.length) return;
    const capacity = Math.max(n, this.deadlines.length * 2);
    const kinds = new Uint8Array(capacity);
    const deadlines = new Float64Array(capacity);
    const seqs = new Float64Array(capacity);
    kinds.set(this.kinds);
    deadlines.set(this.deadlines);
    seqs.set(this.seqs);
    this.kinds = kinds;
    this.deadlines = deadlines;
    this.seqs = seqs;
  }
}

/** Heap order: earlier deadline first, then earlier arming. */
function before(deadlineA: number, seqA: number, deadlineB: number, seqB: number): boolean {
  return deadlineA < deadlineB || (deadlineA === deadlineB && seqA < seqB);
}
