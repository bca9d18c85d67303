// The guest application API. A guest app is a function that receives the
// running stack; built-in apps (apps/) and ES modules given to `uk run PATH`
// have the same shape:
//
//   // my-guest.mjs
//   export default async function main({ stack, args, log, signal }) {
//     const listener = stack.tcp.listen(8080);
//     listener.onConnection = (conn) => { conn.onData = (b) => conn.write(b); };
//     signal.addEventListener('abort', () => listener.close());
//   }
//
// main may return at once (servers) or run until it is done; the guest keeps
// running until the tender stops it. On stop, `signal` aborts: close listeners
// and connections; whatever is still open after a short grace period is reset.

import { OwnerKind, ownerTag, type HotPath, CHUNK_SIZE, type Stack } from '../../stack/index.js';

export interface GuestContext {
  stack: Stack;
  /** Arguments after APP on the command line. */
  args: readonly string[];
  /** A line on the tender's stderr, prefixed with the app's name. */
  log(...values: unknown[]): void;
  /** Aborted when the guest is asked to stop. */
  signal: AbortSignal;
  /** Application buffers in the arena. */
  arena: AppArena;
  /** Give the tender the app's own figures: `provide()` is called for every
   *  stats snapshot and its result (plain JSON data) appears as `appStats`
   *  in each `--stats` line (the relay publishes its stats this way). */
  publishStats(provide: () => unknown): void;
}

export type GuestMain = (ctx: GuestContext) => Promise<void> | void;

export interface AppArenaStats {
  /** Chunks the app holds now. */
  chunks: number;
  /** Allocations refused to keep the network reserve. */
  refused: number;
  /** Chunks the app may not take (kept for the stack). */
  reserve: number;
}

/**
 * Application buffers: arena chunks of CHUNK_SIZE bytes with owner kind App.
 * An app that buffers without bound is refused (alloc returns 0, counted)
 * once the free chunks fall to the network reserve, so the stack keeps
 * serving its connections; the app degrades instead of starving them.
 */
export interface AppArena {
  /** The whole arena; a chunk is bytes[off, off + chunkSize). */
  readonly bytes: Uint8Array;
  readonly chunkSize: number;
  /** A chunk (its offset), or 0 when refused. `id` tags it (24 bits) for reports. */
  alloc(id?: number): number;
  free(off: number): void;
  stats(): AppArenaStats;
}

/** The network's share that apps may not take: 1/16 of the chunks, at least 256. */
export function networkReserve(chunkCount: number): number {
  return Math.min(chunkCount, Math.max(256, Math.floor(chunkCount / 16)));
}

export function createAppArena(hot: HotPath): AppArena {
  const reserve = networkReserve(hot.chunkCount);
  let refused = 0;
  return {
    bytes: hot.bytes,
    chunkSize: CHUNK_SIZE,
    alloc(id = 0): number {
      if (hot.chunkCount - hot.chunksInUse() <= reserve) {
        refused++;
        return 0;
      }
      const off = hot.alloc(ownerTag(OwnerKind.App, id));
      if (off === 0) refused++;
      return off;
    },
    free(off: number): void {
      if ((hot.ownerOf(off) >>> 24) !== OwnerKind.App) throw new Error(`app arena: ${off} is not an app chunk`);
      hot.free(off);
    },
    stats: () => ({ chunks: hot.chunksByKind(OwnerKind.App), refused, reserve }),
  };
}
