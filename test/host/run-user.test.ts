// Guests on user-mode networking, booted in-process with startGuest (each in
// its own Worker, under the default 40M budget), reached from host sockets on
// 127.0.0.1 through hostfwd: echo carries 50 MB intact over TCP and answers
// UDP; 1,000 connections later the guest's stats are back to their baseline;
// discard and chargen behave per their RFCs; a capture of the link passes
// tshark (skipped without tshark, a failure in CI).

import dgram from 'node:dgram';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGuest, type GuestRun } from '../../host/run.js';
import type { StatsRecord } from '../../host/stats-writer.js';
import {
  echoThrough,
  freePort,
  levels,
  randomBytes,
  sha256,
  tsharkFields,
  tsharkProblems,
} from '../helpers/uk.js';
import { requires } from '../helpers/capabilities.js';

const quiet = () => {};

function tcp(hostPort: number, guestPort: number) {
  return { proto: 'tcp' as const, hostAddress: '127.0.0.1', hostPort, guestPort };
}

/** Ask until `cond` holds for a fresh record (the guest settles asynchronously). */
async function settled(run: GuestRun, cond: (r: StatsRecord) => boolean, ms = 10_000): Promise<StatsRecord> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await run.stats();
    if (cond(r) || Date.now() > end) return r;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Send one datagram, wait for the answer. */
async function udpEcho(port: number, payload: Uint8Array): Promise<Uint8Array> {
  const sock = dgram.createSocket('udp4');
  try {
    return await new Promise<Uint8Array>((resolve, reject) => {
      sock.once('message', (msg) => resolve(msg));
      sock.once('error', reject);
      sock.send(payload, port, '127.0.0.1');
    });
  } finally {
    sock.close();
  }
}

/** `count` connections, `parallel` at a time, each echoing a short message. */
async function manyConnections(port: number, count: number, parallel: number): Promise<number> {
  let next = 0;
  let ok = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const msg = new TextEncoder().encode(`connection ${i}\n`);
      const back = await echoThrough(port, msg);
      if (Buffer.compare(back, msg) === 0) ok++;
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return ok;
}

describe('echo on user networking', () => {
  let run: GuestRun;
  let port: number;
  let udpPort: number;

  beforeAll(async () => {
    port = await freePort();
    udpPort = await freePort();
    run = await startGuest({
      app: 'echo',
      net: { kind: 'user', hostfwd: [tcp(port, 7), { ...tcp(udpPort, 7), proto: 'udp' }] },
      log: quiet,
    });
  });
  afterAll(async () => {
    const r = await run?.stop();
    expect(r?.code).toBe(0);
  });

  it('echoes 50 MB over one TCP connection, intact', async () => {
    const data = randomBytes(50 * 1024 * 1024, 7);
    const back = await echoThrough(port, data);
    expect(back.length).toBe(data.length);
    expect(sha256(back)).toBe(sha256(data));
    const r = await run.stats();
    expect(r.tcp.counters.bytesIn).toBeGreaterThanOrEqual(data.length);
    expect(r.link.rxRingFull + r.link.txRingFull).toBe(0);
    // Frames were read where the tender wrote them: no RX chunk ever held.
    expect(r.drops.rxArenaFull).toBe(0);
  });

  it('answers UDP datagrams on port 7', async () => {
    const payload = randomBytes(1000, 11);
    const back = await udpEcho(udpPort, payload);
    expect(Buffer.compare(back, payload)).toBe(0);
  });

  it('after 1,000 connections, its stats are back to the baseline', async () => {
    await manyConnections(port, 5, 5); // warm up: ARP entry, code paths
    // Wait out the boot-time gratuitous ARP announcements (a housekeeping timer).
    const base = await settled(run, (r) => r.tcp.connections === 0 && r.timers.byKind.housekeeping === 0);
    expect(await manyConnections(port, 1000, 100)).toBe(1000);
    const after = await settled(run, (r) => r.tcp.connections === 0 && r.timers.byKind.tcp === 0);
    expect(levels(after)).toEqual(levels(base));
    expect(after.tcp.counters.passiveOpens - base.tcp.counters.passiveOpens).toBe(1000);
    expect(after.tcp.counters.closedBy.closed - base.tcp.counters.closedBy.closed).toBe(1000);
    // The heap (measured after a full GC) is back within GC noise of the baseline.
    expect(after.mem.heapAfterGc).toBe(true);
    expect(after.mem.heapUsed - base.mem.heapUsed).toBeLessThan(1.5 * 1024 * 1024);
  });
});

describe('discard and chargen on user networking', () => {
  it('discard takes 20 MB and closes after our FIN', async () => {
    const port = await freePort();
    const run = await startGuest({ app: 'discard', net: { kind: 'user', hostfwd: [tcp(port, 9)] }, log: quiet });
    try {
      const back = await echoThrough(port, randomBytes(20 * 1024 * 1024, 5));
      expect(back.length).toBe(0);
      const r = await settled(run, (s) => s.tcp.connections === 0);
      expect(r.tcp.counters.bytesIn).toBe(20 * 1024 * 1024);
    } finally {
      expect((await run.stop()).code).toBe(0);
    }
  });

  it('chargen sends RFC 864 lines until we close', async () => {
    const port = await freePort();
    const run = await startGuest({ app: 'chargen', net: { kind: 'user', hostfwd: [tcp(port, 19)] }, log: quiet, hotpath: 'ts' });
    try {
      const text = await new Promise<string>((resolve, reject) => {
        let got = '';
        const sock = net.connect(port, '127.0.0.1');
        sock.setEncoding('latin1');
        sock.on('data', (s: string) => {
          got += s;
          if (got.length >= 200_000) {
            sock.destroy();
            resolve(got);
          }
        });
        sock.on('error', reject);
      });
      const lines = text.split('\r\n').slice(0, 2000);
      for (let i = 0; i < lines.length - 1; i++) {
        expect(lines[i]!.length).toBe(72);
        // Each line starts one character after the previous one, around the 95 printables.
        const first = (c: string) => c.charCodeAt(0) - 32;
        expect(first(lines[i + 1]!)).toBe((first(lines[i]!) + 1) % 95);
      }
      const r = await settled(run, (s) => s.tcp.connections === 0);
      expect(r.tcp.connections).toBe(0);
    } finally {
      expect((await run.stop()).code).toBe(0);
    }
  });
});

describe('a capture of the link', () => {
  requires('tshark').it('passes tshark: no malformed frames, no bad checksums, both directions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'uk-pcap-'));
    const pcap = join(dir, 'user.pcap');
    try {
      const port = await freePort();
      const udpPort = await freePort();
      const run = await startGuest({
        app: 'echo',
        net: { kind: 'user', hostfwd: [tcp(port, 7), { ...tcp(udpPort, 7), proto: 'udp' }] },
        pcap,
        log: quiet,
        hotpath: 'ts',
      });
      const data = randomBytes(2 * 1024 * 1024, 2);
      expect(Buffer.compare(await echoThrough(port, data), data)).toBe(0);
      expect(await manyConnections(port, 50, 10)).toBe(50);
      expect((await udpEcho(udpPort, randomBytes(300, 1))).length).toBe(300);
      expect((await run.stop()).code).toBe(0);

      expect(tsharkProblems(pcap)).toBe('');
      const rows = tsharkFields(pcap, ['ip.src', 'ip.dst', 'ip.proto', 'arp.opcode']);
      const count = (pred: (row: string[]) => boolean) => rows.filter(pred).length;
      expect(count(([src, , proto]) => src === '10.0.2.15' && proto === '6')).toBeGreaterThan(1000);
      expect(count(([, dst, proto]) => dst === '10.0.2.15' && proto === '6')).toBeGreaterThan(1000);
      expect(count(([, , proto]) => proto === '17')).toBe(2);
      expect(count(([, , , op]) => op !== undefined && op !== '')).toBeGreaterThanOrEqual(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
