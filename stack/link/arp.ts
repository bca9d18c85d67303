// ARP (RFC 826) for IPv4 over Ethernet: answers requests for our address,
// keeps a bounded, expiring cache, and holds a bounded queue of outgoing frames
// per destination while it resolves.
//
// An entry still in use when its lifetime ends is not dropped: it is
// re-confirmed by unicast requests to the MAC we know (RFC 1122 2.3.2.1's
// "unicast poll") while frames keep going to that MAC, so a long transfer never
// stalls on re-resolution; only when the neighbour stops answering is it
// forgotten. A full cache evicts an entry unused since it was last confirmed
// before one in use.
//
// Every entry is a pooled object: its timers live in the stack's TimerQueue
// (ArpRetry while resolving, ArpExpire once resolved), its queued frames are
// arena chunks tagged ArpQueue, and release() is the one place an entry ends
// (reply timeout, expiry, eviction, shutdown), freeing all of it.
//
// Queued frames were encoded with a zero destination MAC; when the reply comes
// the 6 destination bytes are patched in place (no checksum covers them).

import type { HotPath } from '../hotpath/engine.js';
import { OwnerKind, ownerTag } from '../hotpath/engine.js';
import { D, E } from '../hotpath/layout.js';
import type { Clock } from '../clock.js';
import { TimerKind, type TimerOwner } from '../layers.js';
import type { TimerQueue } from '../time/timers.js';
import { macHi, macLo, writeMac } from '../address.js';
import { Drop, type DropCounters } from '../stats.js';
import type { Ethernet } from './ethernet.js';

export interface ArpLimits {
  /** Cache entries, resolved and pending together. When full, the oldest entry
   *  unused since its last confirmation is evicted (the oldest of all if none is). */
  arpEntries: number;
  /** Lifetime of a resolved entry (ms) from its last confirmation: an unused one
   *  is then forgotten, one in use is re-confirmed by unicast requests. */
  arpTtlMs: number;
  /** Interval between requests while resolving or re-confirming (ms). */
  arpRetryMs: number;
  /** Requests sent before giving up on a destination (or on re-confirming it). */
  arpTries: number;
  /** Frames queued per pending destination. */
  arpQueuePerEntry: number;
  /** Frames queued over all pending destinations. */
  arpQueueTotal: number;
}

export const ARP_DEFAULTS: ArpLimits = {
  arpEntries: 256,
  arpTtlMs: 60_000,
  arpRetryMs: 1_000,
  arpTries: 3,
  arpQueuePerEntry: 4,
  arpQueueTotal: 64,
};

const ARP_REQUEST = 1;
const ARP_REPLY = 2;
const BROADCAST_HI = 0xffff;
const BROADCAST_LO = 0xffffffff;
const TX_TAG = ownerTag(OwnerKind.Tx, 0);

const enum State {
  Free = 0,
  /** No MAC yet: frames wait in the entry's queue. */
  Pending = 1,
  Resolved = 2,
  /** Lifetime over while in use: the MAC is still used, unicast requests ask the neighbour to confirm it. */
  Probing = 3,
}

/** Entries looked at, oldest first, for one unused since its confirmation before evicting. */
const EVICTION_SCAN = 16;

class ArpEntry {
  readonly slots: Int32Array;
  readonly lens: Int32Array;
  state = State.Free;
  ip = 0;
  macHi = 0;
  macLo = 0;
  queued = 0;
  tries = 0;
  /** A frame went to this MAC since it was last confirmed. */
  used = false;

  constructor(
    readonly id: number,
    /** Its timers' owner id. */
    readonly timerId: number,
    queueBound: number,
  ) {
    this.slots = new Int32Array(queueBound);
    this.lens = new Int32Array(queueBound);
  }
}

function hasMac(entry: ArpEntry): boolean {
  return entry.state === State.Resolved || entry.state === State.Probing;
}

export class Arp {
  /** Pending resolutions (a gauge for stats). */
  pending = 0;
  /** Entries in use being re-confirmed (a gauge for stats). */
  probing = 0;
  /** Frames queued over all entries (a gauge for stats). */
  queued = 0;

  /** Insertion order is age order: the first key is the entry to evict. */
  private readonly cache = new Map<number, ArpEntry>();
  private readonly pool: ArpEntry[] = [];
  /** Every entry made so far, by id - 1 (at most arpEntries: the cache evicts first). */
  private readonly made: ArpEntry[] = [];

  constructor(
    private readonly hot: HotPath,
    private readonly eth: Ethernet,
    private readonly timers: TimerQueue,
    private readonly clock: Clock,
    private readonly drops: DropCounters,
    private readonly address: number,
    private readonly limits: ArpLimits,
    /** The first of limits.arpEntries timer owner ids reserved for the cache. */
    private readonly timerBase: number,
  ) {}

  get entries(): number {
    return this.cache.size;
  }

  /** The resolved MAC of `ip`, or null (diagnostics and tests). */
  macOf(ip: number): Uint8Array | null {
    const entry = this.cache.get(ip);
    if (!entry || !hasMac(entry)) return null;
    const mac = new Uint8Array(6);
    writeMac(mac, 0, entry.macHi, entry.macLo);
    return mac;
  }

  /** Write the destination MAC words of the encode record for next hop `ip`.
   *  Returns false (and writes zeros) when `ip` is not resolved yet: the caller
   *  encodes anyway and hands the frame to enqueue(). Marks the entry used. */
  fillDestination(ip: number): boolean {
    const entry = this.cache.get(ip);
    const req = this.hot.request;
    if (entry !== undefined && hasMac(entry)) {
      entry.used = true;
      req[E.DST_MAC_HI] = entry.macHi;
      req[E.DST_MAC_LO] = entry.macLo;
      return true;
    }
    req[E.DST_MAC_HI] = 0;
    req[E.DST_MAC_LO] = 0;
    return false;
  }

  /** Take ownership of an encoded frame for next hop `ip` until it resolves.
   *  Starts the resolution if none is running. The slot is consumed either way;
   *  false when it was dropped (counted). */
  enqueue(ip: number, slot: number, len: number): boolean {
    let entry = this.cache.get(ip);
    if (entry === undefined) entry = this.startResolving(ip);
    if (hasMac(entry)) {
      entry.used = true;
      writeMac(this.hot.bytes, slot, entry.macHi, entry.macLo);
      return this.eth.send(slot, len);
    }
    if (entry.queued >= entry.slots.length || this.queued >= this.limits.arpQueueTotal) {
      this.hot.free(slot);
      this.drops.count(Drop.ArpQueueFull);
      return false;
    }
    this.hot.setOwner(slot, ownerTag(OwnerKind.ArpQueue, entry.id));
    entry.slots[entry.queued] = slot;
    entry.lens[entry.queued] = len;
    entry.queued++;
    this.queued++;
    return true;
  }

  /** An ARP frame in hot.decoded (RFC 826 "packet reception"). */
  input(): void {
    const d = this.hot.decoded;
    const bytes = this.hot.bytes;
    const shaOff = d[D.ARP_SHA_OFF]!;
    const spa = d[D.ARP_SPA]!;
    const tpa = d[D.ARP_TPA]!;
    if ((bytes[shaOff]! & 1) !== 0) return this.drops.count(Drop.ArpBadSender);
    if (spa === this.address) return this.drops.count(Drop.ArpConflict);
    const hi = macHi(bytes, shaOff);
    const lo = macLo(bytes, shaOff);
    // Merge: refresh a known sender whoever the target is.
    const known = spa !== 0 ? this.cache.get(spa) : undefined;
    if (known !== undefined) this.learn(known, hi, lo);
    if (tpa !== this.address) {
      if (known === undefined) this.drops.count(Drop.ArpNotForUs);
      return;
    }
    // Addressed to us: remember the sender (not for probes, whose sender is 0.0.0.0).
    if (known === undefined && spa !== 0) this.learn(this.newEntry(spa), hi, lo);
    if (d[D.ARP_OP] === ARP_REQUEST) this.transmit(ARP_REPLY, hi, lo, hi, lo, spa);
  }

  /** Gratuitous ARP (an RFC 5227 announcement): a broadcast request for our own address. */
  announce(): void {
    this.transmit(ARP_REQUEST, BROADCAST_HI, BROADCAST_LO, 0, 0, this.address);
  }

  /** Timer expiry dispatched by the stack. */
  onTimer(owner: TimerOwner, kind: number): void {
    const entry = this.made[owner - this.timerBase]!;
    if (kind === TimerKind.ArpExpire) {
      if (!entry.used) return this.release(entry, Drop.ArpGiveUp);
      return this.startProbing(entry);
    }
    if (entry.tries >= this.limits.arpTries) return this.release(entry, Drop.ArpGiveUp);
    entry.tries++;
    if (entry.state === State.Probing) this.transmit(ARP_REQUEST, entry.macHi, entry.macLo, 0, 0, entry.ip);
    else this.request(entry.ip);
    this.timers.arm(entry.timerId, TimerKind.ArpRetry, this.clock.now() + this.limits.arpRetryMs);
  }

  /** Forget every entry and free every queued frame (stack shutdown). */
  clear(): void {
    for (const entry of this.cache.values()) this.release(entry, Drop.ArpGiveUp);
  }

  private startResolving(ip: number): ArpEntry {
    const entry = this.newEntry(ip);
    entry.state = State.Pending;
    entry.tries = 1;
    this.pending++;
    this.request(ip);
    this.timers.arm(entry.timerId, TimerKind.ArpRetry, this.clock.now() + this.limits.arpRetryMs);
    return entry;
  }

  /** Lifetime over while in use: keep the MAC, ask the neighbour to confirm it (unicast). */
  private startProbing(entry: ArpEntry): void {
    entry.state = State.Probing;
    entry.tries = 1;
    this.probing++;
    this.transmit(ARP_REQUEST, entry.macHi, entry.macLo, 0, 0, entry.ip);
    this.timers.arm(entry.timerId, TimerKind.ArpRetry, this.clock.now() + this.limits.arpRetryMs);
  }

  /** Record `hi:lo` for a cache entry, flush what waited for it, restart its lifetime. */
  private learn(entry: ArpEntry, hi: number, lo: number): void {
    entry.macHi = hi;
    entry.macLo = lo;
    if (entry.state === State.Pending || entry.state === State.Probing) {
      if (entry.state === State.Pending) this.pending--;
      else this.probing--;
      this.timers.cancel(entry.timerId, TimerKind.ArpRetry);
    }
    entry.state = State.Resolved;
    entry.used = false;
    this.flush(entry);
    this.timers.arm(entry.timerId, TimerKind.ArpExpire, this.clock.now() + this.limits.arpTtlMs);
    // Move to the young end of the age order.
    this.cache.delete(entry.ip);
    this.cache.set(entry.ip, entry);
  }

  private flush(entry: ArpEntry): void {
    const bytes = this.hot.bytes;
    const n = entry.queued;
    entry.queued = 0;
    this.queued -= n;
    for (let i = 0; i < n; i++) {
      const slot = entry.slots[i]!;
      writeMac(bytes, slot, entry.macHi, entry.macLo);
      this.eth.send(slot, entry.lens[i]!);
    }
  }

  /** A fresh entry for `ip` (state Free), evicting one when the cache is full. */
  private newEntry(ip: number): ArpEntry {
    if (this.cache.size >= this.limits.arpEntries) this.release(this.evictionVictim(), Drop.ArpEvicted);
    const entry = this.pool.pop() ?? this.make();
    entry.ip = ip;
    entry.state = State.Free;
    entry.queued = 0;
    entry.tries = 0;
    entry.used = false;
    this.cache.set(ip, entry);
    return entry;
  }

  private make(): ArpEntry {
    const n = this.made.length;
    const entry = new ArpEntry(n + 1, this.timerBase + n, this.limits.arpQueuePerEntry);
    this.made.push(entry);
    return entry;
  }

  /** Among the oldest few, the first resolved entry unused since its confirmation; else the oldest. */
  private evictionVictim(): ArpEntry {
    let oldest: ArpEntry | undefined;
    let looked = 0;
    for (const entry of this.cache.values()) {
      oldest ??= entry;
      if (entry.state === State.Resolved && !entry.used) return entry;
      if (++looked >= EVICTION_SCAN) break;
    }
    return oldest!;
  }

  /** The one way an entry ends: timers cancelled, queued frames freed (counted as `why`). */
  private release(entry: ArpEntry, why: Drop): void {
    this.timers.cancelAll(entry.timerId);
    for (let i = 0; i < entry.queued; i++) this.hot.free(entry.slots[i]!);
    if (entry.queued > 0) this.drops.count(why, entry.queued);
    this.queued -= entry.queued;
    entry.queued = 0;
    if (entry.state === State.Pending) this.pending--;
    else if (entry.state === State.Probing) this.probing--;
    entry.state = State.Free;
    this.cache.delete(entry.ip);
    this.pool.push(entry);
  }

  private request(tpa: number): void {
    this.transmit(ARP_REQUEST, BROADCAST_HI, BROADCAST_LO, 0, 0, tpa);
  }

  /** Build and send one ARP frame from our addresses. */
  private transmit(op: number, dstHi: number, dstLo: number, thaHi: number, thaLo: number, tpa: number): void {
    const slot = this.hot.alloc(TX_TAG);
    if (slot === 0) return this.drops.count(Drop.TxArenaFull);
    const req = this.hot.request;
    req[E.DST_MAC_HI] = dstHi;
    req[E.DST_MAC_LO] = dstLo;
    req[E.SRC_MAC_HI] = this.eth.macHi;
    req[E.SRC_MAC_LO] = this.eth.macLo;
    req[E.ARP_OP] = op;
    req[E.ARP_SHA_HI] = this.eth.macHi;
    req[E.ARP_SHA_LO] = this.eth.macLo;
    req[E.ARP_SPA] = this.address;
    req[E.ARP_THA_HI] = thaHi;
    req[E.ARP_THA_LO] = thaLo;
    req[E.ARP_TPA] = tpa;
    this.eth.send(slot, this.hot.encodeArp(slot));
  }
}
