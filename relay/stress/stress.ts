// `bob stress`: R runs of N pairs against a relay (ours on host sockets, or
// the guest under `uk run`), each followed, when the guest's stats file is
// given, by its memory once quiescent: issue #499's relay died on the second
// run because memory from the first was never released.
import type { RelayEndpoint } from '../client/endpoint.js';
import type { Logger } from '../client/log.js';
import { type GuestMemory, statsMark, waitForQuiescence } from './guest-stats.js';
import { type RunResult, runStress } from './run.js';

/**
 * bob's own count, which is also our senders' default. Every receiver runs
 * one PBKDF2 and the curve arithmetic for every sender the relay advertises
 * to it, and every sender answers each of those receivers (docs/bob-protocol.md
 * §4.6): about 3 ms of CPU per (receiver, sender) couple here at count 16, of
 * which the PBKDF2 is a small part; at the receivers' cap, 20 000 (≈ 0.1 s
 * each), a 256-pair run would take hours.
 */
export const STRESS_PBKDF2_COUNT = 16;
/**
 * Measured on the development machine (2 cores, relay in the same process),
 * 16 KiB files: 32 pairs at concurrency 16 take 1.7-4.4 s per run (faster
 * once warm), 256 pairs ≈ 20 s at concurrency 16 and ≈ 37 s at 64. The
 * seed's 256 pairs started all at once are `--pairs 256 --concurrency 512`.
 */
export const STRESS_DEFAULT_PAIRS = 32;
/** Clients running at once: bounds how many senders each receiver is shown, hence the quadratic cost. */
export const STRESS_DEFAULT_CONCURRENCY = 16;
export const STRESS_DEFAULT_RUNS = 2;
export const STRESS_DEFAULT_SIZE = 16 * 1024;
export const STRESS_CLIENT_TIMEOUT_MS = 60_000;
export const STRESS_QUIESCENCE_TIMEOUT_MS = 60_000;

export interface StressOptions {
  readonly relay: RelayEndpoint;
  readonly pairs: number;
  readonly runs: number;
  readonly size: number;
  readonly concurrency: number;
  readonly pbkdf2Count: number;
  readonly clientTimeoutMs: number;
  /** `uk run --stats FILE` of the relay guest, if any. */
  readonly statsFile?: string;
  readonly quiescenceTimeoutMs: number;
  readonly log: Logger;
  /** Called after each run (the CLI prints it). */
  readonly onRun?: (report: RunReport) => void;
  /** The guest's memory after a run, instead of the statsFile's next
   *  quiescent line (the main job asks for a heap census). */
  readonly guestMemory?: () => Promise<GuestMemory | null>;
  /** Each client's own address (see RunOptions.sourceAddress). */
  readonly sourceAddress?: (pair: number, role: 'send' | 'recv') => string | undefined;
}

export interface RunReport extends RunResult {
  readonly run: number;
  /** The guest's memory after the run, once quiescent; null without --stats-file or usable lines. */
  readonly guest: GuestMemory | null;
}

export interface StressSummary {
  readonly runs: RunReport[];
  readonly pairs: number;
  readonly ok: number;
  readonly failed: number;
  /** Guest memory after the last run minus after the first (null without stats). */
  readonly arenaGrowth: number | null;
  /** Data heap (without compiled code) after the last run minus after the first. */
  readonly heapGrowth: number | null;
}

export async function stress(options: StressOptions): Promise<StressSummary> {
  const runs: RunReport[] = [];
  for (let run = 1; run <= options.runs; run++) {
    const result = await runStress(options);
    const guest = await guestAfterRun(options);
    const report = { run, ...result, guest };
    runs.push(report);
    options.onRun?.(report);
  }
  return summarise(runs);
}

async function guestAfterRun(options: StressOptions): Promise<GuestMemory | null> {
  if (options.guestMemory) return options.guestMemory();
  if (options.statsFile === undefined) return null;
  const mark = await statsMark(options.statsFile);
  return waitForQuiescence(options.statsFile, mark, options.quiescenceTimeoutMs);
}

function summarise(runs: RunReport[]): StressSummary {
  const first = runs[0]?.guest ?? null;
  const last = runs[runs.length - 1]?.guest ?? null;
  const both = first !== null && last !== null;
  return {
    runs,
    pairs: runs.reduce((n, r) => n + r.pairs, 0),
    ok: runs.reduce((n, r) => n + r.ok, 0),
    failed: runs.reduce((n, r) => n + r.failed, 0),
    arenaGrowth: both ? last.arenaUsed - first.arenaUsed : null,
    heapGrowth: both ? last.dataHeapUsed - first.dataHeapUsed : null,
  };
}
