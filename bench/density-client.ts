// Idle TCP connections held open for the density benchmark (bench/density.ts).
//
// IdleHolder opens connections to HOST:PORT, `parallel` attempts at a time,
// each bound to a source address taken in turn from a list, and keeps every
// one that connects open and silent. Every loop is bounded: an attempt that
// has not connected after `connectTimeoutMs` is abandoned (the peer may drop
// SYNs it cannot take; the kernel would retry them for two minutes), and a
// holder never opens more than `maxHeld` sockets at once.
//
// The same file is the client process the benchmark starts inside its network
// namespace (`ip netns exec NS node density-client.js --host ...`), one per
// 15,000 connections. It takes one JSON command per line on stdin and answers
// each with one JSON line on stdout:
//   (at start)              {"ready":true,"fdLimit":N,"maxHeld":M}
//   {"cmd":"open","count":N} {"opened":{...this step},"totals":{...}}
//   {"cmd":"stats"}          {"totals":{...}}
//   {"cmd":"close"}          {"closed":N,"totals":{...}}
// It destroys its sockets and exits when stdin ends (the benchmark closed it,
// or died), so it never outlives the benchmark.

import { readFileSync } from 'node:fs';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { isMain } from './common.js';

export interface HolderOptions {
  host: string;
  port: number;
  /** Source addresses, used in turn. */
  sources: string[];
  /** Attempts in flight at once. */
  parallel: number;
  connectTimeoutMs: number;
  /** Never more sockets open at once than this (the process's fd limit). */
  maxHeld: number;
}

/** Cumulative counts of one holder. */
export interface HolderTotals {
  attempted: number;
  /** The handshake completed on this side. */
  connected: number;
  /** Still open here now. */
  held: number;
  /** No handshake within connectTimeoutMs (the peer dropped the SYNs). */
  timedOut: number;
  /** The connect failed, by error code (ECONNREFUSED: the peer reset the SYN). */
  failed: Record<string, number>;
  /** Closed or reset by the peer after connecting. */
  closedByPeer: number;
  /** Attempts not made because maxHeld was reached. */
  clamped: number;
}

export interface StepResult {
  attempted: number;
  connected: number;
  timedOut: number;
  failed: number;
  clamped: number;
  ms: number;
}

export class IdleHolder {
  private readonly sockets = new Set<net.Socket>();
  private nextSource = 0;
  private readonly t: HolderTotals = { attempted: 0, connected: 0, held: 0, timedOut: 0, failed: {}, closedByPeer: 0, clamped: 0 };

  constructor(private readonly o: HolderOptions) {
    if (o.sources.length === 0) throw new Error('IdleHolder: no source addresses');
  }

  totals(): HolderTotals {
    return { ...this.t, held: this.sockets.size, failed: { ...this.t.failed } };
  }

  /** Make `count` attempts (fewer if maxHeld would be passed); resolves when
   *  each has connected, failed or timed out. */
  async open(count: number): Promise<StepResult> {
    const started = Date.now();
    // Sockets in flight count against maxHeld as well: each is an fd.
    let inFlight = 0;
    const step: StepResult = { attempted: 0, connected: 0, timedOut: 0, failed: 0, clamped: 0, ms: 0 };
    let left = count;
    const one = (): Promise<void> =>
      new Promise((resolve) => {
        const localAddress = this.o.sources[this.nextSource++ % this.o.sources.length]!;
        const socket = net.connect({ host: this.o.host, port: this.o.port, localAddress });
        inFlight++;
        step.attempted++;
        this.t.attempted++;
        let settled = false;
        const settle = (outcome: 'connected' | 'timedOut' | string): void => {
          if (settled) return;
          settled = true;
          inFlight--;
          clearTimeout(timer);
          if (outcome === 'connected') {
            step.connected++;
            this.t.connected++;
            this.sockets.add(socket);
            socket.on('close', () => {
              if (this.sockets.delete(socket)) this.t.closedByPeer++;
            });
          } else {
            socket.destroy();
            if (outcome === 'timedOut') {
              step.timedOut++;
              this.t.timedOut++;
            } else {
              step.failed++;
              this.t.failed[outcome] = (this.t.failed[outcome] ?? 0) + 1;
            }
          }
          resolve();
        };
        const timer = setTimeout(() => settle('timedOut'), this.o.connectTimeoutMs);
        socket.on('error', (err: NodeJS.ErrnoException) => settle(err.code ?? 'ERROR'));
        socket.once('connect', () => settle('connected'));
        // Idle: nothing is read or written; a peer's FIN ends it ('close').
        socket.setNoDelay(true);
      });
    const worker = async (): Promise<void> => {
      while (left > 0) {
        if (this.sockets.size + inFlight >= this.o.maxHeld) {
          step.clamped += left;
          this.t.clamped += left;
          left = 0;
          return;
        }
        left--;
        await one();
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.o.parallel, count)) }, worker));
    step.ms = Date.now() - started;
    return step;
  }

  /** Destroy every held socket (the kernel sends a FIN for each). */
  closeAll(): number {
    const n = this.sockets.size;
    for (const s of [...this.sockets]) {
      this.sockets.delete(s);
      s.destroy();
    }
    return n;
  }
}

/** The soft limit on open files of this process (/proc/self/limits), or null. */
export function openFileLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!m) return null;
    return m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
  } catch {
    return null;
  }
}

/** File descriptors a Node process needs besides its sockets (stdio, libuv, its own). */
export const FD_RESERVE = 200;

function flag(argv: string[], name: string): string {
  const i = argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= argv.length) throw new Error(`density-client: --${name} is required`);
  return argv[i + 1]!;
}

async function clientMain(argv: string[]): Promise<void> {
  const fdLimit = openFileLimit();
  const asked = Number(flag(argv, 'max'));
  // Raise nothing: stay under the limit this process was given.
  const maxHeld = fdLimit === null ? asked : Math.min(asked, fdLimit - FD_RESERVE);
  const holder = new IdleHolder({
    host: flag(argv, 'host'),
    port: Number(flag(argv, 'port')),
    sources: flag(argv, 'sources').split(','),
    parallel: Number(flag(argv, 'parallel')),
    connectTimeoutMs: Number(flag(argv, 'connect-timeout')),
    maxHeld,
  });
  const say = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
  say({ ready: true, fdLimit, maxHeld });
  // One command at a time, in order.
  let queue = Promise.resolve();
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    queue = queue.then(async () => {
      const cmd = JSON.parse(line) as { cmd: string; count?: number };
      if (cmd.cmd === 'open') say({ opened: await holder.open(cmd.count ?? 0), totals: holder.totals() });
      else if (cmd.cmd === 'stats') say({ totals: holder.totals() });
      else if (cmd.cmd === 'close') say({ closed: holder.closeAll(), totals: holder.totals() });
      else say({ error: `unknown command ${cmd.cmd}` });
    });
  });
  lines.on('close', () => {
    holder.closeAll();
    process.exit(0);
  });
}

if (isMain(import.meta.url)) {
  clientMain(process.argv.slice(2)).catch((err: Error) => {
    process.stdout.write(JSON.stringify({ error: err.message }) + '\n');
    process.exit(1);
  });
}
