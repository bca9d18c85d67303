// An in-process Ethernet switch joining several stacks (docs/architecture.md section 6),
// with per-link fault injection driven by a seeded PRNG, for tests and
// benchmarks. It runs on any Clock; on a VirtualClock a lossy, delayed,
// bandwidth-limited run is deterministic and instant.
//
// Model. Each port is a device (NetDevice) on a cable to the switch. The cable
// has two directions, called from the device's side:
//   tx: device -> switch (frames the device sends),
//   rx: switch -> device (frames delivered to it).
// A frame from port A to port B crosses A's tx direction, the switch (learning,
// forwarding, flooding) and B's rx direction. Each direction applies its own
// faults in this order: size checks (runt, MTU), loss, the port's memory bound,
// serialization (bandwidth, bounded queue, tail drop), fixed delay + jitter,
// corruption, an extra hold-back that reorders, duplication.
//
// Frames are copied into the switch's own (pooled) buffers on send; delivery is
// always asynchronous: one Alarm for the whole switch, moved to the earliest
// frame in transit, never a call into a receiver from inside send().

import type { Alarm, Clock } from '../clock.js';
import type { NetDevice } from '../netdev.js';
import { Prng } from './prng.js';

// ---- public types -----------------------------------------------------------

/** Faults of one direction of a port's cable. All optional; absent = none. */
export interface LinkFaults {
  /** Probability in [0, 1] that a frame is lost. 1 cuts the link. */
  loss?: number;
  /** Probability that a frame arrives twice (the copy right after it). */
  duplicate?: number;
  /** Probability that a frame is held back by `reorderDelay`, so later frames overtake it. */
  reorder?: number;
  /** Hold-back of a reordered frame in ms (default 1). */
  reorderDelay?: number;
  /** Fixed one-way latency in ms. */
  delay?: number;
  /** Extra latency drawn uniformly from [0, jitter) ms per frame (may reorder). */
  jitter?: number;
  /** Probability that one random byte after the Ethernet header has random bits
   *  flipped (1..8 of them). The Ethernet header is spared so forwarding is
   *  unaffected; IPv4/TCP/UDP checksums must catch the damage. */
  corrupt?: number;
  /** Line rate in bits/s (0 or absent = unlimited). Frames are serialized one at
   *  a time (frame bytes only, no preamble or gap) behind a queue of `queueBytes`. */
  bandwidth?: number;
  /** Bound of the serialization queue in bytes (default 128 KiB); beyond it, tail drop. */
  queueBytes?: number;
  /** IP MTU of this direction (default: the port's MTU). Larger packets are dropped. */
  mtu?: number;
}

export type FaultDirection = 'tx' | 'rx' | 'both';

export interface PortOptions {
  /** 6 bytes; default 02:00:00:00:hh:ll with hhll = port index + 1. */
  mac?: Uint8Array;
  /** IP MTU (default 1500). The device accepts frames up to mtu + 14 bytes. */
  mtu?: number;
  /** Faults of both directions. */
  faults?: LinkFaults;
  /** Faults of the device -> switch direction (overrides `faults`). */
  txFaults?: LinkFaults;
  /** Faults of the switch -> device direction (overrides `faults`). */
  rxFaults?: LinkFaults;
  /** Bound on bytes of this port's frames held in the switch (both directions). */
  maxQueuedBytes?: number;
  /** Deliver in batches (NetDevice.setBatchEnd): the frames one turn of the
   *  switch hands the port are a batch, ended after the turn, as a device
   *  draining its ring would. Default false: every frame on its own. */
  batches?: boolean;
}

export type DropReason = 'loss' | 'queueFull' | 'mtu' | 'noReceiver' | 'runt';

export interface PortCounters {
  /** Frames (and their bytes) the device sent into the switch. */
  framesIn: number;
  bytesIn: number;
  /** Frames (and their bytes) delivered to the device's receiver. */
  framesOut: number;
  bytesOut: number;
  /** Frames dropped in either direction of this port's cable, by reason. */
  dropped: Record<DropReason, number>;
  duplicated: number;
  corrupted: number;
  reordered: number;
}

/** What a fault did to which frame, for tests and debugging (VSwitchOptions.onFault). */
export interface FaultEvent {
  port: number;
  dir: 'tx' | 'rx';
  kind: DropReason | 'corrupt' | 'duplicate' | 'reorder';
  /** Frame length. */
  length: number;
  /** For 'corrupt': the byte offset and the XOR mask applied to it. */
  offset?: number;
  mask?: number;
}

/** A capture point (a PcapWriter fits). The frame view is valid during the call only. */
export interface PacketTap {
  write(frame: Uint8Array, wallMs: number): void;
}

/** 'delivered': every frame handed to a receiver (after faults; a flooded frame
 *  once per port). 'sent': every frame as a device sent it (before faults). */
export type TapMode = 'delivered' | 'sent';

export interface VSwitchOptions {
  /** PRNG seed of all fault decisions (default 1). */
  seed?: number;
  /** Default PortOptions.maxQueuedBytes (default 16 MiB). */
  maxQueuedBytes?: number;
  tap?: PacketTap;
  tapMode?: TapMode;
  onFault?: (event: FaultEvent) => void;
}

/** A port: the NetDevice a stack uses, plus the test's handles on its cable. */
export interface VSwitchPort extends NetDevice {
  readonly index: number;
  /** Live counters of this port. */
  readonly counters: Readonly<PortCounters>;
  /** Bytes of this port's frames now held in the switch (both directions). */
  readonly heldBytes: number;
  /** Replace the faults of one or both directions (takes effect for frames
   *  entering that direction from now on; frames in flight keep their fate). */
  setFaults(faults: LinkFaults, dir?: FaultDirection): void;
  getFaults(dir: 'tx' | 'rx'): Readonly<LinkFaults>;
}

// ---- constants ---------------------------------------------------------------

const ETH_HEADER = 14;
const ETHERTYPE_VLAN = 0x8100;
const DEFAULT_MTU = 1500;
const DEFAULT_QUEUE_BYTES = 128 * 1024;
const DEFAULT_MAX_QUEUED_BYTES = 16 * 1024 * 1024;
const DEFAULT_REORDER_DELAY_MS = 1;
/** Learned addresses kept; past it the table is cleared (frames flood until
 *  relearned), which bounds memory against random source addresses. */
const MAC_TABLE_LIMIT = 4096;
/** Frames processed per alarm beyond those due at its start; stacks replying at
 *  the same instant are served in the same firing, but a ping-pong without end
 *  yields back to the clock (which can then notice the livelock). */
const BURST_ALLOWANCE = 4096;

// ---- the switch ----------------------------------------------------------------

export class VSwitch {
  private readonly portList: Port[] = [];
  private readonly macTable = new Map<number, Port>();
  private readonly transit = new TransitHeap();
  private readonly pool = new FramePool();
  private readonly alarm: Alarm;
  private alarmAt = Infinity;
  private processing = false;
  /** Batching ports handed frames in the current turn (endBatches). */
  private readonly batched: Port[] = [];
  private seq = 0;
  private readonly seed: number;
  private readonly defaultMaxQueued: number;
  private tap: PacketTap | undefined;
  private tapMode: TapMode;
  private readonly onFault: ((event: FaultEvent) => void) | undefined;

  constructor(
    readonly clock: Clock,
    opts: VSwitchOptions = {},
  ) {
    this.seed = opts.seed ?? 1;
    this.defaultMaxQueued = opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.tap = opts.tap;
    this.tapMode = opts.tapMode ?? 'delivered';
    this.onFault = opts.onFault;
    this.alarm = clock.createAlarm(() => this.onAlarm());
  }

  /** Add a port and return its device. */
  attach(opts: PortOptions = {}): VSwitchPort {
    const index = this.portList.length;
    const mac = opts.mac ? Uint8Array.from(opts.mac) : defaultMac(index);
    if (mac.length !== 6) throw new RangeError('VSwitch.attach: a MAC address has 6 bytes');
    const mtu = opts.mtu ?? DEFAULT_MTU;
    if (!(mtu >= 68 && mtu <= 65535)) throw new RangeError(`VSwitch.attach: MTU ${mtu}`);
    const laneSeed = (dir: number): number => mixSeed(this.seed, index * 2 + dir);
    const port: Port = new Port(
      index,
      mac,
      mtu,
      new Lane('tx', opts.txFaults ?? opts.faults ?? {}, laneSeed(0)),
      new Lane('rx', opts.rxFaults ?? opts.faults ?? {}, laneSeed(1)),
      opts.maxQueuedBytes ?? this.defaultMaxQueued,
      (frame): boolean => this.accept(port, frame),
    );
    if (opts.batches) port.setBatchEnd = (end) => (port.batchEnd = end);
    this.portList.push(port);
    return port;
  }

  /** The port with this index. */
  port(index: number): VSwitchPort {
    const port = this.portList[index];
    if (!port) throw new RangeError(`VSwitch: no port ${index}`);
    return port;
  }

  get ports(): readonly VSwitchPort[] {
    return this.portList;
  }

  /** Frames inside the switch now (in either direction of any cable). */
  get inFlight(): number {
    return this.transit.size;
  }

  /** Start (or with undefined, stop) capturing. */
  setTap(tap: PacketTap | undefined, mode: TapMode = 'delivered'): void {
    this.tap = tap;
    this.tapMode = mode;
  }

  // ---- a device sends ----------------------------------------------------------

  private accept(port: Port, frame: Uint8Array): boolean {
    port.counters.framesIn++;
    port.counters.bytesIn += frame.length;
    if (this.tap && this.tapMode === 'sent') this.tap.write(frame, this.clock.wallNow());
    return this.enter(port, port.tx, frame, false);
  }

  /**
   * A frame enters one direction of `port`'s cable. `owned` frames are pool
   * buffers the switch already holds (passed on without a copy); others are
   * copied. Returns false when dropped for a reason the sender can see (size,
   * full queue); loss is silent, as on a wire.
   */
  private enter(port: Port, lane: Lane, frame: Uint8Array, owned: boolean, len = frame.length): boolean {
    const now = this.clock.now();
    const verdict = this.admit(port, lane, frame, len, now);
    if (typeof verdict === 'string') {
      if (owned) this.pool.give(frame);
      this.dropped(port, lane, verdict, len);
      return verdict === 'loss';
    }
    const f = lane.faults;
    const buf = owned ? frame : this.pool.copy(frame, len);
    let at = verdict + f.delay;
    if (f.jitter > 0) at += lane.rng.float() * f.jitter;
    if (f.corrupt > 0 && lane.rng.float() < f.corrupt) this.corrupt(port, lane, buf, len);
    if (f.reorder > 0 && lane.rng.float() < f.reorder) {
      at += f.reorderDelay;
      port.counters.reordered++;
      this.report(port, lane, 'reorder', len);
    }
    const toSwitch = lane.dir === 'tx';
    this.schedule(at, buf, len, port, toSwitch);
    if (f.duplicate > 0 && lane.rng.float() < f.duplicate) {
      port.counters.duplicated++;
      this.report(port, lane, 'duplicate', len);
      this.schedule(at, this.pool.copy(buf, len), len, port, toSwitch);
    }
    return true;
  }

  /** The time the frame is off the serializer, or why it is dropped. */
  private admit(port: Port, lane: Lane, frame: Uint8Array, len: number, now: number): number | DropReason {
    if (len < ETH_HEADER) return 'runt';
    const mtu = lane.faults.mtu > 0 ? lane.faults.mtu : port.mtu;
    if (ipLength(frame, len) > mtu) return 'mtu';
    if (lane.faults.loss > 0 && lane.rng.float() < lane.faults.loss) return 'loss';
    if (port.held + len > port.maxQueuedBytes) return 'queueFull';
    if (lane.faults.bandwidth > 0) {
      const done = lane.serialize(len, now);
      return done < 0 ? 'queueFull' : done;
    }
    return now;
  }

  private corrupt(port: Port, lane: Lane, buf: Uint8Array, len: number): void {
    const first = len > ETH_HEADER ? ETH_HEADER : 0;
    const offset = first + lane.rng.int(len - first);
    const mask = 1 + lane.rng.int(255);
    buf[offset] ^= mask;
    port.counters.corrupted++;
    if (this.onFault) this.onFault({ port: port.index, dir: lane.dir, kind: 'corrupt', length: len, offset, mask });
  }

  private dropped(port: Port, lane: Lane, reason: DropReason, len: number): void {
    port.counters.dropped[reason]++;
    this.report(port, lane, reason, len);
  }

  private report(port: Port, lane: Lane, kind: FaultEvent['kind'], length: number): void {
    if (this.onFault) this.onFault({ port: port.index, dir: lane.dir, kind, length });
  }

  // ---- time passes -------------------------------------------------------------

  private schedule(at: number, buf: Uint8Array, len: number, port: Port, toSwitch: boolean): void {
    this.transit.push(new Transit(at, this.seq++, buf, len, port, toSwitch));
    port.held += len;
    // While the alarm handler runs, it re-arms once at its end.
    if (!this.processing && at < this.alarmAt) {
      this.alarmAt = at;
      this.alarm.reschedule(at);
    }
  }

  private onAlarm(): void {
    this.alarmAt = Infinity;
    this.processing = true;
    const now = this.clock.now();
    let budget = this.transit.size + BURST_ALLOWANCE;
    try {
      // Frames scheduled by receivers for <= now (a reply at zero delay) are
      // served in the same loop, in time order.
      while (budget-- > 0) {
        const next = this.transit.peek();
        if (next === undefined || next.at > now) break;
        this.transit.pop();
        next.port.held -= next.len;
        if (next.toSwitch) this.forward(next);
        else this.deliver(next);
      }
    } finally {
      this.processing = false;
      this.endBatches();
      this.armAlarm();
    }
  }

  /** Tell every batching port that was handed frames in this turn that its batch ended. */
  private endBatches(): void {
    if (this.batched.length === 0) return;
    // What the ends send is scheduled, not delivered: no port joins meanwhile.
    // Should one end throw, the stacks after it finish at their next alarm.
    const ports = this.batched.splice(0);
    for (const port of ports) port.inBatch = false;
    for (const port of ports) port.batchEnd?.();
  }

  private armAlarm(): void {
    const next = this.transit.peek()?.at ?? Infinity;
    if (next === this.alarmAt) return;
    this.alarmAt = next;
    if (next === Infinity) this.alarm.cancel();
    else this.alarm.reschedule(next);
  }

  // ---- the switch proper ---------------------------------------------------------

  /** A frame reached the switch: learn its source, pass it to its destination's
   *  rx direction, or flood it to every other port. */
  private forward(frame: Transit): void {
    const from = frame.port;
    const { buf, len } = frame;
    this.learn(buf, from);
    const dest = buf[0] & 1 ? undefined : this.macTable.get(macKey(buf, 0));
    if (dest !== undefined) {
      if (dest === from) this.pool.give(buf); // already on the right segment: filtered
      else this.enter(dest, dest.rx, buf, true, len);
      return;
    }
    let last: Port | undefined;
    for (const port of this.portList) {
      if (port === from) continue;
      if (last) this.enter(last, last.rx, buf, false, len);
      last = port;
    }
    // The last target takes the buffer itself.
    if (last) this.enter(last, last.rx, buf, true, len);
    else this.pool.give(buf);
  }

  private learn(buf: Uint8Array, from: Port): void {
    if (buf[6] & 1) return; // a group address is never a source
    const key = macKey(buf, 6);
    if (this.macTable.get(key) === from) return;
    if (this.macTable.size >= MAC_TABLE_LIMIT) this.macTable.clear();
    this.macTable.set(key, from);
  }

  private deliver(frame: Transit): void {
    const { port, buf, len } = frame;
    try {
      if (!port.receiver) {
        this.dropped(port, port.rx, 'noReceiver', len);
        return;
      }
      port.counters.framesOut++;
      port.counters.bytesOut += len;
      const view = buf.subarray(0, len);
      if (this.tap && this.tapMode === 'delivered') this.tap.write(view, this.clock.wallNow());
      if (port.batchEnd && !port.inBatch) {
        port.inBatch = true;
        this.batched.push(port);
      }
      port.receiver(view);
    } finally {
      this.pool.give(buf);
    }
  }
}

// ---- ports and their cables ----------------------------------------------------

class Port implements VSwitchPort {
  receiver: ((frame: Uint8Array) => void) | undefined = undefined;
  /** PortOptions.batches: set by attach(), so that only such a port offers it. */
  setBatchEnd?: (end: () => void) => void;
  batchEnd: (() => void) | undefined = undefined;
  /** Frames were delivered to it in the current turn (on VSwitch.batched). */
  inBatch = false;
  /** Bytes of this port's frames in transit (both directions). */
  held = 0;
  readonly counters: PortCounters = {
    framesIn: 0,
    bytesIn: 0,
    framesOut: 0,
    bytesOut: 0,
    dropped: { loss: 0, queueFull: 0, mtu: 0, noReceiver: 0, runt: 0 },
    duplicated: 0,
    corrupted: 0,
    reordered: 0,
  };

  constructor(
    readonly index: number,
    readonly mac: Uint8Array,
    readonly mtu: number,
    readonly tx: Lane,
    readonly rx: Lane,
    readonly maxQueuedBytes: number,
    private readonly submit: (frame: Uint8Array) => boolean,
  ) {}

  get heldBytes(): number {
    return this.held;
  }

  send(frame: Uint8Array): boolean {
    return this.submit(frame);
  }

  setReceiver(receive: (frame: Uint8Array) => void): void {
    this.receiver = receive;
  }

  setFaults(faults: LinkFaults, dir: FaultDirection = 'both'): void {
    if (dir !== 'rx') this.tx.setFaults(faults);
    if (dir !== 'tx') this.rx.setFaults(faults);
  }

  getFaults(dir: 'tx' | 'rx'): Readonly<LinkFaults> {
    return (dir === 'tx' ? this.tx : this.rx).given;
  }
}

/** LinkFaults with every field filled in. */
type Faults = Required<LinkFaults>;

/** One direction of a cable: its faults, its PRNG stream, its serializer. */
class Lane {
  faults!: Faults;
  given!: Readonly<LinkFaults>;
  readonly rng: Prng;
  /** When the serializer finishes the last accepted frame. */
  private busyUntil = 0;
  /** Frames not yet fully serialized: finish times and sizes, oldest first. */
  private readonly backlog = new NumberQueue();
  private backlogBytes = 0;

  constructor(
    readonly dir: 'tx' | 'rx',
    faults: LinkFaults,
    seed: number,
  ) {
    this.rng = new Prng(seed);
    this.setFaults(faults);
  }

  setFaults(faults: LinkFaults): void {
    this.faults = normalize(faults);
    this.given = Object.freeze({ ...faults });
  }

  /** Queue a frame for the line: returns when its last bit is sent, or -1 when
   *  the queue is full (an idle line takes any frame). */
  serialize(len: number, now: number): number {
    while (this.backlog.length > 0 && this.backlog.peekTime() <= now) {
      this.backlogBytes -= this.backlog.shiftSize();
    }
    if (this.backlogBytes > 0 && this.backlogBytes + len > this.faults.queueBytes) return -1;
    const start = Math.max(now, this.busyUntil);
    this.busyUntil = start + (len * 8 * 1000) / this.faults.bandwidth;
    this.backlog.push(this.busyUntil, len);
    this.backlogBytes += len;
    return this.busyUntil;
  }
}

function normalize(f: LinkFaults): Faults {
  const probability = (name: keyof LinkFaults): number => {
    const v = f[name] ?? 0;
    if (!(v >= 0 && v <= 1)) throw new RangeError(`vswitch fault ${name} = ${v}: a probability is in [0, 1]`);
    return v;
  };
  const amount = (name: keyof LinkFaults, fallback: number): number => {
    const v = f[name] ?? fallback;
    if (!(v >= 0 && v < Infinity)) throw new RangeError(`vswitch fault ${name} = ${v}: must be finite and >= 0`);
    return v;
  };
  return {
    loss: probability('loss'),
    duplicate: probability('duplicate'),
    reorder: probability('reorder'),
    corrupt: probability('corrupt'),
    reorderDelay: amount('reorderDelay', DEFAULT_REORDER_DELAY_MS),
    delay: amount('delay', 0),
    jitter: amount('jitter', 0),
    bandwidth: amount('bandwidth', 0),
    queueBytes: amount('queueBytes', DEFAULT_QUEUE_BYTES),
    mtu: amount('mtu', 0),
  };
}

// ---- frames in transit ---------------------------------------------------------

class Transit {
  constructor(
    readonly at: number,
    readonly seq: number,
    readonly buf: Uint8Array,
    readonly len: number,
    readonly port: Port,
    /** true: on the way into the switch; false: on the way to port's receiver. */
    readonly toSwitch: boolean,
  ) {}
}

/** Min-heap of frames by (time, sequence): equal times keep sending order. */
class TransitHeap {
  private readonly items: Transit[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Transit | undefined {
    return this.items[0];
  }

  push(item: Transit): void {
    const items = this.items;
    let i = items.length;
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!earlier(item, items[parent])) break;
      items[i] = items[parent];
      i = parent;
    }
    items[i] = item;
  }

  pop(): Transit | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= items.length) break;
      if (child + 1 < items.length && earlier(items[child + 1], items[child])) child++;
      if (!earlier(items[child], last)) break;
      items[i] = items[child];
      i = child;
    }
    items[i] = last;
    return top;
  }
}

function earlier(a: Transit, b: Transit): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Reusable frame buffers: a long transfer would otherwise allocate (and make the
 *  collector chase) one ArrayBuffer per frame per hop. */
class FramePool {
  private static readonly SIZE = 2048;
  private static readonly KEEP = 1024;
  private readonly free: Uint8Array[] = [];

  copy(src: Uint8Array, len: number): Uint8Array {
    const buf =
      len <= FramePool.SIZE ? (this.free.pop() ?? new Uint8Array(FramePool.SIZE)) : new Uint8Array(len);
    buf.set(src.subarray(0, len));
    return buf;
  }

  give(buf: Uint8Array): void {
    if (buf.length === FramePool.SIZE && this.free.length < FramePool.KEEP) this.free.push(buf);
  }
}

/** FIFO of (time, size) pairs, compacted as it drains. */
class NumberQueue {
  private times: number[] = [];
  private sizes: number[] = [];
  private head = 0;

  get length(): number {
    return this.times.length - this.head;
  }

  push(time: number, size: number): void {
    this.times.push(time);
    this.sizes.push(size);
  }

  peekTime(): number {
    return this.times[this.head];
  }

  shiftSize(): number {
    const size = this.sizes[this.head++];
    if (this.head >= 1024 && this.head * 2 >= this.times.length) {
      this.times = this.times.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
    return size;
  }
}

// ---- helpers ------------------------------------------------------------------

/** IP packet length of an Ethernet frame (after one 802.1Q tag, if present). */
function ipLength(frame: Uint8Array, len: number): number {
  const tagged = len >= 18 && ((frame[12] << 8) | frame[13]) === ETHERTYPE_VLAN;
  return len - ETH_HEADER - (tagged ? 4 : 0);
}

/** A 48-bit MAC address as an exact number (a Map key without allocation). */
function macKey(b: Uint8Array, off: number): number {
  const high = b[off] * 0x100 + b[off + 1];
  const low = ((b[off + 2] << 24) | (b[off + 3] << 16) | (b[off + 4] << 8) | b[off + 5]) >>> 0;
  return high * 0x1_0000_0000 + low;
}

function defaultMac(index: number): Uint8Array {
  const n = index + 1;
  return Uint8Array.of(0x02, 0, 0, 0, (n >> 8) & 0xff, n & 0xff);
}

/** A seed per cable direction: one port's fault sequence does not depend on
 *  traffic elsewhere. */
function mixSeed(seed: number, stream: number): number {
  return (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca6b)) >>> 0;
}
