// Devices: TCP throughput through the guest's network device paths, against
// Linux's own TCP, and what each gigabyte costs the `uk` process in CPU time.
//
// Rows, each with --hotpath wasm and --hotpath ts:
//   TAP push / pull    a kernel TCP client inside a network namespace the
//                      benchmark makes (a persistent TAP in it, 10.77.0.1/24),
//                      against a guest started inside that namespace:
//                        uk run --hotpath E --net tap:IF --ipv4 10.77.0.2/24 --mac M dist/bench/devices-guest.js
//   user push / pull   the same guest on user networking,
//                        uk run --hotpath E --net user:hostfwd=tcp:127.0.0.1:P-:9,hostfwd=tcp:127.0.0.1:Q-:19 ...
//                      the client connecting to 127.0.0.1:P or :Q
// and the reference, Linux to Linux in the same run:
//   Linux veth push / pull  the same client in one namespace, a node:net
//                      discard and chargen server in another, joined by a veth pair
//
// push sends N MB into discard (the guest drops what it reads, and answers
// the client's FIN once it has read everything); pull reads from chargen
// (the guest writes as fast as its send buffer takes bytes) and closes after
// N MB. The client is bench/devices-client.ts, a child process (run with
// `ip netns exec` when its peer is in a namespace); it times the payload from
// its first byte to its last. The uk process's utime + stime
// (/proc/PID/stat: the tender, the guest's worker, the TAP threads, the
// user-mode gateway) is read before the client starts and after it exits.
//
// Each round starts a guest per path and engine, moves an untimed warm-up
// push and pull through it, then the timed push and pull; the engines'
// order alternates round by round. Each figure is the median of --rounds.
// A transfer without progress for 60 s fails its row for that round (the
// other rows go on). TAP and veth rows need root (and /dev/net/tun for TAP):
// without, they are skipped, saying why, and the user rows still run. The
// namespaces (with the TAP and the veth pair inside) and every child process
// are removed at the end, on error, and on SIGINT, SIGTERM or SIGHUP.
//
//   npm run bench:devices [-- --mb 1000 --rounds 3]

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../host/hotpath.js';
import { createLinkConfig } from '../host/link/layout.js';
import { children, cleanupNow, hookExit, namespaces, quiet, run, sweepStale } from './cleanup.js';
import { describeMachine, freePort, isMain, median, writeMarkdownSection, writeResults, type Machine } from './common.js';
import { STALL_MS, type Transfer } from './devices-client.js';
import { CHARGEN_PORT, DISCARD_PORT } from './devices-guest.js';

/** Sizes are decimal: N MB is N * 10^6 bytes, a GB 10^9. */
const MB = 1e6;
const ENGINES = ['wasm', 'ts'] as const;
type Engine = (typeof ENGINES)[number];
const DIRECTIONS = ['push', 'pull'] as const;
type Direction = (typeof DIRECTIONS)[number];
type PathName = 'TAP' | 'TAP, offloads off' | 'user' | 'Linux veth';

/** The TAP's namespace: the kernel's side and the guest. */
const TAP_KERNEL = '10.77.0.1';
const TAP_GUEST = '10.77.0.2';
/** The veth pair: the client's side and the reference server's. */
const VETH_CLIENT = '10.77.1.1';
const VETH_SERVER = '10.77.1.2';
const PREFIX = 24;
/** One MAC for every guest, so the kernel's ARP entry stays right from one guest to the next. */
const GUEST_MAC = '02:75:6b:64:76:02';
const NS_PREFIX = 'ukb-';
const NS_SUFFIX = '-devices-';

const ROOT = packageRoot();
const CLI = join(ROOT, 'dist/host/cli.js');
const CLIENT = join(ROOT, 'dist/bench/devices-client.js');
const GUEST = join(ROOT, 'dist/bench/devices-guest.js');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- options -------------------------------------------------------------------------

interface Options {
  mb: number;
  rounds: number;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: { mb: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '3' } },
    strict: true,
  });
  const int = (name: string, text: string | undefined, max: number): number => {
    const n = Number(text);
    if (!/^\d+$/.test(text ?? '') || n < 1 || n > max) throw new Error(`--${name} ${text}: expected a whole number from 1 to ${max}`);
    return n;
  };
  return { mb: int('mb', values.mb, 1_000_000), rounds: int('rounds', values.rounds, 100) };
}

/** The untimed transfer each way before a guest's timed ones: V8 compiles the data path on first use. */
function warmupBytes(o: Options): number {
  return Math.max(MB, Math.min(20 * MB, Math.floor((o.mb * MB) / 10)));
}

/** A transfer's bound beside the client's own stall check: 60 s idle, or under 1 MB/s. */
function transferDeadlineMs(bytes: number): number {
  return 2 * STALL_MS + (bytes / MB) * 1000;
}

// ---- processes and namespaces --------------------------------------------------------

function inNamespace(ns: string): string[] {
  return ['ip', 'netns', 'exec', ns];
}

/** Spawn `node SCRIPT ARGS` (prefixed by `wrap`), remembered for cleanup. */
function spawnNode(wrap: string[], script: string, args: string[], stdin: 'ignore' | 'pipe' = 'ignore'): ChildProcess {
  const argv = [...wrap, process.execPath, script, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: [stdin, 'pipe', 'pipe'] });
  children.add(child);
  child.once('close', () => children.delete(child));
  return child;
}

/** A new namespace of this run with its loopback up. */
function makeNamespace(label: string): string {
  const ns = `${NS_PREFIX}${process.pid}${NS_SUFFIX}${label}`;
  namespaces.add(ns);
  run('ip', ['netns', 'add', ns]);
  run('ip', ['-n', ns, 'link', 'set', 'dev', 'lo', 'up']);
  return ns;
}

/** Give `ifname` in `ns` an address and bring it up, IPv6 off so the kernel sends only what the transfers provoke. */
function configure(ns: string, ifname: string, address: string): void {
  run('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', `net.ipv6.conf.${ifname}.disable_ipv6=1`]);
  run('ip', ['-n', ns, 'addr', 'add', `${address}/${PREFIX}`, 'dev', ifname]);
  run('ip', ['-n', ns, 'link', 'set', 'dev', ifname, 'up']);
}

function interfaceMtu(ns: string, ifname: string): number | null {
  const m = /\bmtu (\d+)/.exec(quiet('ip', ['-n', ns, 'link', 'show', 'dev', ifname]));
  return m ? Number(m[1]) : null;
}

/** Interface names: at most 15 bytes, unique per run (the pid in base 36). */
const ifname = (suffix: string) => `ukb${process.pid.toString(36)}${suffix}`;

/** Why the TAP rows cannot run here, or null. */
function tapUnavailable(): string | null {
  const why = vethUnavailable();
  if (why) return why;
  try {
    if (!statSync('/dev/net/tun').isCharacterDevice()) return '/dev/net/tun is not a character device';
  } catch {
    return '/dev/net/tun is missing';
  }
  return null;
}

/** Why the Linux veth rows cannot run here, or null. */
function vethUnavailable(): string | null {
  if (process.getuid?.() !== 0) return `needs root (running as uid ${process.getuid?.() ?? '?'})`;
  if (spawnSync('ip', ['-V']).status !== 0) return 'iproute2 (`ip`) is missing';
  return null;
}

// ---- the uk process ------------------------------------------------------------------

const CLOCK_TICKS = clockTicks();

function clockTicks(): number {
  const n = Number(quiet('getconf', ['CLK_TCK']).trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
}

/** utime + stime of process `pid`, all its threads, in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces:
  // state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** `uk run ARGS` in a child process (prefixed by `wrap`: ip netns exec NS). */
class UkGuest {
  private stderrText = '';
  private code: number | null = null;
  private readonly exited: Promise<void>;
  private stopping: Promise<number | null> | null = null;

  private constructor(
    private readonly child: ChildProcess,
    readonly shown: string,
  ) {
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderrText += s));
    child.stdout!.resume();
    this.exited = new Promise((resolve) =>
      child.once('close', (code) => {
        this.code = code ?? -1; // -1: ended by a signal
        resolve();
      }),
    );
  }

  static async start(args: string[], wrap: string[], shown: string): Promise<UkGuest> {
    const guest = new UkGuest(spawnNode(wrap, CLI, ['run', ...args]), shown);
    const end = Date.now() + 30_000;
    while (!/uk: app: /.test(guest.stderrText)) {
      if (guest.code !== null) throw new Error(`${shown} exited (${guest.code}) before it was ready:\n${guest.stderrText}`);
      if (Date.now() > end) throw new Error(`${shown} was not ready within 30 s:\n${guest.stderrText}`);
      await sleep(50);
    }
    return guest;
  }

  /** The pid whose CPU time is measured: the node process running cli.js.
   *  `ip netns exec` execs its command in place, so it is the child itself;
   *  a wrapper that forked would show up here as a wrong command line. */
  pid(): number {
    const pid = this.child.pid!;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes(CLI)) throw new Error(`pid ${pid} is not the uk process (${cmdline.replace(/\0/g, ' ')})`);
    return pid;
  }

  alive(): boolean {
    return this.code === null;
  }

  /** Why it is no longer running: its exit status and last stderr lines. */
  death(): string {
    return `${this.shown} exited (${this.code}):\n${this.stderrText.split('\n').slice(-8).join('\n')}`;
  }

  bootLine(kind: string): string {
    return new RegExp(`uk: ${kind}: (.*)`).exec(this.stderrText)?.[1] ?? '';
  }

  /** SIGTERM (SIGKILL after 15 s); its exit status. */
  stop(): Promise<number | null> {
    return (this.stopping ??= (async () => {
      if (this.code === null) {
        this.child.kill('SIGTERM');
        const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
        await this.exited;
        clearTimeout(timer);
      }
      return this.code;
    })());
  }
}

// ---- transfers -----------------------------------------------------------------------

/** Where a client reaches discard (push) and chargen (pull). */
interface Endpoint {
  /** The command prefix that puts the client beside its peer (ip netns exec NS), or none. */
  wrap: string[];
  host: string;
  ports: Record<Direction, number>;
}

interface Sample {
  round: number;
  bytes: number;
  ns: number;
  /** The uk process's CPU seconds over the transfer; null for the Linux reference. */
  cpuSeconds: number | null;
}

/** Run the client once; its result, or an error saying why there is none. */
function runClient(at: Endpoint, direction: Direction, bytes: number): Promise<Transfer> {
  const child = spawnNode(at.wrap, CLIENT, [direction, at.host, String(at.ports[direction]), String(bytes)]);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const limitMs = transferDeadlineMs(bytes);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const answer = parseLastLine(out);
      if (signal === 'SIGKILL') reject(new Error(`${direction}: the client was killed after ${limitMs / 1000} s`));
      else if (answer && typeof answer.bytes === 'number' && typeof answer.ns === 'number') resolve(answer as unknown as Transfer);
      else reject(new Error(`${direction}: ${answer?.error ?? `client exit ${code ?? signal}: ${out}${err}`.trim()}`));
    });
  });
}

function parseLastLine(text: string): Record<string, unknown> | null {
  const line = text.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** One timed transfer; the uk process's CPU time around it when there is one. */
async function measure(at: Endpoint, direction: Direction, bytes: number, round: number, ukPid: number | null): Promise<Sample> {
  const before = ukPid === null ? 0 : cpuTicks(ukPid);
  const t = await runClient(at, direction, bytes);
  const cpuSeconds = ukPid === null ? null : (cpuTicks(ukPid) - before) / CLOCK_TICKS;
  return { round, bytes: t.bytes, ns: t.ns, cpuSeconds };
}

// ---- rows ----------------------------------------------------------------------------

interface RowKey {
  path: PathName;
  direction: Direction;
  engine: Engine | '-';
}

interface Row extends RowKey {
  samples: Sample[];
  /** Why a round gave no sample. */
  failures: string[];
  /** Medians over the samples; null without any. */
  gbitPerSecond: number | null;
  cpuSecondsPerGB: number | null;
}

class Rows {
  private readonly rows = new Map<string, Row>();

  private row(k: RowKey): Row {
    const key = `${k.path} ${k.direction} ${k.engine}`;
    let r = this.rows.get(key);
    if (!r) this.rows.set(key, (r = { ...k, samples: [], failures: [], gbitPerSecond: null, cpuSecondsPerGB: null }));
    return r;
  }

  add(k: RowKey, s: Sample): void {
    this.row(k).samples.push(s);
    const cpu = s.cpuSeconds === null ? '' : `, uk CPU ${cpuPerGB(s).toFixed(2)} s/GB`;
    console.error(`  round ${s.round + 1} ${k.path} ${k.direction} ${k.engine}: ${gbits(s).toFixed(2)} Gbit/s${cpu}`);
  }

  fail(k: RowKey, round: number, why: string): void {
    this.row(k).failures.push(`round ${round + 1}: ${why}`);
    console.error(`  round ${round + 1} ${k.path} ${k.direction} ${k.engine}: FAILED: ${why}`);
  }

  /** Every row, in the order they were first measured, with its medians. */
  done(): Row[] {
    return [...this.rows.values()].map((r) => ({
      ...r,
      gbitPerSecond: r.samples.length ? median(r.samples.map(gbits)) : null,
      cpuSecondsPerGB: r.samples.some((s) => s.cpuSeconds !== null) ? median(r.samples.map(cpuPerGB)) : null,
    }));
  }
}

const gbits = (s: Sample) => (s.bytes * 8) / s.ns;
const cpuPerGB = (s: Sample) => (s.cpuSeconds ?? 0) / (s.bytes / 1e9);

// ---- the paths -----------------------------------------------------------------------

/** A way to run the guest: how to start it, and where its clients reach it. */
interface GuestPath {
  name: Exclude<PathName, 'Linux veth'>;
  start(engine: Engine): Promise<{ guest: UkGuest; at: Endpoint }>;
}

/** A namespace holding a persistent TAP with the kernel's address; guests
 *  started inside it attach to the TAP by name. */
function tapPaths(): [GuestPath & { ns: string; tap: string }, GuestPath] {
  const ns = makeNamespace('tap');
  const tap = ifname('t');
  run('ip', ['-n', ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  configure(ns, tap, TAP_KERNEL);
  return [{ ...tapPath(ns, tap, 'on'), ns, tap }, tapPath(ns, tap, 'off')];
}

/** Guests on that TAP, with the device's segmentation offload on (the default) or off. */
function tapPath(ns: string, tap: string, offloads: 'on' | 'off'): GuestPath {
  const at: Endpoint = { wrap: inNamespace(ns), host: TAP_GUEST, ports: { push: DISCARD_PORT, pull: CHARGEN_PORT } };
  return {
    name: offloads === 'on' ? 'TAP' : 'TAP, offloads off',
    async start(engine) {
      const args = ['--hotpath', engine, '--net', `tap:${tap}`, '--offloads', offloads, '--ipv4', `${TAP_GUEST}/${PREFIX}`, '--mac', GUEST_MAC, GUEST];
      const guest = await UkGuest.start(args, inNamespace(ns), `ip netns exec ${ns} uk run ${args.join(' ')}`);
      return { guest, at };
    },
  };
}

/** Two different ports free on 127.0.0.1 now. */
async function twoFreePorts(): Promise<[number, number]> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const [a, b] = [await freePort(), await freePort()];
    if (a !== b) return [a, b];
  }
  throw new Error('no two different free ports on 127.0.0.1 in 10 draws');
}

/** User networking: two host forwards on 127.0.0.1, new free ports for each guest. */
function userPath(): GuestPath {
  return {
    name: 'user',
    async start(engine) {
      // A port drawn free can be taken before uk binds it (exit 4): draw again, a few times.
      for (let attempt = 1; ; attempt++) {
        const [push, pull] = await twoFreePorts();
        const net = `user:hostfwd=tcp:127.0.0.1:${push}-:${DISCARD_PORT},hostfwd=tcp:127.0.0.1:${pull}-:${CHARGEN_PORT}`;
        const args = ['--hotpath', engine, '--net', net, GUEST];
        try {
          const guest = await UkGuest.start(args, [], `uk run ${args.join(' ')}`);
          return { guest, at: { wrap: [], host: '127.0.0.1', ports: { push, pull } } };
        } catch (err) {
          if (attempt >= 3 || !/exited \(4\)/.test((err as Error).message)) throw err;
        }
      }
    },
  };
}

/** One guest: start it, warm it up, time a push and a pull, stop it. */
async function guestRound(path: GuestPath, engine: Engine, o: Options, round: number, rows: Rows): Promise<void> {
  let guest: UkGuest | null = null;
  const key = (direction: Direction): RowKey => ({ path: path.name, direction, engine });
  try {
    const started = await path.start(engine);
    guest = started.guest;
    for (const direction of DIRECTIONS) await runClient(started.at, direction, warmupBytes(o));
    for (const direction of DIRECTIONS) {
      try {
        rows.add(key(direction), await measure(started.at, direction, o.mb * MB, round, guest.pid()));
      } catch (err) {
        rows.fail(key(direction), round, guest.alive() ? (err as Error).message : guest.death());
      }
    }
  } catch (err) {
    const why = guest && !guest.alive() ? guest.death() : (err as Error).message;
    for (const direction of DIRECTIONS) rows.fail(key(direction), round, `guest or warm-up failed: ${why}`);
  } finally {
    const code = await guest?.stop();
    if (code !== undefined && code !== 0) console.error(`devices: ${guest!.shown}: exit ${code} on stop`);
  }
}

/** The Linux reference: two namespaces joined by a veth pair, a node:net
 *  discard and chargen server in one, the clients in the other. */
async function vethPath(o: Options): Promise<{ at: Endpoint; mtu: number | null; server: ChildProcess }> {
  const client = makeNamespace('vc');
  const server = makeNamespace('vs');
  const [clientEnd, serverEnd] = [ifname('c'), ifname('s')];
  run('ip', ['-n', client, 'link', 'add', clientEnd, 'type', 'veth', 'peer', 'name', serverEnd, 'netns', server]);
  configure(client, clientEnd, VETH_CLIENT);
  configure(server, serverEnd, VETH_SERVER);
  const child = spawnNode(inNamespace(server), CLIENT, ['serve', VETH_SERVER, String(DISCARD_PORT), String(CHARGEN_PORT)], 'pipe');
  await listening(child);
  const at: Endpoint = { wrap: inNamespace(client), host: VETH_SERVER, ports: { push: DISCARD_PORT, pull: CHARGEN_PORT } };
  // The server is a Node process too: its first connections run cold code.
  for (const direction of DIRECTIONS) await runClient(at, direction, warmupBytes(o));
  return { at, mtu: interfaceMtu(client, clientEnd), server: child };
}

/** Until the reference server says it listens (30 s at most). */
function listening(child: ChildProcess): Promise<void> {
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the reference server did not listen within 30 s: ${out}${err}`)), 30_000);
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (out.includes('"listening":true')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`the reference server exited (${code}): ${out}${err}`));
    });
  });
}

async function vethRound(at: Endpoint, o: Options, round: number, rows: Rows): Promise<void> {
  for (const direction of DIRECTIONS) {
    const key: RowKey = { path: 'Linux veth', direction, engine: '-' };
    try {
      rows.add(key, await measure(at, direction, o.mb * MB, round, null));
    } catch (err) {
      rows.fail(key, round, (err as Error).message);
    }
  }
}

// ---- report --------------------------------------------------------------------------

interface Setting {
  tapMtu: number | null;
  userLinkMtu: number;
  vethMtu: number | null;
  skipped: { tap?: string; veth?: string };
}

function table(rows: Row[]): string {
  const fmt = (x: number | null) => (x === null ? 'failed' : x.toFixed(2));
  return [
    '| path | direction | engine | Gbit/s | uk CPU s/GB |',
    '|---|---|---|---:|---:|',
    ...rows.map(
      (r) => `| ${r.path} | ${r.direction} | ${r.engine} | ${fmt(r.gbitPerSecond)} | ${r.path === 'Linux veth' ? '-' : fmt(r.cpuSecondsPerGB)} |`,
    ),
  ].join('\n');
}

function methodText(o: Options, s: Setting): string[] {
  const mtu = (x: number | null) => (x === null ? 'unknown' : String(x));
  return [
    `TCP payload through the guest's network device paths, one connection at a time, ${o.mb} MB (10^6 bytes) per transfer.`,
    `The guest is \`uk run\` (default \`--mem 40M\`, \`--jit optimizing\`) running bench/devices-guest.ts on the callback API: discard`,
    `(port ${DISCARD_PORT}) drops the arena views \`onData\` gets; chargen (port ${CHARGEN_PORT}) writes one fixed 64 KiB buffer with \`write()\` until`,
    'it takes less, then again from `onWritable`. The client is bench/devices-client.ts, a Node process: *push* writes the',
    "bytes into discard and half-closes; *pull* reads chargen through one reused 64 KiB buffer (node:net `onread`) and",
    'closes after the last byte it wants (chargen then sees a reset). Gbit/s is payload bits over the client\'s wall time from',
    "the first byte to the last: for push, from the first write to discard's FIN, which it sends after reading the last byte;",
    'for pull, from the first byte received to the last counted. uk CPU s/GB is the `uk` process\'s utime + stime (all its',
    `threads: the tender, the guest's worker, the TAP reader and writer, the user-mode gateway) from /proc/PID/stat, in ticks of`,
    `1/${CLOCK_TICKS} s (\`getconf CLK_TCK\`), read before the client starts and after it exits (so the handshake, the close and the`,
    'client\'s start-up, with the guest idle, are in it), per 10^9 bytes of payload.',
    '',
    `- TAP: a network namespace made by the benchmark holds a persistent TAP, the kernel's side ${TAP_KERNEL}/${PREFIX}; the guest,`,
    `  started inside the namespace, attaches to it with \`--net tap:IF --ipv4 ${TAP_GUEST}/${PREFIX}\`; the client runs in the namespace`,
    `  (\`ip netns exec\`), so it is the kernel's TCP. MTU ${mtu(s.tapMtu)} (the interface's, which uk sets to its link's). "TAP": the`,
    '  default `--offloads on`: the TAP is opened with IFF_VNET_HDR and its writer joins the guest\'s waiting TCP segments into',
    '  super-segments (host/devices/gso.ts; TSO as the kernel sees it), one write(2) each; no receive offload (the kernel segments',
    '  and checksums what it sends). "TAP, offloads off": `--offloads off`, one write(2) per frame.',
    `- user: \`--net user:hostfwd=tcp:127.0.0.1:P-:${DISCARD_PORT},hostfwd=tcp:127.0.0.1:Q-:${CHARGEN_PORT}\`; the client connects to 127.0.0.1:P or :Q`,
    `  on loopback; the gateway stack in the tender carries the bytes over the tender-guest link at its MTU, ${s.userLinkMtu} (the link's`,
    '  default in host/link/layout.ts), no offloads either.',
    `- Linux veth, the reference: the same client in one namespace, a plain node:net discard and chargen server in another, joined`,
    `  by a veth pair (${VETH_CLIENT} and ${VETH_SERVER}), MTU ${mtu(s.vethMtu)} with the kernel's default offloads (TSO, GSO, GRO, checksums). No uk, so no CPU figure;`,
    '  the server gets the same untimed warm-up push and pull once, before the first round.',
    '',
    `Each figure is the median of ${o.rounds} round${o.rounds === 1 ? '' : 's'}. Each round starts a new guest per path and engine, moves an untimed`,
    `warm-up push and pull of ${warmupBytes(o) / MB} MB through it, then times a push and a pull; the engines' order alternates round by round.`,
    `A transfer without progress for ${STALL_MS / 1000} s fails its row for that round.`,
  ];
}

function section(machine: Machine, loadAfter: number, command: string, o: Options, s: Setting, rows: Row[]): string {
  const failures = rows.flatMap((r) => r.failures.map((f) => `- ${r.path} ${r.direction} ${r.engine}, ${f.split('\n')[0]}`));
  const skipped = Object.entries(s.skipped).map(([what, why]) => `- ${what === 'tap' ? 'TAP' : 'Linux veth'} rows skipped: ${why}.`);
  return [
    '## Devices',
    '',
    `Machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.date}`,
    `(the cores are shared with other work: load average ${machine.load.toFixed(1)} when the run started,`,
    `${loadAfter.toFixed(1)} when it ended). Command: \`${command}\`.`,
    '',
    ...methodText(o, s),
    '',
    table(rows),
    '',
    ...(skipped.length || failures.length ? [...skipped, ...failures, ''] : []),
  ].join('\n');
}

// ---- main ----------------------------------------------------------------------------

export async function runDevicesBench(argv: string[] = process.argv.slice(2)): Promise<void> {
  const o = parseOptions(argv);
  hookExit('devices');
  const machine = describeMachine();
  const command = ['npm run bench:devices', ...(argv.length ? ['--', ...argv] : [])].join(' ');
  const setting: Setting = { tapMtu: null, userLinkMtu: createLinkConfig(new Uint8Array(6)).mtu, vethMtu: null, skipped: {} };
  console.log(`Devices — ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, load ${machine.load.toFixed(1)}; ${o.mb} MB per transfer, ${o.rounds} rounds\n`);
  const rows = new Rows();
  try {
    const paths: GuestPath[] = [];
    const tapWhy = tapUnavailable();
    if (tapWhy) {
      setting.skipped.tap = tapWhy;
      console.log(`devices: TAP rows skipped: ${tapWhy}`);
    } else {
      sweepStale(new RegExp(`^(${NS_PREFIX}(\\d+)${NS_SUFFIX}\\w+)`));
      try {
        const [tap, tapOff] = tapPaths();
        paths.push(tap, tapOff);
        setting.tapMtu = interfaceMtu(tap.ns, tap.tap);
      } catch (err) {
        setting.skipped.tap = `the namespace with its TAP could not be made: ${(err as Error).message.trim()}`;
        console.log(`devices: TAP rows skipped: ${setting.skipped.tap}`);
      }
    }
    paths.push(userPath());
    const vethWhy = vethUnavailable();
    let veth: Endpoint | null = null;
    if (vethWhy) {
      setting.skipped.veth = vethWhy;
      console.log(`devices: Linux veth rows skipped: ${vethWhy}`);
    } else {
      try {
        const v = await vethPath(o);
        veth = v.at;
        setting.vethMtu = v.mtu;
      } catch (err) {
        setting.skipped.veth = `the veth pair or its server could not be set up: ${(err as Error).message.trim()}`;
        console.log(`devices: Linux veth rows skipped: ${setting.skipped.veth}`);
      }
    }
    for (let round = 0; round < o.rounds; round++) {
      // Alternate which engine goes first, so neither always runs on a machine warmed by the other.
      const engines = round % 2 === 0 ? ENGINES : [...ENGINES].reverse();
      for (const path of paths) for (const engine of engines) await guestRound(path, engine, o, round, rows);
      if (veth) await vethRound(veth, o, round, rows);
    }
    // The TAP keeps the MTU the guests set on it.
    const tap = paths.find((p): p is ReturnType<typeof tapPaths>[0] => p.name === 'TAP');
    if (tap) setting.tapMtu = interfaceMtu(tap.ns, tap.tap) ?? setting.tapMtu;
    const done = rows.done();
    const loadAfter = describeMachine().load;
    const text = section(machine, loadAfter, command, o, setting, done);
    console.log('\n' + table(done));
    writeMarkdownSection(ROOT, 'Devices', text);
    writeResults(ROOT, 'devices', { machine, loadAfter, command, options: o, clockTicks: CLOCK_TICKS, warmupBytes: warmupBytes(o), setting, rows: done });
    if (done.some((r) => r.failures.length > 0)) process.exitCode = 1;
  } finally {
    cleanupNow();
  }
}

if (isMain(import.meta.url)) {
  await runDevicesBench().catch((err: Error) => {
    console.error(`devices: ${err.stack ?? err.message}`);
    process.exitCode = 1;
  });
}
