// `uk run --stats FILE|-`: one JSON object per line, every --stats-interval
// ms and once more when the guest stops. The shape (README "Stats fields"):
//
//   t         ms since the tender started the guest
//   mem       budget, arenaBytes, arenaChunks, arenaChunksInUse, arenaTableChunks, arenaUsed
//             (bytes in chunks in use), heapLimit, heapUsed (after a full GC
//             in the guest when heapAfterGc), heapTotal, heapSpaces (bytes
//             used per V8 space: old_space, code_space, ...), heapCode
//             (the program's part: code and bytecode with their metadata),
//             heapCensus (only in lines a census asked for: SIGUSR2)
//   arena     chunks in use by owner kind (rx, tx, tcpSend, ..., app, device)
//   tcp       the guest's TCP: connections, byState, listeners, backlog,
//             timeWait, timers (armed, by kind), chunks, counters
//   udp arp fragments timers frames icmp drops
//             the rest of the guest's Stack.stats()
//   app       app buffers: chunks held, allocations refused, reserve
//   admission pressure now, the heap's marks, admission counters
//   appStats  what the app published (the relay: its stats)
//   link      the shared-memory link: frames and bytes each way, ring drops
//   net       the backend's own figures (user-mode gateway, TAP device)
//
// Fields are only ever added, never renamed.

import { closeSync, openSync, writeSync } from 'node:fs';
import type { StackStats } from '../stack/index.js';
import type { MemorySplit } from './budget.js';
import type { HeapCensus } from './heap-census.js';
import type { AppArenaStats } from './guest/app.js';
import type { GuestSnapshot } from './guest/protocol.js';
import type { TenderLinkStats } from './link/tender-device.js';

export interface StatsRecord {
  t: number;
  mem: {
    budget: number;
    arenaBytes: number;
    arenaChunks: number;
    arenaChunksInUse: number;
    /** Of those, the fixed tables' (the control block table), taken at boot. */
    arenaTableChunks: number;
    arenaUsed: number;
    heapLimit: number;
    heapUsed: number;
    heapTotal: number;
    heapAfterGc: boolean;
    heapSpaces: Record<string, number>;
    /** The program's part of heapUsed: compiled code and bytecode, each with its metadata. */
    heapCode: { codeAndMetadata: number; bytecodeAndMetadata: number };
    /** The guest's external memory: ArrayBuffers outside the arena (charged with heapUsed to the heap's share). */
    external: number;
    /** Only in lines written for a census (SIGUSR2, GuestRun.census()):
     *  the heap split into program and data from a heap snapshot. */
    heapCensus?: HeapCensus;
  };
  arena: Record<string, number>;
  tcp: StackStats['tcp'];
  udp: StackStats['udp'];
  arp: StackStats['arp'];
  fragments: StackStats['fragments'];
  timers: StackStats['timers'];
  frames: StackStats['frames'];
  icmp: StackStats['icmp'];
  drops: StackStats['drops'];
  app: AppArenaStats;
  /** Admission control: pressure, the heap marks and their counters (stack/admission.ts). */
  admission: StackStats['admission'];
  /** The app's own figures (GuestContext.publishStats), e.g. the relay's. */
  appStats?: unknown;
  link: TenderLinkStats;
  net?: unknown;
  /** CPU time of the guest's thread so far, ms (Linux). */
  cpu?: { userMs: number; systemMs: number };
}

export function statsRecord(
  t: number,
  split: MemorySplit,
  snap: GuestSnapshot,
  link: TenderLinkStats,
  net?: unknown,
): StatsRecord {
  const s = snap.stack;
  return {
    t: Math.round(t),
    mem: {
      budget: split.budget,
      arenaBytes: split.arenaBytes,
      arenaChunks: s.arena.chunksTotal,
      arenaChunksInUse: s.arena.chunksInUse,
      arenaTableChunks: s.arena.tableChunks,
      arenaUsed: s.arena.bytesInUse,
      heapLimit: snap.heap.limit,
      heapUsed: snap.heap.used,
      heapTotal: snap.heap.total,
      heapAfterGc: snap.heap.afterGc,
      heapSpaces: snap.heap.spaces,
      heapCode: snap.heap.code,
      external: snap.heap.external,
    },
    arena: s.arena.byKind,
    tcp: s.tcp,
    udp: s.udp,
    arp: s.arp,
    fragments: s.fragments,
    timers: s.timers,
    frames: s.frames,
    icmp: s.icmp,
    drops: s.drops,
    app: snap.app,
    admission: s.admission,
    ...(snap.appStats === undefined ? {} : { appStats: snap.appStats }),
    link,
    ...(net === undefined ? {} : { net }),
    ...(snap.cpu === undefined ? {} : { cpu: { userMs: Math.round(snap.cpu.userMs), systemMs: Math.round(snap.cpu.systemMs) } }),
  };
}

export interface StatsSink {
  write(record: StatsRecord): void;
  close(): void;
}

/** '-' writes to stdout; anything else is a file, created or truncated. */
export function openStatsSink(target: string): StatsSink {
  if (target === '-') {
    return { write: (r) => void process.stdout.write(JSON.stringify(r) + '\n'), close: () => {} };
  }
  let fd: number | undefined = openSync(target, 'w');
  return {
    write(r) {
      if (fd !== undefined) writeSync(fd, JSON.stringify(r) + '\n');
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
