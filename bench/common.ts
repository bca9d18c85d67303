// Helpers shared by the benchmarks: process CPU time, medians, a description
// of the machine, the combined table of `npm run bench`, and writing one
// section of BENCHMARKS.md or one file of bench/results/ without touching the
// others.

import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** CPU time of this process in ns. Timing by CPU time rather than wall time
 *  keeps other load on the machine (a shared CI box, parallel test runs) from
 *  inflating the figures: time spent descheduled is not counted. */
export function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Collect garbage now (node --expose-gc), so that a timed run does not pay
 *  for the garbage of what ran before it. */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

export interface Machine {
  cpu: string;
  cores: number;
  node: string;
  date: string;
  /** 1-minute load average when the run started: other work shares the cores. */
  load: number;
}

export function describeMachine(): Machine {
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: cpus().length,
    node: process.version,
    date: new Date().toISOString().slice(0, 10),
    load: loadavg()[0],
  };
}

/** True when the module at `moduleUrl` is the script node was started with
 *  (not imported by bench/all.ts). */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(realpathSync(script)).href === moduleUrl;
}

/** One line of the table `npm run bench` prints across all benchmarks, values
 *  already formatted. `speedup` is how many times faster wasm is than ts. */
export interface SummaryRow {
  figure: string;
  unit: string;
  wasm: string;
  ts: string;
  speedup: string;
}

export function summaryTable(rows: SummaryRow[]): string {
  const head = '| Figure | Unit | wasm | ts | wasm vs ts |';
  const rule = '|---|---|---:|---:|---:|';
  return [head, rule, ...rows.map((r) => `| ${r.figure} | ${r.unit} | ${r.wasm} | ${r.ts} | ${r.speedup} |`)].join('\n');
}

/** Replace the `## <heading>` section of BENCHMARKS.md with `text` (which
 *  starts with that heading line), keeping every other section; a section not
 *  there yet is appended. */
export function writeMarkdownSection(root: string, heading: string, text: string): void {
  const path = join(root, 'BENCHMARKS.md');
  const old = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n\n';
  const escaped = heading.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const start = old.search(new RegExp(`^## ${escaped}\\s*$`, 'm'));
  let next: string;
  if (start < 0) {
    next = old.replace(/\n*$/, '\n\n') + text;
  } else {
    const rest = old.slice(start + 1);
    const end = rest.search(/^## /m);
    next = old.slice(0, start) + text + (end < 0 ? '' : '\n' + rest.slice(end));
  }
  writeFileSync(path, next);
}

/** Write bench/results/<name>.json. */
export function writeResults(root: string, name: string, data: unknown): void {
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(join(root, 'bench', 'results', `${name}.json`), JSON.stringify(data, null, 2) + '\n');
}

/** A TCP port free on 127.0.0.1 now (the OS picks it; closed again at once). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
