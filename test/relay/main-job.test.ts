// `npm start`'s job, built (dist/relay/main-job.js), with small parameters.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, freePort } from '../helpers/uk.js';

function runJob(args: string[], ms: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'dist/relay/main-job.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  // SIGTERM lets the job stop its guest; the test fails on the exit code anyway.
  const timer = setTimeout(() => child.kill('SIGTERM'), ms);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

describe('main job (npm start)', () => {
  it('--pairs 8 --runs 2: boot and warm-up lines, a row per run, every transfer ok, memory back, PASS and exit 0', async () => {
    const [port, securePort] = [await freePort(), await freePort()];
    const r = await runJob(['--pairs', '8', '--runs', '2', '--port', String(port), '--secure-port', String(securePort)], 100_000);
    expect(r.stderr).toMatch(/--jit baseline relay/);
    expect(r.stderr).toMatch(/warm-up: 8\/8 transfers ok in 1 run\(s\), not counted/);
    expect(r.stdout).toMatch(/^booted \(quiescent\): arena /m);
    expect(r.stdout).toMatch(/^baseline \(quiescent, after 1 warm-up run\): arena \S+ MiB \(±0 B since boot\), heap /m);
    const rows = r.stdout.split('\n').filter((l) => l.startsWith('run '));
    expect(rows, r.stdout + r.stderr).toHaveLength(2);
    for (const row of rows) {
      expect(row).toMatch(/^run \d +8\/8 ok +\d+\.\d\d s +arena \S+ MiB \(±0 B\) +data heap \S+ MiB \(-?\d\.\d\d%\) +program \d+ KiB \([-+±]\d+ B\) +connections 0$/);
    }
    // The verdict compares the data heap (from a heap census: heap without the program).
    expect(r.stdout).toMatch(/^verdict rule: arena exactly at baseline; data heap \(heap after GC without the program/m);
    expect(r.stdout, r.stdout + r.stderr).toMatch(/^verdict: PASS: 16\/16 transfers ok; memory returned to baseline after every run \(arena exactly; data heap within 1%/m);
    expect(r.code).toBe(0);
  }, 120_000);

  it('--json: one object per run and a verdict object', async () => {
    const [port, securePort] = [await freePort(), await freePort()];
    const r = await runJob(['--pairs', '2', '--runs', '1', '--json', '--port', String(port), '--secure-port', String(securePort)], 100_000);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toHaveProperty('booted.heapUsed');
    expect(lines[0]).toHaveProperty('baseline.arenaUsed');
    // The baseline comes from a heap census: data and program add up to no more than the heap.
    const baseline = lines[0]!.baseline as { heapUsed: number; dataHeapUsed: number; codeBytes: number };
    expect(baseline.dataHeapUsed).toBeGreaterThan(0);
    expect(baseline.codeBytes).toBeGreaterThan(0);
    expect(baseline.dataHeapUsed + baseline.codeBytes).toBeLessThanOrEqual(baseline.heapUsed * 1.05);
    expect(lines[1]).toMatchObject({ run: 1, pairs: 2, ok: 2, arenaDelta: 0, memoryOk: true });
    expect(lines[2]).toMatchObject({ verdict: 'pass', transfersOk: 2, transfers: 2, memoryReturned: true });
  }, 120_000);

  it('bad flags: exit 2 and the usage', async () => {
    const r = await runJob(['--pairs', 'many'], 20_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^main-job: --pairs many: expected a whole number >= 1\nusage: main-job /);
    const jit = await runJob(['--jit', 'fast'], 20_000);
    expect(jit.code).toBe(2);
    expect(jit.stderr).toMatch(/^main-job: --jit fast: expected optimizing or baseline\n/);
  });
});
