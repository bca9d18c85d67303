// The Stack: one network interface with its layers composed (Ethernet, ARP,
// IPv4 with ICMP and reassembly, UDP, TCP), one TimerQueue for all of their
// timers, one Alarm on the clock, and stats().
//
// Time: every layer arms timers in the one queue, keyed by (owner, kind). The
// queue is wrapped so that arming a timer earlier than the alarm pulls the
// alarm in, whoever arms it (input, an expiring timer, or an application call
// such as connect() or send()); after input and expiry the alarm is set to the
// queue's next deadline exactly. Expired timers are dispatched by kind range.

import type { HotPath } from './hotpath/engine.js';
import { OWNER_KIND_NAMES, OwnerKind } from './hotpath/engine.js';
import { releaseRegion, takeRegion } from './arena-region.js';
import { CHUNK_SIZE, IPPROTO_TCP, IPPROTO_UDP } from './hotpath/layout.js';
import type { Alarm, Clock } from './clock.js';
import type { NetDevice } from './netdev.js';
import { TimerKind, type TimerOwner } from './layers.js';
import { TimerIds, TimerQueue } from './time/timers.js';
import { IPV4_BROADCAST, formatIpv4, isMulticast, toIpv4, type Ipv4Input } from './address.js';
import { DropCounters, type ArenaStats, type StackStats, type TimerStats } from './stats.js';
import { Ethernet } from './link/ethernet.js';
import { ARP_DEFAULTS, Arp, type ArpLimits } from './link/arp.js';
import { Ipv4 } from './ip/ipv4.js';
import { ICMP_DEFAULTS, type IcmpLimits } from './ip/icmp.js';
import { FRAGMENT_DEFAULTS, type FragmentLimits } from './ip/fragments.js';
import { UDP_DEFAULTS, Udp, type UdpLimits } from './udp/udp.js';
import { Tcp, tcpTimerOwners } from './tcp/tcp.js';
import { resolveOptions as resolveTcpOptions, type TcpOptions } from './tcp/options.js';
import { ADMISSION_DEFAULTS, Admission, type AdmissionOptions } from './admission.js';

export interface StackLimits extends ArpLimits, FragmentLimits, IcmpLimits, UdpLimits {
  /** TTL of the datagrams we send. */
  ttl: number;
  /** Gratuitous ARP announcements at start (RFC 5227 ANNOUNCE_NUM). */
  arpAnnouncements: number;
  /** Interval between them, ms (RFC 5227 ANNOUNCE_INTERVAL). */
  arpAnnounceIntervalMs: number;
}

export const STACK_DEFAULTS: StackLimits = {
  ...ARP_DEFAULTS,
  ...FRAGMENT_DEFAULTS,
  ...ICMP_DEFAULTS,
  ...UDP_DEFAULTS,
  ttl: 64,
  arpAnnouncements: 2,
  arpAnnounceIntervalMs: 2_000,
};

export interface StackOptions {
  device: NetDevice;
  hotpath: HotPath;
  clock: Clock;
  /** `transparent`: a proxy's interface, whose connections may speak for
   *  other addresses (Ipv4Config.transparent; ConnectOptions.localAddress). */
  ipv4: { address: Ipv4Input; prefix: number; gateway?: Ipv4Input | null; transparent?: boolean };
  tcp?: Partial<TcpOptions>;
  limits?: Partial<StackLimits>;
  /** Admission control (stack/admission.ts): the heap to watch and the marks.
   *  Without a heap probe only the connection table is watched. */
  admission?: Partial<AdmissionOptions>;
}

/** Bounds that size a table or a retry count cannot be 0; the rest may be. */
const AT_LEAST_ONE: readonly (keyof StackLimits)[] = ['arpEntries', 'arpTries', 'fragDatagrams', 'ttl'];

function resolveLimits(partial: Partial<StackLimits> = {}): StackLimits {
  const limits = { ...STACK_DEFAULTS, ...partial };
  for (const [name, value] of Object.entries(limits) as [keyof StackLimits, number][]) {
    const integral = name !== 'icmpRatePerSec';
    const min = AT_LEAST_ONE.includes(name) ? 1 : 0;
    if (!Number.isFinite(value) || value < min || (integral && !Number.isInteger(value))) {
      throw new RangeError(`stack limit ${name} must be ${integral ? 'an integer' : 'a number'} >= ${min}, got ${value}`);
    }
  }
  if (limits.ttl > 255) throw new RangeError(`stack limit ttl must be <= 255, got ${limits.ttl}`);
  return limits;
}

/** Timer slots per owner outside the control blocks (kind % 8: TIME_WAIT, ARP, fragments, the stack). */
const TIMER_SLOTS = 8;
/** Owner id of the timers' table region (the control block table is 1). */
const TIMER_REGION_ID = 2;

/** The timer queue, telling the stack about each arming so its alarm is never late. */

class StackTimers extends TimerQueue {
  constructor(
    owners: number,
    private readonly armed: (deadline: number) => void,
    positions: Int32Array,
    recordOwners: number,
  ) {
    super(owners, TIMER_SLOTS, positions, recordOwners);
  }

  override arm(owner: TimerOwner, kind: TimerKind, deadline: number): void {
    super.arm(owner, kind, deadline);
    this.armed(deadline);
  }
}

export class Stack {
  /** Owner id of the stack's own timers (housekeeping, pressure recheck). */
  private readonly timerId: TimerOwner;
  readonly hot: HotPath;
  readonly clock: Clock;
  readonly device: NetDevice;
  /** Our IPv4 address, prefix length and gateway (0 = none), as u32s. */
  readonly address: number;
  readonly prefix: number;
  readonly gateway: number;
  readonly limits: StackLimits;
  readonly timers: TimerQueue;
  readonly drops = new DropCounters();
  readonly ethernet: Ethernet;
  readonly arp: Arp;
  readonly ipv4: Ipv4;
  readonly udp: Udp;
  readonly tcp: Tcp;
  /** What decides admissions; `stack.admission.pressure` is the signal. */
  readonly admission: Admission;
  /** Called when the stack goes under pressure (true) and out of it (false):
   *  the heap above its high-water mark or the connection table nearly full.
   *  An application sheds what it can (idle, unauthenticated peers first). */
  onPressure: ((pressure: boolean) => void) | null = null;

  private readonly alarm: Alarm;
  private alarmAt = Infinity;
  private announcementsLeft: number;
  private down = false;

  constructor(opts: StackOptions) {
    this.hot = opts.hotpath;
    this.clock = opts.clock;
    this.device = opts.device;
    this.limits = resolveLimits(opts.limits);
    this.address = toIpv4(opts.ipv4.address);
    if (this.address === 0 || this.address === IPV4_BROADCAST || isMulticast(this.address)) {
      throw new RangeError(`stack: ${formatIpv4(this.address)} cannot be an interface address`);
    }
    this.prefix = opts.ipv4.prefix;
    this.gateway = opts.ipv4.gateway == null ? 0 : toIpv4(opts.ipv4.gateway);
    this.alarm = this.clock.createAlarm(this.onAlarm);
    const tcpOptions = resolveTcpOptions(opts.tcp, this.hot.buffer.byteLength);
    // Owner ids: the stack's own, then each layer's range.
    const ids = new TimerIds(1 + this.limits.arpEntries + this.limits.fragDatagrams + tcpTimerOwners(tcpOptions));
    this.timerId = ids.reserve(1);
    // Position words of the timers: the control blocks keep theirs in their
    // records (the last ids, placed by Tcp); the other owners' are a small
    // table region of the arena, fixed at boot.
    const recordOwners = tcpOptions.maxConnections;
    const words = (ids.total - recordOwners) * TIMER_SLOTS;
    const positions = takeRegion(this.hot, words * 4, TIMER_REGION_ID);
    this.timers = new StackTimers(ids.total, this.onArm, new Int32Array(this.hot.buffer, positions.offset, words), recordOwners);
    this.admission = new Admission({ ...ADMISSION_DEFAULTS, heap: null, ...opts.admission }, () => this.clock.now());
    this.admission.onChange = this.pressureChanged;

    this.ethernet = new Ethernet(this.hot, this.device, this.drops);
    this.arp = new Arp(this.hot, this.ethernet, this.timers, this.clock, this.drops, this.address, this.limits, ids.reserve(this.limits.arpEntries));
    this.ipv4 = new Ipv4(
      this.hot,
      this.clock,
      this.ethernet,
      this.arp,
      this.timers,
      this.drops,
      {
        address: this.address,
        prefix: this.prefix,
        gateway: this.gateway,
        ttl: this.limits.ttl,
        transparent: opts.ipv4.transparent === true,
      },
      this.limits,
      ids.reserve(this.limits.fragDatagrams),
    );
    this.ethernet.registerArp(this.arp);
    this.ethernet.registerIpv4(this.ipv4);
    this.udp = new Udp(this.ipv4, this.drops, this.limits);
    this.ipv4.register(IPPROTO_UDP, this.udp);
    try {
      this.tcp = new Tcp(this.ipv4, this.timers, tcpOptions, this.admission, ids.reserve(tcpTimerOwners(tcpOptions)));
    } catch (err) {
      releaseRegion(this.hot, positions); // no room for the control block table: nothing kept
      throw err;
    }
    this.ipv4.register(IPPROTO_TCP, this.tcp);
    this.ipv4.icmp.registerErrorSink(IPPROTO_TCP, this.tcp);
    this.ethernet.registerFast(this.tcp.fastReceiver);

    this.device.setReceiver(this.receive);
    if (this.device.setBatchEnd) {
      this.device.setBatchEnd(this.batchEnd);
      this.tcp.setBatching(true);
    }
    this.announcementsLeft = this.limits.arpAnnouncements;
    this.housekeeping();
  }

  /** Exact and cheap: counters and gauges only, no walk over connections or tables. */
  stats(): StackStats {
    return {
      arena: this.arenaStats(),
      tcp: this.tcp.stats(),
      udp: { sockets: this.udp.socketCount, queued: this.udp.queued, queuedBytes: this.udp.queuedBytes },
      arp: { entries: this.arp.entries, pending: this.arp.pending, probing: this.arp.probing, queued: this.arp.queued },
      fragments: { datagrams: this.ipv4.fragments.datagrams, chunks: this.ipv4.fragments.chunks },
      timers: this.timerStats(),
      frames: { rx: this.ethernet.framesRx, tx: this.ethernet.framesTx },
      icmp: { echoReplies: this.ipv4.icmp.echoReplies, unreachables: this.ipv4.icmp.unreachables, errorsIn: this.ipv4.icmp.errorsIn },
      drops: this.drops.snapshot(),
      admission: this.admission.stats(),
    };
  }

  /** End everything: TCP connections through TCP's release path, UDP sockets,
   *  ARP entries and queues, reassemblies, timers and the alarm. Afterwards
   *  received frames are dropped, sends fail, and no arena chunk is held by the
   *  stack. Idempotent. */
  shutdown(): void {
    if (this.down) return;
    this.down = true;
    this.tcp.shutdown();
    this.ethernet.stop();
    this.ipv4.stop();
    this.udp.shutdown();
    this.arp.clear();
    this.ipv4.fragments.clear();
    this.timers.cancel(this.timerId, TimerKind.Housekeeping);
    this.timers.cancel(this.timerId, TimerKind.PressureRecheck);
    this.alarm.cancel();
    this.alarmAt = Infinity;
  }

  get isShutdown(): boolean {
    return this.down;
  }

  // ---- time ------------------------------------------------------------------

  private readonly receive = (frame: Uint8Array): void => {
    try {
      this.ethernet.receive(frame);
    } finally {
      this.syncAlarm();
    }
  };

  /** A frame that already lies in the arena at [off, off + len), in a slot the
   *  device owns (a shared-memory link to the tender): handled in place, with
   *  no copy into an RX chunk. The slot must not change until this returns. */
  receiveInPlace(off: number, len: number): void {
    try {
      this.ethernet.receiveInPlace(off, len);
    } finally {
      this.syncAlarm();
    }
  }

  /** The device's batch of frames ended (NetDevice.setBatchEnd). */
  private readonly batchEnd = (): void => {
    try {
      this.tcp.endBatch();
    } finally {
      this.syncAlarm();
    }
  };

  private readonly onAlarm = (): void => {
    this.alarmAt = Infinity;
    try {
      // A device owes the end of its batch before anything else runs; should
      // one not say it, the timers still see every segment finished.
      this.tcp.endBatch();
      this.timers.expire(this.clock.now(), this.fire);
    } finally {
      this.syncAlarm();
    }
  };

  /** A timer was armed: pull the alarm in if it would otherwise be late. */
  private readonly onArm = (deadline: number): void => {
    if (deadline < this.alarmAt && !this.down) {
      this.alarmAt = deadline;
      this.alarm.reschedule(deadline);
    }
  };

  /** Dispatch one expired timer to its layer by kind. */
  private readonly fire = (owner: TimerOwner, kind: TimerKind): void => {
    if (kind <= TimerKind.TcpLast) this.tcp.onTimer(owner, kind);
    else if (kind === TimerKind.ArpRetry || kind === TimerKind.ArpExpire) this.arp.onTimer(owner, kind);
    else if (kind === TimerKind.FragmentExpire) this.ipv4.fragments.onTimer(owner);
    else if (kind === TimerKind.Housekeeping) this.housekeeping();
    else if (kind === TimerKind.PressureRecheck) this.recheckPressure();
  };

  /** The admission signal changed: tell the application, and while the heap
   *  is over its mark look at it again on a timer (nothing else may ask). */
  private readonly pressureChanged = (pressure: boolean): void => {
    if (this.admission.heapPressure) this.armRecheck();
    else this.timers.cancel(this.timerId, TimerKind.PressureRecheck);
    this.onPressure?.(pressure);
  };

  private recheckPressure(): void {
    this.admission.recheck();
    if (this.admission.heapPressure) this.armRecheck();
  }

  private armRecheck(): void {
    if (this.down || this.timers.isArmed(this.timerId, TimerKind.PressureRecheck)) return;
    this.timers.arm(this.timerId, TimerKind.PressureRecheck, this.clock.now() + this.admission.opts.recheckEveryMs);
  }

  /** Set the alarm to the queue's next deadline exactly (cancellations may have moved it later). */
  private syncAlarm(): void {
    if (this.down) return;
    const next = this.timers.nextDeadline();
    if (next === this.alarmAt) return;
    this.alarmAt = next;
    if (next === Infinity) this.alarm.cancel();
    else this.alarm.reschedule(next);
  }

  /** Stack-wide periodic work: the gratuitous ARP announcements after start. */
  private housekeeping(): void {
    if (this.announcementsLeft <= 0) return;
    this.announcementsLeft--;
    this.arp.announce();
    if (this.announcementsLeft > 0) {
      this.timers.arm(this.timerId, TimerKind.Housekeeping, this.clock.now() + this.limits.arpAnnounceIntervalMs);
    }
  }

  // ---- stats -----------------------------------------------------------------

  private arenaStats(): ArenaStats {
    const byKind: Record<string, number> = {};
    for (let kind = 1; kind < OwnerKind.KindCount; kind++) {
      byKind[OWNER_KIND_NAMES[kind]!] = this.hot.chunksByKind(kind);
    }
    const inUse = this.hot.chunksInUse();
    return {
      chunksTotal: this.hot.chunkCount,
      chunksInUse: inUse,
      bytesInUse: inUse * CHUNK_SIZE,
      tableChunks: this.hot.chunksByKind(OwnerKind.Table),
      byKind,
    };
  }

  private timerStats(): TimerStats {
    let tcp = 0;
    for (let kind = TimerKind.TcpFirst; kind <= TimerKind.TcpLast; kind++) tcp += this.timers.countByKind(kind);
    return {
      armed: this.timers.size,
      byKind: {
        tcp,
        arpRetry: this.timers.countByKind(TimerKind.ArpRetry),
        arpExpire: this.timers.countByKind(TimerKind.ArpExpire),
        fragmentExpire: this.timers.countByKind(TimerKind.FragmentExpire),
        housekeeping: this.timers.countByKind(TimerKind.Housekeeping),
        pressureRecheck: this.timers.countByKind(TimerKind.PressureRecheck),
      },
    };
  }
}
