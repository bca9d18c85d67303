// The relay as a guest (`uk run relay`, user networking) attacked from this
// process, each attacker and each legitimate client from loopback addresses
// of its own: the guest stays up, legitimate pairs complete during and after
// the attack, and every refusal shows in the guest's counters (its --stats
// lines carry the stack's and, as appStats, the relay's). Smaller than
// `npm run bench:hostile`, the same code paths.

import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../relay/client/log.js';
import { encodeFrame } from '../../relay/handshake/packet.js';
import { type RelayGuest, startRelayGuest } from '../../relay/main-job.js';
import { closeAll, flood, openIdle } from '../../relay/stress/attackers.js';
import { runStress } from '../../relay/stress/run.js';
import { STRESS_PBKDF2_COUNT } from '../../relay/stress/stress.js';
import { freePort } from '../helpers/uk.js';

interface Line {
  tcp: { connections: number; counters: Record<string, number> };
  admission: { counters: Record<string, number> };
  appStats: { counters: Record<string, number>; peers: Record<string, number> };
}

async function lastLine(guest: RelayGuest): Promise<Line> {
  const lines = (await readFile(guest.statsFile, 'utf8')).trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      return JSON.parse(lines[i]!) as Line;
    } catch {
      // being written
    }
  }
  throw new Error('no stats line');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The guest's stats lines until one satisfies `cond` (or `ms` passes: then the last). */
async function lineWhen(guest: RelayGuest, cond: (l: Line) => boolean, ms = 30_000): Promise<Line> {
  const end = Date.now() + ms;
  for (;;) {
    const line = await lastLine(guest).catch(() => null); // none written yet
    if ((line !== null && cond(line)) || Date.now() > end) return line ?? lastLine(guest);
    await sleep(200);
  }
}

/** `pairs` bob pairs through the guest, client i from 127.60.<tag>.<i+1>. */
function pairs(guest: RelayGuest, n: number, tag: number) {
  return runStress({
    relay: { host: '127.0.0.1', port: guest.ports.handshake, securePort: guest.ports.secure },
    pairs: n,
    size: 8 * 1024,
    concurrency: 2 * n,
    pbkdf2Count: STRESS_PBKDF2_COUNT,
    clientTimeoutMs: 30_000,
    log: silentLogger,
    sourceAddress: (pair, role) => `127.60.${tag}.${2 * pair + (role === 'send' ? 1 : 2)}`,
  });
}

describe('uk run relay under hostile peers', () => {
  let guest: RelayGuest | null = null;

  afterEach(async () => {
    await guest?.stop();
    guest = null;
  });

  async function boot(mem: string, relayArgs: string[] = [], ukArgs: string[] = []): Promise<RelayGuest> {
    guest = await startRelayGuest({ mem, hotpath: 'wasm', jit: 'baseline', ports: { handshake: await freePort(), secure: await freePort() }, relayArgs, ukArgs });
    return guest;
  }

  it('8 Hello flooders that never read: it stays up, ignores the repeats (counted), and pairs complete during and after', { timeout: 120_000 }, async () => {
    const g = await boot('40M');
    const until = Date.now() + 4_000;
    const flooding = Promise.all(Array.from({ length: 8 }, (_, i) => flood(g.ports.handshake, `127.61.0.${i + 1}`, until)));
    await sleep(1_000);
    const during = await pairs(g, 2, 1);
    const flooders = await flooding;
    const after = await pairs(g, 2, 2);
    expect([during.ok, after.ok]).toEqual([2, 2]);
    expect(flooders.every((f) => f.bytes > 0)).toBe(true);
    await sleep(1_000);
    const line = await lastLine(g);
    expect(line.appStats.counters.helloRepeatsIgnored).toBeGreaterThan(0);
    expect(await g.stop()).toBe(0); // still running when asked to stop: a clean exit
  });

  it('more idle connections than its connection table holds: refused and counted, it stays up, and a pair completes', { timeout: 180_000 }, async () => {
    // The relay keeps objects for each peer, so a 40M relay guest's table is what
    // its heap holds (696, host/budget.ts), not what its arena holds: 1,000 idle sockets overflow it.
    const g = await boot('40M', []);
    const idle = await openIdle(g.ports.handshake, 1_000, (i) => `127.62.0.${(i % 20) + 1}`, 200);
    await sleep(4_000);
    const line = await lastLine(g);
    const t = line.tcp.counters;
    const relay = line.appStats.counters;
    // The rest were dropped at the SYN (table full or heap guard) or shed by the
    // relay, which sheds its newest idle sockets once the table is 90% full.
    const refused = t.dropSynConnLimit + t.dropSynPressure + relay.pressureRefused + relay.pressureShedUnregistered + relay.handshakeSocketsFull;
    expect(refused).toBeGreaterThan(0);
    expect(line.tcp.connections).toBeLessThanOrEqual(696);
    const during = await pairs(g, 1, 3);
    expect(during.ok).toBe(1);
    closeAll(idle);
    expect((await lineWhen(g, (l) => l.tcp.connections === 0)).tcp.connections).toBe(0);
    expect(await g.stop()).toBe(0);
  });

  it('one address hoarding registrations does not lock out the others', { timeout: 120_000 }, async () => {
    // A small table, so the test is small: 30 registrations, all of which one address may take.
    const g = await boot('40M', ['--limit', 'maxPeers=30', '--limit', 'maxPeersPerSource=30']);
    const hoard = await openIdle(g.ports.handshake, 45, () => '127.63.0.1', 45);
    const hello = encodeFrame({ uid: 0, packet: { name: 'Hello_as_a_client' } });
    for (const s of hoard.sockets) s.write(hello);
    let line = await lineWhen(g, (l) => l.appStats.peers.receivers === 30);
    expect(line.appStats.peers.receivers).toBe(30);
    const result = await pairs(g, 2, 4);
    expect(result.ok).toBe(2);
    line = await lineWhen(g, (l) => l.appStats.counters.peersEvicted >= 4);
    // The table was full of the hoarder's: each newcomer took one of its registrations.
    expect(line.appStats.counters.peersEvicted).toBeGreaterThanOrEqual(4);
    closeAll(hoard);
    expect(await g.stop()).toBe(0);
  });
});
