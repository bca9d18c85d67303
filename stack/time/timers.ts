// The stack's one timer structure (docs/architecture.md section 5): a binary min-heap of
// (owner, kind, deadline) entries for every timer of every layer of a stack.
//
// Why this shape:
// - No closures: a timer is data (an owner id and a kind number), so an armed
//   timer never captures a connection in a callback; the stack dispatches fired
//   timers by kind, and the layer finds its owner by id.
// - No objects per owner: owners are numbers, fixed at construction: a layer
//   reserves a range of ids (TCP one per control block of its table, ARP one
//   per cache entry, ...). Each (owner, slot) has a word in `positions`
//   holding the entry's heap position (-1 when unarmed), so arm, re-arm and
//   cancel are O(log n) by position. An owner has `slotsPerOwner` slots and
//   kind k uses slot k % slotsPerOwner: the kinds one owner uses never share a
//   slot (ARP's 8 and 9 on its entries, TCP's TIME_WAIT table ...).
// - Positions in the owner's own record where it has one: owners placed with
//   placeInRecords() (TCP's control blocks) keep their position words in
//   their record, so a connection's timers cost no memory outside it. There
//   kinds that never run together share a slot (retransmission and persist,
//   say): arming one displaces the other, and cancelling or asking about a
//   kind the slot does not hold is a no-op.
// - Deterministic: equal deadlines fire in arming order (a sequence number), so a
//   run on the virtual clock repeats exactly.
// - Bounded: the heap holds at most owners x slots entries; its arrays grow
//   with the timers armed at once, never with owners that have none.

import { TimerKind, type TimerOwner } from '../layers.js';

const INITIAL_CAPACITY = 64;

/** Extra firings allowed per expire() call beyond the timers present at its start:
 *  room for callbacks that re-arm for "now", while a callback that always does so
 *  cannot keep expire() spinning forever. */
const REARM_ALLOWANCE = 1024;

/** No owner has its positions in records. */
const NO_RECORDS = 0x7fffffff;

export class TimerQueue {
  /** Heap position of each (owner, slot) below the record owners, -1 when unarmed. */
  positions: Int32Array;
  /** Owners from `recFirst` on keep their positions in records (placeInRecords):
   *  owner o's slot s is recWords[recBase + (o - recFirst) * recStride + s],
   *  holding the heap position + 1 (0 when unarmed: a zeroed record has none). */
  private recFirst = NO_RECORDS;
  private recWords: Int32Array = new Int32Array(0);
  private recBase = 0;
  private recStride = 0;
  /** The record slot of each kind, -1 for kinds a record owner cannot arm. */
  private recSlotOf = new Int8Array(TimerKind.Count).fill(-1);
  private recSlots = 0;
  /** Owners below this have words in `positions`. */
  private positionOwners: number;
  private size_ = 0;
  private owners = new Uint32Array(INITIAL_CAPACITY);
  private kinds = new Uint8Array(INITIAL_CAPACITY);
  private deadlines = new Float64Array(INITIAL_CAPACITY);
  private seqs = new Float64Array(INITIAL_CAPACITY);
  private nextSeq = 0;
  private readonly perKind = new Int32Array(TimerKind.Count);

  /**
   * Timers for owner ids 0..ownerCount-1, `slotsPerOwner` timers each.
   * `positions` may be given (a view of arena memory, say) with room for
   * (ownerCount - recordOwners) x slotsPerOwner words; it is filled with -1.
   * The last `recordOwners` ids keep their positions in records and can arm
   * nothing until placeInRecords() says where.
   */
  constructor(
    public ownerCount: number,
    readonly slotsPerOwner = 8,
    positions?: Int32Array,
    recordOwners = 0,
  ) {
    if (!(Number.isInteger(ownerCount) && ownerCount >= 0 && Number.isInteger(slotsPerOwner) && slotsPerOwner >= 1)) {
      throw new RangeError(`TimerQueue: bad size ${ownerCount} x ${slotsPerOwner}`);
    }
    if (!(Number.isInteger(recordOwners) && recordOwners >= 0 && recordOwners <= ownerCount)) {
      throw new RangeError(`TimerQueue: ${recordOwners} record owners of ${ownerCount}`);
    }
    this.positionOwners = ownerCount - recordOwners;
    const words = this.positionOwners * slotsPerOwner;
    if (positions && positions.length < words) throw new RangeError(`TimerQueue: positions hold ${positions.length} words, ${words} needed`);
    this.positions = positions ?? new Int32Array(words);
    this.positions.fill(-1, 0, words);
  }

  /**
   * Owners first..ownerCount-1 (the last ids) keep their position words in
   * records: owner first + i in the `stride` words at words[base + i * stride],
   * kind k in its word `slotOf[k]` (-1: a kind these owners never arm). Kinds
   * given one word must never need to run together. Call it before any of
   * them arms a timer; their words must be zero.
   */
  placeInRecords(first: number, words: Int32Array, base: number, stride: number, slotOf: readonly number[]): void {
    if (!(Number.isInteger(first) && first >= 0 && first <= this.positionOwners)) {
      throw new RangeError(`TimerQueue.placeInRecords: owners from ${first} must be the last ids (positions cover 0..${this.positionOwners - 1})`);
    }
    for (let i = 0; i < this.size_; i++) {
      if (this.owners[i]! >= first) throw new Error(`TimerQueue.placeInRecords: owner ${this.owners[i]} already has a timer armed`);
    }
    const slots = Math.max(0, ...slotOf) + 1;
    const count = this.ownerCount - first;
    if (count > 0 && base + (count - 1) * stride + slots > words.length) {
      throw new RangeError(`TimerQueue.placeInRecords: ${count} records of ${stride} words from ${base} do not fit`);
    }
    this.recSlotOf.fill(-1);
    slotOf.forEach((slot, kind) => (this.recSlotOf[kind] = slot));
    this.recSlots = slots;
    this.recFirst = first;
    this.recWords = words;
    this.recBase = base;
    this.recStride = stride;
    this.positionOwners = first;
  }

  /** Number of armed timers. */
  get size(): number {
    return this.size_;
  }

  /** Room for owner ids up to `count` - 1 (for owners made as they come: alarms,
   *  an application's objects). The positions array is replaced by a larger one. */
  growOwners(count: number): void {
    if (count <= this.ownerCount) return;
    if (this.recFirst !== NO_RECORDS || this.positionOwners !== this.ownerCount) {
      throw new Error('TimerQueue.growOwners: a queue with record owners does not grow');
    }
    const positions = new Int32Array(count * this.slotsPerOwner).fill(-1);
    positions.set(this.positions.subarray(0, this.ownerCount * this.slotsPerOwner));
    this.positions = positions;
    this.ownerCount = count;
    this.positionOwners = count;
  }

  /** Whether `owner` has any timer armed. */
  hasAny(owner: TimerOwner): boolean {
    if (owner >= this.recFirst) {
      const r = this.recordOf(owner);
      for (let s = 0; s < this.recSlots; s++) if (this.recWords[r + s] !== 0) return true;
      return false;
    }
    const base = this.slotOf(owner, 0);
    for (let s = 0; s < this.slotsPerOwner; s++) if (this.positions[base + s]! >= 0) return true;
    return false;
  }

  /** Arm `owner`'s timer `kind` for monotonic time `deadline` (ms). Re-arming an
   *  armed timer moves it and counts as a new arming for tie-breaking. */
  arm(owner: TimerOwner, kind: TimerKind, deadline: number): void {
    if (Number.isNaN(deadline)) throw new RangeError('TimerQueue.arm: deadline is NaN');
    if (!(kind >= 0 && kind < TimerKind.Count && kind % 1 === 0)) {
      throw new RangeError(`TimerQueue.arm: no timer kind ${kind}`);
    }
    const seq = this.nextSeq++;
    const i = this.positionOf(owner, kind);
    if (i >= 0) {
      if (this.holds(owner, kind, i)) {
        this.deadlines[i] = deadline;
        this.seqs[i] = seq;
        this.restore(i);
        return;
      }
      this.removeAt(i); // a record slot's other kind gives way
    }
    const at = this.size_;
    this.ensureCapacity(at + 1);
    this.size_++;
    this.perKind[kind]++;
    this.siftUp(at, owner, kind, deadline, seq);
  }

  /** Disarm `owner`'s timer `kind`; no effect if it is not armed. */
  cancel(owner: TimerOwner, kind: TimerKind): void {
    const i = this.positionOf(owner, kind);
    if (i >= 0 && this.holds(owner, kind, i)) this.removeAt(i);
  }

  /** Disarm every timer of `owner` (the release path of a connection). */
  cancelAll(owner: TimerOwner): void {
    if (owner >= this.recFirst) {
      const r = this.recordOf(owner);
      for (let s = 0; s < this.recSlots; s++) {
        const i = this.recWords[r + s]! - 1;
        if (i >= 0) this.removeAt(i);
      }
      return;
    }
    const base = this.slotOf(owner, 0);
    for (let s = 0; s < this.slotsPerOwner; s++) {
      const i = this.positions[base + s]!;
      if (i >= 0) this.removeAt(i);
    }
  }

  isArmed(owner: TimerOwner, kind: TimerKind): boolean {
    const i = this.positionOf(owner, kind);
    return i >= 0 && this.kinds[i] === kind;
  }

  /** The deadline of an armed timer, Infinity when unarmed. */
  deadlineOf(owner: TimerOwner, kind: TimerKind): number {
    const i = this.positionOf(owner, kind);
    return i >= 0 && this.kinds[i] === kind ? this.deadlines[i]! : Infinity;
  }

  /** Armed timers of one kind (for stack.stats()). */
  countByKind(kind: TimerKind): number {
    return this.perKind[kind]!;
  }

  /** The earliest deadline, Infinity when no timer is armed. */
  nextDeadline(): number {
    return this.size_ > 0 ? this.deadlines[0]! : Infinity;
  }

  /**
   * Fire every timer whose deadline is <= now, earliest first (ties in arming
   * order). Each timer is removed before its callback runs, so the callback may
   * re-arm it. Timers armed during the call for <= now fire in the same call, up
   * to a bound of (timers at the start + 1024) firings, after which it returns
   * and the caller runs it again on its next turn. Returns the number fired.
   * If a callback throws, the timers not yet fired stay armed.
   */
  expire(now: number, fire: (owner: TimerOwner, kind: TimerKind) => void): number {
    const limit = this.size_ + REARM_ALLOWANCE;
    let fired = 0;
    while (fired < limit && this.size_ > 0 && this.deadlines[0]! <= now) {
      const owner = this.owners[0]!;
      const kind = this.kinds[0] as TimerKind;
      this.removeAt(0);
      fired++;
      fire(owner, kind);
    }
    return fired;
  }

  // ---- heap internals -------------------------------------------------------

  /** The heap position of (owner, kind)'s slot, -1 when it holds nothing. */
  private positionOf(owner: TimerOwner, kind: number): number {
    if (owner >= this.recFirst) return this.recWords[this.recordOf(owner) + this.recSlot(kind)]! - 1;
    return this.positions[this.slotOf(owner, kind)]!;
  }

  /** Set (owner, kind)'s slot to heap position i (-1: none). */
  private setPosition(owner: number, kind: number, i: number): void {
    if (owner >= this.recFirst) {
      this.recWords[this.recBase + (owner - this.recFirst) * this.recStride + this.recSlotOf[kind]!] = i + 1;
    } else {
      this.positions[owner * this.slotsPerOwner + (kind % this.slotsPerOwner)] = i;
    }
  }

  /** The positions word of (owner, kind); an owner outside the range is a bug. */
  private slotOf(owner: TimerOwner, kind: number): number {
    if (!(owner >= 0 && owner < this.positionOwners && owner % 1 === 0)) {
      throw new RangeError(`TimerQueue: no owner ${owner} (ids 0..${this.positionOwners - 1})`);
    }
    return owner * this.slotsPerOwner + (kind % this.slotsPerOwner);
  }

  /** First word of a record owner's slots. */
  private recordOf(owner: TimerOwner): number {
    if (!(owner < this.ownerCount && owner % 1 === 0)) {
      throw new RangeError(`TimerQueue: no owner ${owner} (ids 0..${this.ownerCount - 1})`);
    }
    return this.recBase + (owner - this.recFirst) * this.recStride;
  }

  private recSlot(kind: number): number {
    const slot = this.recSlotOf[kind]!;
    if (slot < 0) throw new RangeError(`TimerQueue: owners in records have no slot for kind ${kind}`);
    return slot;
  }

  /**
   * Whether heap entry i, found in (owner, kind)'s slot, is that timer. In a
   * record slot another kind may hold it (kinds that share a slot). Elsewhere
   * a slot shared by two kinds of one owner is a bug, refused: a silent
   * mismatch would corrupt both.
   */
  private holds(owner: TimerOwner, kind: TimerKind, i: number): boolean {
    if (this.owners[i] === owner && this.kinds[i] === kind) return true;
    if (this.owners[i] === owner && owner >= this.recFirst) return false;
    throw new Error(`TimerQueue: owner ${owner}'s slot for kind ${kind} points at entry ${i} of owner ${this.owners[i]}, kind ${this.kinds[i]}`);
  }

  private removeAt(i: number): void {
    const owner = this.owners[i]!;
    const kind = this.kinds[i]!;
    this.setPosition(owner, kind, -1);
    this.perKind[kind]!--;
    const last = --this.size_;
    if (i === last) return;
    // Move the last entry into the hole and restore heap order from there.
    this.put(i, this.owners[last]!, this.kinds[last]!, this.deadlines[last]!, this.seqs[last]!);
    this.restore(i);
  }

  /** Entry i's key changed (or it was moved): sift it whichever way is needed. */
  private restore(i: number): void {
    const owner = this.owners[i]!;
    const kind = this.kinds[i]!;
    const deadline = this.deadlines[i]!;
    const seq = this.seqs[i]!;
    const parent = (i - 1) >> 1;
    if (i > 0 && before(deadline, seq, this.deadlines[parent]!, this.seqs[parent]!)) {
      this.siftUp(i, owner, kind, deadline, seq);
    } else {
      this.siftDown(i, owner, kind, deadline, seq);
    }
  }

  /** Place the given entry at hole i or above, moving later parents down. */
  private siftUp(i: number, owner: number, kind: number, deadline: number, seq: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(deadline, seq, this.deadlines[parent]!, this.seqs[parent]!)) break;
      this.moveTo(parent, i);
      i = parent;
    }
    this.put(i, owner, kind, deadline, seq);
  }

  /** Place the given entry at hole i or below, moving earlier children up. */
  private siftDown(i: number, owner: number, kind: number, deadline: number, seq: number): void {
    const n = this.size_;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && before(this.deadlines[right]!, this.seqs[right]!, this.deadlines[child]!, this.seqs[child]!)) {
        child = right;
      }
      if (!before(this.deadlines[child]!, this.seqs[child]!, deadline, seq)) break;
      this.moveTo(child, i);
      i = child;
    }
    this.put(i, owner, kind, deadline, seq);
  }

  private moveTo(from: number, to: number): void {
    this.put(to, this.owners[from]!, this.kinds[from]!, this.deadlines[from]!, this.seqs[from]!);
  }

  private put(i: number, owner: number, kind: number, deadline: number, seq: number): void {
    this.owners[i] = owner;
    this.kinds[i] = kind;
    this.deadlines[i] = deadline;
    this.seqs[i] = seq;
    this.setPosition(owner, kind, i);
  }

  private ensureCapacity(n: number): void {
    if (n <= this.deadlines.length) return;
    const capacity = Math.max(n, this.deadlines.length * 2);
    const owners = new Uint32Array(capacity);
    const kinds = new Uint8Array(capacity);
    const deadlines = new Float64Array(capacity);
    const seqs = new Float64Array(capacity);
    owners.set(this.owners);
    kinds.set(this.kinds);
    deadlines.set(this.deadlines);
    seqs.set(this.seqs);
    this.owners = owners;
    this.kinds = kinds;
    this.deadlines = deadlines;
    this.seqs = seqs;
  }
}

/** Heap order: earlier deadline first, then earlier arming. */
function before(deadlineA: number, seqA: number, deadlineB: number, seqB: number): boolean {
  return deadlineA < deadlineB || (deadlineA === deadlineB && seqA < seqB);
}

/**
 * Hands out owner ids of one TimerQueue to the layers of a stack: each layer
 * reserves the range it needs at construction (TCP one id per control block,
 * ARP one per cache entry, ...). The stack sums the ranges first, so the
 * queue is made once with room for all of them.
 */
export class TimerIds {
  private next = 0;

  constructor(readonly total: number) {}

  /** The first of `count` consecutive ids. */
  reserve(count: number): number {
    const first = this.next;
    if (first + count > this.total) throw new RangeError(`TimerIds: ${count} more ids do not fit in ${this.total} (${first} taken)`);
    this.next = first + count;
    return first;
  }
}
