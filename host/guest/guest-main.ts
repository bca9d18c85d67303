// The guest: the Worker the tender starts for one `uk run`. It boots the hot
// path over the arena the tender made (shared memory, fixed size), puts its
// device rings in it, starts the Stack and the app, and answers the tender:
// snapshots (after a full GC) on request or every statsIntervalMs, and a
// graceful stop.
//
// Its JS heap is capped by the Worker's resourceLimits; going over ends the
// isolate, and the tender reports it (run.ts). The arena cannot grow: when it
// is full the stack degrades (drops, counted) and keeps serving.

import { parentPort, workerData } from 'node:worker_threads';
import { getHeapCodeStatistics, getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTsEngineOver, createWasmEngineOnMemory, type HeapProbe, type HotPath, Stack } from '../../stack/index.js';
import { GuestDevice } from '../link/guest-device.js';
import { createAppArena, type AppArena, type GuestContext, type GuestMain } from './app.js';
import { BUILTIN_APPS, LIVE_BEATS, type AppSpec, type GuestBoot, type GuestMessage, type GuestSnapshot, type HeapSnapshot, type TenderMessage } from './protocol.js';
import { threadCpu } from './thread-cpu.js';
import { guardBufferConstructors, overShare } from './memory-guard.js';
import { createSandbox, type Sandbox } from './sandbox.js';
import { runtimeContextSealed } from './sandbox-worker.js';

/** How often a stopping guest looks whether its connections have closed. */
const DRAIN_POLL_MS = 10;

class AppLoadError extends Error {}

function post(msg: GuestMessage): void {
  parentPort!.postMessage(msg);
}

function createEngine(boot: GuestBoot): HotPath {
  if (boot.engine === 'wasm') {
    if (!boot.wasmModule || !(boot.memory instanceof WebAssembly.Memory)) {
      throw new Error('guest: the wasm engine needs the shared module and a WebAssembly.Memory');
    }
    return createWasmEngineOnMemory(boot.wasmModule, boot.memory);
  }
  const buffer = boot.memory instanceof WebAssembly.Memory ? boot.memory.buffer : boot.memory;
  return createTsEngineOver(buffer);
}

/** A full GC before measuring the heap, if V8 lets us have one. Found once:
 *  each lookup makes a vm context, a good part of a 40 MB guest's heap. */
let gcFound: (() => void) | null | undefined;
function findGc(): (() => void) | null {
  if (gcFound !== undefined) return gcFound;
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return (gcFound = g);
  try {
    // Worker execArgv cannot carry --expose-gc; the flag takes effect for
    // contexts made after it is set, and gc() collects the whole isolate.
    setFlagsFromString('--expose-gc');
    gcFound = runInNewContext('gc') as () => void;
  } catch {
    gcFound = null;
  }
  return gcFound;
}

/** Young-generation spaces: short-lived objects, collected by scavenges,
 *  which the old generation's limit does not cover. */
const YOUNG_SPACES = new Set(['new_space', 'new_large_object_space']);

/**
 * The guest's own heap, for the stack's admission control. V8 fails when the
 * old generation passes its limit (resourceLimits.maxOldGenerationSizeMb),
 * not when the whole heap reaches heap_size_limit (which counts the young
 * generation's reservation too), so the guard compares what lives outside
 * the young generation with that limit; a full GC tells live data from garbage.
 */
function heapProbe(oldGenerationBytes: number): HeapProbe {
  const gc = findGc();
  return {
    used: () => {
      let used = 0;
      for (const space of getHeapSpaceStatistics()) if (!YOUNG_SPACES.has(space.space_name)) used += space.space_used_size;
      return used;
    },
    limit: () => oldGenerationBytes,
    ...(gc ? { collect: gc } : {}),
  };
}

/** A guest's main and the context it is called with. Built-in apps are the
 *  runtime's own code and run in the Worker's context; a module guest runs
 *  in a sandbox of its own (sandbox.ts) and gets its view of the context. */
interface LoadedApp {
  main: GuestMain;
  context(ctx: GuestContext): GuestContext;
}

function builtinApp(name: string): Promise<unknown> {
  if (!(BUILTIN_APPS as readonly string[]).includes(name)) return Promise.resolve(undefined);
  return import(new URL(`./apps/${name}.js`, import.meta.url).href).then((m: { default?: unknown }) => m.default);
}

async function loadApp(spec: AppSpec, boot: GuestBoot, log: (line: string) => void): Promise<LoadedApp> {
  if ('builtin' in spec) return { main: (await builtinApp(spec.builtin)) as GuestMain, context: (ctx) => ctx };
  const where = spec.module.startsWith('file:') ? fileURLToPath(spec.module) : spec.module;
  if (!runtimeContextSealed()) throw new AppLoadError(`cannot load ${where}: the runtime's context is not sealed (frozen, no code from strings); a module guest runs only in a Worker the tender started for one`);
  let mod: Record<string, unknown>;
  let sandbox: Sandbox;
  try {
    sandbox = createSandbox({ log, heapShareBytes: boot.heapShareBytes, builtin: builtinApp }, spec.module);
    mod = await sandbox.load(spec.module);
  } catch (err) {
    throw new AppLoadError(`cannot load ${where}: ${(err as Error).message ?? String(err)}`);
  }
  const main = typeof mod.default === 'function' ? mod.default : mod.main;
  if (typeof main !== 'function') {
    throw new AppLoadError(`${where} exports no guest main (export default async function main(ctx) { ... })`);
  }
  return {
    main: main as GuestMain,
    context: (ctx) =>
      sandbox.guestContext({
        ...ctx,
        log: (line: string) => ctx.log(line),
        // The guest's figures cross as JSON text (sandbox.ts).
        publishStats: (provide) => ctx.publishStats(() => JSON.parse((provide() as string | undefined) ?? 'null') as unknown),
      }) as GuestContext,
  };
}

class Guest {
  private readonly started = performance.now();
  private readonly gc = findGc();
  private readonly stop = new AbortController();
  private statsTimer: ReturnType<typeof setInterval> | undefined;
  private appStats: (() => unknown) | null = null;
  private stopping = false;

  constructor(
    private readonly boot: GuestBoot,
    private readonly hot: HotPath,
    private readonly device: GuestDevice,
    private readonly stack: Stack,
    private readonly arena: AppArena,
  ) {}

  async start(): Promise<void> {
    parentPort!.on('message', (msg: TenderMessage) => this.onMessage(msg));
    void this.device.run();
    const app = this.boot.app;
    const name = 'builtin' in app ? app.builtin : basename(fileURLToPath(app.module)).replace(/\.[cm]?js$/, '');
    const log = (line: string): void => post({ type: 'log', text: `${name}: ${line}` });
    const loaded = await loadApp(app, this.boot, log);
    const ctx: GuestContext = {
      stack: this.stack,
      args: this.boot.args,
      log: (...values: unknown[]) => log(values.map(String).join(' ')),
      signal: this.stop.signal,
      arena: this.arena,
      publishStats: (provide) => {
        this.appStats = provide;
      },
    };
    if (this.boot.statsIntervalMs > 0) {
      this.statsTimer = setInterval(() => post({ type: 'stats', id: null, snapshot: this.snapshot() }), this.boot.statsIntervalMs);
    }
    // Ready once main's synchronous part (listen, bind) has run.
    const running = loaded.main(loaded.context(ctx));
    post({ type: 'ready', chunks: this.hot.chunkCount, arenaBytes: this.hot.bytes.length, engine: this.hot.name });
    await running;
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  private onMessage(msg: TenderMessage): void {
    if (msg.type === 'stats') post({ type: 'stats', id: msg.id, snapshot: this.snapshot() });
    else if (msg.type === 'stop') void this.shutdown(msg.graceMs);
  }

  snapshot(): GuestSnapshot {
    return {
      uptimeMs: Math.round(performance.now() - this.started),
      stack: this.stack.stats(),
      heap: this.heap(),
      app: this.arena.stats(),
      ...(this.appStats ? { appStats: this.appStats() } : {}),
      device: { framesIn: this.device.framesIn, framesOut: this.device.framesOut },
      ...withCpu(threadCpu()),
    };
  }

  private heap(): HeapSnapshot {
    this.gc?.();
    const h = getHeapStatistics();
    const spaces: Record<string, number> = {};
    for (const space of getHeapSpaceStatistics()) spaces[space.space_name] = space.space_used_size;
    const c = getHeapCodeStatistics();
    const code = { codeAndMetadata: c.code_and_metadata_size, bytecodeAndMetadata: c.bytecode_and_metadata_size };
    return { used: h.used_heap_size, total: h.total_heap_size, limit: h.heap_size_limit, afterGc: this.gc !== null, spaces, code, external: h.external_memory };
  }

  /** Ask the app to close everything, give connections graceMs to end
   *  cleanly, reset the rest, and report. */
  private async shutdown(graceMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.statsTimer);
    const open = this.stack.tcp.stats().connections;
    this.stop.abort();
    const deadline = performance.now() + graceMs;
    while (this.stack.tcp.stats().connections > 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
    const reset = this.stack.tcp.stats().connections;
    this.stack.shutdown();
    // Let the RSTs leave before the link stops.
    await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    this.device.stop();
    post({ type: 'stopped', snapshot: this.snapshot(), graceful: Math.max(0, open - reset), reset });
    parentPort!.close();
  }
}

function withCpu(cpu: GuestSnapshot['cpu'] | null): { cpu?: GuestSnapshot['cpu'] } {
  return cpu ? { cpu } : {};
}

/** The heartbeat the tender watches (GuestBoot.liveness): from a timer, so it
 *  stops with the event loop (a loop at import, or in the app). With it, the
 *  sampled check of memory outside the arena (memory-guard.ts), said once. */
function beat(boot: GuestBoot): void {
  const words = new Int32Array(boot.liveness);
  const gc = findGc();
  let said = false;
  setInterval(() => {
    Atomics.add(words, LIVE_BEATS, 1);
    if (said) return;
    const over = overShare(boot.heapShareBytes, gc);
    if (!over) return;
    said = true;
    post({ type: 'over-budget', ...over, share: boot.heapShareBytes });
  }, boot.heartbeatMs).unref();
}

async function main(): Promise<void> {
  const boot = workerData as GuestBoot;
  beat(boot);
  guardBufferConstructors(boot.heapShareBytes);
  const hot = createEngine(boot);
  const device = new GuestDevice(hot, boot.link);
  const stack = new Stack({
    device,
    hotpath: hot,
    clock: device.clock,
    ipv4: boot.ipv4,
    tcp: boot.tcp,
    admission: { heap: heapProbe(boot.oldGenerationBytes) },
  });
  // Frames are already in the arena: the stack reads them where they lie.
  device.setInPlaceReceiver((off, len) => stack.receiveInPlace(off, len));
  const guest = new Guest(boot, hot, device, stack, createAppArena(hot));
  try {
    await guest.start();
  } catch (err) {
    if (guest.isStopping) return; // an app ending on its abort signal is not a failure
    post({ type: 'failed', message: (err as Error).message ?? String(err), usage: err instanceof AppLoadError });
    device.stop();
    stack.shutdown();
    parentPort!.close();
  }
}

if (parentPort) void main();
