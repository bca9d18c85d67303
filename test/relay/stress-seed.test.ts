// The stress script of mirage-tcpip issue #499, as committed in
// relay/stress/seed-stress.sh (verbatim but for the relay address, $BOB and
// $MAX), run with our `bob` against the host relay. It needs GNU parallel
// (skipped without it, a failure in CI: test/helpers/capabilities.ts).
//
// MAX is 16, not 4: the script runs its 2·MAX shuffled commands with
// `parallel -j MAX`, which deadlocks when the first MAX commands hold no
// complete pair (every running client waits for a partner still queued).
// That happens with probability 2^MAX / C(2·MAX, MAX): 23% at MAX=4, 1e-4 at
// 16. Each client still has the relay's -t as a bound, set low here.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startHostRelay } from '../../relay/server/host.js';
import { requires } from '../helpers/capabilities.js';

const SCRIPT = resolve(import.meta.dirname, '../../relay/stress/seed-stress.sh');
const CLI = resolve(import.meta.dirname, '../../dist/relay/cli.js');
const MAX = 16;

// GNU parallel is a capability: a skip on a machine without it, a failure in
// CI (test/helpers/capabilities.ts). The built CLI is not: `npm test` builds it.
const parallel = requires('parallel');

describe('the seed stress script with our bob', () => {
  parallel.it(`runs ${MAX} pairs unchanged, every copy intact`, async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
    const relay = await startHostRelay({ address: '127.0.0.1', port: 0, securePort: 0, timeoutSec: 60, log: () => {} });
    const dir = await mkdtemp(join(tmpdir(), 'bob-seed-'));
    try {
      const file = randomBytes(50_000);
      await writeFile(join(dir, 'file.txt'), file);
      // GNU parallel asks once per user for a citation; a private HOME that already agreed keeps the run quiet.
      await mkdir(join(dir, 'home', '.parallel'), { recursive: true });
      await writeFile(join(dir, 'home', '.parallel', 'will-cite'), '');
      const env = {
        ...process.env,
        HOME: join(dir, 'home'),
        MAX: String(MAX),
        IP: `127.0.0.1:${relay.ports.handshake}`,
        BOB_SECURE_PORT: String(relay.ports.secure),
        BOB: `${process.execPath} ${CLI}`,
        // Every receiver pays one PBKDF2 per advertised sender: bob's count keeps 16×16 of them cheap.
        BOB_PBKDF2_COUNT: '16',
      };
      const output = await new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
        const child = spawn('bash', [SCRIPT], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 100_000 });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d));
        child.stderr.on('data', (d: Buffer) => (stderr += d));
        child.on('close', (code) => res({ code, stdout, stderr }));
      });
      expect(output.stderr).toBe('');
      expect(output.code).toBe(0);
      const expected = createHash('sha256').update(file).digest('hex');
      const lines = output.stdout.trim().split('\n');
      expect(lines).toHaveLength(MAX);
      const copies = lines.map((line) => line.split(/\s+/));
      expect(new Set(copies.map(([hash]) => hash))).toEqual(new Set([expected]));
      expect(copies.map(([, name]) => name).sort()).toEqual(Array.from({ length: MAX }, (_, i) => `file.txt.${i}`).sort());
    } finally {
      await relay.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
