// `uk run --isolate process`: the guest in a process of its own, behind the
// operating system's walls (walls.ts). That process is an ordinary
// `uk run --net fd:3` (its tender, the Worker, the guest, as in thread mode);
// this one, its parent, keeps the network: it opens the backend (the
// user-mode gateway, a TAP) on a FrameStream over the child's descriptor 3,
// captures --pcap there, writes --stats (each line with this side's `net`
// figures), forwards the stop signals and turns the child's end into the
// run's result.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import { RealClock, formatMac } from '../../stack/index.js';
import { packageRoot } from '../hotpath.js';
import { openBackend, type Backend } from '../net-backend.js';
import { openOutputs, plan, RunError, type Outputs, type RunOptions, type RunResult } from '../run.js';
import type { StatsRecord } from '../stats-writer.js';
import { FrameStream } from './frame-stream.js';
import { buildWalls, commandAvailable, killedByMemoryLimit, memoryUsage, releaseWalls, type Walls } from './walls.js';

export interface IsolatedRunOptions extends RunOptions {
  /** The V8 tiers (--jit) the guest process runs on. */
  jit?: string;
}

/** The guest process's command line: the same run, its network on fd 3. */
function childArgs(opts: IsolatedRunOptions, p: ReturnType<typeof plan>): string[] {
  const a = ['run', '--net', 'fd:3', '--mac', formatMac(p.mac), '--ipv4', `${p.addresses.address}/${p.addresses.prefix}`];
  a.push('--gateway', p.addresses.gateway ?? 'none', '--mtu', String(p.mtu), '--hotpath', p.engine);
  a.push('--mem', String(opts.mem ?? p.split.arenaBytes + p.split.heapBytes));
  if (opts.heap !== undefined) a.push('--heap', String(opts.heap));
  if (opts.tcp?.maxConnections !== undefined) a.push('--max-connections', String(opts.tcp.maxConnections));
  if (opts.jit !== undefined) a.push('--jit', opts.jit);
  if (opts.stats !== undefined) a.push('--stats', '-', '--stats-interval', String(p.statsIntervalMs));
  if (opts.graceMs !== undefined) a.push('--grace', String(opts.graceMs));
  a.push('--boot-timeout', String(p.bootTimeoutMs), '--stuck-after', String(p.stuckAfterMs));
  a.push('--', opts.app, ...(opts.args ?? []));
  return a;
}

/** Node's warnings about its permission model and --allow-worker: the
 *  runtime chose them (the Worker is the guest, behind the same walls). */
const PERMISSION_WARNING = /ExperimentalWarning: Permission is an experimental feature|SecurityWarning: The flag --allow-worker must be used with extreme caution|^\(Use `node --trace-warnings/;
/** V8 ending a process whose heap could not grow past its limit at once. */
const V8_OUT_OF_MEMORY = /FATAL ERROR: .*(heap out of memory|Reached heap limit)/;

export async function runIsolated(opts: IsolatedRunOptions): Promise<RunResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`uk: ${line}\n`));
  const p = plan(opts);
  const missing = commandAvailable();
  if (missing) throw new RunError(`--isolate process needs ${missing} (util-linux)`, 2);
  const outputs = openOutputs(opts);
  const readable = [packageRoot(), ...('module' in p.app ? [dirname(fileURLToPath(p.app.module))] : [])];
  let walls: Walls;
  try {
    walls = buildWalls({ budget: p.split.arenaBytes + p.split.heapBytes, readable, name: `uk-${process.pid}-${randomBytes(4).toString('hex')}` });
  } catch (err) {
    outputs.close();
    throw new RunError(`--isolate process: cannot set up the guest's walls: ${(err as Error).message}`, 4);
  }
  const script = resolve(packageRoot(), 'dist/host/cli.js');
  const [command, ...prefixArgs] = walls.prefix;
  const child = spawn(command!, [...prefixArgs, ...walls.nodeFlags, script, ...childArgs(opts, p)], {
    stdio: ['ignore', opts.stats !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    // Its own process group: a terminal's Ctrl-C reaches this process only,
    // which passes one SIGINT on (two would end the guest at once).
    detached: true,
  });
  const stream = new FrameStream(child.stdio[3] as Duplex, p.mac, p.mtu, outputs.capture);
  let backend: Backend;
  try {
    backend = await openBackend(p.net, {
      link: stream,
      capturing: outputs.capture !== undefined,
      engine: p.engine,
      clock: new RealClock(),
      arenaBytes: p.split.arenaBytes,
      guest: { ...p.addresses, mac: p.mac },
    });
  } catch (err) {
    child.kill('SIGKILL');
    stream.close();
    outputs.close();
    releaseWalls(walls);
    throw err;
  }
  log(`isolate: process ${child.pid}: ${walls.description}`);
  log(`net: ${backend.description}`);
  const ended = watchChild(child, walls, backend, outputs);
  const onAbort = (): void => void child.kill('SIGINT');
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort);
  // SIGUSR2 asks for a heap census (host/cli.ts): the guest's tender writes it.
  const onCensus = (): void => void child.kill('SIGUSR2');
  process.on('SIGUSR2', onCensus);
  try {
    return await ended;
  } finally {
    process.off('SIGUSR2', onCensus);
    opts.signal?.removeEventListener('abort', onAbort);
    await backend.close();
    stream.close();
    outputs.close();
    releaseWalls(walls);
  }
}

/** The child's stderr (passed on, minus Node's permission warning), its
 *  stats lines (with this side's net figures) and its end. */
function watchChild(child: ChildProcess, walls: Walls, backend: Backend, outputs: Outputs): Promise<RunResult> {
  let v8OutOfMemory = false;
  let last: StatsRecord | undefined;
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (V8_OUT_OF_MEMORY.test(line)) v8OutOfMemory = true;
    if (!PERMISSION_WARNING.test(line)) process.stderr.write(line + '\n');
  });
  if (child.stdout) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      let record: StatsRecord & { isolate?: unknown };
      try {
        record = JSON.parse(line) as StatsRecord;
      } catch {
        return;
      }
      const memory = memoryUsage(walls);
      record.isolate = { pid: child.pid, link: record.net, ...(memory ? { memory: { ...memory, limit: walls.memoryLimit } } : {}) };
      record.net = backend.stats() as StatsRecord['net'];
      last = record;
      outputs.stats?.write(record);
    });
  }
  return new Promise((resolveEnd, reject) => {
    child.once('error', (err) => reject(new RunError(`--isolate process: cannot start the guest process: ${err.message}`, 4)));
    child.once('exit', (code, signal) => {
      const final = last ? { final: last } : {};
      if (code !== null) {
        // The guest process has said why (its own tender's lines).
        const known = RESULTS[code];
        resolveEnd(known ? { code: code as RunResult['code'], reason: known, ...final } : { code: 1, reason: 'failed', message: `the guest process exited with ${code}`, ...final });
      } else if (signal === 'SIGKILL' && killedByMemoryLimit(walls)) {
        resolveEnd({ code: 3, reason: 'out-of-memory', message: `the guest process passed its memory limit (${Math.round(walls.memoryLimit / 1048576)}M) and the kernel ended it`, ...final });
      } else if (v8OutOfMemory) {
        resolveEnd({ code: 3, reason: 'out-of-memory', message: 'the guest process ran out of heap at once (one allocation past the limit); its tender is gone, this one carries on', ...final });
      } else {
        resolveEnd({ code: 1, reason: 'failed', message: `the guest process ended by ${signal}`, ...final });
      }
    });
  });
}

/** The guest process's exit codes, which are uk run's. */
const RESULTS: Partial<Record<number, RunResult['reason']>> = { 0: 'stopped', 1: 'failed', 2: 'usage', 3: 'out-of-memory', 5: 'stuck' };
