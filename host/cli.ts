#!/usr/bin/env node
// `uk`: the tender's command line (docs/architecture.md section 7).
//
//   uk run [--mem 40M] [--heap SIZE] [--max-connections N] [--mtu N] [--net tap:IF | --net user[:hostfwd=tcp:127.0.0.1:HP-:GP,...]]
//          [--ipv4 ADDR/PREFIX] [--gateway ADDR] [--hotpath wasm|ts]
//          [--jit optimizing|baseline]
//          [--pcap FILE] [--stats FILE|-] [--stats-interval MS] [--isolate thread|process] APP [ARGS]
//
// Exit status: 0 stopped cleanly (SIGINT, SIGTERM), 1 the app failed,
// 2 usage, 3 guest out of memory, 4 device error, 5 guest stuck (not booted
// within --boot-timeout, or no heartbeat for --stuck-after). Messages go to stderr;
// stdout carries only `--stats -`.

import { Command, CommanderError, Option } from 'commander';
import { parseMac } from '../stack/index.js';
import { formatBytes, parseSize } from './budget.js';
import { applyJitMode, describeJitMode, JIT_MODES, type JitMode } from './jit.js';
import { parseNet } from './net-backend.js';
import { runIsolated } from './isolate/process-run.js';
import { RunError, startGuest, UsageError, type GuestRun, type RunOptions, type RunResult } from './run.js';

interface RunFlags {
  mem: string;
  heap?: string;
  maxConnections?: string;
  mtu?: string;
  net: string;
  ipv4?: string;
  gateway?: string;
  hotpath: 'wasm' | 'ts';
  jit: JitMode;
  mac?: string;
  pcap?: string;
  stats?: string;
  statsInterval: string;
  grace: string;
  bootTimeout: string;
  stuckAfter: string;
  isolate: 'thread' | 'process';
  offloads: 'on' | 'off';
}

function say(line: string): void {
  process.stderr.write(`uk: ${line}\n`);
}

/** Flags to RunOptions; a bad value is a UsageError (exit 2). */
function runOptions(app: string, args: string[], f: RunFlags): RunOptions {
  const integer = (name: string, text: string): number => {
    if (!/^\d+$/.test(text)) throw new UsageError(`--${name} ${text}: expected a whole number of milliseconds`);
    return Number(text);
  };
  let mac: Uint8Array | undefined;
  if (f.mac !== undefined) {
    try {
      mac = parseMac(f.mac);
    } catch (err) {
      throw new UsageError(`--mac ${f.mac}: ${(err as Error).message}`);
    }
  }
  const count = (name: string, text: string): number => {
    if (!/^\d+$/.test(text)) throw new UsageError(`--${name} ${text}: expected a whole number`);
    return Number(text);
  };
  const size = (name: string, text: string): number => {
    try {
      return parseSize(text);
    } catch (err) {
      throw new UsageError(`--${name}: ${(err as Error).message}`);
    }
  };
  const mem = size('mem', f.mem);
  return {
    app,
    args,
    mem,
    ...(f.heap !== undefined ? { heap: size('heap', f.heap) } : {}),
    ...(f.maxConnections !== undefined ? { tcp: { maxConnections: count('max-connections', f.maxConnections) } } : {}),
    net: parseNet(f.net),
    ...(f.ipv4 !== undefined ? { ipv4: f.ipv4 } : {}),
    ...(f.gateway !== undefined ? { gateway: f.gateway === 'none' ? null : f.gateway } : {}),
    hotpath: f.hotpath,
    ...(mac ? { mac } : {}),
    ...(f.mtu !== undefined ? { mtu: count('mtu', f.mtu) } : {}),
    offloads: f.offloads === 'on',
    ...(f.pcap !== undefined ? { pcap: f.pcap } : {}),
    ...(f.stats !== undefined ? { stats: f.stats } : {}),
    statsIntervalMs: integer('stats-interval', f.statsInterval),
    graceMs: integer('grace', f.grace),
    bootTimeoutMs: integer('boot-timeout', f.bootTimeout),
    stuckAfterMs: integer('stuck-after', f.stuckAfter),
  };
}

/** SIGUSR2 writes a stats line with mem.heapCensus (host/heap-census.ts): what
 *  the guest's heap holds, program and data (the main job's verdict uses it).
 *  Installed before boot, so an early signal is ignored rather than fatal
 *  (Node's default for SIGUSR2 ends the process). */
function censusOnSignal(): (run: GuestRun) => void {
  let guest: GuestRun | null = null;
  process.on('SIGUSR2', () => {
    guest?.census().catch((err: Error) => say(`heap census failed: ${err.message}`));
  });
  return (run) => {
    guest = run;
  };
}

/** SIGINT and SIGTERM stop the guest gracefully (before its boot ends too:
 *  installed before anything starts); a second one ends it at once. */
function stopOnSignals(): AbortSignal {
  const stop = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (++signals === 1) {
      say(`${signal}: stopping the guest`);
      stop.abort();
    } else {
      say(`${signal} again: ending now`);
      process.exit(1);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return stop.signal;
}

function summary(r: RunResult): string {
  const f = r.final;
  if (!f) return 'stopped';
  const secs = (f.t / 1000).toFixed(1);
  return (
    `stopped after ${secs}s: connections ${r.graceful ?? 0} closed, ${r.reset ?? 0} reset; ` +
    `frames in ${f.frames.rx}, out ${f.frames.tx}; ` +
    `arena ${f.mem.arenaChunksInUse - f.mem.arenaTableChunks} of ${f.mem.arenaChunks} chunks in use ` +
    `(and ${f.mem.arenaTableChunks} of tables); ` +
    `heap ${formatBytes(f.mem.heapUsed)}${f.mem.heapAfterGc ? ' after GC' : ''}; ` +
    `drops ${Object.values(f.drops).reduce((a, b) => a + b, 0)}`
  );
}

async function run(app: string, args: string[], flags: RunFlags): Promise<number> {
  const signal = stopOnSignals();
  const options = { ...runOptions(app, args, flags), signal };
  // Before the guest's code is loaded, so that all of it compiles on these tiers.
  applyJitMode(flags.jit);
  if (flags.jit !== 'optimizing') say(describeJitMode(flags.jit));
  if (flags.isolate === 'process') {
    // The guest process's own tender prints its lines and summary; this one
    // says only what it saw itself (the kernel's memory limit, a crash).
    const r = await runIsolated({ ...options, jit: flags.jit });
    if (r.message) say(`guest ${r.reason}: ${r.message}`);
    return r.code;
  }
  const censusFor = censusOnSignal();
  const guest = await startGuest(options);
  censusFor(guest);
  const r = await guest.done;
  if (r.code === 0) say(summary(r));
  else if (r.code !== 3 && r.code !== 5) say(`guest ${r.reason}: ${r.message ?? ''}`);
  return r.code;
}

function program(): Command {
  const uk = new Command('uk')
    .description('Run network guests: a TCP/IP stack with a WebAssembly hot path, under a fixed memory budget')
    .enablePositionalOptions()
    .exitOverride()
    // One prefix for every message: commander's "error: " becomes "uk: ".
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'uk: ')) });
  uk.command('run')
    .description('boot APP as a guest; APP is relay (bob relay, TCP 9000 and 9001), echo (TCP/UDP 7), discard (TCP 9), chargen (TCP 19) or the path of an ES module exporting a guest main')
    .argument('<app>', 'relay | echo | discard | chargen | PATH')
    .argument('[args...]', 'arguments for the app')
    .option('--mem <size>', 'memory budget, arena + JS heap (bytes, or 40M, 64m, 1G)', '40M')
    .option('--heap <size>', "the JS heap's share of --mem (default 40%, at least 12M); the arena gets the rest")
    .option('--max-connections <n>', 'control blocks in the arena (default: half the arena; the boot line says the most it takes)')
    .option('--net <net>', 'user[:hostfwd=tcp:127.0.0.1:HOSTPORT-:GUESTPORT,guestfwd=tcp:PORT,restrict=off,...] or tap:IFNAME (user: the guest reaches host ports only as guestfwd or restrict=off grant)', 'user')
    .option('--ipv4 <addr/prefix>', "the guest's address (default 10.0.2.15/24)")
    .option('--gateway <addr>', "the guest's gateway (default 10.0.2.2 on user networking; 'none' for none)")
    .addOption(new Option('--hotpath <engine>', 'hot path engine').choices(['wasm', 'ts']).default('wasm'))
    .addOption(
      new Option('--jit <tiers>', 'V8 tiers for this process: optimizing (fastest) or baseline (no optimizing compiler: the heap holds no recompiled code)')
        .choices([...JIT_MODES])
        .default('optimizing'),
    )
    .option('--mac <mac>', "the guest's MAC (default: random, locally administered)")
    .option('--mtu <n>', "IP MTU of the guest's link, 576 to 2000 (default 1500); a TAP interface is set to it")
    .addOption(
      new Option('--offloads <on|off>', 'TCP segmentation offload on a TAP link (the guest\'s segments leave joined, behind a virtio-net header), where the kernel offers it')
        .choices(['on', 'off'])
        .default('on'),
    )
    .option('--pcap <file>', 'capture every frame of the guest link, both ways')
    .option('--stats <file|->', 'write one JSON stats line per interval to a file or stdout')
    .option('--stats-interval <ms>', 'interval of --stats', '1000')
    .option('--grace <ms>', 'on stop, how long connections get to close before they are reset', '2000')
    .option('--boot-timeout <ms>', 'a guest not booted after this long is stuck: reported, ended, exit 5', '30000')
    .option('--stuck-after <ms>', "a guest whose event loop misses its heartbeat this long is stuck: reported, ended, exit 5", '10000')
    .addOption(
      new Option('--isolate <how>', "thread: the guest is a Worker in this process; process: a process of its own, behind the OS's walls (memory limit, empty network namespace, nobody, Node's permissions)")
        .choices(['thread', 'process'])
        .default('thread'),
    )
    .passThroughOptions()
    .action(async (app: string, args: string[], flags: RunFlags) => {
      process.exitCode = await run(app, args, flags);
    });
  return uk;
}

async function main(): Promise<void> {
  try {
    await program().parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed its message; help and version are not errors.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
    } else if (err instanceof RunError) {
      // A report (out of memory, stuck) is already out, line by line.
      if (err.code !== 3 && err.code !== 5) say(err.message);
      process.exitCode = err.code;
    } else if (err instanceof UsageError) {
      say(err.message);
      process.exitCode = 2;
    } else {
      say(`internal error: ${(err as Error).stack ?? String(err)}`);
      process.exitCode = 1;
    }
  }
  // Everything is closed by now; do not wait for stray handles.
  setTimeout(() => process.exit(), 500).unref();
}

void main();
