// Helpers for the tender's tests: run the `uk` CLI (the built one, as users
// do), pick free ports, push bytes through a guest from host sockets, read a
// stats record's levels, and ask tshark about a capture.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import dgram from 'node:dgram';
import net from 'node:net';
import { join } from 'node:path';
import { packageRoot } from '../../host/hotpath.js';
import type { StatsRecord } from '../../host/stats-writer.js';
import { missingOf } from './capabilities.js';

export const ROOT = packageRoot();
export const CLI = join(ROOT, 'dist/host/cli.js');
export const FIXTURES = join(ROOT, 'test/fixtures/guests');

export interface UkResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface UkProcess {
  child: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves with the first stderr match (rejects on exit or timeout). */
  waitFor(pattern: RegExp, ms?: number): Promise<RegExpMatchArray>;
  exited: Promise<UkResult>;
}

/** Start `node dist/host/cli.js ARGS...`; `wrap` prefixes a command (e.g. setpriv, ip netns exec). */
export function spawnUk(args: string[], wrap: string[] = []): UkProcess {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const argv = [...wrap, process.execPath, CLI, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const watchers = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
    for (const w of watchers) w();
  });
  const exited = new Promise<UkResult>((resolve) => {
    child.on('close', (code, signal) => {
      for (const w of watchers) w();
      resolve({ code, signal, stdout, stderr });
    });
  });
  let done = false;
  void exited.then(() => (done = true));
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exited,
    waitFor(pattern, ms = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`timed out waiting for ${pattern}; stderr:\n${stderr}`)), ms);
        const check = () => {
          const m = stderr.match(pattern);
          if (m) finish(null, m);
          else if (done) finish(new Error(`exited before ${pattern}; stderr:\n${stderr}`));
        };
        const finish = (err: Error | null, m?: RegExpMatchArray) => {
          clearTimeout(timer);
          watchers.delete(check);
          if (err) reject(err);
          else resolve(m!);
        };
        watchers.add(check);
        check();
      });
    },
  };
}

/** Run the CLI to its end (for commands that end by themselves). */
export async function runUk(args: string[], wrap: string[] = [], ms = 20_000): Promise<UkResult> {
  const p = spawnUk(args, wrap);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), ms);
  const r = await p.exited;
  clearTimeout(timer);
  return r;
}

/**
 * A port free on 127.0.0.1 just now, for a server the test starts next. It
 * is drawn below the kernel's ephemeral range (Linux: 32768 up), which the
 * outgoing connections of the tests running beside this one take theirs
 * from: a port the kernel picked and gave back could be taken by one of
 * them before the test binds it (EADDRINUSE). Checked by binding it.
 */
export async function freePort(proto: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = FREE_PORT_LOW + Math.floor(Math.random() * (FREE_PORT_HIGH - FREE_PORT_LOW));
    if (await bindable(port, proto)) return port;
  }
  throw new Error(`freePort: no free ${proto} port found in ${FREE_PORT_LOW}-${FREE_PORT_HIGH}`);
}

const FREE_PORT_LOW = 20000;
const FREE_PORT_HIGH = 32000;

function bindable(port: number, proto: 'tcp' | 'udp'): Promise<boolean> {
  return new Promise((resolve) => {
    if (proto === 'udp') {
      const s = dgram.createSocket('udp4');
      s.once('error', () => {
        s.close();
        resolve(false);
      });
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
      return;
    }
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Deterministic pseudo-random bytes. */
export function randomBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Connect, send `data`, half-close, and collect everything until the peer closes. */
export function echoThrough(port: number, data: Uint8Array, host = '127.0.0.1'): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const sock = net.connect(port, host, () => sock.end(data));
    sock.on('data', (b: Buffer) => parts.push(b));
    sock.on('end', () => resolve(Buffer.concat(parts)));
    sock.on('error', reject);
  });
}

/** An open connection for line-oriented request/answer (the arena-hog control). */
export async function lineClient(port: number): Promise<{ ask(line: string): Promise<string>; close(): void }> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  let buffered = '';
  const waiting: ((line: string) => void)[] = [];
  sock.setEncoding('utf8').on('data', (s: string) => {
    buffered += s;
    for (let nl = buffered.indexOf('\n'); nl >= 0 && waiting.length > 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      waiting.shift()!(line);
    }
  });
  return {
    ask(line) {
      return new Promise((resolve) => {
        waiting.push(resolve);
        sock.write(line + '\n');
      });
    },
    close: () => sock.end(),
  };
}

/** The gauges of a stats record: what must come back to its baseline. */
export function levels(r: StatsRecord): unknown {
  const { counters: _counters, ...tcp } = r.tcp;
  return {
    chunksInUse: r.mem.arenaChunksInUse,
    arena: r.arena,
    tcp,
    udp: r.udp,
    arp: r.arp,
    fragments: r.fragments,
    timers: r.timers,
    app: { chunks: r.app.chunks },
  };
}

/** Whether tshark can be run. Tests gate on requires('tshark')
 *  (test/helpers/capabilities.ts), which also decides skip or CI failure. */
export function hasTshark(): boolean {
  return missingOf(['tshark']).length === 0;
}

/** The guests' service ports carry opaque bytes: decode them as data, so no
 *  heuristic dissector mistakes random payload for a protocol (a false
 *  "malformed", and minutes of reassembly on large captures). */
const AS_DATA = ['tcp.port==7', 'tcp.port==9', 'tcp.port==19', 'udp.port==7'].flatMap((p) => ['-d', `${p},data`]);

/** Frames tshark calls malformed or flags as errors (bad checksums included);
 *  empty when the capture is clean. */
export function tsharkProblems(file: string): string {
  const r = spawnSync(
    'tshark',
    [
      '-r', file,
      '-o', 'tcp.check_checksum:TRUE',
      '-o', 'ip.check_checksum:TRUE',
      '-o', 'udp.check_checksum:TRUE',
      ...AS_DATA,
      '-Y', '_ws.malformed || _ws.expert.severity >= error',
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  if (r.status !== 0) throw new Error(`tshark failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** One row per frame of a capture: the values of `fields` (tshark -T fields),
 *  so a test can count many things with one tshark run. */
export function tsharkFields(file: string, fields: string[]): string[][] {
  const args = ['-r', file, ...AS_DATA, '-T', 'fields', '-E', 'separator=/t'];
  for (const f of fields) args.push('-e', f);
  const r = spawnSync('tshark', args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`tshark failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}
