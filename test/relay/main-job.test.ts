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
  it('--pairs 4 --runs 2: a row per run, every transfer ok, arena back exactly, the verdict and its exit code', async () => {
    const [port, securePort] = [await freePort(), await freePort()];
    const r = await runJob(['--pairs', '4', '--runs', '2', '--port', String(port), '--secure-port', String(securePort)], 100_000);
    const rows = r.stdout.split('\n').filter((l) => l.startsWith('run '));
    expect(rows, r.stdout + r.stderr).toHaveLength(2);
    expect(rows[0]).toMatch(/^run 1 +4\/4 ok +\d+\.\d\d s +arena .* heap .* connections 0$/);
    expect(r.stdout).toMatch(/^baseline \(quiescent, before any run\): arena /m);
    for (const row of rows) expect(row).toMatch(/ arena \S+ MiB \(±0 B\) /);
    // The verdict also holds the heap to 1%, which is an open defect today (see
    // guest-e2e.test.ts): assert that the verdict is printed and the exit code agrees with it.
    const verdict = /^verdict: (PASS|FAIL): 8\/8 transfers ok; /m.exec(r.stdout);
    expect(verdict, r.stdout).not.toBeNull();
    expect(r.code).toBe(verdict![1] === 'PASS' ? 0 : 1);
  }, 120_000);

  it('--json: one object per run and a verdict object', async () => {
    const [port, securePort] = [await freePort(), await freePort()];
    const r = await runJob(['--pairs', '2', '--runs', '1', '--json', '--port', String(port), '--secure-port', String(securePort)], 100_000);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toHaveProperty('baseline.arenaUsed');
    expect(lines[1]).toMatchObject({ run: 1, pairs: 2, ok: 2, arenaDelta: 0 });
    expect(lines[2]).toMatchObject({ transfersOk: 2, transfers: 2 });
    expect(lines[2]!.verdict).toMatch(/^(pass|fail)$/);
  }, 120_000);

  it('bad flags: exit 2 and the usage', async () => {
    const r = await runJob(['--pairs', 'many'], 20_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^main-job: --pairs many: expected a whole number >= 1\nusage: main-job /);
  });
});
