// The shape of Stack.stats() and the drop counters behind it.
//
// stats() is exact and cheap: every figure is either read from the arena's
// per-kind counters, from a size the owning table maintains, or from a counter
// bumped where the event happens. Nothing walks connections, entries or queues.
//
// Two kinds of figures:
// - levels (gauges): chunks in use, sockets, queued datagrams, ARP entries,
//   datagrams in reassembly, armed timers. After a scenario has ended and its
//   timers have run out, these return to their baseline; stackLevels() picks
//   them out so a leak test can compare two snapshots with one deep equality.
// - counters (cumulative since the stack started): frames, ICMP sent, drops.
//
// The shape is a public contract (the `uk --stats` line is derived from it):
// add fields, never rename or remove one.
//
//   arena      chunksTotal, chunksInUse, bytesInUse (chunks * CHUNK_SIZE) and
//              chunksInUse by owner kind: byKind.rx, .tx, .tcpSend, .tcpRecv,
//              .tcpReassembly, .udpQueue, .fragments, .arpQueue, .app, .device
//   tcp        Tcp.stats() as the TCP layer defines it (connections, byState,
//              listeners, backlog, timeWait, timers, chunks, counters)
//   udp        sockets bound, datagrams queued for the application, their bytes
//   arp        cache entries (resolved + pending), pending resolutions, entries
//              in use being re-confirmed (probing), frames queued awaiting
//              resolution
//   fragments  datagrams in reassembly, arena chunks they hold
//   timers     armed timers in the stack's queue, and armed by kind
//   frames     Ethernet frames received (handed to the stack) and sent
//   icmp       echo replies and destination-unreachable errors sent
//   drops      one counter per reason: every decode rejection (REASON_NAMES,
//              except 'ok') and every stack decision in DROP_NAMES

import type { AdmissionStats } from './admission.js';
import { REASON_NAMES, Reason } from './hotpath/layout.js';
import type { TcpStats } from './tcp/stats.js';

/** Drops decided by the stack (decode rejections are counted by Reason). */
export const enum Drop {
  // Link
  RxArenaFull = 0, // no arena chunk for a received frame
  FrameTooLong, // frame larger than one arena chunk
  NotOurMac, // destination neither our MAC nor broadcast
  Stopped, // received or sent after shutdown()
  RxReentrant, // delivered by the device during our own send(), beyond what can be deferred
  TxArenaFull, // no chunk to build a frame the stack itself originates
  DeviceDrop, // the device refused a frame
  TxInvalid, // an encoder refused the request, or the frame exceeds the MTU
  // ARP
  ArpNotForUs, // a request or reply about another host (normal on a shared link)
  ArpConflict, // another host claims our address
  ArpBadSender, // sender hardware address is broadcast/multicast
  ArpQueueFull, // frame not queued: per-entry or global queue bound reached
  ArpGiveUp, // queued frame freed: resolution failed after all retries
  ArpEvicted, // queued frame freed: its pending entry was evicted from the full cache
  // IPv4
  NotOurAddress, // destination neither our address nor a broadcast
  NoRoute, // off-link destination without a gateway, or 0.0.0.0
  Loopback, // sending to our own address (no loopback interface)
  ProtoUnreachable, // no handler for the IP protocol
  // ICMP
  IcmpRateLimited, // an error we would have sent, suppressed by the token bucket
  IcmpIgnored, // ICMP types the stack does not act on (errors, replies, ...)
  IcmpTooBig, // echo request whose reply would not fit one frame
  // Fragment reassembly (each counts fragments, not datagrams)
  FragTooBig, // datagram would exceed one arena chunk (see fragments.ts)
  FragOverlap, // overlapping fragments: the whole datagram is dropped
  FragDuplicate, // exact repeat of a fragment already held
  FragBadLength, // non-final fragment not a multiple of 8, or inconsistent end
  FragTimeout, // datagram incomplete when its timer ran out
  FragEvicted, // datagram evicted to make room for a new one
  FragArenaFull, // no chunk to start a reassembly
  FragDiscarded, // fragment of a datagram already dropped
  // UDP
  UdpNoPort, // no socket bound to the destination port
  UdpQueueFull, // socket receive queue at its bound
  UdpArenaFull, // no chunk to queue a datagram
  Count,
}

export const DROP_NAMES: readonly string[] = [
  'rxArenaFull',
  'frameTooLong',
  'notOurMac',
  'stopped',
  'rxReentrant',
  'txArenaFull',
  'deviceDrop',
  'txInvalid',
  'arpNotForUs',
  'arpConflict',
  'arpBadSender',
  'arpQueueFull',
  'arpGiveUp',
  'arpEvicted',
  'notOurAddress',
  'noRoute',
  'loopback',
  'protoUnreachable',
  'icmpRateLimited',
  'icmpIgnored',
  'icmpTooBig',
  'fragTooBig',
  'fragOverlap',
  'fragDuplicate',
  'fragBadLength',
  'fragTimeout',
  'fragEvicted',
  'fragArenaFull',
  'fragDiscarded',
  'udpNoPort',
  'udpQueueFull',
  'udpArenaFull',
];

/** Drop counters shared by the layers of one stack: two flat arrays, bumped in place. */
export class DropCounters {
  private readonly reasons = new Float64Array(Reason.ReasonCount);
  private readonly drops = new Float64Array(Drop.Count);

  /** Count a decode rejection (Reason.Ok is ignored). */
  reason(reason: number): void {
    if (reason > 0 && reason < Reason.ReasonCount) this.reasons[reason]!++;
  }

  count(drop: Drop, n = 1): void {
    this.drops[drop]! += n;
  }

  get(drop: Drop): number {
    return this.drops[drop]!;
  }

  getReason(reason: Reason): number {
    return this.reasons[reason]!;
  }

  /** Every counter by name, zeros included, so the shape never changes. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let r = 1; r < Reason.ReasonCount; r++) out[REASON_NAMES[r]!] = this.reasons[r]!;
    for (let k = 0; k < Drop.Count; k++) out[DROP_NAMES[k]!] = this.drops[k]!;
    return out;
  }

  /** Sum of every counter (a quick "did anything drop" in tests and logs). */
  total(): number {
    let sum = 0;
    for (let r = 1; r < Reason.ReasonCount; r++) sum += this.reasons[r]!;
    for (let k = 0; k < Drop.Count; k++) sum += this.drops[k]!;
    return sum;
  }
}

export interface ArenaStats {
  chunksTotal: number;
  /** Every chunk in use, the fixed tables' included. */
  chunksInUse: number;
  bytesInUse: number;
  /** Of those, the chunks of tables taken at boot and kept for the stack's
   *  life (the control block table): what an idle stack holds. */
  tableChunks: number;
  /** Chunks in use by owner kind, keyed by OWNER_KIND_NAMES (without 'free'). */
  byKind: Record<string, number>;
}

export interface TimerStats {
  armed: number;
  byKind: {
    tcp: number;
    arpRetry: number;
    arpExpire: number;
    fragmentExpire: number;
    housekeeping: number;
    pressureRecheck: number;
  };
}

export interface StackStats {
  arena: ArenaStats;
  tcp: TcpStats;
  udp: { sockets: number; queued: number; queuedBytes: number };
  arp: { entries: number; pending: number; probing: number; queued: number };
  fragments: { datagrams: number; chunks: number };
  timers: TimerStats;
  frames: { rx: number; tx: number };
  icmp: { echoReplies: number; unreachables: number; errorsIn: number };
  /** Keyed by REASON_NAMES (except 'ok') and DROP_NAMES. */
  drops: Record<string, number>;
  /** Admission control: pressure now, the heap marks, and its counters. */
  admission: AdmissionStats;
}

/** The gauges of a TCP snapshot (everything but the cumulative counters). */
export type TcpLevels = Omit<TcpStats, 'counters'>;

export interface StackLevels {
  arena: ArenaStats;
  tcp: TcpLevels;
  udp: StackStats['udp'];
  arp: StackStats['arp'];
  fragments: StackStats['fragments'];
  timers: TimerStats;
  /** Back to false once a scenario's load is gone. */
  pressure: boolean;
}

/** The gauges of a snapshot: what must return to baseline after a scenario. */
export function stackLevels(s: StackStats): StackLevels {
  const { counters: _counters, ...tcp } = s.tcp;
  return { arena: s.arena, tcp, udp: s.udp, arp: s.arp, fragments: s.fragments, timers: s.timers, pressure: s.admission.pressure };
}
