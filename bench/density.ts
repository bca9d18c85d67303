// Density: how many idle established TCP connections a 40 MB echo guest holds,
// and what each one costs it, in the arena and on the JS heap.
//
// 1. Over TAP, against the Linux kernel. The benchmark makes a network
//    namespace holding a persistent TAP interface, 10.77.0.1/16 plus the
//    client source addresses 10.77.1.1..10.77.1.K, with the namespace's
//    ephemeral port range raised to 1024-65535, and runs inside it
//      uk run --mem 40M --heap 12M --max-connections MOST --jit baseline --net tap:IF --ipv4 10.77.0.2/16 --stats FILE echo
//    and client processes (`ip netns exec NS node dist/bench/density-client.js`),
//    each holding up to 15,000 idle connections to the guest's port 7 (a
//    process may have at most 20,000 open files here; each stays under the
//    limit `ulimit -n` gives it). Needs root and /dev/net/tun: skipped,
//    saying why, otherwise.
// 2. Over user networking, in one tender process (whose open-file limit
//    bounds it): the same guest with a hostfwd, the clients in this
//    process, from many loopback addresses 127.77.x.y.
//
// Each part warms the guest up (a few connections opened and closed), takes
// its stats line as the idle baseline (step 0), then opens connections in
// steps (--step, toward --connections held by the guest). After each step
// it waits until the guest holds what the clients hold (bounded), and
// records from the guest's --stats line: tcp.connections, mem.heapUsed (after
// a full GC in the guest), mem.arenaUsed, arena chunks by kind, the admission
// counters, the TCP refusal counters, and whether the guest is alive. It stops
// adding when a step gains less than 1% of its attempts, then closes
// everything and checks the guest comes back down. Reported: the largest
// number held, arena and heap bytes per connection at that point against
// step 0, the heap's growth (target once control blocks live in the arena:
// 100,000 connections within 1 MiB), and the refusals. `uk run`'s own
// capacity line is printed for --mem 16M, 40M and 128M.
//
// Every loop is bounded in count and time; the namespace (with the TAP), the
// client processes and the guests are removed at the end, on error, and on
// SIGINT, SIGTERM or SIGHUP.
//
//   npm run bench:density [-- --connections 100000 --step 10000 --connections-user 15000]
//   options: --only tap|user, --mem 40M, --heap 12M, --per-process 15000, --sources 8,
//   --user-sources 250, --step-user N (default --step), --parallel 250,
//   --connect-timeout MS (8000), --stats-interval MS (1000), --jit baseline|optimizing,
//   --time-limit S (1800, per part)

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readSync, statSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { maxConnectionCapacity, parseSize, splitBudget } from '../host/budget.js';
import { packageRoot } from '../host/hotpath.js';
import { children, cleanupNow, deleteNamespace, hookExit, namespaces, run, sweepStale, tempDirs } from './cleanup.js';
import { describeMachine, freePort, isMain, writeMarkdownSection, writeResults, type Machine } from './common.js';
import { FD_RESERVE, IdleHolder, openFileLimit, type HolderTotals } from './density-client.js';

const MIB = 1024 * 1024;
/** Heap growth from 0 to N connections the redesign aims at. */
const HEAP_GROWTH_TARGET = MIB;
/** Connections over TAP the redesign aims at. */
const TARGET_CONNECTIONS = 100_000;
/** A step that gains less than this share of its attempts ends the climb. */
const MIN_GAIN = 0.01;
/** Warm-up connections, opened and closed before the baseline. */
const WARMUP = 32;
/** Counters that say why a SYN was not taken (tcp.counters). */
const REFUSALS = [
  'dropSynConnLimit', 'dropSynPressure', 'dropSynNoMemory', 'dropSynBacklogFull',
  'synCookiesSent', 'synCookiesAccepted', 'synCookiesQueueFull', 'pressureResets',
] as const;
const ADMISSION = ['pressureEntered', 'pressureLeft', 'refusedHeap', 'collections'] as const;
const CAPACITY_BUDGETS = ['16M', '40M', '128M'];
/** The kernel's side of the TAP; the guest is .0.2, the clients 10.77.1.k. */
const KERNEL_ADDRESS = '10.77.0.1';
const GUEST_ADDRESS = '10.77.0.2';
const PREFIX = 16;
const kernelSource = (k: number) => `10.77.1.${k + 1}`;
const loopbackSource = (k: number) => `127.77.${Math.floor(k / 250)}.${(k % 250) + 1}`;
const NS_PREFIX = 'ukb-';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- options -------------------------------------------------------------------------

interface Options {
  connections: number;
  step: number;
  connectionsUser: number;
  stepUser: number;
  only: 'tap' | 'user' | null;
  mem: string;
  /** `uk run --heap`: an echo guest keeps nothing per connection on the heap. */
  heap: string;
  perProcess: number;
  sources: number;
  userSources: number;
  parallel: number;
  connectTimeoutMs: number;
  statsIntervalMs: number;
  jit: 'baseline' | 'optimizing';
  timeLimitMs: number;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      connections: { type: 'string', default: String(TARGET_CONNECTIONS) },
      step: { type: 'string', default: '10000' },
      'connections-user': { type: 'string', default: '15000' },
      'step-user': { type: 'string' },
      only: { type: 'string' },
      mem: { type: 'string', default: '40M' },
      heap: { type: 'string', default: '12M' },
      'per-process': { type: 'string', default: '15000' },
      sources: { type: 'string', default: '8' },
      'user-sources': { type: 'string', default: '250' },
      parallel: { type: 'string', default: '250' },
      'connect-timeout': { type: 'string', default: '8000' },
      'stats-interval': { type: 'string', default: '1000' },
      jit: { type: 'string', default: 'baseline' },
      'time-limit': { type: 'string', default: '1800' },
    },
    strict: true,
  });
  const int = (name: string, text: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const n = Number(text);
    if (!/^\d+$/.test(text ?? '') || n < min || n > max) throw new Error(`--${name} ${text}: expected a whole number from ${min} to ${max}`);
    return n;
  };
  if (values.only !== undefined && values.only !== 'tap' && values.only !== 'user') throw new Error(`--only ${values.only}: expected tap or user`);
  if (values.jit !== 'baseline' && values.jit !== 'optimizing') throw new Error(`--jit ${values.jit}: expected baseline or optimizing`);
  const step = int('step', values.step, 1);
  return {
    connections: int('connections', values.connections, 1),
    step,
    connectionsUser: int('connections-user', values['connections-user'], 1),
    stepUser: values['step-user'] === undefined ? step : int('step-user', values['step-user'], 1),
    only: (values.only as Options['only']) ?? null,
    mem: values.mem!,
    heap: values.heap!,
    perProcess: int('per-process', values['per-process'], 1),
    sources: int('sources', values.sources, 1, 250),
    userSources: int('user-sources', values['user-sources'], 1, 250 * 250),
    parallel: int('parallel', values.parallel, 1),
    connectTimeoutMs: int('connect-timeout', values['connect-timeout'], 100),
    statsIntervalMs: int('stats-interval', values['stats-interval'], 100),
    jit: values.jit,
    timeLimitMs: int('time-limit', values['time-limit'], 10) * 1000,
  };
}

// ---- the guest -----------------------------------------------------------------------

/** The fields of a `--stats` line this benchmark reads (README "Stats fields"). */
interface StatsLine {
  t: number;
  mem: {
    heapUsed: number;
    heapLimit: number;
    heapAfterGc?: boolean;
    arenaUsed: number;
    arenaChunks: number;
    arenaChunksInUse: number;
    heapCode?: { codeAndMetadata: number; bytecodeAndMetadata: number };
  };
  arena: Record<string, number>;
  tcp: { connections: number; byState?: Record<string, number>; counters: Record<string, unknown> };
  /** Frames the link dropped towards the guest because its RX ring was full
   *  (the tender's count; on TAP the device's threads add theirs there too). */
  link?: { rxRingFull: number };
  admission?: { pressure: boolean; heapPressure?: boolean; connectionPressure?: boolean; heapHighWater: number; counters: Record<string, number> };
}

/** `uk run` in a child process, its --stats file read as it grows. */
class Guest {
  private stderrText = '';
  private code: number | null = null;
  private readonly exited: Promise<number | null>;
  private offset = 0;
  private partial = '';
  private stopping: Promise<number | null> | null = null;
  private readonly buf = Buffer.alloc(256 * 1024);
  /** Lines read so far, and the latest. */
  count = 0;
  latest: StatsLine | null = null;

  private constructor(
    readonly child: ChildProcess,
    readonly command: string,
    private readonly statsFile: string,
  ) {
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderrText += s));
    // Killed by a signal: 128 + its number, as a shell reports it.
    this.exited = new Promise((resolve) =>
      child.on('close', (c, signal) => resolve((this.code = c ?? (signal ? 128 + (constants.signals[signal] ?? 0) : -1)))),
    );
  }

  /** Start `node dist/host/cli.js run ARGS`, prefixed by `wrap` (ip netns exec NS). */
  static async start(args: string[], wrap: string[], statsFile: string, shown: string): Promise<Guest> {
    const argv = [...wrap, process.execPath, join(packageRoot(), 'dist/host/cli.js'), 'run', ...args];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(child);
    const guest = new Guest(child, shown, statsFile);
    const end = Date.now() + 30_000;
    while (!/uk: app: /.test(guest.stderrText)) {
      if (guest.code !== null) throw new Error(`${shown} exited (${guest.code}) before it was ready:\n${guest.stderrText}`);
      if (Date.now() > end) throw new Error(`${shown} was not ready within 30 s:\n${guest.stderrText}`);
      await sleep(50);
    }
    return guest;
  }

  stderr(): string {
    return this.stderrText;
  }

  alive(): boolean {
    return this.code === null;
  }

  exitCode(): number | null {
    return this.code;
  }

  /** maxConnections from the boot line `tcp: up to N connections`, if it says so. */
  maxConnections(): number | null {
    const m = /uk: tcp: up to (\d+) connections/.exec(this.stderrText);
    return m ? Number(m[1]) : null;
  }

  bootLines(): string[] {
    return this.stderrText.split('\n').filter((l) => /^uk: (mem|tcp|net|app): /.test(l));
  }

  /** Read the lines written since the last call. */
  poll(): void {
    if (!existsSync(this.statsFile)) return;
    const fd = openSync(this.statsFile, 'r');
    try {
      for (;;) {
        const n = readSync(fd, this.buf, 0, this.buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        this.partial += this.buf.toString('utf8', 0, n);
      }
    } finally {
      closeSync(fd);
    }
    const parts = this.partial.split('\n');
    this.partial = parts.pop()!;
    for (const line of parts) {
      if (line.trim() === '') continue;
      this.latest = JSON.parse(line) as StatsLine;
      this.count++;
    }
  }

  /** The first line after line number `after` for which `done(line)` holds,
   *  checked as lines arrive; at the deadline (or if the guest ends), the
   *  latest line after `after`, or null if none came. */
  async lineAfter(after: number, deadlineMs: number, done: (l: StatsLine) => boolean | Promise<boolean>): Promise<{ line: StatsLine | null; met: boolean }> {
    const end = Date.now() + deadlineMs;
    let seen = after;
    for (;;) {
      this.poll();
      if (this.count > seen && this.latest) {
        seen = this.count;
        if (await done(this.latest)) return { line: this.latest, met: true };
      }
      if (Date.now() > end || !this.alive()) return { line: this.count > after ? this.latest : null, met: false };
      await sleep(100);
    }
  }

  /** SIGTERM (SIGKILL after 15 s). */
  stop(): Promise<number | null> {
    return (this.stopping ??= (async () => {
      if (this.code === null) {
        this.child.kill('SIGTERM');
        const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
        await this.exited;
        clearTimeout(timer);
      }
      children.delete(this.child);
      return this.code;
    })());
  }
}

// ---- the client side -----------------------------------------------------------------

/** Where the idle connections come from: processes in the namespace, or this process. */
interface Clients {
  readonly describe: string;
  /** Connections it can still open. */
  room(): number;
  open(count: number): Promise<void>;
  totals(): Promise<HolderTotals>;
  closeAll(): Promise<void>;
  stop(): Promise<void>;
}

function addTotals(a: HolderTotals, b: HolderTotals): HolderTotals {
  const failed = { ...a.failed };
  for (const [k, v] of Object.entries(b.failed)) failed[k] = (failed[k] ?? 0) + v;
  return {
    attempted: a.attempted + b.attempted,
    connected: a.connected + b.connected,
    held: a.held + b.held,
    timedOut: a.timedOut + b.timedOut,
    failed,
    closedByPeer: a.closedByPeer + b.closedByPeer,
    clamped: a.clamped + b.clamped,
  };
}

const noTotals = (): HolderTotals => ({ attempted: 0, connected: 0, held: 0, timedOut: 0, failed: {}, closedByPeer: 0, clamped: 0 });

/** One density-client process inside the namespace, answering one JSON line per command. */
class ClientProcess {
  private readonly waiting: ((line: Record<string, unknown>) => void)[] = [];
  private exitedCode: number | null = null;
  last: HolderTotals = noTotals();
  maxHeld = 0;
  fdLimit: number | null = null;

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (msg.totals) this.last = msg.totals as HolderTotals;
      this.waiting.shift()?.(msg);
    });
    child.on('close', (c) => {
      this.exitedCode = c ?? -1;
      for (const w of this.waiting.splice(0)) w({ error: `client exited (${this.exitedCode})` });
    });
  }

  /** The next line (the ready line, or the answer to `cmd`), within timeoutMs. */
  next(cmd: object | null, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      if (this.exitedCode !== null) return reject(new Error(`density client exited (${this.exitedCode})`));
      const timer = setTimeout(() => reject(new Error(`density client: no answer to ${JSON.stringify(cmd)} within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push((msg) => {
        clearTimeout(timer);
        if (typeof msg.error === 'string') reject(new Error(`density client: ${msg.error}`));
        else resolve(msg);
      });
      if (cmd) this.child.stdin!.write(JSON.stringify(cmd) + '\n');
    });
  }

  async stop(): Promise<void> {
    if (this.exitedCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('close', () => resolve()));
      this.child.stdin!.end(); // it closes its sockets and exits
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    children.delete(this.child);
  }
}

class NamespaceClients implements Clients {
  private constructor(
    private readonly procs: ClientProcess[],
    private readonly parallel: number,
    private readonly connectTimeoutMs: number,
    readonly describe: string,
  ) {}

  static async start(ns: string, processes: number, perProcess: number, sources: string[], o: Options): Promise<NamespaceClients> {
    const script = join(packageRoot(), 'dist/bench/density-client.js');
    const procs: ClientProcess[] = [];
    for (let i = 0; i < processes; i++) {
      const child = spawn(
        'ip',
        ['netns', 'exec', ns, process.execPath, script, '--host', GUEST_ADDRESS, '--port', '7', '--sources', sources.join(','),
          '--parallel', String(o.parallel), '--connect-timeout', String(o.connectTimeoutMs), '--max', String(perProcess)],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      children.add(child);
      const p = new ClientProcess(child);
      procs.push(p);
      const ready = await p.next(null, 20_000);
      p.maxHeld = Number(ready.maxHeld);
      p.fdLimit = ready.fdLimit === null ? null : Number(ready.fdLimit);
    }
    const limits = [...new Set(procs.map((p) => p.fdLimit))].join(', ');
    return new NamespaceClients(
      procs,
      o.parallel,
      o.connectTimeoutMs,
      `${processes} client process${processes === 1 ? '' : 'es'} in the namespace (open-file limit ${limits}; up to ${procs.map((p) => p.maxHeld).join(', ')} each), ` +
        `sources ${sources[0]}..${sources[sources.length - 1]}, ${o.parallel} attempts in flight each, connect timeout ${o.connectTimeoutMs} ms`,
    );
  }

  room(): number {
    return this.procs.reduce((s, p) => s + Math.max(0, p.maxHeld - p.last.held), 0);
  }

  async open(count: number): Promise<void> {
    // Spread the attempts over the processes with room, evenly.
    const room = this.procs.map((p) => Math.max(0, p.maxHeld - p.last.held));
    const alloc = room.map(() => 0);
    let left = count;
    while (left > 0) {
      const open = room.map((r, i) => (r - alloc[i]! > 0 ? i : -1)).filter((i) => i >= 0);
      if (open.length === 0) break;
      const share = Math.max(1, Math.floor(left / open.length));
      for (const i of open) {
        const a = Math.min(share, room[i]! - alloc[i]!, left);
        alloc[i]! += a;
        left -= a;
        if (left === 0) break;
      }
    }
    await Promise.all(
      this.procs.map((p, i) => {
        const n = alloc[i]!;
        if (n === 0) return null;
        const bound = this.connectTimeoutMs * Math.ceil(n / this.parallel) + 60_000;
        return p.next({ cmd: 'open', count: n }, bound);
      }),
    );
  }

  async totals(): Promise<HolderTotals> {
    const all = await Promise.all(this.procs.map((p) => p.next({ cmd: 'stats' }, 30_000)));
    return all.reduce((s, m) => addTotals(s, m.totals as HolderTotals), noTotals());
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.next({ cmd: 'close' }, 60_000)));
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop()));
  }
}

class LocalClients implements Clients {
  constructor(
    private readonly holder: IdleHolder,
    private readonly maxHeld: number,
    readonly describe: string,
  ) {}

  room(): number {
    return Math.max(0, this.maxHeld - this.holder.totals().held);
  }

  async open(count: number): Promise<void> {
    await this.holder.open(count);
  }

  async totals(): Promise<HolderTotals> {
    return this.holder.totals();
  }

  async closeAll(): Promise<void> {
    this.holder.closeAll();
  }

  async stop(): Promise<void> {
    this.holder.closeAll();
  }
}

// ---- measuring -----------------------------------------------------------------------

interface StepRecord {
  /** 0: the idle baseline after the warm-up. */
  step: number;
  /** This step's attempts, and all since the baseline. */
  attempts: number;
  attempted: number;
  /** Open on the client side now. */
  clientHeld: number;
  /** Since the baseline: attempts that never connected, connects that failed, connections the guest (or gateway) closed. */
  timedOut: number;
  failed: Record<string, number>;
  closedByPeer: number;
  /** The guest's tcp.connections, and its change in this step. */
  connections: number;
  established: number;
  gain: number;
  /** The guest and the clients agreed on what is held when the line was taken. */
  settled: boolean;
  heapUsed: number;
  heapAfterGc: boolean;
  /** The isolate's heap limit, and the old-generation mark above which admission refuses (README "Memory budget"). */
  heapLimit: number;
  heapHighWater: number;
  /** The program's part of heapUsed (code and bytecode with their metadata). */
  heapProgram: number;
  arenaUsed: number;
  arenaChunksInUse: number;
  /** Chunks in use by kind (kinds with none left out). */
  arena: Record<string, number>;
  /** TCP refusal counters, since the baseline. */
  refusals: Record<string, number>;
  /** Admission's pressure now: the heap over its high-water mark, the connection table over 90%. */
  heapPressure: boolean;
  connectionPressure: boolean;
  /** Admission counters, since the baseline. */
  admission: Record<string, number>;
  alive: boolean;
  seconds: number;
}

interface Summary {
  largestHeld: number;
  atStep: number;
  /** (arenaUsed at N - arenaUsed at 0) / N */
  arenaBytesPerConnection: number | null;
  /** (heapUsed at N - heapUsed at 0) / N */
  heapBytesPerConnection: number | null;
  heapGrowth: number;
  heapGrowthWithinTarget: boolean;
  /** How much of heapGrowth is program (code compiled during the climb), not data. */
  programGrowth: number;
  /** Held by the clients at that step but not by the guest. */
  clientHeldNotInGuest: number;
  refusals: Record<string, number>;
  admission: Record<string, number>;
  stopReason: string;
  guestAlive: boolean;
  release: {
    connections: number;
    heapUsed: number;
    arenaUsed: number;
    arenaChunksInUse: number;
    seconds: number;
    settled: boolean;
    /** The states the connections still held are in (those above 0). */
    states: string;
    /** Frames dropped at the guest's full RX ring while everything closed. */
    rxRingFull: number;
  } | null;
}

interface PartResult {
  network: 'tap' | 'user';
  command: string;
  bootLines: string[];
  maxConnections: number | null;
  clients: string;
  target: number;
  step: number;
  steps: StepRecord[];
  summary: Summary;
  guestExit: number | null;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : 0);

function sinceBase(now: Record<string, unknown> | undefined, base: Record<string, unknown> | undefined, names: readonly string[]): Record<string, number> {
  return Object.fromEntries(names.map((n) => [n, num(now?.[n]) - num(base?.[n])]));
}

function diffFailed(now: Record<string, number>, base: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(now)) if (v - (base[k] ?? 0) > 0) out[k] = v - (base[k] ?? 0);
  return out;
}

function record(
  step: number, attempts: number, line: StatsLine, base: StatsLine | null, totals: HolderTotals, baseTotals: HolderTotals,
  prevConnections: number, settled: boolean, alive: boolean, seconds: number,
): StepRecord {
  const code = line.mem.heapCode;
  return {
    step,
    attempts,
    attempted: totals.attempted - baseTotals.attempted,
    clientHeld: totals.held,
    timedOut: totals.timedOut - baseTotals.timedOut,
    failed: diffFailed(totals.failed, baseTotals.failed),
    closedByPeer: totals.closedByPeer - baseTotals.closedByPeer,
    connections: line.tcp.connections,
    established: line.tcp.byState?.ESTABLISHED ?? 0,
    gain: line.tcp.connections - prevConnections,
    settled,
    heapUsed: line.mem.heapUsed,
    heapAfterGc: line.mem.heapAfterGc === true,
    heapLimit: line.mem.heapLimit,
    heapHighWater: line.admission?.heapHighWater ?? 0,
    heapProgram: code ? code.codeAndMetadata + code.bytecodeAndMetadata : 0,
    arenaUsed: line.mem.arenaUsed,
    arenaChunksInUse: line.mem.arenaChunksInUse,
    arena: Object.fromEntries(Object.entries(line.arena).filter(([, v]) => v > 0)),
    refusals: sinceBase(line.tcp.counters, (base ?? line).tcp.counters, REFUSALS),
    heapPressure: line.admission?.heapPressure ?? line.admission?.pressure ?? false,
    connectionPressure: line.admission?.connectionPressure ?? false,
    admission: sinceBase(line.admission?.counters, (base ?? line).admission?.counters, ADMISSION),
    alive,
    seconds,
  };
}

interface MeasureOptions {
  network: 'tap' | 'user';
  target: number;
  step: number;
  /** How long to wait, after a step's attempts are done, for the guest to hold what the clients hold. */
  settleMs: number;
  timeLimitMs: number;
}

async function measure(guest: Guest, clients: Clients, o: MeasureOptions): Promise<{ steps: StepRecord[]; summary: Summary }> {
  const started = Date.now();
  const label = o.network === 'tap' ? 'tap' : 'user';
  const heldBy = async () => (await clients.totals()).held;
  const agree = async (l: StatsLine) => l.tcp.connections === (await heldBy());

  // Warm-up: the paths an idle connection takes (handshake, accept, close)
  // are compiled before the baseline, so that step 0 is the idle guest.
  const warm = Math.min(WARMUP, o.target);
  await clients.open(warm);
  await guest.lineAfter(guest.count, o.settleMs, agree);
  await clients.closeAll();
  const drained = await guest.lineAfter(guest.count, 30_000, (l) => l.tcp.connections === 0);
  if (!drained.met) console.log(`density ${label}: the guest still held ${drained.line?.tcp.connections ?? '?'} after the warm-up`);
  // One more line, written with nothing going on.
  const idle = await guest.lineAfter(guest.count, 10_000, () => true);
  if (!idle.line) throw new Error(`density ${label}: no stats line from the guest\n${guest.stderr()}`);
  const base = idle.line;
  const baseTotals = await clients.totals();
  const steps: StepRecord[] = [record(0, 0, base, null, baseTotals, baseTotals, 0, drained.met, guest.alive(), 0)];
  console.log(`density ${label}: idle baseline: heap ${mib(base.mem.heapUsed)}, arena ${mib(base.mem.arenaUsed)}, ${base.tcp.connections} connections`);

  let prev = steps[0]!;
  let stopReason = '';
  for (let i = 1; ; i++) {
    if (!guest.alive()) {
      stopReason = `the guest exited (${guest.exitCode()})`;
      break;
    }
    if (Date.now() - started > o.timeLimitMs) {
      stopReason = `time limit (${o.timeLimitMs / 1000} s) reached`;
      break;
    }
    const wanted = o.target - prev.connections;
    if (wanted <= 0) {
      stopReason = `reached ${o.target} connections`;
      break;
    }
    const attempts = Math.min(o.step, wanted, clients.room());
    if (attempts <= 0) {
      stopReason = 'the clients have no file descriptors left';
      break;
    }
    const t0 = Date.now();
    const mark = guest.count;
    await clients.open(attempts);
    const { line, met } = await guest.lineAfter(mark, o.settleMs + 2 * 1000, agree);
    if (!line) {
      stopReason = `no stats line from the guest after step ${i}`;
      break;
    }
    const rec = record(i, attempts, line, base, await clients.totals(), baseTotals, prev.connections, met, guest.alive(), (Date.now() - t0) / 1000);
    steps.push(rec);
    console.log(
      `density ${label}: step ${i}: ${attempts} attempts, guest holds ${rec.connections} (+${rec.gain}), clients ${rec.clientHeld}; ` +
        `heap ${mib(rec.heapUsed)}, arena ${mib(rec.arenaUsed)}; refusals ${compact(rec.refusals)}; ${rec.seconds.toFixed(1)} s`,
    );
    prev = rec;
    if (rec.gain < MIN_GAIN * attempts) {
      stopReason = `step ${i} gained ${rec.gain} of ${attempts} attempts (under ${MIN_GAIN * 100}%): no longer accepted`;
      break;
    }
  }

  const alive = steps.filter((s) => s.alive);
  const peak = alive.reduce((best, s) => (s.connections > best.connections ? s : best), steps[0]!);
  const n = peak.connections;
  const base0 = steps[0]!;

  // Release everything; the guest should come back down.
  let release: Summary['release'] = null;
  if (guest.alive()) {
    const t0 = Date.now();
    const mark = guest.count;
    const dropsBefore = guest.latest?.link?.rxRingFull ?? 0;
    await clients.closeAll();
    const r = await guest.lineAfter(mark, 60_000, (l) => l.tcp.connections === 0);
    if (r.line) {
      const states = Object.entries(r.line.tcp.byState ?? {}).filter(([name, k]) => k > 0 && name !== 'LISTEN');
      release = {
        connections: r.line.tcp.connections, heapUsed: r.line.mem.heapUsed, arenaUsed: r.line.mem.arenaUsed,
        arenaChunksInUse: r.line.mem.arenaChunksInUse, seconds: (Date.now() - t0) / 1000, settled: r.met,
        states: states.map(([name, k]) => `${name} ${k}`).join(', ') || 'none',
        rxRingFull: (r.line.link?.rxRingFull ?? 0) - dropsBefore,
      };
    }
  }
  const last = steps[steps.length - 1]!;
  const heapGrowth = peak.heapUsed - base0.heapUsed;
  return {
    steps,
    summary: {
      largestHeld: n,
      atStep: peak.step,
      arenaBytesPerConnection: n > 0 ? (peak.arenaUsed - base0.arenaUsed) / n : null,
      heapBytesPerConnection: n > 0 ? heapGrowth / n : null,
      heapGrowth,
      heapGrowthWithinTarget: n > 0 && heapGrowth <= HEAP_GROWTH_TARGET,
      programGrowth: peak.heapProgram - base0.heapProgram,
      clientHeldNotInGuest: Math.max(0, peak.clientHeld - peak.connections),
      refusals: last.refusals,
      admission: last.admission,
      stopReason,
      guestAlive: guest.alive(),
      release,
    },
  };
}

// ---- the two parts -------------------------------------------------------------------

/** Why the TAP part cannot run here, or null. */
function tapUnavailable(): string | null {
  if (process.getuid?.() !== 0) return `needs root (running as uid ${process.getuid?.() ?? '?'})`;
  try {
    if (!statSync('/dev/net/tun').isCharacterDevice()) return '/dev/net/tun is not a character device';
  } catch {
    return '/dev/net/tun is missing';
  }
  if (spawnSync('ip', ['-V']).status !== 0) return 'iproute2 (`ip`) is missing';
  return null;
}

function statsArgs(o: Options, statsFile: string): string[] {
  return ['--stats', statsFile, '--stats-interval', String(o.statsIntervalMs)];
}

async function overTap(o: Options, dir: string): Promise<PartResult> {
  sweepStale(new RegExp(`^(${NS_PREFIX}(\\d+)-density)\\b`));
  const ns = `${NS_PREFIX}${process.pid}-density`;
  const tap = `ukb${process.pid.toString(36)}d`;
  namespaces.add(ns);
  let guest: Guest | null = null;
  let clients: NamespaceClients | null = null;
  try {
    run('ip', ['netns', 'add', ns]);
    run('ip', ['-n', ns, 'link', 'set', 'dev', 'lo', 'up']);
    // Persistent, inside the namespace: the guest, started there, attaches to it by name.
    run('ip', ['-n', ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    run('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', `net.ipv6.conf.${tap}.disable_ipv6=1`]);
    run('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=1024 65535']);
    run('ip', ['-n', ns, 'addr', 'add', `${KERNEL_ADDRESS}/${PREFIX}`, 'dev', tap]);
    const sources = Array.from({ length: o.sources }, (_, k) => kernelSource(k));
    for (const s of sources) run('ip', ['-n', ns, 'addr', 'add', `${s}/${PREFIX}`, 'dev', tap]);
    run('ip', ['-n', ns, 'link', 'set', 'dev', tap, 'up']);
    const fdLimit = Number(run('ip', ['netns', 'exec', ns, 'sh', '-c', 'ulimit -n']).trim());
    const perProcess = Number.isFinite(fdLimit) ? Math.min(o.perProcess, fdLimit - FD_RESERVE) : o.perProcess;
    if (perProcess <= 0) throw new Error(`open-file limit ${fdLimit} in the namespace leaves no room for connections`);
    const processes = Math.ceil(o.connections / perProcess);
    console.log(`density tap: namespace ${ns}, ${tap} ${KERNEL_ADDRESS}/${PREFIX} + ${sources.length} client addresses; ulimit -n ${fdLimit}: ${processes} x ${perProcess} connections`);

    const statsFile = join(dir, 'tap-stats.jsonl');
    const args = [...memArgs(o), '--jit', o.jit, '--net', `tap:${tap}`, '--ipv4', `${GUEST_ADDRESS}/${PREFIX}`, ...statsArgs(o, statsFile), 'echo'];
    const shown = `uk run ${memArgs(o).join(' ')} --jit ${o.jit} --net tap:${tap} --ipv4 ${GUEST_ADDRESS}/${PREFIX} --stats FILE --stats-interval ${o.statsIntervalMs} echo`;
    guest = await Guest.start(args, ['ip', 'netns', 'exec', ns], statsFile, shown);
    for (const l of guest.bootLines()) console.log(`density tap: ${l}`);
    clients = await NamespaceClients.start(ns, processes, perProcess, sources, o);
    console.log(`density tap: ${clients.describe}`);
    const { steps, summary } = await measure(guest, clients, {
      network: 'tap', target: o.connections, step: o.step, settleMs: 10_000, timeLimitMs: o.timeLimitMs,
    });
    await clients.stop();
    const exit = await guest.stop();
    return {
      network: 'tap', command: shown, bootLines: guest.bootLines(), maxConnections: guest.maxConnections(), clients: clients.describe,
      target: o.connections, step: o.step, steps, summary, guestExit: exit,
    };
  } finally {
    await clients?.stop().catch(() => {});
    await guest?.stop().catch(() => {});
    deleteNamespace(ns);
  }
}

async function overUser(o: Options, dir: string): Promise<PartResult> {
  const fdLimit = openFileLimit();
  const maxHeld = fdLimit === null ? o.connectionsUser : Math.min(o.connectionsUser, fdLimit - FD_RESERVE);
  if (maxHeld < o.connectionsUser) console.log(`density user: ${o.connectionsUser} asked, ${maxHeld} fit under this process's open-file limit ${fdLimit}`);
  const port = await freePort();
  const statsFile = join(dir, 'user-stats.jsonl');
  const fwd = `hostfwd=tcp:127.0.0.1:${port}-:7`;
  const args = [...memArgs(o), '--jit', o.jit, '--net', `user:${fwd}`, ...statsArgs(o, statsFile), 'echo'];
  const shown = `uk run ${memArgs(o).join(' ')} --jit ${o.jit} --net user:${fwd} --stats FILE --stats-interval ${o.statsIntervalMs} echo`;
  const guest = await Guest.start(args, [], statsFile, shown);
  try {
    for (const l of guest.bootLines()) console.log(`density user: ${l}`);
    const sources = Array.from({ length: o.userSources }, (_, k) => loopbackSource(k));
    const holder = new IdleHolder({ host: '127.0.0.1', port, sources, parallel: o.parallel, connectTimeoutMs: o.connectTimeoutMs, maxHeld });
    const clients = new LocalClients(
      holder,
      maxHeld,
      `this process (open-file limit ${fdLimit ?? 'unknown'}; up to ${maxHeld}), sources ${sources[0]}..${sources[sources.length - 1]}, ` +
        `${o.parallel} attempts in flight, connect timeout ${o.connectTimeoutMs} ms`,
    );
    console.log(`density user: ${clients.describe}`);
    // The gateway gives up on a guest handshake after 10 s: wait past that.
    const { steps, summary } = await measure(guest, clients, {
      network: 'user', target: maxHeld, step: o.stepUser, settleMs: 15_000, timeLimitMs: o.timeLimitMs,
    });
    await clients.stop();
    const exit = await guest.stop();
    return {
      network: 'user', command: shown, bootLines: guest.bootLines(), maxConnections: guest.maxConnections(), clients: clients.describe,
      target: maxHeld, step: o.stepUser, steps, summary, guestExit: exit,
    };
  } finally {
    await guest.stop().catch(() => {});
  }
}

/** The budget options of the measured guest: --mem, --heap, and the most
 *  connections that budget's arena takes (its table beside the rings and 2 MiB). */
function memArgs(o: Options): string[] {
  const most = maxConnectionCapacity(splitBudget(parseSize(o.mem), parseSize(o.heap)));
  return ['--mem', o.mem, '--heap', o.heap, '--max-connections', String(most)];
}

/** `uk run --mem M echo`'s own boot lines about memory and connections. */
async function capacityLines(dir: string): Promise<{ mem: string; line: string; maxConnections: number | null }[]> {
  const out: { mem: string; line: string; maxConnections: number | null }[] = [];
  for (const mem of CAPACITY_BUDGETS) {
    const guest = await Guest.start(['--mem', mem, 'echo'], [], join(dir, `capacity-${mem}.jsonl`), `uk run --mem ${mem} echo`);
    await guest.stop();
    const line = /uk: (tcp: .*)/.exec(guest.stderr())?.[1] ?? `(no tcp line; boot lines: ${guest.bootLines().join(' | ')})`;
    out.push({ mem, line, maxConnections: guest.maxConnections() });
    console.log(`density: --mem ${mem}: ${line}`);
  }
  return out;
}

// ---- report --------------------------------------------------------------------------

function mib(n: number): string {
  return `${(n / MIB).toFixed(2)} MiB`;
}

function signedMib(n: number): string {
  return `${n < 0 ? '-' : '+'}${mib(Math.abs(n))}`;
}

function bytesEach(n: number | null): string {
  return n === null ? 'n/a' : `${Math.round(n).toLocaleString('en-US')} B`;
}

function compact(o: Record<string, number>): string {
  const parts = Object.entries(o).filter(([, v]) => v !== 0).map(([k, v]) => `${k} ${v}`);
  return parts.length ? parts.join(', ') : 'none';
}

const int = (n: number) => n.toLocaleString('en-US');

function pressureText(r: StepRecord): string {
  const on = [r.heapPressure ? 'heap' : '', r.connectionPressure ? 'connection table' : ''].filter(Boolean);
  return on.length ? `pressure now: ${on.join(', ')}; ` : '';
}

function partText(title: string, p: PartResult | { skipped: string }): string[] {
  if ('skipped' in p) return [`### ${title}`, '', `Skipped: ${p.skipped}.`, ''];
  const s = p.summary;
  const base = p.steps[0]!;
  const lines = [
    `### ${title}`,
    '',
    `Guest: \`${p.command}\`. Clients: ${p.clients}.`,
    `Boot: ${p.bootLines.map((l) => `\`${l.replace(/^uk: /, '')}\``).join('; ')}.`,
    '',
    '| figure | value |',
    '|---|---|',
    `| largest number held by the guest | **${int(s.largestHeld)}** (step ${s.atStep}; maxConnections at boot ${p.maxConnections ?? 'not printed'}) |`,
    `| arena per connection, fixed at boot: the tables (${int(base.arena.table ?? 0)} chunks) / maxConnections | ${bytesEach(p.maxConnections ? ((base.arena.table ?? 0) * 2048) / p.maxConnections : null)} |`,
    `| arena per connection beyond the tables, (arenaUsed at N - at 0) / N | ${bytesEach(s.arenaBytesPerConnection)} |`,
    `| heap per connection, (heapUsed at N - idle) / N | ${bytesEach(s.heapBytesPerConnection)} |`,
    `| heap growth 0 -> N (target after the redesign: within 1 MiB) | ${signedMib(s.heapGrowth)} (${s.heapGrowthWithinTarget ? 'within' : 'over'}; of it program ${signedMib(s.programGrowth)}) |`,
    `| heap idle / at N / admission high-water / limit | ${mib(base.heapUsed)} / ${mib(base.heapUsed + s.heapGrowth)} / ${mib(base.heapHighWater)} / ${mib(base.heapLimit)} |`,
    `| refusals (TCP counters over the climb) | ${compact(s.refusals)} |`,
    `| admission counters | ${compact(s.admission)} |`,
    `| held by the clients but not by the guest, at N | ${int(s.clientHeldNotInGuest)} |`,
    `| stopped because | ${s.stopReason} |`,
    `| guest alive at the end / exit | ${s.guestAlive ? 'yes' : '**NO**'} / ${p.guestExit ?? 'n/a'} |`,
    `| after closing everything | ${s.release ? `${int(s.release.connections)} connections (${s.release.states}), heap ${mib(s.release.heapUsed)}, arena ${mib(s.release.arenaUsed)} (${s.release.arenaChunksInUse} chunks), ${s.release.seconds.toFixed(1)} s; frames dropped at the guest's full RX ring meanwhile ${int(s.release.rxRingFull)}` : 'n/a'} |`,
    '',
    'Per step (counts since step 0; "closed by peer": connected, then closed by the guest or, on user networking, reset by the gateway when the guest did not answer):',
    '',
    '| step | attempts | guest holds | gain | clients hold | timed out | failed | closed by peer | heap after GC | arena | arena chunks by kind | refusals | admission | alive | s |',
    '|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|---|---|---:|',
    ...p.steps.map(
      (r) =>
        `| ${r.step} | ${int(r.attempts)} | ${int(r.connections)} | ${r.step === 0 ? '' : int(r.gain)} | ${int(r.clientHeld)} | ${int(r.timedOut)} | ${compact(r.failed)} | ${int(r.closedByPeer)} | ` +
        `${mib(r.heapUsed)}${r.heapAfterGc ? '' : ' (no GC)'} | ${mib(r.arenaUsed)} | ${compact(r.arena)} | ${compact(r.refusals)} | ` +
        `${pressureText(r)}${compact(r.admission)} | ${r.alive ? 'yes' : 'NO'} | ${r.seconds.toFixed(1)} |`,
    ),
    '',
  ];
  return lines;
}

function report(machine: Machine, command: string, o: Options, capacity: Awaited<ReturnType<typeof capacityLines>>, tap: PartResult | { skipped: string } | null, user: PartResult | null): string {
  const verdict = (p: PartResult | { skipped: string } | null, target: number) =>
    !p || 'skipped' in p
      ? 'not run'
      : `${int(p.summary.largestHeld)} held of ${int(target)} (${p.summary.largestHeld >= target ? 'reached' : 'not reached'}), heap growth ${signedMib(p.summary.heapGrowth)} (${p.summary.heapGrowthWithinTarget ? 'within' : 'over'} 1 MiB)`;
  return [
    '## Density',
    '',
    `\`${command}\`, ${machine.date}, ${machine.cpu} (${machine.cores} cores, load ${machine.load.toFixed(2)}), Node ${machine.node}.`,
    `How many idle established TCP connections a ${o.mem} echo guest (\`--heap ${o.heap}\`, its table as large as its arena takes) holds, and what each costs it: its share of the`,
    'tables taken at boot (control block records, timer positions, the 4-tuple hash), arena bytes beyond them ((arenaUsed at N - at 0) / N)',
    'and JS heap bytes ((heapUsed at N - idle) / N), from its `--stats` lines (heap measured after a full GC in the guest), step 0 being',
    `the idle guest after a warm-up of ${WARMUP} connections opened and closed. Steps of idle connections until a step gains under 1% of its attempts.`,
    `Guests run with \`--jit ${o.jit}\`${o.jit === 'baseline' ? ' (every function compiled once, so the heap after GC measures data: README "Running a guest")' : ''}; "program" below is the change in compiled code and bytecode.`,
    'For comparison: lwIP\'s TCP control block is 168-224 bytes; a Linux TCP socket about 2.4 KB before buffers.',
    `Targets once control blocks live in the arena: ${int(TARGET_CONNECTIONS)} connections over TAP, heap growth from 0 to N within 1 MiB.`,
    `Over TAP: ${verdict(tap, o.connections)}. Over user networking: ${verdict(user, user?.target ?? o.connectionsUser)}.`,
    '',
    'Capacity `uk run` prints at boot:',
    '',
    '| --mem | boot line |',
    '|---|---|',
    ...capacity.map((c) => `| ${c.mem} | \`${c.line}\` |`),
    '',
    ...(tap ? partText('Over TAP, kernel clients in a network namespace', tap) : []),
    ...(user ? partText('Over user networking, clients in the benchmark process', user) : []),
  ].join('\n');
}

// ---- main ----------------------------------------------------------------------------

export async function runDensityBench(argv: string[] = process.argv.slice(2)): Promise<void> {
  const o = parseOptions(argv);
  hookExit('density');
  const machine = describeMachine();
  const command = ['npm run bench:density', ...(argv.length ? ['--', ...argv] : [])].join(' ');
  const dir = mkdtempSync(join(tmpdir(), 'uk-density-'));
  tempDirs.add(dir);
  try {
    const capacity = await capacityLines(dir);
    let tap: PartResult | { skipped: string } | null = null;
    let user: PartResult | null = null;
    if (o.only !== 'user') {
      const why = tapUnavailable();
      if (why) {
        console.log(`density tap: skipped: ${why}`);
        tap = { skipped: why };
      } else {
        tap = await overTap(o, dir);
      }
    }
    if (o.only !== 'tap') {
      user = await overUser(o, dir);
    }
    const text = report(machine, command, o, capacity, tap, user);
    writeMarkdownSection(packageRoot(), 'Density', text);
    writeResults(packageRoot(), 'density', { machine, command, options: o, capacity, tap, user });
    console.log('\n' + text);
    const dead = [tap, user].some((p) => p && !('skipped' in p) && !p.summary.guestAlive);
    if (dead) process.exitCode = 1;
  } finally {
    cleanupNow();
  }
}

if (isMain(import.meta.url)) {
  await runDensityBench().catch((err: Error) => {
    console.error(`density: ${err.stack ?? err.message}`);
    process.exitCode = 1;
  });
}
