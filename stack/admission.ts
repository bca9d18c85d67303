// Admission control: every new connection is decided against what the budget
// can still hold (docs/architecture.md section 4), never discovered by the
// runtime running out of memory.
//
// Two resources are watched:
// - the JS heap, through a HeapProbe the embedder gives (the guest passes V8's
//   heap statistics and a full GC; a browser or a test passes its own, or none).
//   Above the high-water mark the stack admits nothing new; below the
//   low-water mark it admits again. The gap between the two is hysteresis, so
//   a heap hovering at the mark does not flap;
// - the connection table: above `connectionsHighWater` of maxConnections the
//   application is told to shed, well before SYNs start being dropped at
//   maxConnections itself.
// Either one puts the stack under pressure; the application hears each change
// through onChange (the relay sheds its newest unauthenticated peers). Each
// decision is counted.
//
// Measuring the heap. A heap's "used" figure includes garbage not yet
// collected, so a raw sample over the mark may be a false alarm. When the
// probe can collect, a sample over the mark is confirmed by a full collection
// first, at most once per collectEveryMs (a full GC of a 16 MiB heap takes a
// few ms: ten a second, the most a flood can cause, cost a few percent of a
// core). Between two collections raw samples decide, so a refusal may be a
// false alarm for up to collectEveryMs: the peer's SYN comes again. Without
// collect(), raw samples decide.

/** What the embedder tells the stack about its JS heap. */
export interface HeapProbe {
  /** Bytes in use now (live data and garbage not yet collected). */
  used(): number;
  /** Bytes the heap may reach before the runtime fails. */
  limit(): number;
  /** A full collection, after which used() is live data (optional, costly). */
  collect?(): void;
}

export interface AdmissionOptions {
  /** The heap to watch; null: only the connection table is watched. */
  heap: HeapProbe | null;
  /** Fraction of the heap limit above which nothing new is admitted. */
  heapHighWater: number;
  /** Fraction below which admissions resume. */
  heapLowWater: number;
  /** A cached heap sample younger than this (ms) decides without a new one. */
  sampleEveryMs: number;
  /** Least time between two forced collections, ms. */
  collectEveryMs: number;
  /** While under pressure, the heap is sampled again this often (ms), so that
   *  pressure ends even when nothing asks to be admitted. */
  recheckEveryMs: number;
  /** Fraction of maxConnections above which the application is told to shed. */
  connectionsHighWater: number;
  /** Fraction below which that signal ends. */
  connectionsLowWater: number;
}

export const ADMISSION_DEFAULTS: Readonly<Omit<AdmissionOptions, 'heap'>> = Object.freeze({
  // 80%: V8 needs headroom above live data to keep working (a scavenge copies
  // live young objects; a full GC runs before the limit), and a burst of work
  // already admitted (segments in flight, an application's replies) still
  // allocates after the door closes.
  heapHighWater: 0.8,
  heapLowWater: 0.7,
  sampleEveryMs: 1,
  collectEveryMs: 100,
  recheckEveryMs: 250,
  connectionsHighWater: 0.9,
  connectionsLowWater: 0.8,
});

export class AdmissionCounters {
  /** Times the stack went under pressure, and came out of it. */
  pressureEntered = 0;
  pressureLeft = 0;
  /** Admissions refused because the heap was above its high-water mark. */
  refusedHeap = 0;
  /** Full collections forced to confirm a sample over the mark. */
  collections = 0;
  /** Heap samples taken. */
  samples = 0;
}

export interface AdmissionStats {
  /** Under pressure now (heap or connections). */
  pressure: boolean;
  heapPressure: boolean;
  connectionPressure: boolean;
  /** Last heap sample and the marks, bytes (0 without a probe). */
  heapUsed: number;
  heapHighWater: number;
  heapLowWater: number;
  counters: AdmissionCounters;
}

export class Admission {
  readonly counters = new AdmissionCounters();
  /** Called on every change of `pressure`. */
  onChange: ((pressure: boolean) => void) | null = null;
  private heapOver = false;
  private connectionsOver = false;
  private lastSampleAt = -Infinity;
  private lastCollectAt = -Infinity;
  private lastUsed = 0;

  constructor(
    readonly opts: AdmissionOptions,
    private readonly now: () => number,
  ) {
    const { heapHighWater: hi, heapLowWater: lo, connectionsHighWater: chi, connectionsLowWater: clo } = opts;
    if (!(lo > 0 && lo <= hi && hi < 1)) throw new RangeError(`admission: need 0 < heapLowWater <= heapHighWater < 1, got ${lo}, ${hi}`);
    if (!(clo > 0 && clo <= chi && chi <= 1)) {
      throw new RangeError(`admission: need 0 < connectionsLowWater <= connectionsHighWater <= 1, got ${clo}, ${chi}`);
    }
  }

  get pressure(): boolean {
    return this.heapOver || this.connectionsOver;
  }

  /** The heap part of the pressure (the part that needs rechecking on a timer). */
  get heapPressure(): boolean {
    return this.heapOver;
  }

  /** May something new that costs heap (a connection) be admitted now?
   *  Refusals are counted; the caller counts its own drop reason too. */
  admit(): boolean {
    this.checkHeap(false);
    if (!this.heapOver) return true;
    this.counters.refusedHeap++;
    return false;
  }

  /** The timer while under pressure: look at the heap again. Returns whether
   *  the stack is still under pressure (then the caller re-arms). */
  recheck(): boolean {
    this.checkHeap(true);
    return this.pressure;
  }

  /** Live connections changed (cheap: two comparisons). */
  connections(live: number, max: number): void {
    const over = this.connectionsOver
      ? live >= max * this.opts.connectionsLowWater
      : live >= max * this.opts.connectionsHighWater;
    if (over !== this.connectionsOver) this.set(() => (this.connectionsOver = over));
  }

  stats(): AdmissionStats {
    const limit = this.opts.heap?.limit() ?? 0;
    return {
      pressure: this.pressure,
      heapPressure: this.heapOver,
      connectionPressure: this.connectionsOver,
      heapUsed: this.lastUsed,
      heapHighWater: Math.floor(limit * this.opts.heapHighWater),
      heapLowWater: Math.floor(limit * this.opts.heapLowWater),
      counters: { ...this.counters },
    };
  }

  private checkHeap(fresh: boolean): void {
    const heap = this.opts.heap;
    if (!heap) return;
    const now = this.now();
    if (!fresh && now - this.lastSampleAt < this.opts.sampleEveryMs) return;
    let used = this.sample(heap, now);
    const limit = heap.limit();
    const mark = (this.heapOver ? this.opts.heapLowWater : this.opts.heapHighWater) * limit;
    // Over the mark (or still not below the low one): is it garbage?
    if (used >= mark && heap.collect && now - this.lastCollectAt >= this.opts.collectEveryMs) {
      this.lastCollectAt = now;
      this.counters.collections++;
      heap.collect();
      used = this.sample(heap, now);
    }
    const over = used >= mark;
    if (over !== this.heapOver) this.set(() => (this.heapOver = over));
  }

  private sample(heap: HeapProbe, now: number): number {
    this.lastSampleAt = now;
    this.counters.samples++;
    this.lastUsed = heap.used();
    return this.lastUsed;
  }

  /** Apply a change of one of the two flags, counting and telling on a change of `pressure`. */
  private set(change: () => void): void {
    const before = this.pressure;
    change();
    const after = this.pressure;
    if (before === after) return;
    if (after) this.counters.pressureEntered++;
    else this.counters.pressureLeft++;
    this.onChange?.(after);
  }
}
