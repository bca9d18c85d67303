// The relay under load: wall time of one N-pair `bob stress` run against the
// guest relay (`uk run --mem 40M relay`, user networking) and against `bob
// relay` on host sockets, and the guest's memory (arenaUsed, heapUsed after
// GC, once quiescent) over consecutive runs against one guest, until --runs
// runs or --minutes of guest runs, whichever comes first.
//
//   npm run bench:relay [-- --pairs 256 --runs 20 --minutes 10 --concurrency 16]
import { parseArgs } from 'node:util';
import { packageRoot } from '../host/hotpath.js';
import type { JitMode } from '../host/jit.js';
import { silentLogger } from '../relay/client/log.js';
import { compareMemory, quiescentMemory, startRelayGuest } from '../relay/main-job.js';
import { startHostRelay } from '../relay/server/host.js';
import type { GuestMemory } from '../relay/stress/guest-stats.js';
import { STRESS_DEFAULT_SIZE, STRESS_PBKDF2_COUNT, type StressOptions, stress } from '../relay/stress/stress.js';
import { describeMachine, freePort, isMain, median, writeMarkdownSection, writeResults } from './common.js';

interface GuestSeries {
  jit: JitMode;
  booted: GuestMemory;
  baseline: GuestMemory;
  warmupOk: number;
  rows: GuestRow[];
}

interface GuestRow {
  run: number;
  ok: number;
  wallMs: number;
  memory: GuestMemory;
  arenaDelta: number;
  heapDelta: number;
}

export async function runRelayBench(argv: string[] = process.argv.slice(2)): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      pairs: { type: 'string', default: '256' },
      runs: { type: 'string', default: '20' },
      minutes: { type: 'string', default: '10' },
      concurrency: { type: 'string', default: '16' },
    },
  });
  const pairs = Number(values.pairs);
  const maxRuns = Number(values.runs);
  const budgetMs = Number(values.minutes) * 60_000;
  const concurrency = Number(values.concurrency);
  const machine = describeMachine();
  const common = (relay: StressOptions['relay']): StressOptions => ({
    relay,
    pairs,
    runs: 1,
    size: STRESS_DEFAULT_SIZE,
    concurrency,
    pbkdf2Count: STRESS_PBKDF2_COUNT,
    clientTimeoutMs: 60_000,
    quiescenceTimeoutMs: 60_000,
    log: silentLogger,
  });

  // Host sockets: one run.
  const host = await startHostRelay({ address: '127.0.0.1', port: 0, securePort: 0, log: () => {} });
  let hostRun;
  try {
    hostRun = (await stress(common({ host: '127.0.0.1', port: host.ports.handshake, securePort: host.ports.secure }))).runs[0]!;
  } finally {
    await host.close();
  }
  console.log(`host relay: ${hostRun.ok}/${pairs} ok, ${(hostRun.wallMs / 1000).toFixed(1)} s`);

  // One guest per JIT mode, run after run, bounded by count and by time.
  const series: GuestSeries[] = [];
  for (const jit of ['baseline', 'optimizing'] as const) {
    series.push(await guestSeries(jit, pairs, maxRuns, budgetMs, common));
  }

  const lines = [
    '## Relay',
    '',
    `Machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.date}`,
    `(load average ${machine.load.toFixed(1)} when the run started). Command: \`npm run bench:relay -- --pairs ${pairs} --runs ${maxRuns} --minutes ${values.minutes}\`.`,
    '',
    `One \`bob stress\` run of ${pairs} pairs (${STRESS_DEFAULT_SIZE / 1024} KiB files, concurrency ${concurrency}, PBKDF2 count ${STRESS_PBKDF2_COUNT}; clients in the`,
    'benchmark process), wall time (guest: median of its counted runs):',
    '',
    '| Relay | Transfers ok | Wall time |',
    '|---|---:|---:|',
    ...series.map((g) => `| guest: \`uk run --mem 40M --jit ${g.jit} relay\` (user networking) | ${sum(g.rows.map((r) => r.ok))}/${pairs * g.rows.length} | ${(median(g.rows.map((r) => r.wallMs)) / 1000).toFixed(1)} s |`),
    `| host sockets: \`bob relay\` | ${hostRun.ok}/${pairs} | ${(hostRun.wallMs / 1000).toFixed(1)} s |`,
    '',
    `The guest's memory after each of up to ${maxRuns} consecutive runs against one 40 MB guest (runs stop when the next`,
    `would pass ${values.minutes} minutes), read from its \`--stats\` once no TCP connection is left. Each guest first serves one`,
    'warm-up run (not counted: V8 compiles the relay\'s code on first use); the baseline is taken after it, quiescent.',
    '',
    ...series.flatMap((g) => seriesTable(g, pairs)),
  ];
  const root = packageRoot();
  writeMarkdownSection(root, 'Relay', lines.join('\n'));
  writeResults(root, 'relay', { machine, pairs, concurrency, host: { ok: hostRun.ok, wallMs: hostRun.wallMs }, guest: series });
}

/** Boot a guest, one warm-up run, the baseline, then counted runs until maxRuns or the time budget. */
async function guestSeries(
  jit: JitMode,
  pairs: number,
  maxRuns: number,
  budgetMs: number,
  common: (relay: StressOptions['relay']) => StressOptions,
): Promise<GuestSeries> {
  const guest = await startRelayGuest({ mem: '40M', hotpath: 'wasm', jit, ports: { handshake: await freePort(), secure: await freePort() } });
  try {
    const relay = { host: '127.0.0.1', port: guest.ports.handshake, securePort: guest.ports.secure };
    const booted = await quiescentMemory(guest);
    const warmupOk = (await stress(common(relay))).ok;
    const baseline = await quiescentMemory(guest);
    console.log(`guest --jit ${jit}: booted heap ${booted.heapUsed} B; warm-up ${warmupOk}/${pairs} ok; baseline arena ${baseline.arenaUsed} B, heap ${baseline.heapUsed} B`);
    const rows: GuestRow[] = [];
    const started = Date.now();
    for (let run = 1; run <= maxRuns; run++) {
      // Do not start a run that would end past the budget (the mean run so far, quiescence included, as the estimate).
      const elapsed = Date.now() - started;
      if (rows.length > 0 && elapsed + elapsed / rows.length > budgetMs) break;
      const r = (await stress({ ...common(relay), statsFile: guest.statsFile })).runs[0]!;
      const memory = r.guest!;
      const check = compareMemory(baseline, memory);
      rows.push({ run, ok: r.ok, wallMs: r.wallMs, memory, arenaDelta: check.arenaDelta, heapDelta: check.heapDelta });
      console.log(
        `guest --jit ${jit} run ${run}: ${r.ok}/${pairs} ok, ${(r.wallMs / 1000).toFixed(1)} s, arena ${memory.arenaUsed} B (${check.arenaDelta}), ` +
          `heap ${memory.heapUsed} B (${check.heapDelta >= 0 ? '+' : ''}${check.heapDelta}), connections ${memory.connections}`,
      );
    }
    return { jit, booted, baseline, warmupOk, rows };
  } finally {
    await guest.stop();
  }
}

function seriesTable(g: GuestSeries, pairs: number): string[] {
  const kib = (n: number) => (n / 1024).toFixed(1);
  const worst = Math.max(0, ...g.rows.map((r) => Math.abs(r.heapDelta / g.baseline.heapUsed)));
  return [
    `### \`--jit ${g.jit}\``,
    '',
    `Booted: arenaUsed ${g.booted.arenaUsed} B, heapUsed ${g.booted.heapUsed} B. Warm-up: ${g.warmupOk}/${pairs} ok.`,
    `Baseline: arenaUsed ${g.baseline.arenaUsed} B, heapUsed ${g.baseline.heapUsed} B (${kib(g.baseline.heapUsed)} KiB).`,
    `Over ${g.rows.length} runs: arena deltas ${[...new Set(g.rows.map((r) => r.arenaDelta))].join(', ')} B; largest heap change ${(worst * 100).toFixed(2)}%.`,
    '',
    '| Run | Transfers ok | Wall time | arenaUsed | Δ arena | heapUsed | Δ heap | Δ heap % |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...g.rows.map(
      (r) =>
        `| ${r.run} | ${r.ok}/${pairs} | ${(r.wallMs / 1000).toFixed(1)} s | ${r.memory.arenaUsed} | ${r.arenaDelta} | ${r.memory.heapUsed} | ${r.heapDelta >= 0 ? '+' : ''}${r.heapDelta} | ${((r.heapDelta / g.baseline.heapUsed) * 100).toFixed(2)}% |`,
    ),
    '',
  ];
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

if (isMain(import.meta.url)) await runRelayBench();
