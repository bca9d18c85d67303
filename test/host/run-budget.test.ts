// The memory contract (docs/architecture.md section 4) with real guests:
// - a guest whose JS heap grows without bound is stopped at its budget: the
//   tender reports what was in use (arena by owner kind, largest owners) and
//   exits 3, and the host process carries on;
// - a guest that buffers without bound in the arena is refused at the
//   network reserve (counted) and keeps serving its live connections.

import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunError, startGuest } from '../../host/run.js';
import { echoThrough, FIXTURES, freePort, lineClient, randomBytes, runUk, sha256, spawnUk } from '../helpers/uk.js';

const HEAP_HOG = join(FIXTURES, 'heap-hog.mjs');
const ARENA_HOG = join(FIXTURES, 'arena-hog.mjs');

function tcp(hostPort: number, guestPort: number) {
  return { proto: 'tcp' as const, hostAddress: '127.0.0.1', hostPort, guestPort };
}

/** Echo `data` over an already open socket: write it, read the same amount back. */
function echoOn(sock: net.Socket, data: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (b: Buffer) => {
      parts.push(b);
      got += b.length;
      if (got >= data.length) {
        sock.off('data', onData);
        resolve(Buffer.concat(parts));
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.write(data);
  });
}

describe('a guest over its heap budget', () => {
  it('is stopped with a report of what was in use; the host carries on', async () => {
    const logged: string[] = [];
    let report: string;
    let booted = true;
    try {
      const run = await startGuest({ app: HEAP_HOG, mem: 32 * 1024 * 1024, log: (l) => logged.push(l) });
      const r = await run.done;
      expect(r.code).toBe(3);
      expect(r.reason).toBe('out-of-memory');
      report = r.message!;
    } catch (err) {
      // The hog can reach its budget before the tender hears that it is ready
      // (a worker stopped for memory loses the messages it had not delivered):
      // then starting it fails, with the same code and report.
      if (!(err instanceof RunError)) throw err;
      expect(err.code).toBe(3);
      report = err.message;
      booted = false;
    }
    expect(report).toMatch(/^guest out of memory: JS heap limit 12M reached \(old 9M, young 3M; budget 32M\)/);
    // By kind: the device's rings, the app's hoard, and the fixed tables taken at
    // boot (the control block table and the timers' positions).
    const kinds = Object.fromEntries(
      [.../by owner kind: (.*)/.exec(report)![1]!.matchAll(/(\w+) (\d+) \(/g)].map((m) => [m[1]!, Number(m[2])]),
    );
    expect(kinds).toEqual({ device: 512, app: 10, table: expect.any(Number) });
    expect(kinds.table).toBeGreaterThan(0);
    expect(report).toMatch(new RegExp(`arena: ${522 + kinds.table} of \\d+ chunks in use`));
    const owners = /largest owners: (.*)/.exec(report)![1]!;
    for (const owner of ['device#1 256 (512K)', 'device#2 256 (512K)', 'app#42 10 (20K)', 'table#1 ', 'table#2 ']) {
      expect(owners).toContain(owner);
    }
    // The tender printed it, line by line.
    expect(logged.join('\n')).toContain(report);
    if (booted) expect(logged).toContain('heap-hog: hoarding');
    // The host process is fine: another guest boots and serves.
    const port = await freePort();
    const next = await startGuest({ app: 'echo', net: { kind: 'user', hostfwd: [tcp(port, 7)] }, log: () => {} });
    expect(new TextDecoder().decode(await echoThrough(port, new TextEncoder().encode('still here')))).toBe('still here');
    expect((await next.stop()).code).toBe(0);
  });

  it('uk run exits 3 and prints the report on stderr', async () => {
    const r = await runUk(['run', '--mem', '32M', '--hotpath', 'ts', HEAP_HOG], [], 60_000);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/^uk: guest out of memory: JS heap limit 12M reached/m);
    expect(r.stderr).toMatch(/^uk:   by owner kind: .*device 512/m);
    expect(r.stderr).toMatch(/^uk:   largest owners: .*device#1 256/m);
  });
});

describe('a guest that holds ArrayBuffers outside its arena', () => {
  const BUFFER_HOG = join(FIXTURES, 'buffer-hog.mjs');

  it('is out of memory once its heap and buffers pass the heap\'s share: exit 3, a report, not 512 MiB later', async () => {
    const r = await runUk(['run', '--mem', '16M', '--heap', '12M', BUFFER_HOG, 'typed'], [], 60_000);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/^uk: guest out of memory: JS heap [\d.]+[KM]? and buffers outside the arena [\d.]+M passed the heap's share 12M \(budget 16M\)$/m);
    expect(r.stderr).toMatch(/^uk:   by owner kind: .*device/m);
    expect(r.stderr).not.toMatch(/holding 512 MiB/);
  });

  it('a large `new ArrayBuffer` is refused at once with a RangeError the guest can catch, and the guest goes on', async () => {
    const uk = spawnUk(['run', '--mem', '16M', '--heap', '12M', '--stats', '-', '--stats-interval', '200', BUFFER_HOG, 'direct']);
    try {
      await uk.waitFor(/refused: RangeError: new ArrayBuffer\(536870912\): the guest's memory budget has \d+ bytes left \(heap and buffers share 12582912\)/);
      await uk.waitFor(/app: /);
      for (let i = 0; i < 100 && !uk.stdout.includes('\n'); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      const rec = JSON.parse(uk.stdout.split('\n')[0]!) as { mem: { external: number; heapUsed: number } };
      expect(rec.mem.external).toBeGreaterThan(0);
      expect(rec.mem.external + rec.mem.heapUsed).toBeLessThan(12 * 1024 * 1024);
    } finally {
      uk.child.kill('SIGTERM');
      expect((await uk.exited).code).toBe(0);
    }
  });
});

describe('a guest that exhausts its arena', () => {
  it('is refused at the network reserve, counted, and keeps serving live and new connections', async () => {
    const echoPort = await freePort();
    const controlPort = await freePort();
    const run = await startGuest({
      app: ARENA_HOG,
      net: { kind: 'user', hostfwd: [tcp(echoPort, 7), tcp(controlPort, 8)] },
      log: () => {},
    });
    try {
      // A live connection, in use before the arena fills.
      const live = net.connect(echoPort, '127.0.0.1');
      await new Promise((resolve) => live.once('connect', resolve));
      const first = randomBytes(1024 * 1024, 1);
      expect(sha256(await echoOn(live, first))).toBe(sha256(first));

      const control = await lineClient(controlPort);
      const hog = JSON.parse(await control.ask('hog'));
      const mem = (await run.stats()).mem;
      // Everything but the fixed tables and the reserve went to the app, then it was refused.
      expect(hog.refused).toBeGreaterThanOrEqual(1);
      expect(hog.held).toBeGreaterThan((mem.arenaChunks - mem.arenaTableChunks) * 0.8);
      expect(hog.free).toBeLessThanOrEqual(hog.reserve);
      expect(hog.free).toBeGreaterThan(hog.reserve - 64);

      // The live connection keeps working, and so do new ones.
      const second = randomBytes(8 * 1024 * 1024, 2);
      expect(sha256(await echoOn(live, second))).toBe(sha256(second));
      const fresh = await Promise.all(
        Array.from({ length: 20 }, (_, i) => {
          const data = randomBytes(100_000, 10 + i);
          return echoThrough(echoPort, data).then((back) => sha256(back) === sha256(data));
        }),
      );
      expect(fresh.every(Boolean)).toBe(true);

      // Echo's own parking was refused too (it fell back to the heap): every refusal counted.
      const s = await run.stats();
      expect(s.app.chunks).toBe(hog.held);
      expect(s.app.refused).toBeGreaterThanOrEqual(hog.refused);
      expect(s.tcp.counters.dropRecvNoMemory).toBe(0);

      // Asking again is refused again (counted); giving back frees it all.
      expect(JSON.parse(await control.ask('hog')).refused).toBe(s.app.refused + 1);
      expect(JSON.parse(await control.ask('free')).held).toBe(0);
      control.close();
      live.end();
    } finally {
      expect((await run.stop()).code).toBe(0);
    }
  });
});
