// Hostile load against 40 MB guests on user networking, each attacker from
// loopback addresses of its own (the gateway carries them into the guest):
//
// 1. The relay (`uk run --mem 40M relay`):
//    a. 8 Hello flooders that never read, for 15 s;
//    b. then 3,000 idle connections held open from 200 addresses;
//    c. then, everything still open, a 16-pair `bob stress` run, each client
//       from an address of its own.
//    The guest must never exit and the run must be 16/16.
// 2. The echo guest (`uk run --mem 40M echo`): 15,000 connection attempts
//    from 200 addresses, held open; the guest stays up and counts what it
//    refused.
// For each: the largest heap after GC the guest reported against its
// high-water mark, and its admission and TCP counters.
//
//   npm run bench:hostile   (builds, then node dist/bench/hostile.js)

import { packageRoot } from '../host/hotpath.js';
import { silentLogger } from '../relay/client/log.js';
import { closeAll, flood, openIdle } from '../relay/stress/attackers.js';
import { runStress } from '../relay/stress/run.js';
import { STRESS_PBKDF2_COUNT } from '../relay/stress/stress.js';
import { describeMachine, freePort, isMain, writeMarkdownSection, writeResults } from './common.js';
import { startGuestProcess, type GuestProcess, type StatsLine } from './guest-process.js';

const FLOOD_MS = 15_000;
const IDLE_CONNECTIONS = 3_000;
const ADDRESSES = 200;
const PAIRS = 16;
const ECHO_ATTEMPTS = 15_000;
const HOLD_MS = 15_000;

const flooderAddress = (i: number) => `127.10.0.${i + 1}`;
const idleAddress = (i: number) => `127.20.${Math.floor((i % ADDRESSES) / 250)}.${(i % ADDRESSES) % 250 + 1}`;
const clientAddress = (i: number) => `127.30.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const echoAddress = (i: number) => `127.40.${Math.floor((i % ADDRESSES) / 250)}.${(i % ADDRESSES) % 250 + 1}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface GuestFigures {
  alive: boolean;
  maxHeapUsed: number;
  heapLimit: number;
  heapHighWater: number;
  tcp: Record<string, number>;
  admission: Record<string, number>;
  relay?: Record<string, number>;
}

/** What the guest's stats lines say: its largest heap and its last counters. */
async function figures(guest: GuestProcess): Promise<GuestFigures> {
  const lines: StatsLine[] = await guest.statsLines();
  const last = lines[lines.length - 1]!;
  const pick = (o: Record<string, number> | undefined, names: string[]) =>
    Object.fromEntries(names.map((n) => [n, o?.[n] ?? 0]));
  return {
    alive: guest.exitCode() === null,
    maxHeapUsed: Math.max(...lines.map((l) => l.mem.heapUsed)),
    heapLimit: last.mem.heapLimit,
    heapHighWater: last.admission?.heapHighWater ?? 0,
    tcp: {
      connectionsNow: last.tcp.connections,
      ...pick(last.tcp.counters, [
        'passiveOpens', 'established', 'dropSynPressure', 'dropSynConnLimit', 'dropSynNoMemory', 'dropSynBacklogFull',
        'synCookiesSent', 'synCookiesAccepted', 'reassemblyPrunes',
      ]),
    },
    admission: pick(last.admission?.counters, ['pressureEntered', 'pressureLeft', 'refusedHeap', 'collections']),
    ...(last.appStats?.counters
      ? {
          relay: pick(last.appStats.counters, [
            'handshakeAccepted', 'helloRepeatsIgnored', 'slowReader', 'helloTimeout', 'pressureEpisodes', 'pressureRefused',
            'pressureShedUnregistered', 'pressureShedRegistered', 'peersPerSourceFull', 'peersEvicted', 'roomsPiped',
          ]),
        }
      : {}),
  };
}

async function relayUnderAttack() {
  const [handshake, secure] = [await freePort(), await freePort()];
  const guest = await startGuestProcess({
    app: 'relay',
    mem: '40M',
    hostfwd: [`tcp:127.0.0.1:${handshake}-:9000`, `tcp:127.0.0.1:${secure}-:9001`],
    ready: /relay listening on/,
  });
  try {
    console.log('relay: 8 Hello flooders that never read, 15 s');
    const until = Date.now() + FLOOD_MS;
    const flooders = await Promise.all(Array.from({ length: 8 }, (_, i) => flood(handshake, flooderAddress(i), until)));
    console.log(`relay: ${IDLE_CONNECTIONS} idle connections from ${ADDRESSES} addresses`);
    const idle = await openIdle(handshake, IDLE_CONNECTIONS, idleAddress, 200);
    await sleep(5_000);
    console.log(`relay: ${PAIRS}-pair bob stress with everything open`);
    const started = Date.now();
    const stress = await runStress({
      relay: { host: '127.0.0.1', port: handshake, securePort: secure },
      pairs: PAIRS,
      size: 16 * 1024,
      concurrency: 2 * PAIRS,
      pbkdf2Count: STRESS_PBKDF2_COUNT,
      clientTimeoutMs: 60_000,
      log: silentLogger,
      sourceAddress: (pair, role) => clientAddress(2 * pair + (role === 'send' ? 0 : 1)),
    });
    const stressMs = Date.now() - started;
    await sleep(1_000);
    const stillOpen = idle.connected - idle.resetWhileHeld;
    closeAll(idle);
    const guestFigures = await figures(guest);
    return {
      flooders: { count: flooders.length, megabytesWritten: Math.round(flooders.reduce((s, f) => s + f.bytes, 0) / 1e6), reset: flooders.filter((f) => f.reset).length },
      idle: { attempted: IDLE_CONNECTIONS, hostAccepted: idle.connected, refusedByGuest: idle.resetWhileHeld, stillOpen },
      stress: { pairs: stress.pairs, ok: stress.ok, failed: stress.failed, seconds: stressMs / 1000, failures: stress.failures.slice(0, 5) },
      guest: guestFigures,
    };
  } finally {
    await guest.stop();
  }
}

async function echoUnderAttack() {
  const port = await freePort();
  const guest = await startGuestProcess({ app: 'echo', mem: '40M', hostfwd: [`tcp:127.0.0.1:${port}-:7`], ready: /app: echo/ });
  try {
    console.log(`echo: ${ECHO_ATTEMPTS} connection attempts from ${ADDRESSES} addresses, held ${HOLD_MS / 1000} s`);
    const held = await openIdle(port, ECHO_ATTEMPTS, echoAddress, 1000);
    await sleep(HOLD_MS); // the gateway gives up on the guest's handshake after 10 s
    const stillOpen = held.connected - held.resetWhileHeld;
    const guestFigures = await figures(guest);
    closeAll(held);
    return { attempts: ECHO_ATTEMPTS, hostAccepted: held.connected, failedAtHost: held.failed, refusedByGuest: held.resetWhileHeld, stillOpen, guest: guestFigures };
  } finally {
    await guest.stop();
  }
}

function mib(n: number): string {
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

export async function runHostileBench(): Promise<void> {
  const machine = describeMachine();
  const relay = await relayUnderAttack();
  console.log(JSON.stringify(relay, null, 2));
  const echo = await echoUnderAttack();
  console.log(JSON.stringify(echo, null, 2));
  const ok = relay.guest.alive && relay.stress.ok === PAIRS && echo.guest.alive;
  const text = [
    '## Hostile load',
    '',
    `\`npm run bench:hostile\`, ${new Date().toISOString().slice(0, 10)}, ${machine.cpu}, Node ${machine.node}; 40 MB guests on user networking,`,
    'every attacker and client from loopback addresses of its own. Verdict: ' + (ok ? '**held**' : '**FAILED**') + '.',
    '',
    '| | relay | echo |',
    '|---|---|---|',
    `| attack | 8 non-reading Hello flooders 15 s (${relay.flooders.megabytesWritten} MB sent, ${relay.flooders.reset} reset), then ${relay.idle.attempted} idle connections from ${ADDRESSES} addresses | ${echo.attempts} connection attempts from ${ADDRESSES} addresses, held |`,
    `| connections held at the end | ${relay.idle.stillOpen} idle (${relay.idle.refusedByGuest} refused by the guest) | ${echo.stillOpen} (${echo.refusedByGuest} refused by the guest, ${echo.failedAtHost} not taken by the host's listen queue) |`,
    `| legitimate clients meanwhile | ${relay.stress.ok}/${relay.stress.pairs} bob pairs ok in ${relay.stress.seconds.toFixed(1)} s | |`,
    `| guest alive | ${relay.guest.alive ? 'yes' : 'NO'} | ${echo.guest.alive ? 'yes' : 'NO'} |`,
    `| largest heap after GC (all spaces) / old-generation high-water / heap limit | ${mib(relay.guest.maxHeapUsed)} / ${mib(relay.guest.heapHighWater)} / ${mib(relay.guest.heapLimit)} | ${mib(echo.guest.maxHeapUsed)} / ${mib(echo.guest.heapHighWater)} / ${mib(echo.guest.heapLimit)} |`,
    `| TCP (guest) | ${Object.entries(relay.guest.tcp).map(([k, v]) => `${k} ${v}`).join(', ')} | ${Object.entries(echo.guest.tcp).map(([k, v]) => `${k} ${v}`).join(', ')} |`,
    `| admission | ${Object.entries(relay.guest.admission).map(([k, v]) => `${k} ${v}`).join(', ')} | ${Object.entries(echo.guest.admission).map(([k, v]) => `${k} ${v}`).join(', ')} |`,
    `| relay counters | ${Object.entries(relay.guest.relay ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')} | |`,
    '',
  ].join('\n');
  writeMarkdownSection(packageRoot(), 'Hostile load', text);
  writeResults(packageRoot(), 'hostile', { machine, relay, echo, ok });
  console.log(text);
  if (!ok) process.exitCode = 1;
}

if (isMain(import.meta.url)) await runHostileBench();
