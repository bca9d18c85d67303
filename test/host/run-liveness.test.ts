// Liveness and signals of `uk run` (host/run.ts Tender.watch, host/cli.ts):
// a guest blocked after boot or at import is reported stuck from its missed
// heartbeat, one that never finishes booting after --boot-timeout, each with
// exit 5 and a report of its arena read from shared memory; SIGINT stops a
// guest that is still booting, cleanly; stats lines carry the guest thread's
// CPU time.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, spawnUk } from '../helpers/uk.js';

const guest = (name: string): string => join(FIXTURES, name);

/** The "no heartbeat for X s" figure of a stuck report, in ms. */
function silence(stderr: string): number {
  const m = /guest stuck: no heartbeat for (\d+\.\d) s: its event loop is blocked/.exec(stderr);
  if (!m) throw new Error(`no stuck report in:\n${stderr}`);
  return Number(m[1]) * 1000;
}

describe('uk run: liveness', () => {
  it('a guest that blocks its event loop after boot is reported stuck within --stuck-after plus a second, exit 5', async () => {
    const uk = spawnUk(['run', '--stuck-after', '1000', guest('busy-after-boot.mjs')]);
    await uk.waitFor(/booted; looping forever/);
    const r = await uk.exited;
    expect(r.code, r.stderr).toBe(5);
    const quiet = silence(r.stderr);
    expect(quiet).toBeGreaterThanOrEqual(1000);
    expect(quiet).toBeLessThan(2000);
    // Read from the arena, not asked of the guest: its owners are there.
    expect(r.stderr).toMatch(/^uk: arena: \d+ of \d+ chunks in use/m);
    expect(r.stderr).not.toMatch(/stopped after/);
  });

  it('a guest that loops at import never boots: stuck from its heartbeat, before the boot timeout, exit 5', async () => {
    const r = await spawnUk(['run', '--stuck-after', '1000', '--boot-timeout', '60000', guest('busy-at-import.mjs')]).exited;
    expect(r.code, r.stderr).toBe(5);
    expect(silence(r.stderr)).toBeLessThan(2000);
    expect(r.stderr.match(/guest stuck:/g)).toHaveLength(1); // said once
  });

  it('a guest whose boot waits forever with its loop free is stuck after --boot-timeout, exit 5', async () => {
    const r = await spawnUk(['run', '--boot-timeout', '1000', guest('never-boots.mjs')]).exited;
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toMatch(/^uk: guest stuck: it did not finish booting within 1\.0 s$/m);
  });

  it('SIGINT while the guest is still booting stops it cleanly: exit 0, said so', async () => {
    const uk = spawnUk(['run', guest('never-boots.mjs')]);
    // The handlers are in place before the guest starts: any moment will do.
    await new Promise((resolve) => setTimeout(resolve, 700));
    uk.child.kill('SIGINT');
    const r = await uk.exited;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^uk: SIGINT: stopping the guest$/m);
    expect(r.stderr).toMatch(/^uk: stopped before the guest finished booting$/m);
  });

  it('bad --boot-timeout and --stuck-after are usage errors', async () => {
    const short = await spawnUk(['run', '--stuck-after', '10', 'echo']).exited;
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/^uk: --stuck-after 10: must be a whole number of ms, at least 1000$/m);
    const text = await spawnUk(['run', '--boot-timeout', 'soon', 'echo']).exited;
    expect(text.code).toBe(2);
    expect(text.stderr).toMatch(/^uk: --boot-timeout soon: expected a whole number of milliseconds$/m);
  });

  it.runIf(process.platform === 'linux')('stats lines carry the guest thread\'s CPU time, which grows with its work', async () => {
    const uk = spawnUk(['run', '--stats', '-', '--stats-interval', '100', 'echo']);
    try {
      await uk.waitFor(/app: echo/);
      const cpuOf = (line: string): { userMs: number; systemMs: number } => (JSON.parse(line) as { cpu: { userMs: number; systemMs: number } }).cpu;
      for (let i = 0; i < 100 && uk.stdout.split('\n').filter(Boolean).length < 3; i++) await new Promise((r) => setTimeout(r, 50));
      const lines = uk.stdout.split('\n').filter(Boolean);
      const first = cpuOf(lines[0]!);
      const last = cpuOf(lines[lines.length - 1]!);
      expect(first.userMs + first.systemMs).toBeGreaterThan(0); // booting a stack costs something
      expect(last.userMs + last.systemMs).toBeGreaterThanOrEqual(first.userMs + first.systemMs);
    } finally {
      uk.child.kill('SIGTERM');
      expect((await uk.exited).code).toBe(0);
    }
  });
});
