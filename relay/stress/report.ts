// How `bob stress` prints its results: a line per run and a summary, or with
// --json one JSON object per run and one for the summary (JSON lines).
import { formatBytes } from '../client/progress.js';
import type { GuestMemory } from './guest-stats.js';
import type { RunReport, StressSummary } from './stress.js';

/** Distinct failure reasons of a run and how often each occurred. */
export function failureReasons(report: RunReport): Record<string, number> {
  const reasons: Record<string, number> = {};
  for (const f of report.failures) {
    const reason = `${f.role}: ${f.message}`;
    reasons[reason] = (reasons[reason] ?? 0) + 1;
  }
  return reasons;
}

export function runText(report: RunReport): string {
  const seconds = (report.wallMs / 1000).toFixed(2);
  const lines = [`run ${report.run}: ${report.ok}/${report.pairs} transfers ok, ${report.failed} failed, ${seconds} s${guestText(report.guest)}`];
  for (const [reason, count] of Object.entries(failureReasons(report))) lines.push(`  ${count} × ${reason}`);
  return lines.join('\n') + '\n';
}

export function summaryText(summary: StressSummary): string {
  let text = `total: ${summary.ok}/${summary.pairs} transfers ok over ${summary.runs.length} run(s)`;
  if (summary.arenaGrowth !== null && summary.heapGrowth !== null) {
    text += `; guest memory change from the first run to the last: arena ${signedBytes(summary.arenaGrowth)}, data heap ${signedBytes(summary.heapGrowth)}`;
  }
  return text + '\n';
}

export function runJson(report: RunReport): string {
  return (
    JSON.stringify({
      run: report.run,
      pairs: report.pairs,
      ok: report.ok,
      failed: report.failed,
      wallMs: Math.round(report.wallMs),
      failures: failureReasons(report),
      guest: report.guest,
    }) + '\n'
  );
}

export function summaryJson(summary: StressSummary): string {
  return (
    JSON.stringify({
      summary: true,
      runs: summary.runs.length,
      pairs: summary.pairs,
      ok: summary.ok,
      failed: summary.failed,
      arenaGrowth: summary.arenaGrowth,
      heapGrowth: summary.heapGrowth,
    }) + '\n'
  );
}

function guestText(guest: GuestMemory | null): string {
  if (guest === null) return '';
  const state = guest.quiescent ? 'quiescent' : `NOT quiescent, ${guest.connections} connection(s) left`;
  return `; guest (${state}): arena ${formatBytes(guest.arenaUsed)}, heap ${formatBytes(guest.heapUsed)} (${spacesText(guest)})`;
}

/** "data 5.9M: old 5.7M, new 10K, ...; program 1.2M", the heap by V8 space
 *  (the data part is heapUsed without the program, which lives in old and
 *  code space: compiled code and bytecode with their metadata). */
export function spacesText(guest: GuestMemory): string {
  const spaces = Object.entries(guest.heapSpaces).filter(([, bytes]) => bytes > 0);
  if (spaces.length === 0) return 'no spaces reported';
  const data = spaces.filter(([name]) => !name.startsWith('code_')).map(([name, bytes]) => `${name.replace(/_space$/, '')} ${formatBytes(bytes)}`);
  return `data ${formatBytes(guest.dataHeapUsed)}; spaces ${data.join(', ')}; program ${formatBytes(guest.codeBytes)}`;
}

function signedBytes(n: number): string {
  return `${n < 0 ? '-' : '+'}${formatBytes(Math.abs(n))}`;
}
