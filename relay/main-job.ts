// `npm start`: the relay as a guest under a fixed memory budget, stressed run
// after run, with the guest's memory checked after each run against what it
// used before the first (issue #499: the relay died on the second run because
// the first run's memory never came back).
//
//   node dist/relay/main-job.js [--pairs 256] [--runs 8] [--size BYTES]
//     [--mem 40M] [--hotpath wasm|ts] [--jit baseline|optimizing] [--isolate thread|process]
//     [--port 9000] [--secure-port 9001] [--concurrency 16] [--warmup 1] [--json]
//
// It boots `uk run --mem M relay` as a child on user networking, forwarding
// 127.0.0.1:PORT and :SECURE-PORT to the guest's 9000 and 9001, runs `bob
// stress` in this process, prints one row per run and a verdict. Exit 0 when
// every transfer succeeded and memory came back, 1 otherwise, 2 on bad flags.
//
// The baseline is taken once the warm-up runs are over and the guest is
// quiescent: V8 compiles each function of the relay's path on its first use,
// and that code is the program, not state left by connections. The guest runs
// with `--jit baseline` by default (host/jit.ts): without the optimizing
// compiler nothing is recompiled later, so the 1% check sees the relay's and
// the stack's memory rather than the compiler's; the relay is network-bound
// and runs as fast either way (BENCHMARKS.md "Relay").
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { packageRoot } from '../host/hotpath.js';
import { JIT_MODES, type JitMode } from '../host/jit.js';
import { silentLogger } from './client/log.js';
import { type GuestMemory, statsMark, waitForCensus, waitForQuiescence } from './stress/guest-stats.js';
import { STRESS_DEFAULT_CONCURRENCY, STRESS_PBKDF2_COUNT, type RunReport, stress } from './stress/stress.js';
import { failureReasons, spacesText } from './stress/report.js';

export const GUEST_STATS_INTERVAL_MS = 250;
/** heapUsed (after GC) may differ from the baseline by this fraction: GC is not byte-exact. */
export const HEAP_TOLERANCE = 0.01;
const BOOT_TIMEOUT_MS = 30_000;
const QUIESCENCE_TIMEOUT_MS = 60_000;
/** A heap snapshot of a 16 MiB heap takes about a second; under load, more. */
const CENSUS_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------- the guest

export interface RelayGuest {
  readonly ports: { readonly handshake: number; readonly secure: number };
  readonly statsFile: string;
  /** What the guest printed on stderr so far. */
  readonly stderr: () => string;
  /** Ask `uk run` for a heap census (SIGUSR2) and read the line it writes. */
  census(): Promise<GuestMemory | null>;
  /** SIGTERM, then SIGKILL if it has not ended within 10 s; removes the stats file. Idempotent. */
  stop(): Promise<number | null>;
}

export interface RelayGuestOptions {
  readonly mem: string;
  readonly hotpath: 'wasm' | 'ts';
  /** `uk run --jit` (default optimizing). */
  readonly jit?: JitMode;
  readonly ports: { readonly handshake: number; readonly secure: number };
  /** Arguments for the relay app (e.g. ['-v']). */
  readonly relayArgs?: readonly string[];
  /** More `uk run` options (e.g. ['--max-connections', '600']). */
  readonly ukArgs?: readonly string[];
}

/** Boots `uk run relay` (the built CLI) and resolves once the relay listens. */
export async function startRelayGuest(options: RelayGuestOptions): Promise<RelayGuest> {
  const dir = await mkdtemp(join(tmpdir(), 'uk-relay-'));
  const statsFile = join(dir, 'stats.jsonl');
  const { handshake, secure } = options.ports;
  const args = [
    join(packageRoot(), 'dist/host/cli.js'),
    'run',
    '--mem', options.mem,
    '--hotpath', options.hotpath,
    '--jit', options.jit ?? 'optimizing',
    '--net', `user:hostfwd=tcp:127.0.0.1:${handshake}-:9000,hostfwd=tcp:127.0.0.1:${secure}-:9001`,
    '--stats', statsFile,
    '--stats-interval', String(GUEST_STATS_INTERVAL_MS),
    ...(options.ukArgs ?? []),
    'relay',
    ...(options.relayArgs ?? []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  let stopping: Promise<number | null> | null = null;
  const stop = (): Promise<number | null> =>
    (stopping ??= (async () => {
      const code = await endChild(child, exited);
      await rm(dir, { recursive: true, force: true });
      return code;
    })());
  try {
    await waitForListening(() => stderr, exited);
  } catch (error) {
    await stop();
    throw error;
  }
  const census = async (): Promise<GuestMemory | null> => {
    const mark = await statsMark(statsFile);
    child.kill('SIGUSR2');
    return waitForCensus(statsFile, mark, CENSUS_TIMEOUT_MS);
  };
  return { ports: options.ports, statsFile, stderr: () => stderr, census, stop };
}

async function waitForListening(stderr: () => string, exited: Promise<number | null>): Promise<void> {
  let ended: number | null | undefined;
  void exited.then((code) => (ended = code));
  const end = Date.now() + BOOT_TIMEOUT_MS;
  while (!/relay listening on/.test(stderr())) {
    if (ended !== undefined) throw new Error(`uk run relay exited (${ended}) before listening:\n${stderr()}`);
    if (Date.now() > end) throw new Error(`uk run relay did not listen within ${BOOT_TIMEOUT_MS / 1000} s:\n${stderr()}`);
    await sleep(50);
  }
}

async function endChild(child: ChildProcess, exited: Promise<number | null>): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return exited;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

/** The guest's memory once no connection is left, from a stats line written
 *  from now on, then a heap census (program and data, from a heap snapshot). */
export async function quiescentMemory(guest: RelayGuest): Promise<GuestMemory> {
  const mark = await statsMark(guest.statsFile);
  const memory = await waitForQuiescence(guest.statsFile, mark, QUIESCENCE_TIMEOUT_MS);
  if (memory === null) throw new Error(`no usable line in the guest's stats file ${guest.statsFile}`);
  if (!memory.quiescent) return memory;
  const census = await guest.census();
  if (census === null) throw new Error(`uk run wrote no heap census line into ${guest.statsFile}`);
  return { ...census, quiescent: census.connections === 0 };
}

// ------------------------------------------------------------- the verdict

export interface MemoryCheck {
  readonly ok: boolean;
  readonly arenaDelta: number;
  /** Change of the data heap: heapUsed without the program (GuestMemory.codeBytes). */
  readonly heapDelta: number;
  /** heapDelta as a fraction of the baseline's data heap. */
  readonly heapFraction: number;
  /** Change of the program's part (GuestMemory.codeBytes), for the record:
   *  it is not state a connection left behind. */
  readonly codeDelta: number;
}

/** arenaUsed exactly equal (the arena is ours, chunk by chunk); the data
 *  heap (heapUsed after GC without the program) within HEAP_TOLERANCE. */
export function compareMemory(baseline: GuestMemory, now: GuestMemory): MemoryCheck {
  const arenaDelta = now.arenaUsed - baseline.arenaUsed;
  const heapDelta = now.dataHeapUsed - baseline.dataHeapUsed;
  const heapFraction = heapDelta / baseline.dataHeapUsed;
  const codeDelta = now.codeBytes - baseline.codeBytes;
  return { ok: now.quiescent && arenaDelta === 0 && Math.abs(heapFraction) <= HEAP_TOLERANCE, arenaDelta, heapDelta, heapFraction, codeDelta };
}

// ------------------------------------------------------------ the main job

interface JobOptions {
  pairs: number;
  runs: number;
  size: number;
  mem: string;
  hotpath: 'wasm' | 'ts';
  jit: JitMode;
  /** `uk run --isolate`: the relay as a Worker of the tender, or a process of its own. */
  isolate: 'thread' | 'process';
  port?: number;
  securePort?: number;
  concurrency: number;
  warmup: number;
  json: boolean;
}

class UsageError extends Error {}

const USAGE =
  'usage: main-job [--pairs 256] [--runs 8] [--size BYTES] [--mem 40M] [--hotpath wasm|ts] [--jit baseline|optimizing] ' +
  '[--isolate thread|process] [--port 9000] [--secure-port 9001] [--concurrency 16] [--warmup 1] [--json]';

function parseOptions(argv: string[]): JobOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      pairs: { type: 'string', default: '256' },
      runs: { type: 'string', default: '8' },
      size: { type: 'string', default: String(16 * 1024) },
      mem: { type: 'string', default: '40M' },
      hotpath: { type: 'string', default: 'wasm' },
      jit: { type: 'string', default: 'baseline' },
      isolate: { type: 'string', default: 'thread' },
      port: { type: 'string' },
      'secure-port': { type: 'string' },
      concurrency: { type: 'string', default: String(STRESS_DEFAULT_CONCURRENCY) },
      warmup: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const int = (name: string, text: string | undefined, min: number): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min) throw new UsageError(`--${name} ${text}: expected a whole number >= ${min}`);
    return n;
  };
  if (values.hotpath !== 'wasm' && values.hotpath !== 'ts') throw new UsageError(`--hotpath ${values.hotpath}: expected wasm or ts`);
  const jit = values.jit as JitMode;
  if (!JIT_MODES.includes(jit)) throw new UsageError(`--jit ${values.jit}: expected ${JIT_MODES.join(' or ')}`);
  if (values.isolate !== 'thread' && values.isolate !== 'process') throw new UsageError(`--isolate ${values.isolate}: expected thread or process`);
  return {
    isolate: values.isolate,
    pairs: int('pairs', values.pairs, 1)!,
    runs: int('runs', values.runs, 1)!,
    size: int('size', values.size, 0)!,
    mem: values.mem!,
    hotpath: values.hotpath,
    jit,
    port: int('port', values.port, 1),
    securePort: int('secure-port', values['secure-port'], 1),
    concurrency: int('concurrency', values.concurrency, 2)!,
    warmup: int('warmup', values.warmup, 0)!,
    json: values.json!,
  };
}

/** A TCP port on 127.0.0.1 that nobody listens on right now (0: any free one). */
async function listenable(port: number): Promise<number | null> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(null));
    server.listen(port, '127.0.0.1', () => {
      const got = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(got));
    });
  });
}

/** 9000 and 9001 like bob, unless taken: then free ports, and we say so. */
async function choosePorts(o: JobOptions, say: (line: string) => void): Promise<{ handshake: number; secure: number }> {
  const handshake = o.port ?? 9000;
  const secure = o.securePort ?? (o.port === undefined ? 9001 : o.port + 1);
  if ((await listenable(handshake)) !== null && (await listenable(secure)) !== null) return { handshake, secure };
  const free = { handshake: (await listenable(0))!, secure: (await listenable(0))! };
  say(`127.0.0.1:${handshake} or :${secure} is in use: forwarding 127.0.0.1:${free.handshake} and :${free.secure} instead`);
  return free;
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
}

function kb(bytes: number): string {
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

function signedBytes(n: number): string {
  return `${n > 0 ? '+' : n < 0 ? '-' : '±'}${Math.abs(n)} B`;
}

function row(r: RunReport, check: MemoryCheck | null): string {
  const g = r.guest;
  const cells = [
    `run ${r.run}`.padEnd(7),
    `${r.ok}/${r.pairs} ok`.padEnd(12),
    `${(r.wallMs / 1000).toFixed(2)} s`.padStart(9),
    g === null ? 'no guest stats' : `arena ${mb(g.arenaUsed)} (${signedBytes(check!.arenaDelta)})`,
    g === null ? '' : `data heap ${mb(g.dataHeapUsed)} (${(check!.heapFraction * 100).toFixed(2)}%)  program ${kb(g.codeBytes)} (${signedBytes(check!.codeDelta)})`,
    g === null ? '' : `connections ${g.connections}${g.quiescent ? '' : ' (NOT quiescent)'}`,
  ];
  return cells.filter((c) => c !== '').join('  ');
}

export async function mainJob(argv: string[]): Promise<number> {
  let options: JobOptions;
  try {
    options = parseOptions(argv);
  } catch (error) {
    process.stderr.write(`main-job: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const say = (line: string): void => void process.stderr.write(`main-job: ${line}\n`);
  /** Why transfers of a run failed, one line per distinct reason. */
  const sayFailures = (label: string, report: RunReport): void => {
    for (const [reason, count] of Object.entries(failureReasons(report))) say(`${label}: ${count} x ${reason}`);
  };
  const out = (line: string): void => void process.stdout.write(line + '\n');
  const ports = await choosePorts(options, say);
  say(`booting uk run --mem ${options.mem} --hotpath ${options.hotpath} --jit ${options.jit} relay (127.0.0.1:${ports.handshake} -> 9000, :${ports.secure} -> 9001)`);
  const guest = await startRelayGuest({ mem: options.mem, hotpath: options.hotpath, jit: options.jit, ports, ukArgs: ['--isolate', options.isolate] });
  // Ctrl-C must not leave the guest behind.
  const onSignal = (): void => void guest.stop().then(() => process.exit(1));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const relay = { host: '127.0.0.1', port: ports.handshake, securePort: ports.secure };
    const stressOptions = {
      relay,
      pairs: options.pairs,
      size: options.size,
      concurrency: options.concurrency,
      pbkdf2Count: STRESS_PBKDF2_COUNT,
      clientTimeoutMs: 60_000,
      quiescenceTimeoutMs: QUIESCENCE_TIMEOUT_MS,
      log: silentLogger,
    };
    const booted = await quiescentMemory(guest);
    let warmFailed = 0;
    if (options.warmup > 0) {
      // The first run grows the heap by the code V8 compiles for the relay's
      // path on first use; warm-up runs keep that out of the comparison.
      const warm = await stress({ ...stressOptions, runs: options.warmup });
      warmFailed = warm.failed;
      for (const run of warm.runs) sayFailures('warm-up', run);
      say(`warm-up: ${warm.ok}/${warm.pairs} transfers ok in ${options.warmup} run(s), not counted`);
    }
    const baseline = options.warmup > 0 ? await quiescentMemory(guest) : booted;
    // The arena is ours chunk by chunk: the warm-up may not change it either.
    const warmArenaDelta = baseline.arenaUsed - booted.arenaUsed;
    if (options.json) {
      const figures = (m: GuestMemory) => ({ arenaUsed: m.arenaUsed, heapUsed: m.heapUsed, dataHeapUsed: m.dataHeapUsed, codeBytes: m.codeBytes, heapSpaces: m.heapSpaces });
      out(JSON.stringify({ booted: figures(booted), baseline: figures(baseline) }));
    } else {
      out(`booted (quiescent): arena ${mb(booted.arenaUsed)} (${booted.arenaUsed} B), heap after GC ${mb(booted.heapUsed)} (${spacesText(booted)})`);
      if (options.warmup > 0) {
        out(`baseline (quiescent, after ${options.warmup} warm-up run${options.warmup > 1 ? 's' : ''}): arena ${mb(baseline.arenaUsed)} (${signedBytes(warmArenaDelta)} since boot), heap after GC ${mb(baseline.heapUsed)} (${spacesText(baseline)})`);
      }
      out(`verdict rule: arena exactly at baseline; data heap (heap after GC without the program and V8's bookkeeping: code, bytecode, their metadata, hidden classes and internal lists) within ${HEAP_TOLERANCE * 100}%`);
    }
    const checks: MemoryCheck[] = [];
    const summary = await stress({
      ...stressOptions,
      runs: options.runs,
      statsFile: guest.statsFile,
      guestMemory: () => quiescentMemory(guest),
      onRun: (r) => {
        const check = r.guest === null ? null : compareMemory(baseline, r.guest);
        if (check !== null) checks.push(check);
        if (options.json) {
          const memory = check === null ? {} : { arenaDelta: check.arenaDelta, heapDelta: check.heapDelta, heapFraction: check.heapFraction, codeDelta: check.codeDelta, memoryOk: check.ok };
          out(JSON.stringify({ run: r.run, pairs: r.pairs, ok: r.ok, wallMs: Math.round(r.wallMs), guest: r.guest, ...memory }));
        }
        else out(row(r, check));
        sayFailures(`run ${r.run}`, r); // on stderr: the rows stay one line per run
      },
    });
    const allOk = summary.failed === 0 && warmFailed === 0;
    const memoryOk = warmArenaDelta === 0 && checks.length === options.runs && checks.every((c) => c.ok);
    const last = checks[checks.length - 1];
    const ok = allOk && memoryOk;
    if (options.json) {
      out(JSON.stringify({ verdict: ok ? 'pass' : 'fail', transfersOk: summary.ok, transfers: summary.pairs, memoryReturned: memoryOk, last: last ?? null }));
    } else {
      const memory =
        last === undefined
          ? 'no guest memory figures'
          : memoryOk
            ? `memory returned to baseline after every run (arena exactly; data heap within ${HEAP_TOLERANCE * 100}%, last ${signedBytes(last.heapDelta)}; program ${signedBytes(last.codeDelta)})`
            : `memory did NOT return to baseline: ${warmArenaDelta !== 0 ? `the warm-up left the arena ${signedBytes(warmArenaDelta)} off its boot value; ` : ''}${checks
                .map((c, i) => `run ${i + 1} arena ${signedBytes(c.arenaDelta)}, data heap ${signedBytes(c.heapDelta)} (${(c.heapFraction * 100).toFixed(2)}%)`)
                .join('; ')}`;
      out(`verdict: ${ok ? 'PASS' : 'FAIL'}: ${summary.ok}/${summary.pairs} transfers ok; ${memory}`);
    }
    return ok ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await guest.stop();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Run only as the entry point: tests and the benchmark import the helpers above.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  mainJob(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`main-job: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
