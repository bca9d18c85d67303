// End to end through `uk run relay` (the built CLI as a child, user
// networking, 127.0.0.1 forwarded to the guest's 9000 and 9001): the library
// calls behind `bob send` and `bob recv`, and the guest's memory across
// `bob stress` runs (issue #499).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BobError, ExitCode, type RelayEndpoint, bufferSource, receive, send } from '../../relay/client/index.js';
import { silentLogger } from '../../relay/client/log.js';
import type { JitMode } from '../../host/jit.js';
import { type RelayGuest, HEAP_TOLERANCE, compareMemory, quiescentMemory, startRelayGuest } from '../../relay/main-job.js';
import { STRESS_PBKDF2_COUNT, stress } from '../../relay/stress/stress.js';
import type { GuestMemory } from '../../relay/stress/guest-stats.js';
import { freePort } from '../helpers/uk.js';

const FAST = 16; // bob's PBKDF2 count: these tests are about the transport, not the KDF

async function bootGuest(jit: JitMode = 'optimizing'): Promise<{ guest: RelayGuest; endpoint: RelayEndpoint }> {
  const guest = await startRelayGuest({ mem: '40M', hotpath: 'wasm', jit, ports: { handshake: await freePort(), secure: await freePort() } });
  return { guest, endpoint: { host: '127.0.0.1', port: guest.ports.handshake, securePort: guest.ports.secure } };
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function failure(promise: Promise<unknown>): Promise<BobError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BobError) return error;
    throw error;
  }
  throw new Error('expected a BobError');
}

describe('bob send / recv through `uk run relay`', () => {
  let guest: RelayGuest;
  let endpoint: RelayEndpoint;
  let dir: string;

  beforeAll(async () => {
    ({ guest, endpoint } = await bootGuest());
    dir = await mkdtemp(join(tmpdir(), 'bob-guest-'));
  });

  afterAll(async () => {
    await guest?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function transfer(data: Uint8Array, name: string): Promise<void> {
    const out = join(dir, `out-${name}`);
    const password = `pw-${randomBytes(6).toString('hex')}`;
    const [sent, received] = await Promise.all([
      send({ relay: endpoint, password, file: bufferSource(name, data), pbkdf2Count: FAST, timeoutMs: 60_000 }),
      receive({ relay: endpoint, password, output: out, timeoutMs: 60_000 }),
    ]);
    expect(sent.size).toBe(data.length);
    expect(received).toMatchObject({ name, size: data.length, path: out });
    expect(sha256(await readFile(out))).toBe(sha256(data));
  }

  it('transfers an empty file', async () => {
    await transfer(new Uint8Array(0), 'empty.bin');
  });

  it('transfers a 1-byte file', async () => {
    await transfer(Uint8Array.of(0x5a), 'one.bin');
  });

  it('transfers a 20 MB file, SHA-256 equal (the guest has 40M for everything)', async () => {
    await transfer(new Uint8Array(randomBytes(20 * 1000 * 1000)), 'big.bin');
  }, 120_000);

  it('fails cleanly on a wrong password: the receiver gives up with exit 3, the sender at its timeout', async () => {
    const out = join(dir, 'out-wrong');
    const [sender, receiver] = await Promise.all([
      failure(send({ relay: endpoint, password: 'right', file: bufferSource('f', Uint8Array.of(1)), pbkdf2Count: FAST, timeoutMs: 2000 })),
      failure(receive({ relay: endpoint, password: 'wrong', output: out, failFast: true, timeoutMs: 20_000 })),
    ]);
    expect(receiver.code).toBe(ExitCode.WrongPassword);
    expect(receiver.message).toMatch(/^Wrong password: the sender \S+ uses another one$/);
    expect(sender.code).toBe(ExitCode.WrongPassword);
    expect(sender.message).toMatch(/^Wrong password: 1 receiver used another one, and none with ours came within 2 s$/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('guest memory across `bob stress` runs (uk run --mem 40M --jit baseline relay)', () => {
  let guest: RelayGuest;
  let booted: GuestMemory;
  let baseline: GuestMemory;
  let figures: Array<ReturnType<typeof compareMemory> & { connections: number; quiescent: boolean; arenaSinceBoot: number }>;

  // One session feeds both checks below: boot, one warm-up run of 16 pairs
  // (V8 compiles the relay's path on first use; that code is the program, not
  // state left by connections), the baseline, then 3 runs of 16 pairs. The
  // guest runs without the optimizing compiler (host/jit.ts), so nothing is
  // recompiled later: the heap after GC shows what connections leave behind.
  beforeAll(async () => {
    let endpoint: RelayEndpoint;
    ({ guest, endpoint } = await bootGuest('baseline'));
    const options = {
      relay: endpoint,
      pairs: 16,
      size: 16 * 1024,
      concurrency: 16,
      pbkdf2Count: STRESS_PBKDF2_COUNT,
      clientTimeoutMs: 60_000,
      quiescenceTimeoutMs: 60_000,
      log: silentLogger,
    };
    booted = await quiescentMemory(guest);
    expect(await stress({ ...options, runs: 1 })).toMatchObject({ pairs: 16, ok: 16, failed: 0 });
    baseline = await quiescentMemory(guest);
    const after: GuestMemory[] = [];
    // Each run's figures as the baseline's: quiescence, then a heap census.
    const summary = await stress({ ...options, runs: 3, guestMemory: () => quiescentMemory(guest), onRun: (r) => after.push(r.guest!) });
    expect(summary).toMatchObject({ pairs: 48, ok: 48, failed: 0 });
    expect(after).toHaveLength(3);
    figures = after.map((g) => ({
      ...compareMemory(baseline, g),
      connections: g.connections,
      quiescent: g.quiescent,
      arenaSinceBoot: g.arenaUsed - booted.arenaUsed,
    }));
  }, 150_000);

  afterAll(async () => {
    await guest?.stop();
  });

  it('returns to the baseline after each of 3 runs of 16 pairs: arena exactly (and equal to its boot value), no connection left', () => {
    expect(baseline.arenaUsed).toBe(booted.arenaUsed);
    const expected = figures.map(() => expect.objectContaining({ arenaDelta: 0, arenaSinceBoot: 0, connections: 0, quiescent: true }));
    expect(figures).toEqual(expected);
  });

  it('data heap (heap census without the program) within 1% of the baseline after each of 3 runs', () => {
    const heap = figures.map((f) => `${f.heapDelta >= 0 ? '+' : ''}${f.heapDelta} B (${(f.heapFraction * 100).toFixed(2)}%)`).join(', ');
    expect(
      figures.map((f) => Math.abs(f.heapFraction) <= HEAP_TOLERANCE),
      `heapUsed after each run vs the baseline ${baseline.heapUsed} B: ${heap}`,
    ).toEqual([true, true, true]);
  });
});
