// `uk run --isolate process` (host/isolate/): the guest in a process of its
// own behind the operating system's walls. Run as root (CI), everything
// holds: the sandbox probe refuses every route as in thread mode; a guest
// that got past the filter to raw Node (simulated: the same walls around a
// raw Node script with a Worker, test/fixtures/sandbox/raw-escape.mjs)
// writes no file, reads none outside its folders, starts no process, loads
// no addon and reaches no host socket; memory the guest's own guard cannot
// see is stopped by the kernel's limit (exit 3) and an allocation V8 cannot
// refuse in time ends only the guest's process, not the tender.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildWalls, releaseWalls } from '../../host/isolate/walls.js';
import { requires } from '../helpers/capabilities.js';
import { makeProbeDir, PROBE_ARGS, PROBE_CHECKS, probeLine, SANDBOX_FIXTURES, type Probe } from '../helpers/sandbox-probe.js';
import { echoThrough, FIXTURES, freePort, ROOT, spawnUk } from '../helpers/uk.js';

const root = requires('root', 'setpriv');

root.describe('a guest process', () => {
  it('serves through the parent\'s network, writes stats lines with both sides\' figures, stops on SIGINT with exit 0', async () => {
    const port = await freePort();
    const uk = spawnUk(['run', '--isolate', 'process', '--net', `user:hostfwd=tcp:127.0.0.1:${port}-:7`, '--stats', '-', '--stats-interval', '200', 'echo']);
    await uk.waitFor(/app: echo on the wasm hot path/);
    const data = new TextEncoder().encode('through two processes\n'.repeat(1000));
    expect(Buffer.from(await echoThrough(port, data)).equals(Buffer.from(data))).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    uk.child.kill('SIGINT');
    const r = await uk.exited;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^uk: isolate: process \d+: memory limit 296M \(cgroup .*: budget 40M \+ 256M for Node and the guest.s tender\); empty network namespace; user nobody; Node permissions: read .*; no writes, no processes, no native addons$/m);
    expect(r.stderr).toMatch(/^uk: net: user: guest 10\.0\.2\.15\/24, gateway 10\.0\.2\.2; hostfwd tcp/m);
    expect(r.stderr).toMatch(/^uk: stopped after [\d.]+s: connections/m);
    expect(r.stderr).not.toMatch(/ExperimentalWarning|SecurityWarning/);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { net: { gateway?: unknown }; isolate: { pid: number; link: { framesIn: number; framesOut: number }; memory: { current: number; peak: number; limit: number } } });
    const last = lines.at(-1)!;
    expect(last.isolate.pid).toBeGreaterThan(0);
    // The guest process's side of the link carried the echoed bytes both ways.
    expect(last.isolate.link.framesIn).toBeGreaterThan(10);
    expect(last.isolate.link.framesOut).toBeGreaterThan(10);
    expect(last.net).toHaveProperty('gateway');
    // The cgroup's account of the guest process: in use, at its peak, under the limit.
    expect(last.isolate.memory.limit).toBe((40 + 256) * 1024 * 1024);
    expect(last.isolate.memory.current).toBeGreaterThan(1024 * 1024);
    expect(last.isolate.memory.peak).toBeGreaterThanOrEqual(last.isolate.memory.current);
    expect(last.isolate.memory.peak).toBeLessThan(last.isolate.memory.limit);
  }, 30_000);

  it('without root: RLIMIT_DATA and a user namespace instead, said in the boot line, and it serves', async () => {
    const port = await freePort();
    const uk = spawnUk(['run', '--isolate', 'process', '--net', `user:hostfwd=tcp:127.0.0.1:${port}-:7`, 'echo'], ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']);
    await uk.waitFor(/app: echo on the wasm hot path/);
    const data = new TextEncoder().encode('as nobody\n');
    expect(Buffer.from(await echoThrough(port, data)).equals(Buffer.from(data))).toBe(true);
    uk.child.kill('SIGINT');
    const r = await uk.exited;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^uk: isolate: process \d+: private memory limit 296M \(RLIMIT_DATA; a cgroup needs root\); empty network namespace \(in a user namespace\); /m);
  }, 30_000);

  it('leaves no cgroup behind', () => {
    const left = spawnSync('sh', ['-c', 'ls -d /sys/fs/cgroup/memory/uk-* /sys/fs/cgroup/uk-* 2>/dev/null'], { encoding: 'utf8' }).stdout.trim();
    expect(left.split('\n').filter((d) => d.includes(`uk-${process.pid}-`))).toEqual([]);
  });
});

root.describe('the module filter in a guest process', () => {
  let where: ReturnType<typeof makeProbeDir>;
  let p: Probe;
  beforeAll(async () => {
    where = makeProbeDir();
    const uk = spawnUk(['run', '--isolate', 'process', where.probe, ...PROBE_ARGS]);
    const m = await uk.waitFor(/^uk: probe: PROBE .*$/m, 30_000);
    p = probeLine(m[0])!;
    uk.child.kill('SIGINT');
    expect((await uk.exited).code).toBe(0);
  }, 40_000);
  afterAll(() => rmSync(where.dir, { recursive: true, force: true }));
  for (const [name, check] of Object.entries(PROBE_CHECKS)) it(name, () => check(p));
});

root.describe('a guest that reached raw Node in its process', () => {
  let dir: string;
  let servers: net.Server[] = [];
  let result: Record<string, { ok: boolean; error?: string }> & { interfaces: string[]; uid: number };
  let control: typeof result;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'uk-escape-'));
    chmodSync(dir, 0o777); // nobody could write here, but for Node's permissions
    writeFileSync(join(dir, 'secret'), 'not for guests');
    chmodSync(join(dir, 'secret'), 0o644);
    const tcp = net.createServer((s) => s.end()).listen(0, '127.0.0.1');
    const privateDir = mkdtempSync(join(tmpdir(), 'uk-escape-private-')); // 0700, root's
    const unix = net.createServer((s) => s.end()).listen(join(privateDir, 'host.sock'));
    const abstractName = `uk-escape-${process.pid}`;
    const abstract = net.createServer((s) => s.end()).listen(`\0${abstractName}`);
    servers = [tcp, unix, abstract];
    await Promise.all(servers.map((s) => new Promise((r) => (s.listening ? r(null) : s.once('listening', r)))));
    const args = [join(dir, 'written'), join(dir, 'secret'), String((tcp.address() as net.AddressInfo).port), join(privateDir, 'host.sock'), abstractName];
    const script = join(SANDBOX_FIXTURES, 'raw-escape.mjs');
    const walls = buildWalls({ budget: 40 << 20, readable: [ROOT], name: `uk-${process.pid}-escape` });
    try {
      const [cmd, ...pre] = walls.prefix;
      const r = spawnSync(cmd!, [...pre, ...walls.nodeFlags, script, ...args], { encoding: 'utf8', timeout: 20_000 });
      result = JSON.parse(r.stdout.trim()) as typeof result;
    } finally {
      releaseWalls(walls);
    }
    // The same script without the walls reaches all of it: the targets are real.
    control = JSON.parse(spawnSync(process.execPath, [script, join(dir, 'control-written'), ...args.slice(1)], { encoding: 'utf8', timeout: 20_000 }).stdout.trim()) as typeof result;
  }, 40_000);
  afterAll(() => {
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reaches everything without the walls (the control)', () => {
    for (const route of ['writeFile', 'readFile', 'spawn', 'tcpHost', 'unixPath', 'unixAbstract']) expect(control[route]!.ok, route).toBe(true);
  });
  it('writes no host file, reads none outside its folders, starts no process, loads no addon', () => {
    expect(existsSync(join(dir, 'written'))).toBe(false);
    for (const route of ['writeFile', 'readFile', 'readShadow', 'spawn']) expect(result[route]!.error, route).toMatch(/^ERR_ACCESS_DENIED/);
    expect(result.addon!.error).toMatch(/^ERR_DLOPEN_DISABLED/);
    expect(result.uid).toBe(65534);
  });
  it('reaches no host socket: TCP on 127.0.0.1, a Unix socket by path, an abstract one', () => {
    expect(result.interfaces).toEqual([]);
    expect(result.tcpHost!.error).toMatch(/^ENETUNREACH/);
    expect(result.unixPath!.error).toMatch(/^EACCES/);
    expect(result.unixAbstract!.error).toMatch(/^ECONNREFUSED/);
  });
});

root.describe('memory in a guest process', () => {
  it('a guest making 600 MiB resident is ended by the kernel at its limit: exit 3, said so; the tender carries on', async () => {
    const uk = spawnUk(['run', '--isolate', 'process', join(FIXTURES, 'resident-hog.mjs')]);
    const r = await uk.exited;
    expect(r.stderr).toMatch(/touching 600 MiB/);
    expect(r.stderr).not.toMatch(/held 629145600/);
    expect(r.code).toBe(3);
    // Whichever comes first: the kernel's limit, or the guest's own sample of its buffers.
    expect(r.stderr).toMatch(/guest out-of-memory: the guest process passed its memory limit \(296M\) and the kernel ended it|guest out of memory/);
  }, 40_000);

  it('an allocation V8 cannot refuse in time ends the whole tender in thread mode, only the guest\'s process in process mode', async () => {
    const app = join(FIXTURES, 'one-big-array.mjs');
    const thread = await spawnUk(['run', app]).exited;
    expect(thread.stderr).toMatch(/FATAL ERROR: .*heap out of memory|Reached heap limit/);
    expect(thread.signal ?? thread.code).not.toBe(0); // aborted: no report, no exit 3
    expect(thread.stderr).not.toMatch(/guest out of memory/);
    const isolated = await spawnUk(['run', '--isolate', 'process', app]).exited;
    expect(isolated.code).toBe(3);
    expect(isolated.stderr).toMatch(/uk: guest out-of-memory: the guest process ran out of heap at once/);
  }, 60_000);
});
