// The tender: boots one guest and watches over it (`uk run`, docs/architecture.md
// sections 4 and 7). Usable from tests and benchmarks without a process:
//
//   const run = await startGuest({ app: 'echo', net: { kind: 'user', hostfwd } });
//   await run.stats();        // a fresh snapshot (heap measured after a GC)
//   const r = await run.stop(); // graceful: { code: 0, reason: 'stopped', ... }
//
// Boot: split the budget, make the arena (shared memory, fixed size) and the
// link's control block, open the backend on the tender's end of the link,
// start the guest Worker with resourceLimits for its heap. Then: periodic
// stats lines, and the end, whichever comes first:
//   stop()            graceful stop, final stats             -> 0
//   heap over budget  report of what was in use             -> 3
//   the app fails     its error                             -> 1 (2 if it is not a guest app)

import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { CHUNK_SIZE, formatIpv4, parseCidr, parseIpv4, type EngineName, PcapWriter, type TcpOptions, RealClock } from '../stack/index.js';
import { describeArena, scanArena } from './arena-report.js';
import { censusOfStream } from './heap-census.js';
import {
  APP_HEAP_PER_CONNECTION, BudgetError, CONNECTION_ARENA_BYTES, connectionCapacity, describeCapacity, describeSplit, formatBytes, maxConnectionCapacity, splitBudget,
  type MemorySplit,
} from './budget.js';
import { DeviceError } from './devices/device-error.js';
import { BUILTIN_APPS, LIVE_BEATS, LIVENESS_BYTES, type AppSpec, type BuiltinApp, type GuestBoot, type GuestMessage, type GuestSnapshot } from './guest/protocol.js';
import { startSealedWorker } from './guest/sandbox-worker.js';
import { createSharedArena, type SharedArena } from './hotpath-shared.js';
import { packageRoot } from './hotpath.js';
import { createLinkConfig, type LinkConfig } from './link/layout.js';
import { TenderLink } from './link/tender-device.js';
import { openBackend, type Backend, type NetSpec } from './net-backend.js';
import { UsageError } from './net/user.js';
import { openPcapFile, type PcapFileSink } from './pcap-file.js';
import { openStatsSink, statsRecord, type StatsRecord, type StatsSink } from './stats-writer.js';

export { UsageError };

export const DEFAULT_MEM = 40 * 1024 * 1024;
export const DEFAULT_STATS_INTERVAL_MS = 1000;
/** How long a stopping guest's connections get to close before they are reset. */
export const DEFAULT_GRACE_MS = 2000;
/** The guest link's IP MTU: Ethernet's by default. At most what leaves a
 *  frame (MTU + 14, and a VLAN tag's 4) inside one arena chunk and one TAP
 *  ring slot; at least IPv4's 576-byte datagram every host must take. */
export const DEFAULT_LINK_MTU = 1500;
export const LINK_MTU_MIN = 576;
export const LINK_MTU_MAX = 2000;

/** How long after the graceful stop the Worker is terminated regardless (reported stuck). */
const STOP_TIMEOUT_MS = 10_000;
/** Liveness defaults (--boot-timeout, --stuck-after) and bounds. */
export const DEFAULT_BOOT_TIMEOUT_MS = 30_000;
export const DEFAULT_STUCK_AFTER_MS = 10_000;
const MIN_LIVENESS_MS = 1_000;
/** How often the guest's heartbeat ticks and the tender looks at it. */
const HEARTBEAT_MS = 250;
const USER_DEFAULTS = { address: '10.0.2.15', prefix: 24, gateway: '10.0.2.2' };

export interface RunOptions {
  /** A built-in app (echo, discard, chargen) or the path of an ES module. */
  app: string;
  args?: string[];
  /** Budget in bytes (default 40 MiB). */
  mem?: number;
  /** The JS heap's share of it, bytes (default 40% of the budget, at least 12 MiB). */
  heap?: number;
  /** Default: user networking without forwards. */
  net?: NetSpec;
  /** The guest's address and prefix, e.g. '10.0.2.15/24' (the default). */
  ipv4?: string;
  /** Default 10.0.2.2 on user networking, none otherwise; null for none. */
  gateway?: string | null;
  hotpath?: EngineName;
  /** The guest's MAC (default: a random locally administered one). */
  mac?: Uint8Array;
  /** TCP segmentation offload on a TAP link, where the kernel offers it (default true). */
  offloads?: boolean;
  /** IP MTU of the guest's link, LINK_MTU_MIN..LINK_MTU_MAX (default 1500);
   *  a TAP interface is set to it, and the guest's TCP announces MTU - 40. */
  mtu?: number;
  pcap?: string;
  /** '-' for stdout, or a file. */
  stats?: string;
  statsIntervalMs?: number;
  graceMs?: number;
  tcp?: Partial<TcpOptions>;
  /** A guest that has not booted after this many ms is stuck (exit 5; default 30 s). */
  bootTimeoutMs?: number;
  /** A guest whose heartbeat stops for this many ms is stuck (exit 5; default 10 s). */
  stuckAfterMs?: number;
  /** Aborting it stops the guest, at any time from now on: before its boot
   *  ends too (the CLI's SIGINT and SIGTERM, from its first instruction). */
  signal?: AbortSignal;
  /** Where boot lines, reports and the app's log go (default: stderr, prefixed "uk: "). */
  log?: (line: string) => void;
}

export interface RunResult {
  /** 0 stopped cleanly, 1 the app failed, 2 not a guest app, 3 out of memory, 5 stuck. */
  code: 0 | 1 | 2 | 3 | 5;
  reason: 'stopped' | 'failed' | 'usage' | 'out-of-memory' | 'stuck';
  message?: string;
  /** The last stats record (the final one after a graceful stop). */
  final?: StatsRecord;
  graceful?: number;
  reset?: number;
}

export interface GuestRun {
  readonly split: MemorySplit;
  readonly chunks: number;
  readonly mac: Uint8Array;
  readonly arena: SharedArena;
  readonly link: TenderLink;
  readonly backend: Backend;
  /** A fresh stats record. */
  stats(): Promise<StatsRecord>;
  /** A V8 heap snapshot of the guest's isolate (.heapsnapshot JSON), for
   *  finding out what its heap holds (bench/heap-attribution.ts reads two). */
  heapSnapshot(): Promise<NodeJS.ReadableStream>;
  /** A fresh stats record with mem.heapCensus (host/heap-census.ts: the heap
   *  split into program and data, from a heap snapshot), also written to the
   *  --stats sink. `uk run` takes one on SIGUSR2. */
  census(): Promise<StatsRecord>;
  /** Graceful stop; resolves like `done`. */
  stop(): Promise<RunResult>;
  /** Settles when the guest has ended, for whatever reason. */
  readonly done: Promise<RunResult>;
}

/** A boot failure: `code` is the exit status (2 usage, 4 device, 1 other). */
export class RunError extends Error {
  override readonly name = 'RunError';
  constructor(
    message: string,
    readonly code: 0 | 1 | 2 | 3 | 4 | 5,
  ) {
    super(message);
  }
}

/** Boot a guest; resolves once its app has started (the guest posted ready). */
export async function startGuest(opts: RunOptions): Promise<GuestRun> {
  try {
    return await boot(opts);
  } catch (err) {
    throw asRunError(err);
  }
}

function asRunError(err: unknown): RunError {
  if (err instanceof RunError) return err;
  if (err instanceof UsageError || err instanceof BudgetError) return new RunError(err.message, 2);
  if (err instanceof DeviceError) return new RunError(err.message, 4);
  const e = err as NodeJS.ErrnoException;
  // A forwarded port that cannot be bound is the backend failing to open.
  if (e?.code === 'EADDRINUSE' || e?.code === 'EACCES') return new RunError(e.message, 4);
  return new RunError(e?.message ?? String(err), 1);
}

/** Heap an app keeps per connection (host/budget.ts connectionCapacity): echo,
 *  discard and chargen serve handles and keep none; the relay keeps its peers'
 *  objects, and a module guest may keep objects too (it can say otherwise with
 *  --max-connections). */
function heapPerConnection(app: AppSpec): number {
  if ('builtin' in app && app.builtin !== 'relay') return 0;
  return APP_HEAP_PER_CONNECTION;
}

/** A built-in app, or a file that exists (checked here so a typo is a usage error). */
export function resolveApp(app: string): AppSpec {
  if ((BUILTIN_APPS as readonly string[]).includes(app)) return { builtin: app as BuiltinApp };
  const looksLikePath = app.includes('/') || /\.[cm]?js$/.test(app);
  if (looksLikePath || existsSync(app)) {
    const path = resolve(app);
    if (!existsSync(path) || !statSync(path).isFile()) throw new UsageError(`app ${app}: no such file`);
    return { module: pathToFileURL(path).href };
  }
  throw new UsageError(`unknown app '${app}' (expected ${BUILTIN_APPS.join(', ')}, or the path of an ES module)`);
}

function resolveAddresses(opts: RunOptions, net: NetSpec): { address: string; prefix: number; gateway: string | null } {
  let address = USER_DEFAULTS.address;
  let prefix = USER_DEFAULTS.prefix;
  if (opts.ipv4 !== undefined) {
    try {
      const cidr = parseCidr(opts.ipv4.includes('/') ? opts.ipv4 : `${opts.ipv4}/24`);
      address = formatIpv4(cidr.address);
      prefix = cidr.prefix;
    } catch (err) {
      throw new UsageError(`--ipv4 ${opts.ipv4}: ${(err as Error).message}`);
    }
  }
  let gateway = opts.gateway === undefined ? (net.kind === 'user' ? USER_DEFAULTS.gateway : null) : opts.gateway;
  if (gateway !== null) {
    try {
      gateway = formatIpv4(parseIpv4(gateway));
    } catch (err) {
      throw new UsageError(`--gateway ${gateway}: ${(err as Error).message}`);
    }
  }
  return { address, prefix, gateway };
}

/** 02:75:6b (locally administered, "uk") and three random bytes. */
function randomMac(): Uint8Array {
  const mac = Uint8Array.of(0x02, 0x75, 0x6b, 0, 0, 0);
  crypto.getRandomValues(mac.subarray(3));
  return mac;
}

/** The Worker script: next to this file when built; from dist/ when this
 *  file runs from source (tests), which `npm run build` provides. */
function guestScript(): URL {
  const here = new URL('./guest/guest-main.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = pathToFileURL(resolve(packageRoot(), 'dist/host/guest/guest-main.js'));
  if (existsSync(fileURLToPath(built))) return built;
  throw new Error(`guest script not found (${fileURLToPath(here)}); run \`npm run build\` first`);
}

function defaultLog(line: string): void {
  process.stderr.write(`uk: ${line}\n`);
}

/** Everything decided from the options, checked before anything starts. */
export interface Plan {
  app: AppSpec;
  split: MemorySplit;
  net: NetSpec;
  addresses: { address: string; prefix: number; gateway: string | null };
  engine: EngineName;
  mac: Uint8Array;
  mtu: number;
  statsIntervalMs: number;
  /** The connection table's size: --tcp's own, or what the budget holds. */
  maxConnections: number;
  bootTimeoutMs: number;
  stuckAfterMs: number;
}

export function plan(opts: RunOptions): Plan {
  const net = opts.net ?? { kind: 'user', hostfwd: [] };
  const statsIntervalMs = opts.statsIntervalMs ?? DEFAULT_STATS_INTERVAL_MS;
  if (!(Number.isInteger(statsIntervalMs) && statsIntervalMs >= 10)) {
    throw new UsageError(`--stats-interval ${statsIntervalMs}: must be an integer number of ms, at least 10`);
  }
  const mtu = opts.mtu ?? DEFAULT_LINK_MTU;
  if (!(Number.isInteger(mtu) && mtu >= LINK_MTU_MIN && mtu <= LINK_MTU_MAX)) {
    throw new UsageError(`--mtu ${mtu}: must be a whole number from ${LINK_MTU_MIN} to ${LINK_MTU_MAX} (a frame fits one ${CHUNK_SIZE}-byte arena chunk)`);
  }
  const bootTimeoutMs = livenessMs('--boot-timeout', opts.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS);
  const stuckAfterMs = livenessMs('--stuck-after', opts.stuckAfterMs ?? DEFAULT_STUCK_AFTER_MS);
  const split = splitBudget(opts.mem ?? DEFAULT_MEM, opts.heap);
  const given = opts.tcp?.maxConnections;
  if (given !== undefined && !(Number.isInteger(given) && given >= 1 && given <= maxConnectionCapacity(split))) {
    throw new BudgetError(
      `max connections ${given}: this budget's arena holds 1 to ${maxConnectionCapacity(split)} control blocks (${CONNECTION_ARENA_BYTES} bytes each and the hash, beside the rings and 2M for data)`,
    );
  }
  const app = resolveApp(opts.app);
  return {
    app,
    split,
    maxConnections: opts.tcp?.maxConnections ?? connectionCapacity(split, heapPerConnection(app)),
    net,
    addresses: resolveAddresses(opts, net),
    engine: opts.hotpath ?? 'wasm',
    mac: opts.mac ?? randomMac(),
    mtu,
    statsIntervalMs,
    bootTimeoutMs,
    stuckAfterMs,
  };
}

function livenessMs(flag: string, ms: number): number {
  if (!(Number.isInteger(ms) && ms >= MIN_LIVENESS_MS)) throw new UsageError(`${flag} ${ms}: must be a whole number of ms, at least ${MIN_LIVENESS_MS}`);
  return ms;
}

/** The --pcap and --stats files; a path that cannot be written is a usage error. */
export interface Outputs {
  pcap: PcapFileSink | undefined;
  capture: PcapWriter | undefined;
  stats: StatsSink | undefined;
  close(): void;
}

export function openOutputs(opts: RunOptions): Outputs {
  const open = <T>(flag: string, path: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      throw new UsageError(`${flag} ${path}: cannot write: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  };
  const pcap = opts.pcap === undefined ? undefined : open('--pcap', opts.pcap, () => openPcapFile(opts.pcap!));
  let stats: StatsSink | undefined;
  try {
    stats = opts.stats === undefined ? undefined : open('--stats', opts.stats, () => openStatsSink(opts.stats!));
  } catch (err) {
    pcap?.close();
    throw err;
  }
  return {
    pcap,
    capture: pcap ? new PcapWriter(pcap) : undefined,
    stats,
    close() {
      pcap?.close();
      stats?.close();
    },
  };
}

function startWorker(p: Plan, arena: SharedArena, link: LinkConfig, liveness: SharedArrayBuffer, opts: RunOptions): Worker {
  const boot: GuestBoot = {
    liveness,
    heartbeatMs: HEARTBEAT_MS,
    heapShareBytes: p.split.heapBytes,
    engine: p.engine,
    memory: arena.memory,
    ...(arena.module ? { wasmModule: arena.module } : {}),
    link,
    ipv4: p.addresses,
    tcp: { maxConnections: p.maxConnections, ...opts.tcp },
    app: p.app,
    args: opts.args ?? [],
    statsIntervalMs: opts.stats === undefined ? 0 : p.statsIntervalMs,
    oldGenerationBytes: p.split.maxOldGenerationSizeMb * 1024 * 1024,
  };
  const make = (extra: Partial<WorkerOptions>): Worker =>
    new Worker(guestScript(), {
      workerData: boot,
      resourceLimits: {
        maxOldGenerationSizeMb: p.split.maxOldGenerationSizeMb,
        maxYoungGenerationSizeMb: p.split.maxYoungGenerationSizeMb,
      },
      // The tender's stdout carries only `--stats -`: an app's console.log goes to stderr.
      stdout: true,
      ...extra,
    });
  // A module guest's Worker is sealed for its sandbox (guest/sandbox-worker.ts).
  const worker = 'module' in p.app ? startSealedWorker(make) : make({});
  worker.stdout.pipe(process.stderr, { end: false });
  return worker;
}

/** The MAC the tender's end of the link plays: the gateway's on user
 *  networking (52:55:0a:00:02:02, as QEMU's); unused by the other backends. */
const TENDER_MAC = Uint8Array.of(0x52, 0x55, 0x0a, 0, 2, 2);

async function boot(opts: RunOptions): Promise<GuestRun> {
  const log = opts.log ?? defaultLog;
  const p = plan(opts);
  const outputs = openOutputs(opts);
  const arena = await createSharedArena(p.engine, p.split.arenaPages);
  const linkConfig = createLinkConfig(p.mac, p.mtu);
  const link = new TenderLink(arena.buffer, linkConfig, { mac: TENDER_MAC, capture: outputs.capture });
  let backend: Backend;
  try {
    backend = await openBackend(p.net, {
      link,
      arena: arena.buffer,
      linkConfig,
      capturing: outputs.capture !== undefined,
      offloads: opts.offloads ?? true,
      engine: p.engine,
      clock: new RealClock(),
      arenaBytes: p.split.arenaBytes,
      guest: { ...p.addresses, mac: p.mac },
    });
  } catch (err) {
    link.close();
    outputs.close();
    throw err;
  }
  const liveness = new SharedArrayBuffer(LIVENESS_BYTES);
  const worker = startWorker(p, arena, linkConfig, liveness, opts);
  const tender = new Tender(opts, log, p, arena, link, backend, worker, outputs, liveness);
  const chunks = await tender.booted;
  tender.announce([
    describeSplit(p.split, chunks),
    describeCapacity(p.split, p.maxConnections, opts.tcp?.maxConnections !== undefined, heapPerConnection(p.app)),
    `net: ${backend.description}`,
    `app: ${'builtin' in p.app ? p.app.builtin : fileURLToPath(p.app.module)} on the ${p.engine} hot path`,
  ]);
  return tender.handle(chunks);
}

/** Watches one guest Worker: its messages, its end, the stats sink. */
class Tender {
  readonly booted: Promise<number>;
  readonly done: Promise<RunResult>;
  private settleBooted!: { resolve: (chunks: number) => void; reject: (err: Error) => void };
  private settleDone!: (r: RunResult) => void;
  private readonly started = performance.now();
  /** Stats requests waiting for the guest's answer. */
  private readonly pending = new Map<number, { resolve: (r: StatsRecord) => void; reject: (e: Error) => void }>();
  private nextRequest = 1;
  private last: StatsRecord | undefined;
  private result: RunResult | undefined;
  private ready = false;
  private stopping: Promise<RunResult> | undefined;
  /** The app's log lines until the boot lines are out. */
  private held: string[] | null = [];
  /** The guest's heartbeat count, when it last changed, and the timer that looks. */
  private readonly beats: Int32Array;
  private lastBeats = 0;
  private lastBeatAt = performance.now();
  private readonly watchdog: ReturnType<typeof setInterval>;

  constructor(
    private readonly opts: RunOptions,
    private readonly log: (line: string) => void,
    private readonly plan: Plan,
    private readonly arena: SharedArena,
    private readonly link: TenderLink,
    private readonly backend: Backend,
    private readonly worker: Worker,
    private readonly outputs: Outputs,
    liveness: SharedArrayBuffer,
  ) {
    this.booted = new Promise((resolve, reject) => {
      this.settleBooted = { resolve, reject };
    });
    this.done = new Promise((resolve) => {
      this.settleDone = resolve;
    });
    worker.on('message', (msg: GuestMessage) => this.onMessage(msg));
    worker.on('error', (err: Error & { code?: string }) => this.onError(err));
    worker.on('exit', () => this.onExit());
    this.beats = new Int32Array(liveness);
    this.watchdog = setInterval(() => this.watch(), HEARTBEAT_MS);
    const signal = opts.signal;
    if (signal?.aborted) void this.stop();
    else signal?.addEventListener('abort', () => void this.stop(), { once: true });
  }

  /** Boot within bootTimeoutMs, then a heartbeat at least every stuckAfterMs. */
  private watch(): void {
    const now = performance.now();
    const beats = Atomics.load(this.beats, LIVE_BEATS);
    if (beats !== this.lastBeats) {
      this.lastBeats = beats;
      this.lastBeatAt = now;
    }
    const { bootTimeoutMs, stuckAfterMs } = this.plan;
    if (!this.ready && now - this.started > bootTimeoutMs) this.stuck(`it did not finish booting within ${seconds(bootTimeoutMs)}`);
    else if (now - this.lastBeatAt > stuckAfterMs) this.stuck(`no heartbeat for ${seconds(now - this.lastBeatAt)}: its event loop is blocked`);
  }

  /** Report it with what the arena shows (the guest cannot answer), and end it. */
  private stuck(why: string): void {
    void this.finish({ code: 5, reason: 'stuck', message: this.memoryReport(`guest stuck: ${why}`).join('\n') });
  }

  /** The boot lines come first; the app's lines held until then follow. */
  announce(lines: string[]): void {
    const held = this.held ?? [];
    this.held = null;
    for (const line of [...lines, ...held]) this.log(line);
  }

  handle(chunks: number): GuestRun {
    return {
      split: this.plan.split,
      chunks,
      mac: this.plan.mac,
      arena: this.arena,
      link: this.link,
      backend: this.backend,
      stats: () => this.requestStats(),
      heapSnapshot: () => this.worker.getHeapSnapshot(),
      census: () => this.census(),
      stop: () => this.stop(),
      done: this.done,
    };
  }

  private record(snap: GuestSnapshot): StatsRecord {
    const t = performance.now() - this.started;
    const rec = statsRecord(t, this.plan.split, snap, this.link.stats(), this.backend.stats());
    this.last = rec;
    return rec;
  }

  private onMessage(msg: GuestMessage): void {
    switch (msg.type) {
      case 'ready':
        this.ready = true;
        this.settleBooted.resolve(msg.chunks);
        return;
      case 'stats': {
        const rec = this.record(msg.snapshot);
        if (msg.id === null) return this.outputs.stats?.write(rec);
        this.pending.get(msg.id)?.resolve(rec);
        this.pending.delete(msg.id);
        return;
      }
      case 'log':
        if (this.held) this.held.push(msg.text);
        else this.log(msg.text);
        return;
      case 'failed':
        void this.finish({ code: msg.usage ? 2 : 1, reason: msg.usage ? 'usage' : 'failed', message: msg.message });
        return;
      case 'over-budget': {
        const s = this.plan.split;
        const headline =
          `guest out of memory: JS heap ${formatBytes(msg.heapUsed)} and buffers outside the arena ${formatBytes(msg.external)} ` +
          `passed the heap's share ${formatBytes(msg.share)} (budget ${formatBytes(s.budget)})`;
        void this.finish({ code: 3, reason: 'out-of-memory', message: this.memoryReport(headline).join('\n') });
        return;
      }
      case 'stopped': {
        const final = this.record(msg.snapshot);
        this.outputs.stats?.write(final);
        void this.finish({ code: 0, reason: 'stopped', final, graceful: msg.graceful, reset: msg.reset });
        return;
      }
    }
  }

  private onError(err: Error & { code?: string }): void {
    if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') {
      const s = this.plan.split;
      const headline =
        `guest out of memory: JS heap limit ${formatBytes(s.heapBytes)} reached ` +
        `(old ${s.maxOldGenerationSizeMb}M, young ${s.youngChargeMb}M; budget ${formatBytes(s.budget)})`;
      void this.finish({ code: 3, reason: 'out-of-memory', message: this.memoryReport(headline).join('\n') });
    } else {
      void this.finish({ code: 1, reason: 'failed', message: err.stack ?? err.message });
    }
  }

  private onExit(): void {
    // An exit without a word (terminated, or ended by itself) after anything else is a failure.
    void this.finish({ code: 1, reason: 'failed', message: 'the guest exited unexpectedly' });
  }

  /** What the guest held when it ended without a word (its heap ran out, as
   *  solo5's Out_of_memory, or it is stuck): the arena by owner, read from
   *  shared memory, and its last snapshot. */
  private memoryReport(headline: string): string[] {
    const lines = [headline, ...describeArena(scanArena(this.arena.buffer))];
    const last = this.last;
    if (last) {
      const states = Object.entries(last.tcp.byState).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
      lines.push(
        `  at the last snapshot (t=${last.t} ms): heap ${formatBytes(last.mem.heapUsed)} used, ` +
          `${last.tcp.connections} connections${states.length > 0 ? ` (${states.join(', ')})` : ''}, ` +
          `${last.udp.sockets} UDP sockets, ${last.timers.armed} timers`,
      );
    }
    return lines;
  }

  private async census(): Promise<StatsRecord> {
    const heapCensus = await censusOfStream(await this.worker.getHeapSnapshot());
    const rec = await this.requestStats();
    const withCensus: StatsRecord = { ...rec, mem: { ...rec.mem, heapCensus } };
    this.outputs.stats?.write(withCensus);
    return withCensus;
  }

  private requestStats(): Promise<StatsRecord> {
    if (this.result) return Promise.reject(new Error(`the guest has ended (${this.result.reason})`));
    const id = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type: 'stats', id });
    });
  }

  private stop(): Promise<RunResult> {
    if (this.result) return this.done;
    // Not booted yet: nothing of the app's to close.
    if (!this.ready) void this.finish({ code: 0, reason: 'stopped', message: 'stopped before the guest finished booting' });
    this.stopping ??= this.stopGuest();
    return this.stopping;
  }

  private async stopGuest(): Promise<RunResult> {
    this.worker.postMessage({ type: 'stop', graceMs: this.opts.graceMs ?? DEFAULT_GRACE_MS });
    const timer = setTimeout(() => this.stuck(`it did not stop within ${seconds(STOP_TIMEOUT_MS)}`), STOP_TIMEOUT_MS);
    const r = await this.done;
    clearTimeout(timer);
    return r;
  }

  /** The first end wins: release the backend, the link, the files. */
  private async finish(r: RunResult): Promise<void> {
    if (this.result) return;
    this.result = r;
    clearInterval(this.watchdog);
    if (!this.ready) {
      // The error carries a report too (logged below as well); stopped by a signal is a clean end.
      const what = r.code === 1 ? `guest failed: ${r.message ?? ''}` : (r.message ?? r.reason);
      this.settleBooted.reject(new RunError(what, r.code));
    }
    for (const line of this.held ?? []) this.log(line);
    this.held = null;
    if (r.code === 3 || r.code === 5) for (const line of (r.message ?? '').split('\n')) this.log(line);
    for (const request of this.pending.values()) request.reject(new Error(`the guest has ended (${r.reason})`));
    this.pending.clear();
    void this.worker.terminate();
    this.link.close();
    await this.backend.close().catch(() => {});
    this.outputs.close();
    this.settleDone({ ...r, final: r.final ?? this.last });
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
