// Stack benchmark: two whole stacks in one process exchanging TCP traffic,
// the wasm and ts engines measured side by side in the same run. Prints a
// table, writes the "Stack" section of BENCHMARKS.md and bench/results/stack.json.
//
//   npm run bench:stack      (builds, then node --expose-gc dist/bench/stack.js)
//
// Figures (SCENARIOS below):
//   bulk         one connection carries BULK_BYTES of application payload from
//                stack a to stack b, with the callback API, then with the
//                WHATWG streams API
//   connections  connect, a small request and response, close (the client
//                closes first and keeps TIME_WAIT), CLIENTS at a time
// each over two links: the vswitch that tests and simulations use, and a
// direct link (DirectLink below: one copy and a ring, nothing else), so the
// switch's own share is visible. Both links have zero delay and run on a
// Simulation's VirtualClock: virtual time is free, every figure is CPU work.
//
// Method. Each sample is a child process that runs one scenario with one
// engine: an untimed warm-up run, then a timed run. A guest runs one engine,
// and with both engine classes in one process every call the stack makes into
// the hot path would see two classes, so the optimised code (and the figure)
// would depend on which engine ran first. The children alternate engines and
// scenarios round by round, so drift in the machine's speed hits all alike;
// each figure is the median of ROUNDS samples. Times are the child's CPU time
// (all its threads, so V8's garbage collector and compiler count), and its
// wall time alongside.
//
// One sample by hand, e.g. to profile it:
//   node --expose-gc --cpu-prof dist/bench/stack.js --child bulk-callback-direct wasm

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEngine, packageRoot } from '../host/hotpath.js';
import { type Alarm, type Clock, type EngineName, type NetDevice, Simulation, Stack, type Connection } from '../stack/index.js';
import {
  collectGarbage,
  cpuNow,
  describeMachine,
  isMain,
  median,
  writeMarkdownSection,
  writeResults,
  type Machine,
  type SummaryRow,
} from './common.js';

const MiB = 1024 * 1024;
/** Payload of one bulk transfer. */
const BULK_BYTES = 200 * MiB;
/** Connections of one connections run, and how many are open at a time. */
const CONNECTIONS = 10_000;
const CLIENTS = 64;
/** Connections of the sustained run: at least 5 s of CPU time at today's rate. */
const SUSTAINED_CONNECTIONS = 400_000;
/** Samples per figure and engine (each a child process). */
const ROUNDS = 7;
/** Arena of each stack. */
const ARENA_BYTES = 16 * MiB;
const ENGINES: readonly EngineName[] = ['wasm', 'ts'];

// ---- the direct link ---------------------------------------------------------------

/**
 * Two NetDevices back to back: a frame sent on one end is copied into a ring
 * of frame slots and delivered to the other end from an alarm at the same
 * virtual instant (never from inside send(): a stack hands a frame to its
 * device in the middle of its own work). No learning, no faults, no counters,
 * no allocation per frame: about the least a link between two stacks can
 * cost. The ring starts small, so the slots in use stay in the CPU's caches,
 * and doubles when full rather than drop a frame.
 */
class DirectLink {
  static readonly SLOT_SIZE = 2048;
  readonly ends: [DirectEnd, DirectEnd];
  /** Frames refused (longer than a slot: never, with the stacks' MTU). */
  drops = 0;
  private slots = 128;
  private ring = new Uint8Array(this.slots * DirectLink.SLOT_SIZE);
  private lengths = new Int32Array(this.slots);
  /** Which end receives each queued frame (0 or 1). */
  private targets = new Uint8Array(this.slots);
  private views: (Uint8Array | undefined)[] = [];
  private head = 0;
  private count = 0;
  private readonly alarm: Alarm;
  private armed = false;

  constructor(private readonly clock: Clock) {
    this.alarm = clock.createAlarm(() => this.deliver());
    this.ends = [new DirectEnd(this, 0), new DirectEnd(this, 1)];
  }

  send(from: number, frame: Uint8Array): boolean {
    if (frame.length > DirectLink.SLOT_SIZE) {
      this.drops++;
      return false;
    }
    if (this.count === this.slots) this.grow();
    const i = (this.head + this.count++) % this.slots;
    this.ring.set(frame, i * DirectLink.SLOT_SIZE);
    this.lengths[i] = frame.length;
    this.targets[i] = from ^ 1;
    if (!this.armed) {
      this.armed = true;
      this.alarm.reschedule(this.clock.now());
    }
    return true;
  }

  /** Deliver the queued frames, and the replies they cause, up to a bound per
   *  alarm so that one alarm cannot run forever. The frames queued when a
   *  round starts are one batch (NetDevice.setBatchEnd), as a device
   *  draining its ring delivers them; what they cause comes in the next. */
  private deliver(): void {
    this.armed = false;
    let budget = this.count + 4096;
    while (this.count > 0 && budget > 0) {
      let batch = this.count;
      budget -= batch;
      while (batch-- > 0) {
        const i = this.head;
        const at = i * DirectLink.SLOT_SIZE;
        // The slot stays reserved while the receiver runs: its replies go
        // behind it, and may grow the ring, hence `head` is read again after.
        this.ends[this.targets[i]!].receiver?.(this.view(i, at, this.lengths[i]!));
        this.head = (this.head + 1) % this.slots;
        this.count--;
      }
      this.ends[0].batchEnd?.();
      this.ends[1].batchEnd?.();
    }
    if (this.count > 0 && !this.armed) {
      this.armed = true;
      this.alarm.reschedule(this.clock.now());
    }
  }

  /** The view of slot i's frame: one per slot, re-made only when its length changes. */
  private view(i: number, at: number, len: number): Uint8Array {
    let v = this.views[i];
    if (v === undefined || v.length !== len) {
      v = this.ring.subarray(at, at + len);
      this.views[i] = v;
    }
    return v;
  }

  /** Twice the slots, the queued frames moved to the front in order. */
  private grow(): void {
    const slots = this.slots * 2;
    const ring = new Uint8Array(slots * DirectLink.SLOT_SIZE);
    const lengths = new Int32Array(slots);
    const targets = new Uint8Array(slots);
    for (let k = 0; k < this.count; k++) {
      const i = (this.head + k) % this.slots;
      ring.set(this.ring.subarray(i * DirectLink.SLOT_SIZE, (i + 1) * DirectLink.SLOT_SIZE), k * DirectLink.SLOT_SIZE);
      lengths[k] = this.lengths[i]!;
      targets[k] = this.targets[i]!;
    }
    this.ring = ring;
    this.views = [];
    this.lengths = lengths;
    this.targets = targets;
    this.slots = slots;
    this.head = 0;
  }
}

class DirectEnd implements NetDevice {
  readonly mac: Uint8Array;
  readonly mtu = 1500;
  receiver: ((frame: Uint8Array) => void) | null = null;

  constructor(
    private readonly link: DirectLink,
    private readonly index: number,
  ) {
    this.mac = Uint8Array.of(0x02, 0, 0, 0, 0, index + 1);
  }

  send(frame: Uint8Array): boolean {
    return this.link.send(this.index, frame);
  }

  setReceiver(receive: (frame: Uint8Array) => void): void {
    this.receiver = receive;
  }

  batchEnd: (() => void) | null = null;

  setBatchEnd(end: () => void): void {
    this.batchEnd = end;
  }
}

// ---- two stacks ----------------------------------------------------------------------

type LinkKind = 'direct' | 'vswitch';

interface Pair {
  sim: Simulation;
  a: Stack;
  b: Stack;
  /** Frames the link dropped (a valid run has none). */
  linkDrops(): number;
}

/** Stacks a (10.0.0.1) and b (10.0.0.2) on a new Simulation. */
async function makePair(engine: EngineName, link: LinkKind): Promise<Pair> {
  const sim = new Simulation();
  let devices: [NetDevice, NetDevice];
  let linkDrops: () => number;
  if (link === 'direct') {
    const direct = new DirectLink(sim.clock);
    devices = direct.ends;
    linkDrops = () => direct.drops;
  } else {
    const ports = [sim.switch.attach(), sim.switch.attach()] as const;
    devices = [ports[0], ports[1]];
    const dropped = (i: 0 | 1): number => Object.values(ports[i].counters.dropped).reduce((x, y) => x + y, 0);
    linkDrops = () => dropped(0) + dropped(1);
  }
  const stack = async (i: 0 | 1): Promise<Stack> =>
    new Stack({
      device: devices[i],
      hotpath: await createEngine(engine, ARENA_BYTES),
      clock: sim.clock,
      ipv4: { address: `10.0.0.${i + 1}`, prefix: 24 },
    });
  const a = await stack(0);
  const b = await stack(1);
  // Let the start-up ARP announcements go by; nothing before the first
  // connection is timed anyway.
  await sim.complete(sim.sleep(1000));
  return { sim, a, b, linkDrops };
}

function endPair(p: Pair): void {
  if (p.linkDrops() !== 0) throw new Error(`the link dropped ${p.linkDrops()} frames`);
  p.a.shutdown();
  p.b.shutdown();
}

/** The sender's bytes, written again and again (their content does not matter). */
const SOURCE = new Uint8Array(MiB).map((_, i) => (i * 31 + 7) & 0xff);

// ---- bulk transfer -----------------------------------------------------------------

/** Callback API: write() until the send buffer takes no more, again on
 *  onWritable; onData counts and drops the views. Resolves at the end of the
 *  stream with the byte count received. */
function bulkCallbacks(sender: Connection, receiver: Connection, total: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let received = 0;
    receiver.onData = (view) => {
      received += view.length;
    };
    receiver.onEnd = () => resolve(received);
    receiver.onClose = (info) => reject(new Error(`bulk: receiver closed early (${info.reason})`));
    let sent = 0;
    const push = (): void => {
      while (sent < total) {
        const off = sent % SOURCE.length;
        const n = sender.write(SOURCE.subarray(off, Math.min(SOURCE.length, off + total - sent)));
        sent += n;
        if (n === 0) return; // onWritable calls again
      }
      sender.end();
    };
    sender.onWritable = push;
    push();
  });
}

/** Streams: a writer awaiting each 64 KiB write, a reader dropping each chunk. */
async function bulkStreams(sender: Connection, receiver: Connection, total: number): Promise<number> {
  const write = async (): Promise<void> => {
    const writer = sender.writable.getWriter();
    for (let sent = 0; sent < total; ) {
      const off = sent % SOURCE.length;
      const n = Math.min(64 * 1024, SOURCE.length - off, total - sent);
      await writer.write(SOURCE.subarray(off, off + n));
      sent += n;
    }
    await writer.close();
  };
  const read = async (): Promise<number> => {
    const reader = receiver.readable.getReader();
    let received = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return received;
      received += value.length;
    }
  };
  const [received] = await Promise.all([read(), write()]);
  return received;
}

interface Timing {
  cpuMs: number;
  wallMs: number;
  /** Share of the TCP segments the two stacks received that the engine's
   *  fast path took whole (stats().tcp.counters; absent in builds without it). */
  fastShare?: number;
}

/** Fast-path share of received segments over both stacks of a pair. */
function fastShare(p: Pair): number | undefined {
  const a = p.a.tcp.stats().counters;
  const b = p.b.tcp.stats().counters;
  if (a.fastPathSegments === undefined) return undefined;
  return (a.fastPathSegments + b.fastPathSegments) / (a.segmentsIn + b.segmentsIn);
}

/** Time `work` on the simulation, from a clean heap. */
async function timed(sim: Simulation, work: () => Promise<unknown>): Promise<Timing> {
  collectGarbage();
  const wall0 = performance.now();
  const cpu0 = cpuNow();
  await sim.complete(work());
  return { cpuMs: (cpuNow() - cpu0) / 1e6, wallMs: performance.now() - wall0 };
}

/** One connection, `bytes` from a to b; times the transfer (handshake and close excluded). */
async function bulk(engine: EngineName, link: LinkKind, api: 'callback' | 'streams', bytes: number): Promise<Timing> {
  const p = await makePair(engine, link);
  const listener = p.b.tcp.listen(9000);
  const [client, server] = await p.sim.complete(Promise.all([p.a.tcp.connect('10.0.0.2', 9000), listener.accept()]));
  let received = 0;
  const timing = await timed(p.sim, async () => {
    received = await (api === 'callback' ? bulkCallbacks(client, server, bytes) : bulkStreams(client, server, bytes));
  });
  if (received !== bytes) throw new Error(`bulk: received ${received} of ${bytes} bytes`);
  timing.fastShare = fastShare(p);
  server.close();
  await p.sim.complete(Promise.all([client.closed, server.closed]));
  endPair(p);
  return timing;
}

// ---- connections ---------------------------------------------------------------------

const REQUEST = new Uint8Array(64).fill(0x71);
const RESPONSE = new Uint8Array(128).fill(0x72);

/** `count` connections, `CLIENTS` at a time: connect, send REQUEST, read
 *  RESPONSE, close; the server answers each request and closes on the
 *  client's FIN. Times the whole batch. */
async function connections(engine: EngineName, link: LinkKind, count: number): Promise<Timing> {
  const p = await makePair(engine, link);
  const listener = p.b.tcp.listen(80, { backlog: 2 * CLIENTS });
  listener.onConnection = (conn) => {
    let got = 0;
    conn.onData = (view) => {
      got += view.length;
      if (got === REQUEST.length) conn.write(RESPONSE);
    };
    conn.onEnd = () => conn.close();
  };
  const exchange = async (): Promise<void> => {
    const conn = await p.a.tcp.connect('10.0.0.2', 80);
    await new Promise<void>((resolve, reject) => {
      let got = 0;
      conn.onData = (view) => {
        got += view.length;
        if (got === RESPONSE.length) conn.close();
      };
      // The client closed first: its end is TIME_WAIT, reported as 'closed'.
      conn.onClose = (info) => (info.reason === 'closed' ? resolve() : reject(new Error(`connection ${info.reason}`)));
      conn.write(REQUEST);
    });
  };
  let started = 0;
  const client = async (): Promise<void> => {
    while (started < count) {
      started++;
      await exchange();
    }
  };
  const timing = await timed(p.sim, () => Promise.all(Array.from({ length: CLIENTS }, client)));
  const t = p.a.tcp.stats();
  if (t.connections !== 0 || t.counters.timeWaitEntered < count) {
    throw new Error(`connections: ${t.connections} still open, ${t.counters.timeWaitEntered} TIME_WAIT entries`);
  }
  listener.close();
  endPair(p);
  return timing;
}

// ---- scenarios -----------------------------------------------------------------------

interface Scenario {
  id: string;
  figure: string;
  unit: 'Gbit/s' | 'conn/s';
  /** Work of a timed run (bytes or connections) and of the warm-up run. */
  amount: number;
  warmup: number;
  run(engine: EngineName, amount: number): Promise<Timing>;
}

const SCENARIOS: Scenario[] = [];
for (const link of ['direct', 'vswitch'] as const) {
  for (const api of ['callback', 'streams'] as const) {
    SCENARIOS.push({
      id: `bulk-${api}-${link}`,
      figure: `bulk, ${api === 'callback' ? 'callback API' : 'streams'}, ${link} link`,
      unit: 'Gbit/s',
      amount: BULK_BYTES,
      warmup: BULK_BYTES / 4,
      run: (engine, amount) => bulk(engine, link, api, amount),
    });
  }
}
SCENARIOS.push({
  id: 'connections-sustained-direct',
  figure: 'connections, sustained (>= 5 s), direct link',
  unit: 'conn/s',
  amount: SUSTAINED_CONNECTIONS,
  warmup: CONNECTIONS,
  run: (engine, amount) => connections(engine, 'direct', amount),
});
for (const link of ['direct', 'vswitch'] as const) {
  SCENARIOS.push({
    id: `connections-${link}`,
    figure: `connections, ${link} link`,
    unit: 'conn/s',
    amount: CONNECTIONS,
    warmup: CONNECTIONS / 4,
    run: (engine, amount) => connections(engine, link, amount),
  });
}

/** Work per second of CPU time or wall time. */
function rate(s: Scenario, ms: number): number {
  return s.unit === 'Gbit/s' ? (s.amount * 8) / (ms * 1e6) : s.amount / (ms / 1000);
}

// ---- child: one sample ---------------------------------------------------------------

async function child(id: string, engine: EngineName): Promise<void> {
  const s = SCENARIOS.find((x) => x.id === id);
  if (!s || !ENGINES.includes(engine)) {
    throw new Error(`stack bench: --child ${SCENARIOS.map((x) => x.id).join('|')} ${ENGINES.join('|')}`);
  }
  await s.run(engine, s.warmup);
  const timing = await s.run(engine, s.amount);
  process.stdout.write(JSON.stringify(timing) + '\n');
}

/** One sample in a child process, of this build or of the checkout at `root`. */
function sample(s: Scenario, engine: EngineName, root?: string): Timing {
  const script = root === undefined ? fileURLToPath(import.meta.url) : join(root, 'dist', 'bench', 'stack.js');
  const r = spawnSync(process.execPath, ['--expose-gc', script, '--child', s.id, engine], { encoding: 'utf8', cwd: root });
  if (r.status !== 0) throw new Error(`stack bench: ${s.id} ${engine}${root ? ` (${root})` : ''} failed:\n${r.stderr || r.error}`);
  return JSON.parse(r.stdout) as Timing;
}

// ---- report -------------------------------------------------------------------------

interface EngineResult {
  /** Median rate per second of CPU time, then of wall time. */
  cpu: number;
  wall: number;
  samples: Timing[];
}

interface Row {
  id: string;
  figure: string;
  unit: Scenario['unit'];
  amount: number;
  wasm: EngineResult;
  ts: EngineResult;
}

function fmt(x: number, unit: Row['unit']): string {
  return unit === 'Gbit/s' ? x.toFixed(2) : x.toFixed(0);
}

function table(rows: Row[]): string {
  const head = '| Figure | Unit | wasm | ts | wasm vs ts | wasm, wall | ts, wall |';
  const rule = '|---|---|---:|---:|---:|---:|---:|';
  const lines = rows.map(
    (r) =>
      `| ${r.figure} | ${r.unit} | ${fmt(r.wasm.cpu, r.unit)} | ${fmt(r.ts.cpu, r.unit)} | ` +
      `${(r.wasm.cpu / r.ts.cpu).toFixed(2)}x | ${fmt(r.wasm.wall, r.unit)} | ${fmt(r.ts.wall, r.unit)} |`,
  );
  return [head, rule, ...lines].join('\n');
}

function section(machine: Machine, loadAfter: number, rows: Row[]): string {
  return [
    '## Stack',
    '',
    `Machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.date}`,
    `(the cores are shared with other work: load average ${machine.load.toFixed(1)} when the run started,`,
    `${loadAfter.toFixed(1)} when it ended). Command: \`npm run bench:stack\`.`,
    '',
    'Two stacks (10.0.0.1 and 10.0.0.2, MSS 1460, the default 64 KiB buffers, so windows of 64 KiB at most)',
    "in one process, on a Simulation's virtual clock, joined by a zero-delay link: the vswitch",
    '(`stack/vswitch`, faults off, every frame on its own) or a direct link (`DirectLink` in',
    'bench/stack.ts: one copy into a ring of frame slots, delivered from an alarm at the same virtual',
    'instant, the frames queued when a round starts delivered as one batch, as a device draining its',
    'ring does: `NetDevice.setBatchEnd`, so a stack answers once per connection per batch). A figure includes',
    'everything in the process: both stacks, the link, the application callbacks and the simulation',
    'loop; virtual time costs nothing. In a CPU profile of the callback transfer, the direct link\'s',
    'own code takes under a tenth of the time and the vswitch about a fifth. Rates are per second of',
    'the process\'s CPU time (all threads, so garbage collection counts); "wall" columns are per second',
    'of wall time. On a loaded machine CPU time grows too (shared caches, a hypervisor taking the',
    'CPU away), so compare runs made at similar load; every sample is in bench/results/stack.json.',
    '',
    `- bulk: one connection carries ${BULK_BYTES / MiB} MiB of payload (handshake and close not timed). Callback`,
    '  API: `write()` until it takes no more, resumed by `onWritable`; `onData` drops the views it gets',
    '  (no copy). Streams: a writer awaiting each 64 KiB `write()`, a reader dropping each chunk (the',
    '  readable copies bytes out of the arena). 1 Gbit/s = 10^9 bits of payload per second.',
    `- connections: ${CONNECTIONS.toLocaleString('en-US')} connections, ${CLIENTS} at a time: connect, send 64 bytes, read a 128-byte`,
    '  response, close. The client closes first and keeps a TIME_WAIT record (virtual time barely',
    '  moves, so the 4096-record table is full and recycles its oldest).',
    `- connections, sustained: the same with ${SUSTAINED_CONNECTIONS.toLocaleString('en-US')} connections, so a run takes more than 5 s of CPU`,
    '  time; TIME_WAIT as above (each closing client keeps a record for 2 MSL = 60 s of virtual time,',
    '  which does not pass: the full table recycles its oldest record, counted in timeWaitRecycled).',
    '',
    `Each figure is the median of ${ROUNDS} samples per engine; each sample is a child process running one`,
    'scenario with one engine (as a guest does), an untimed warm-up run then the timed run; engines',
    'and scenarios alternate round by round. "wasm vs ts" is wasm\'s rate over ts\'s. For',
    'comparison, a WebAssembly build of lwIP for JavaScript advertises above 0.5 Gbit/s between two',
    'stacks.',
    '',
    table(rows),
    '',
    fastShareLine(rows),
    '',
  ].join('\n');
}

/** The fast path's share of received segments in the bulk runs (lowest sample). */
function fastShareLine(rows: Row[]): string {
  const parts: string[] = [];
  for (const r of rows) {
    if (r.unit !== 'Gbit/s') continue;
    for (const engine of ENGINES) {
      const shares = r[engine].samples.map((t) => t.fastShare).filter((x): x is number => x !== undefined);
      if (shares.length > 0) parts.push(`${r.figure}, ${engine}: ${(100 * Math.min(...shares)).toFixed(3)}%`);
    }
  }
  return parts.length === 0 ? '' : `Received TCP segments the engine's fast path took whole (both stacks, lowest sample): ${parts.join('; ')}.`;
}

/** Runs every scenario ROUNDS times per engine in child processes, prints the
 *  table, writes the BENCHMARKS.md section and bench/results/stack.json;
 *  returns its lines for the combined table. */
export async function runStackBench(): Promise<SummaryRow[]> {
  const machine = describeMachine();
  console.log(`Stack — ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, load ${machine.load.toFixed(1)}\n`);
  const samples = new Map<string, Timing[]>();
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which engine goes first, so neither always runs on a machine warmed by the other.
    const engines = round % 2 === 0 ? ENGINES : [...ENGINES].reverse();
    for (const s of SCENARIOS) {
      for (const engine of engines) {
        const t = sample(s, engine);
        const key = `${s.id} ${engine}`;
        samples.set(key, [...(samples.get(key) ?? []), t]);
        process.stderr.write(
          `  round ${round + 1}/${ROUNDS} ${key}: ${fmt(rate(s, t.cpuMs), s.unit)} ${s.unit} ` +
            `(${fmt(rate(s, t.wallMs), s.unit)} wall)\n`,
        );
      }
    }
  }
  const result = (s: Scenario, engine: EngineName): EngineResult => {
    const list = samples.get(`${s.id} ${engine}`)!;
    return {
      cpu: rate(s, median(list.map((t) => t.cpuMs))),
      wall: rate(s, median(list.map((t) => t.wallMs))),
      samples: list,
    };
  };
  const rows: Row[] = SCENARIOS.map((s) => ({
    id: s.id,
    figure: s.figure,
    unit: s.unit,
    amount: s.amount,
    wasm: result(s, 'wasm'),
    ts: result(s, 'ts'),
  }));
  const loadAfter = describeMachine().load;
  console.log('\n' + table(rows));

  const root = packageRoot();
  writeMarkdownSection(root, 'Stack', section(machine, loadAfter, rows));
  writeResults(root, 'stack', {
    machine,
    loadAfter,
    command: 'npm run bench:stack',
    rounds: ROUNDS,
    bulkBytes: BULK_BYTES,
    connections: CONNECTIONS,
    clients: CLIENTS,
    rows,
  });
  return rows.map((r) => ({
    figure: r.figure,
    unit: r.unit,
    wasm: fmt(r.wasm.cpu, r.unit),
    ts: fmt(r.ts.cpu, r.unit),
    speedup: `${(r.wasm.cpu / r.ts.cpu).toFixed(2)}x`,
  }));
}

// ---- against an earlier build -------------------------------------------------------

/**
 * `npm run bench:stack -- --against DIR`: this build against another checkout
 * of the project, built (`npm run build` there; a `git worktree add DIR REV`
 * makes one), in one run on one machine. Samples of the two alternate, scenario
 * by scenario and engine by engine, so drift hits both alike; each figure is
 * the median of ROUNDS samples of CPU time. Prints the table and writes the
 * "Stack against an earlier build" section of BENCHMARKS.md.
 */
/** The scenario ids a build's child knows: its usage message lists them. */
function scenarioIdsOf(root: string): string[] {
  const r = spawnSync(process.execPath, [join(root, 'dist', 'bench', 'stack.js'), '--child', '?', 'wasm'], { encoding: 'utf8', cwd: root });
  const m = /Error: stack bench: --child (\S+) /.exec(r.stderr);
  return m ? m[1]!.split('|') : [];
}

async function runAgainst(root: string, label: string): Promise<void> {
  const machine = describeMachine();
  const lines: string[] = [];
  const theirIds = scenarioIdsOf(root);
  const skipped = SCENARIOS.filter((s) => !theirIds.includes(s.id));
  for (const s of SCENARIOS.filter((x) => theirIds.includes(x.id))) {
    for (const engine of ENGINES) {
      const ours: Timing[] = [];
      const theirs: Timing[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Alternate which build goes first.
        const order = round % 2 === 0 ? [undefined, root] : [root, undefined];
        for (const which of order) (which === undefined ? ours : theirs).push(sample(s, engine, which));
      }
      const now = rate(s, median(ours.map((t) => t.cpuMs)));
      const before = rate(s, median(theirs.map((t) => t.cpuMs)));
      const line = `| ${s.figure} | ${engine} | ${s.unit} | ${fmt(before, s.unit)} | ${fmt(now, s.unit)} | ${(now / before).toFixed(2)}x |`;
      console.log(line);
      lines.push(line);
    }
  }
  const text = [
    '## Stack against an earlier build',
    '',
    `\`npm run bench:stack -- --against DIR\`, ${machine.date}, ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, load ${machine.load.toFixed(1)}.`,
    `This build against ${label}, both running the scenarios of "Stack" in child processes that alternate`,
    `(the two builds, round by round), each figure the median of ${ROUNDS} samples per second of CPU time; "now vs before" above 1 is faster.`,
    'Each build runs its own bench/stack.ts: a direct link that ends batches (NetDevice.setBatchEnd) is',
    'answered in batches by a build that has them and frame by frame by one that has not.',
    '',
    '| Figure | Engine | Unit | before | now | now vs before |',
    '|---|---|---|---:|---:|---:|',
    ...lines,
    '',
    skipped.length === 0 ? '' : `Not in the earlier build, so not compared: ${skipped.map((x) => x.figure).join('; ')}.`,
    '',
  ].join('\n');
  writeMarkdownSection(packageRoot(), 'Stack against an earlier build', text);
}

if (isMain(import.meta.url)) {
  if (process.argv[2] === '--child') await child(process.argv[3] ?? '', process.argv[4] as EngineName);
  else if (process.argv[2] === '--against') {
    const root = process.argv[3];
    if (!root) throw new Error('stack bench: --against DIR (a built checkout of the project)');
    await runAgainst(root, process.argv[4] ?? root);
  } else await runStackBench();
}
