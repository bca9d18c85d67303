// `bob stress` against the host relay (127.0.0.1, ephemeral ports), and its
// reading of a guest's --stats file.
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../relay/client/log.js';
import { main } from '../../relay/cli.js';
import { startHostRelay } from '../../relay/server/host.js';
import { statsMark, waitForQuiescence } from '../../relay/stress/guest-stats.js';
import { runStress } from '../../relay/stress/run.js';
import { stress } from '../../relay/stress/stress.js';

let relay: Awaited<ReturnType<typeof startHostRelay>>;

beforeAll(async () => {
  relay = await startHostRelay({ address: '127.0.0.1', port: 0, securePort: 0, log: () => {} });
});

afterAll(async () => {
  await relay?.close();
});

function capture() {
  let text = '';
  const out = { write: (s: string) => (text += s), isTTY: false };
  return { out, text: () => text };
}

describe('bob stress', () => {
  it('runs 8 pairs twice through the relay, every file intact', async () => {
    const endpoint = { host: '127.0.0.1', port: relay.ports.handshake, securePort: relay.ports.secure };
    const reports: number[] = [];
    const summary = await stress({
      relay: endpoint,
      pairs: 8,
      runs: 2,
      size: 4096,
      concurrency: 6,
      pbkdf2Count: 16,
      clientTimeoutMs: 30_000,
      quiescenceTimeoutMs: 1000,
      log: silentLogger,
      onRun: (r) => reports.push(r.ok),
    });
    expect(reports).toEqual([8, 8]);
    expect(summary).toMatchObject({ pairs: 16, ok: 16, failed: 0, arenaGrowth: null });
    expect(summary.runs.every((r) => r.failures.length === 0 && r.guest === null)).toBe(true);
  });

  it('ends a run even when clients wait forever: each is aborted at its limit, counted as failed, its socket closed', async () => {
    // A "relay" that accepts and never says a word; the clients' own
    // timeouts are set far away, so only the per-client limit can end them.
    const open = new Set<Socket>();
    let accepted = 0;
    const silent = createServer((socket) => {
      accepted++;
      open.add(socket);
      socket.resume(); // read (and drop) what comes, so the clients' FIN is seen
      socket.on('close', () => open.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const result = await runStress({
        relay: { host: '127.0.0.1', port, securePort: port },
        pairs: 2,
        size: 16,
        concurrency: 4,
        pbkdf2Count: 16,
        clientTimeoutMs: 600_000,
        clientLimitMs: 500,
        log: silentLogger,
      });
      expect(result).toMatchObject({ pairs: 2, ok: 0, failed: 2 });
      expect(result.failures).toHaveLength(4);
      expect(result.failures.every((f) => f.code === 6 && /had not finished after 0.5 s/.test(f.message))).toBe(true);
      // Each of the four clients (both roles of both pairs) failed once, by the limit.
      const who = result.failures.map((f) => `${f.pair}:${f.role}`).sort();
      expect(who).toEqual(['0:recv', '0:send', '1:recv', '1:send']);
      // Every client had reached the relay and held a socket when the limit struck,
      // so "its socket closed" below is about four real sockets.
      expect(accepted).toBe(4);
      for (let i = 0; i < 50 && open.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(open.size).toBe(0);
    } finally {
      silent.close();
    }
  });

  it('`bob stress --pairs 8 --runs 2 --json` prints one object per run and a summary, exit 0', async () => {
    const stdout = capture();
    const stderr = capture();
    const stdin = new Writable() as never;
    const argv = ['stress', '-r', `127.0.0.1:${relay.ports.handshake}`, '--secure-port', String(relay.ports.secure), '--pairs', '8', '--runs', '2', '--json'];
    const code = await main(argv, { stdout: stdout.out, stderr: stderr.out, stdin, cwd: process.cwd() });
    expect(stderr.text()).toBe('');
    expect(code).toBe(0);
    const lines = stdout.text().trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ run: 1, pairs: 8, ok: 8, failed: 0, failures: {}, guest: null });
    expect(lines[1]).toMatchObject({ run: 2, ok: 8 });
    expect(lines[2]).toMatchObject({ summary: true, runs: 2, pairs: 16, ok: 16, failed: 0 });
  });

  it('exits 1 and names the reason when transfers fail (relay gone)', async () => {
    const dead = await startHostRelay({ address: '127.0.0.1', port: 0, securePort: 0, log: () => {} });
    await dead.close();
    const stdout = capture();
    const stderr = capture();
    const argv = ['stress', '-r', '127.0.0.1', '--port', String(dead.ports.handshake), '--pairs', '2', '--runs', '1'];
    const code = await main(argv, { stdout: stdout.out, stderr: stderr.out, stdin: new Writable() as never, cwd: process.cwd() });
    expect(code).toBe(1);
    expect(stdout.text()).toMatch(/^run 1: 0\/2 transfers ok, 2 failed/);
    expect(stdout.text()).toMatch(/^ {2}2 × recv: Connection failed: 127\.0\.0\.1:\d+: ECONNREFUSED$/m);
    expect(stdout.text()).toMatch(/^ {2}2 × send: Connection failed: 127\.0\.0\.1:\d+: ECONNREFUSED$/m);
    expect(stderr.text()).toBe('bob: 2 of 2 transfers failed.\n');
  });
});

describe('guest stats after a run', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bob-stats-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const line = (connections: number, arenaUsed: number) =>
    JSON.stringify({
      t: 1,
      mem: { budget: 40e6, arenaUsed, heapUsed: 2e6, heapSpaces: { old_space: 1.7e6, new_space: 0.1e6, code_space: 0.2e6 } },
      tcp: { connections, byState: {}, timers: 0 },
    }) + '\n';

  it('waits for a line written after the run that shows no connection', async () => {
    const file = join(dir, 'stats.jsonl');
    await writeFile(file, line(0, 111)); // before the run ends: must not count
    const mark = await statsMark(file);
    const waiting = waitForQuiescence(file, mark, 5000);
    await appendFile(file, line(3, 222));
    setTimeout(() => void appendFile(file, line(0, 333) + '{"t": 9, "mem": {'), 250); // and a line being written
    // The data heap leaves out compiled code (code_space): 2e6 - 0.2e6.
    expect(await waiting).toEqual({
      arenaUsed: 333, heapUsed: 2e6, connections: 0, quiescent: true,
      heapSpaces: { old_space: 1.7e6, new_space: 0.1e6, code_space: 0.2e6 }, codeBytes: 0.2e6, dataHeapUsed: 1.8e6, census: false,
    });
  });

  it('reports the latest line as not quiescent at the timeout, and accepts flat keys', async () => {
    const file = join(dir, 'flat.jsonl');
    await writeFile(file, '');
    const mark = await statsMark(file);
    await appendFile(file, JSON.stringify({ t: 1, 'mem.arenaUsed': 5, 'mem.heapUsed': 6, 'tcp.connections': 2 }) + '\n');
    // Without heapSpaces, all of the heap counts as data.
    expect(await waitForQuiescence(file, mark, 300)).toEqual({
      arenaUsed: 5, heapUsed: 6, connections: 2, quiescent: false, heapSpaces: {}, codeBytes: 0, dataHeapUsed: 6, census: false,
    });
    expect(await waitForQuiescence(join(dir, 'missing'), 0, 200)).toBeNull();
  });
});
