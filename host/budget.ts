// The guest's memory budget (docs/architecture.md section 4): `--mem` split between the
// arena (the fixed Wasm memory holding every byte buffer and the connection
// table) and the isolate's JS heap (Worker resourceLimits, holding the
// program and the app's objects).
//
// The heap gets 40% in whole MiB (V8 sizes its generations in MiB), or what
// `--heap` asks for, the arena the rest in whole 64 KiB pages, so arena + heap
// is the budget to within a page. V8 charges a young generation 1.5 times its configured size (two
// semi-spaces and the new large-object space), so the young share is chosen
// first and the old generation gets what is left.
//
// Outside the budget: V8's code space and the thread's stack, and the fixed
// cost of a Node isolate (about 5 MiB), as for any Worker.

import { ADMISSION_DEFAULTS, MAX_MEMORY_PAGES, PAGE_SIZE, TCB_BYTES, tcbTableBytes } from '../stack/index.js';

const MIB = 1024 * 1024;
/** Share of the budget given to the JS heap. */
const HEAP_SHARE = 0.4;
/** Smallest heap: a guest boots in about 6 MiB and 1,000 open echo
 *  connections take it to about 9 MiB (measured with `--stats`). */
export const MIN_HEAP_MIB = 12;
/** Smallest arena: the device rings (512 chunks, 1 MiB) and room for the stack. */
export const MIN_ARENA_BYTES = 4 * MIB;
/** Smallest --mem accepted. */
export const MIN_BUDGET_BYTES = 16 * MIB;
/** Largest: the arena must stay within MAX_MEMORY_PAGES (2 GiB). */
export const MAX_BUDGET_BYTES = 3 * 1024 * MIB;

export interface MemorySplit {
  budget: number;
  arenaBytes: number;
  arenaPages: number;
  heapBytes: number;
  /** Worker resourceLimits, MiB. */
  maxOldGenerationSizeMb: number;
  maxYoungGenerationSizeMb: number;
  /** What V8 charges the young generation against the heap (1.5 x its size). */
  youngChargeMb: number;
}

export class BudgetError extends Error {
  override readonly name = 'BudgetError';
}

/** Parse a size: bytes ("41943040"), or a number with K, M or G (binary
 *  multiples, case-insensitive, an optional trailing B or iB): 40M, 64m, 1G, 512KiB. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmg])(?:i?b)?|b)?\s*$/i.exec(text);
  if (!m) throw new BudgetError(`invalid size '${text}': expected bytes or a number with K, M or G (e.g. 40M)`);
  const unit = (m[2] ?? '').toLowerCase();
  const scale = unit === 'k' ? 1024 : unit === 'm' ? MIB : unit === 'g' ? 1024 * MIB : 1;
  const bytes = Math.floor(Number(m[1]) * scale);
  if (!Number.isSafeInteger(bytes)) throw new BudgetError(`invalid size '${text}': too large`);
  return bytes;
}

/** Split `budget` bytes between arena and heap (`heap` bytes of it, rounded
 *  down to whole MiB, when given); throws BudgetError when it is too small or
 *  too large to run a guest. */
export function splitBudget(budget: number, heap?: number): MemorySplit {
  if (budget < MIN_BUDGET_BYTES) {
    throw new BudgetError(`memory budget ${formatBytes(budget)} is too small: at least ${formatBytes(MIN_BUDGET_BYTES)}`);
  }
  if (budget > MAX_BUDGET_BYTES) {
    throw new BudgetError(`memory budget ${formatBytes(budget)} is too large: at most ${formatBytes(MAX_BUDGET_BYTES)}`);
  }
  if (heap !== undefined && (heap < MIN_HEAP_MIB * MIB || heap > budget - MIN_ARENA_BYTES)) {
    throw new BudgetError(
      `heap ${formatBytes(heap)} does not fit a ${formatBytes(budget)} budget: between ${MIN_HEAP_MIB}M and the budget less a ${formatBytes(MIN_ARENA_BYTES)} arena`,
    );
  }
  const heapMib = heap !== undefined ? Math.floor(heap / MIB) : Math.max(MIN_HEAP_MIB, Math.floor((budget * HEAP_SHARE) / MIB));
  const arenaPages = Math.min(MAX_MEMORY_PAGES, Math.floor((budget - heapMib * MIB) / PAGE_SIZE));
  const arenaBytes = arenaPages * PAGE_SIZE;
  if (arenaBytes < MIN_ARENA_BYTES) {
    throw new BudgetError(`memory budget ${formatBytes(budget)} leaves too small an arena`);
  }
  // Young generation: about a fifth of the heap, in even MiB from 2 to 16
  // (larger ones only cost memory: scavenges stay short either way).
  const young = Math.min(16, Math.max(2, 2 * Math.floor(heapMib / 10)));
  const youngChargeMb = young * 1.5;
  return {
    budget,
    arenaBytes,
    arenaPages,
    heapBytes: heapMib * MIB,
    maxOldGenerationSizeMb: heapMib - youngChargeMb,
    maxYoungGenerationSizeMb: young,
    youngChargeMb,
  };
}

/** Fraction of the heap above which the guest admits no new connection
 *  (stack/admission.ts). */
export const HEAP_HIGH_WATER = ADMISSION_DEFAULTS.heapHighWater;
/** What a guest's heap holds before its first connection: the runtime, the
 *  stack and an app such as the relay (6.1-6.4 MiB measured with --stats). */
export const BOOT_HEAP_BYTES = 7 * MIB;
/** Arena bytes one connection takes: its control block record, which holds
 *  its timers' positions too. The table adds a 4-byte hash bucket per
 *  connection rounded up to a power of two (tcbTableBytes). */
export const CONNECTION_ARENA_BYTES = TCB_BYTES;
/** The device rings' share of the arena. */
const RING_BYTES = MIB;
/** The least the arena keeps for data (frames, queues, app buffers). */
const MIN_DATA_BYTES = 2 * MIB;
/** The connection table's size: never fewer than this, never more than
 *  the 24-bit owner ids allow. */
const MIN_CONNECTIONS = 64;
const MAX_CONNECTIONS = 0xffffff;

/** The largest table (records and hash, tcbTableBytes) that fits the arena
 *  beside the rings and `data` bytes. */
function fitting(split: MemorySplit, data: number): number {
  return connectionsFitting(split.arenaBytes - RING_BYTES - data);
}

/** The most connections whose table (records and hash, tcbTableBytes) fits
 *  `room` bytes, from 64 up to the 24-bit owner ids' limit. */
export function connectionsFitting(room: number): number {
  let lo = MIN_CONNECTIONS;
  let hi = MAX_CONNECTIONS;
  if (tcbTableBytes(hi) <= room) return hi;
  // The table's bytes grow with its size: the largest that fits, by bisection.
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (tcbTableBytes(mid) <= room) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The default data share: half the arena, at least MIN_DATA_BYTES. */
const defaultData = (split: MemorySplit): number => Math.max(MIN_DATA_BYTES, Math.floor(split.arenaBytes / 2));

/** Heap an application keeps per connection when it keeps objects for each
 *  (the relay's peers and their decoders, a Connection with its streams):
 *  measured 2.7-5 KiB, so 5 KiB is assumed. Apps that serve handles keep none. */
export const APP_HEAP_PER_CONNECTION = 5 * 1024;

/**
 * maxConnections for a budget: the largest table (256-byte records, a power
 * of two of 4-byte hash buckets) within
 *   arena - 1 MiB - max(2 MiB, arena / 2)
 * (16M: 4,032; 40M: 44,032; 128M: 149,504): half the arena beside the device
 * rings, the other half for data (frames, queues, the app's buffers). An
 * idle connection costs its record and nothing else.
 *
 * An application that keeps `heapPerConnection` bytes of objects for each
 * connection (the relay's, a module guest's) gets no more than its heap holds
 * between what the guest holds at boot and the old generation's high-water
 * mark,
 *   floor((old generation * 80% - 7 MiB) / heapPerConnection)
 * (5 KiB: 16M: 64, the floor; 40M: 696; 128M: 4,464), so that the table fills,
 * and its 90% point tells the app to shed, before the heap guard closes the
 * door on everyone: the guard (stack/admission.ts) stays what keeps the guest
 * alive whatever connections really cost.
 */
export function connectionCapacity(split: MemorySplit, heapPerConnection = 0): number {
  const arena = fitting(split, defaultData(split));
  return heapPerConnection > 0 ? Math.min(arena, heapCapacity(split, heapPerConnection)) : arena;
}

/** Connections whose objects fit the heap between boot and the high-water mark. */
function heapCapacity(split: MemorySplit, heapPerConnection: number): number {
  const room = split.maxOldGenerationSizeMb * MIB * HEAP_HIGH_WATER - BOOT_HEAP_BYTES;
  return Math.min(MAX_CONNECTIONS, Math.max(MIN_CONNECTIONS, Math.floor(room / heapPerConnection)));
}

/** The most connections a budget can be given (`--max-connections`): the
 *  table takes all the arena but the rings and 2 MiB for data (an app that
 *  holds many idle connections and little data, echo's). 40M: 83,968;
 *  40M with --heap 12M: 100,352. */
export function maxConnectionCapacity(split: MemorySplit): number {
  return fitting(split, MIN_DATA_BYTES);
}

/** The boot line about connections, e.g. "tcp: up to 44032 connections (arena
 *  24M - 1M rings - 12M for data, 256 bytes each and the hash;
 *  --max-connections up to 83968); no new connection while the old
 *  generation holds more than 10.4M", or for an app that keeps objects per
 *  connection "tcp: up to 696 connections (the app keeps about 5K of heap
 *  each: old generation 13M x 80% high-water - 7M at boot; the arena holds
 *  44032, --max-connections up to 83968); ...". */
export function describeCapacity(split: MemorySplit, maxConnections: number, given: boolean, heapPerConnection = 0): string {
  const old = split.maxOldGenerationSizeMb * MIB;
  const mark = formatBytes(Math.floor(old * HEAP_HIGH_WATER));
  const most = maxConnectionCapacity(split);
  const arena = fitting(split, defaultData(split));
  let why: string;
  if (!given && heapPerConnection > 0 && heapCapacity(split, heapPerConnection) < arena) {
    why =
      `the app keeps about ${formatBytes(heapPerConnection)} of heap each: old generation ${formatBytes(old)} x ` +
      `${HEAP_HIGH_WATER * 100}% high-water - ${formatBytes(BOOT_HEAP_BYTES)} at boot; the arena holds ${arena}, --max-connections up to ${most}`;
  } else {
    const data = given ? split.arenaBytes - RING_BYTES - tcbTableBytes(maxConnections) : defaultData(split);
    why =
      `${given ? 'as given: ' : ''}arena ${formatBytes(split.arenaBytes)} - ${formatBytes(RING_BYTES)} rings - ` +
      `${formatBytes(data)} for data, ${CONNECTION_ARENA_BYTES} bytes each and the hash; --max-connections up to ${most}`;
  }
  return `tcp: up to ${maxConnections} connections (${why}); no new connection while the old generation holds more than ${mark}`;
}

/** The boot line, e.g. "mem: 40M = arena 24M (384 pages, 12223 chunks) + heap 16M (old 13M, young 3M)". */
export function describeSplit(s: MemorySplit, chunks?: number): string {
  const chunkText = chunks === undefined ? '' : `, ${chunks} chunks`;
  return (
    `mem: ${formatBytes(s.budget)} = arena ${formatBytes(s.arenaBytes)} (${s.arenaPages} pages${chunkText})` +
    ` + heap ${formatBytes(s.heapBytes)} (old ${s.maxOldGenerationSizeMb}M, young ${s.youngChargeMb}M)`
  );
}

/** Bytes in the largest binary unit that keeps one decimal at most: 40M, 1.5G, 2048, 12K. */
export function formatBytes(n: number): string {
  const units: [number, string][] = [
    [1024 * MIB, 'G'],
    [MIB, 'M'],
    [1024, 'K'],
  ];
  for (const [size, suffix] of units) {
    if (n >= size) {
      const v = n / size;
      return `${Number.isInteger(v) ? v : v.toFixed(1)}${suffix}`;
    }
  }
  return `${n}`;
}
