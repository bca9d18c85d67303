// What the tender and its guest Worker say to each other: the boot record
// (workerData) and the messages both ways. Frames never travel here; they go
// through the shared-memory link (host/link/).

import type { EngineName, StackStats, TcpOptions } from '../../stack/index.js';
import type { LinkConfig } from '../link/layout.js';
import type { AppArenaStats } from './app.js';

/** A built-in app by name, or an ES module by file URL. */
export type AppSpec = { builtin: BuiltinApp } | { module: string };

export const BUILTIN_APPS = ['relay', 'echo', 'discard', 'chargen'] as const;
export type BuiltinApp = (typeof BUILTIN_APPS)[number];

export interface GuestBoot {
  engine: EngineName;
  /** The arena: a shared WebAssembly.Memory (wasm) or a SharedArrayBuffer (ts). */
  memory: WebAssembly.Memory | SharedArrayBuffer;
  /** build/hotpath.shared.wasm, compiled by the tender (wasm only). */
  wasmModule?: WebAssembly.Module;
  link: LinkConfig;
  ipv4: { address: string; prefix: number; gateway: string | null };
  tcp?: Partial<TcpOptions>;
  app: AppSpec;
  args: string[];
  /** Post a snapshot every this many ms (0: only on request). */
  statsIntervalMs: number;
  /** The old generation's limit (resourceLimits.maxOldGenerationSizeMb), bytes:
   *  what the heap guard measures against (stack/admission.ts). */
  oldGenerationBytes: number;
  /** Liveness (run.ts watches it): the guest adds 1 to word LIVE_BEATS every
   *  heartbeatMs from its first instruction, from a timer, so the count
   *  stops when its event loop does. */
  liveness: SharedArrayBuffer;
  heartbeatMs: number;
  /** The heap's share of the budget, bytes: it covers the JS heap and the
   *  guest's ArrayBuffers outside the arena together (memory-guard.ts). */
  heapShareBytes: number;
}

/** Int32 word of GuestBoot.liveness: heartbeats so far. */
export const LIVE_BEATS = 0;
export const LIVENESS_BYTES = 4;

export type TenderMessage =
  | { type: 'stop'; graceMs: number }
  | { type: 'stats'; id: number };

export interface HeapSnapshot {
  /** The isolate's external memory (ArrayBuffer backing stores outside the arena). */
  external: number;
  used: number;
  total: number;
  limit: number;
  /** Whether `used` was measured right after a full GC. */
  afterGc: boolean;
  /** Bytes used per V8 heap space (old_space, code_space, ...): where `used` lives. */
  spaces: Record<string, number>;
  /** The program's part of `used` (V8's heap code statistics): compiled code
   *  with its metadata (relocation info, deoptimization data, ...), and
   *  bytecode with its own (constant pools, handler tables, source positions). */
  code: { codeAndMetadata: number; bytecodeAndMetadata: number };
}

export interface GuestSnapshot {
  uptimeMs: number;
  stack: StackStats;
  heap: HeapSnapshot;
  app: AppArenaStats;
  /** What the app published (GuestContext.publishStats), if anything. */
  appStats?: unknown;
  device: { framesIn: number; framesOut: number };
  /** CPU time of the guest's thread (/proc/thread-self/stat), ms; absent where it cannot be read. */
  cpu?: { userMs: number; systemMs: number };
}

export type GuestMessage =
  | { type: 'ready'; chunks: number; arenaBytes: number; engine: EngineName }
  | { type: 'stats'; id: number | null; snapshot: GuestSnapshot }
  | { type: 'log'; text: string }
  /** The app could not start: `usage` when the module is not a guest app. */
  | { type: 'failed'; message: string; usage: boolean }
  | { type: 'stopped'; snapshot: GuestSnapshot; graceful: number; reset: number }
  /** The JS heap and the guest's external memory together passed the heap's share. */
  | { type: 'over-budget'; heapUsed: number; external: number; share: number };
