// A module guest's boundary in thread mode (README, "What a module guest can
// reach"; host/guest/sandbox.ts): what it imports, the globals it has, the
// code it may compile, and what it reaches through the guest API's objects.
// Every route out is tried by a real guest (test/fixtures/sandbox/probe.mjs,
// checks in test/helpers/sandbox-probe.ts, which the process mode's test
// runs too) and must be refused with a clear error; static imports of every
// Node builtin go through the same loader in a Worker of their own.

import { builtinModules } from 'node:module';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunError, startGuest } from '../../host/run.js';
import { runtimeContextSealed } from '../../host/guest/sandbox-worker.js';
import { makeProbeDir, PROBE_ARGS, PROBE_CHECKS, probeLine, SANDBOX_FIXTURES, type Probe } from '../helpers/sandbox-probe.js';
import { ROOT } from '../helpers/uk.js';

let where: ReturnType<typeof makeProbeDir>;
beforeAll(() => {
  where = makeProbeDir();
});
afterAll(() => rmSync(where.dir, { recursive: true, force: true }));

/** Boot the probe, wait for its line, stop it. */
async function probe(): Promise<Probe> {
  const logged: string[] = [];
  let resolveLine!: (p: Probe) => void;
  const line = new Promise<Probe>((r) => (resolveLine = r));
  const run = await startGuest({
    app: where.probe,
    args: PROBE_ARGS,
    log: (l) => {
      logged.push(l);
      const p = probeLine(l);
      if (p) resolveLine(p);
    },
  });
  const p = await Promise.race([line, run.done.then((r) => Promise.reject(new Error(`the probe ended first: ${JSON.stringify(r)}\n${logged.join('\n')}`)))]);
  const r = await run.stop();
  expect(r.code).toBe(0);
  return p;
}

describe('a module guest', () => {
  let p: Probe;
  beforeAll(async () => {
    p = await probe();
  }, 60_000);
  for (const [name, check] of Object.entries(PROBE_CHECKS)) it(name, () => check(p));
});

describe('static imports', () => {
  it('of every Node builtin, bare and with node:, fail the load with the reason', async () => {
    const specifiers = [...new Set(builtinModules.flatMap((n) => [n, n.startsWith('node:') ? n : `node:${n}`]))];
    const worker = new Worker(join(SANDBOX_FIXTURES, 'static-imports.mjs'), {
      execArgv: ['--experimental-vm-modules', '--no-warnings'],
      workerData: { sandboxUrl: pathToFileURL(join(ROOT, 'dist/host/guest/sandbox.js')).href, specifiers },
    });
    const results = await new Promise<Record<string, string>>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(Object.keys(results).length).toBe(specifiers.length);
    for (const spec of specifiers) {
      expect(results[spec], spec).toMatch(/^GuestImportError: import '.+' from file:\/\/.+: refused: a module guest has no Node modules or packages/);
    }
  }, 60_000);

  it("end a guest's boot with exit 2 and the refusal", async () => {
    const bad = join(where.guestDir, 'imports-fs.mjs');
    writeFileSync(bad, "import { readFileSync } from 'node:fs';\nexport default function main() { readFileSync('/etc/passwd'); }\n");
    const err = await startGuest({ app: bad, log: () => {} }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RunError);
    expect((err as RunError).code).toBe(2);
    expect((err as RunError).message).toMatch(/cannot load .*imports-fs\.mjs: import 'node:fs' from file:\/\/.*: refused: a module guest has no Node modules/);
  }, 30_000);
});

describe("the runtime's context", () => {
  it('is checked before a module guest loads: an ordinary context is not sealed', () => {
    // This test's own context can compile strings: a module guest would refuse to load here.
    expect(runtimeContextSealed()).toBe(false);
  });
});
