// Compact TIME_WAIT records (RFC 9293 3.4.2 and 3.10.7.4, TIME-WAIT state).
//
// When a connection enters TIME_WAIT its control block is released at once
// (chunks, streams, timers: DESIGN.md section 5) and only this record stays:
// the 4-tuple, the sequence numbers needed to re-ACK a retransmitted FIN and to
// judge a new SYN, and the expiry time. The table is bounded; when full, the
// oldest record is recycled (counted). All records last 2*MSL, so insertion
// order is expiry order and one timer (on the table itself) covers them all.

import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../hotpath/layout.js';
import { newTimerIndex, type TimerOwner } from '../layers.js';
import type { TimerQueue } from '../time/timers.js';
import type { TcpContext } from './context.js';
import { sendBareAck } from './output.js';
import type { Segment } from './segment.js';
import { TcpTimer } from './timer-kinds.js';

export class TimeWaitRecord {
  older: TimeWaitRecord | null = null;
  newer: TimeWaitRecord | null = null;
  constructor(
    readonly localPort: number,
    readonly remoteAddr: number,
    readonly remotePort: number,
    readonly remoteKey: number,
    /** Our RCV.NXT: the peer's FIN already counted. */
    readonly rcvNxt: number,
    /** Our SND.NXT: our FIN already counted. */
    readonly sndNxt: number,
    public expiry: number,
  ) {}
}

export class TimeWaitTable implements TimerOwner {
  readonly timerIndex = newTimerIndex();
  private readonly byPort = new Map<number, Map<number, TimeWaitRecord>>();
  private oldest: TimeWaitRecord | null = null;
  private newest: TimeWaitRecord | null = null;
  size = 0;

  constructor(
    private readonly timers: TimerQueue<TimerOwner>,
    private readonly limit: number,
    /** 2 * MSL, ms. */
    private readonly duration: number,
  ) {}

  lookup(localPort: number, remoteKey: number): TimeWaitRecord | undefined {
    return this.byPort.get(localPort)?.get(remoteKey);
  }

  /** Add a record; returns true if the oldest had to be recycled to make room. */
  add(localPort: number, remoteAddr: number, remotePort: number, remoteKey: number,
      rcvNxt: number, sndNxt: number, now: number): boolean {
    const existing = this.lookup(localPort, remoteKey);
    if (existing) this.remove(existing);
    let recycled = false;
    if (this.size >= this.limit && this.oldest) {
      this.remove(this.oldest);
      recycled = true;
    }
    const rec = new TimeWaitRecord(localPort, remoteAddr, remotePort, remoteKey, rcvNxt, sndNxt, now + this.duration);
    let port = this.byPort.get(localPort);
    if (!port) {
      port = new Map();
      this.byPort.set(localPort, port);
    }
    port.set(remoteKey, rec);
    this.append(rec);
    this.size++;
    this.armTimer();
    return recycled;
  }

  /** RFC 9293: a retransmitted FIN restarts the 2*MSL wait. */
  restart(rec: TimeWaitRecord, now: number): void {
    this.unlink(rec);
    rec.expiry = now + this.duration;
    this.append(rec);
    this.armTimer();
  }

  remove(rec: TimeWaitRecord): void {
    const port = this.byPort.get(rec.localPort);
    if (port) {
      port.delete(rec.remoteKey);
      if (port.size === 0) this.byPort.delete(rec.localPort);
    }
    this.unlink(rec);
    this.size--;
    this.armTimer();
  }

  /** Drop expired records; returns how many. */
  expire(now: number): number {
    let n = 0;
    while (this.oldest && this.oldest.expiry <= now) {
      this.remove(this.oldest);
      n++;
    }
    this.armTimer();
    return n;
  }

  /** Drop every record (stack shutdown). */
  clear(): void {
    while (this.oldest) this.remove(this.oldest);
  }

  /** Is this 4-tuple held by a record? (ephemeral port choice) */
  has(localPort: number, remoteKey: number): boolean {
    return this.lookup(localPort, remoteKey) !== undefined;
  }

  private append(rec: TimeWaitRecord): void {
    rec.older = this.newest;
    rec.newer = null;
    if (this.newest) this.newest.newer = rec;
    else this.oldest = rec;
    this.newest = rec;
  }

  private unlink(rec: TimeWaitRecord): void {
    if (rec.older) rec.older.newer = rec.newer;
    else this.oldest = rec.newer;
    if (rec.newer) rec.newer.older = rec.older;
    else this.newest = rec.older;
    rec.older = null;
    rec.newer = null;
  }

  /** One timer, at the oldest record's expiry. */
  private armTimer(): void {
    if (this.oldest) {
      if (this.timers.deadlineOf(this, TcpTimer.TimeWait) !== this.oldest.expiry) {
        this.timers.arm(this, TcpTimer.TimeWait, this.oldest.expiry);
      }
    } else if (this.timers.isArmed(this, TcpTimer.TimeWait)) {
      this.timers.cancel(this, TcpTimer.TimeWait);
    }
  }
}

/**
 * A segment for a compact TIME_WAIT record (RFC 9293 3.10.7.4, TIME-WAIT).
 * Returns false when the record gave way to a new SYN, which the caller then
 * hands to the listener as for any new connection.
 */
export function timeWaitArrives(ctx: TcpContext, table: TimeWaitTable, rec: TimeWaitRecord, seg: Segment): boolean {
  const c = ctx.counters;
  const flags = seg.flags;
  if ((flags & TCP_RST) !== 0) {
    // RFC 1337: a RST must not cut TIME_WAIT short (TIME-WAIT assassination).
    c.rstIgnored++;
    return true;
  }
  if ((flags & (TCP_SYN | TCP_ACK)) === TCP_SYN && ctx.hot.seqGt(seg.seq, rec.rcvNxt)) {
    // RFC 1122 4.2.2.13: a new SYN above the old incarnation's sequence space reopens the 4-tuple.
    c.timeWaitReused++;
    table.remove(rec);
    return false;
  }
  if ((flags & TCP_FIN) !== 0) {
    // The peer did not get our last ACK: ACK again and restart the 2*MSL wait.
    c.timeWaitReacked++;
    table.restart(rec, ctx.now());
  } else if (seg.segLen === 0 && seg.seq === rec.rcvNxt) {
    return true; // a late ACK: nothing to answer
  }
  sendBareAck(ctx, rec.localPort, rec.remoteAddr, rec.remotePort, rec.sndNxt, rec.rcvNxt);
  return true;
}
