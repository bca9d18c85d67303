// A guest as a user runs it: `uk run` (the built CLI) in a child process on
// user networking, with --stats to a file. For benchmarks that attack a guest
// from this process: its stats lines are read back (the latest, and the
// largest heap seen), and whether it is still alive is asked of the process.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../host/hotpath.js';

export interface GuestProcess {
  readonly statsFile: string;
  stderr(): string;
  /** Exit code once it ended (null while it runs). */
  exitCode(): number | null;
  /** Every stats line so far, parsed. */
  statsLines(): Promise<StatsLine[]>;
  /** SIGTERM (SIGKILL after 10 s); removes the stats file. */
  stop(): Promise<number | null>;
}

/** The fields of a `--stats` line the benchmarks read. */
export interface StatsLine {
  t: number;
  mem: { heapUsed: number; heapLimit: number; arenaUsed: number; arenaChunksInUse: number };
  tcp: { connections: number; counters: Record<string, number> };
  admission?: { pressure: boolean; heapHighWater: number; counters: Record<string, number> };
  appStats?: { counters?: Record<string, number> };
  drops: Record<string, number>;
}

export interface GuestProcessOptions {
  app: string;
  appArgs?: string[];
  mem: string;
  /** hostfwd rules, e.g. `tcp:127.0.0.1:9000-:9000`. */
  hostfwd: string[];
  /** A line on stderr that says the app is ready. */
  ready: RegExp;
  statsIntervalMs?: number;
  jit?: 'optimizing' | 'baseline';
}

export async function startGuestProcess(o: GuestProcessOptions): Promise<GuestProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'uk-bench-'));
  const statsFile = join(dir, 'stats.jsonl');
  const args = [
    join(packageRoot(), 'dist/host/cli.js'), 'run', '--mem', o.mem, '--jit', o.jit ?? 'baseline',
    '--net', `user:${o.hostfwd.map((r) => `hostfwd=${r}`).join(',')}`,
    '--stats', statsFile, '--stats-interval', String(o.statsIntervalMs ?? 500),
    o.app, ...(o.appArgs ?? []),
  ];
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  let code: number | null = null;
  const exited = new Promise<number | null>((resolve) => child.on('close', (c) => resolve((code = c ?? -1))));
  const end = Date.now() + 30_000;
  while (!o.ready.test(stderr)) {
    if (code !== null) throw new Error(`uk run ${o.app} exited (${code}) before it was ready:\n${stderr}`);
    if (Date.now() > end) throw new Error(`uk run ${o.app} was not ready within 30 s:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  let stopping: Promise<number | null> | null = null;
  return {
    statsFile,
    stderr: () => stderr,
    exitCode: () => code,
    statsLines: async () => {
      const text = await readFile(statsFile, 'utf8').catch(() => '');
      const out: StatsLine[] = [];
      for (const line of text.split('\n')) {
        try {
          if (line.trim() !== '') out.push(JSON.parse(line) as StatsLine);
        } catch {
          // a line being written
        }
      }
      return out;
    },
    stop: () =>
      (stopping ??= (async () => {
        if (code === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(timer);
        }
        await rm(dir, { recursive: true, force: true });
        return code;
      })()),
  };
}
