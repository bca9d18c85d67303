// Receivers against hostile senders (the PBKDF2 each advertised sender costs,
// docs/bob-protocol.md §4.6, §7): counts above the cap are refused with 0d 03
// before any PBKDF2, the PBKDF2 runs in slices so --timeout fires during it,
// and a burst of senders is bounded by the receiver's queue. Assertions are
// on what ran (derivations begun and finished, senders ignored), never on
// how long it took.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BobError, ExitCode } from '../../relay/client/errors.js';
import { Deadline } from '../../relay/client/endpoint.js';
import { pairThroughRelay } from '../../relay/client/handshake-driver.js';
import { silentLogger } from '../../relay/client/log.js';
import { type KeyDerivation, ReceiverHandshake } from '../../relay/client/receiver-handshake.js';
import type { Frame } from '../../relay/handshake/packet.js';
import { startHostRelay } from '../../relay/server/host.js';
import { spokePbkdf2, spokePbkdf2Sliced } from '../../relay/spoke/pbkdf2.js';
import { MAX_COUNT } from '../../relay/spoke/public.js';
import { passwordKeysSliced } from '../../relay/spoke/spake2ee.js';
import { type FakeSender, fakeSender as registerFake, publicWithCount, until } from '../helpers/bob-peers.js';

const ascii = (s: string) => new TextEncoder().encode(s);

/** Wraps a derivation to record what it was asked and how each run ended. */
function recordingDerivation(inner: KeyDerivation = (pw, params, signal) => passwordKeysSliced(pw, params, { signal })) {
  const runs: Array<{ count: number; signal: AbortSignal; finished: boolean }> = [];
  const derive: KeyDerivation = async (password, params, signal) => {
    const run = { count: params.count, signal, finished: false };
    runs.push(run);
    const keys = await inner(password, params, signal);
    run.finished = true;
    return keys;
  };
  return { derive, runs };
}

/** Never finishes by itself: ends (rejecting) only when its signal aborts. */
const stalledDerivation: KeyDerivation = (_pw, _params, signal) =>
  new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));

describe('spoke PBKDF2 in slices', () => {
  const pw = ascii('zosajodo-begilore');
  const salt = new Uint8Array(16).fill(7);

  it('gives the same bytes as the one-shot PBKDF2, whatever the slice', async () => {
    for (const [count, slice] of [[1, 1], [16, 1024], [16, 5], [3000, 1000], [3000, 7]]) {
      expect(await spokePbkdf2Sliced(pw, salt, count, { sliceIterations: slice })).toEqual(spokePbkdf2(pw, salt, count));
    }
    expect(await spokePbkdf2Sliced(pw, salt, 300, { sliceIterations: 64, length: 40 })).toEqual(spokePbkdf2(pw, salt, 300, 40));
  });

  it('lets the event loop run between slices', async () => {
    let turns = 0;
    let ticking = true;
    const tick = () => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    // 4 blocks of 999 iterations in slices of 100: 9 yields within each block, 3 between: 39 turns.
    await spokePbkdf2Sliced(pw, salt, 1000, { sliceIterations: 100 });
    ticking = false;
    expect(turns).toBeGreaterThanOrEqual(39);
  });

  it('stops at the next slice when its signal aborts, rejecting with the reason', async () => {
    const controller = new AbortController();
    let turns = 0;
    const tick = () => {
      if (++turns === 3) controller.abort(new Error('stop here'));
      else setImmediate(tick);
    };
    setImmediate(tick);
    // Unchecked, 4 × 10^6 iterations would run to the end and resolve.
    await expect(spokePbkdf2Sliced(pw, salt, 1_000_000, { sliceIterations: 1000, signal: controller.signal })).rejects.toThrow('stop here');
  });
});

describe('the receiver machine, with a queue', () => {
  const own = ascii('127.0.0.1:2');
  const sid = (n: number) => ascii(`127.0.0.1:${40000 + n}`);
  const newServer = (uid: number, count: bigint | number, identity = sid(uid)): Frame => ({
    uid: 0,
    packet: { name: 'New_server', uid, public: publicWithCount(BigInt(count)), identity },
  });

  function receiver(options: Partial<ConstructorParameters<typeof ReceiverHandshake>[0]> = {}) {
    const recording = recordingDerivation();
    const machine = new ReceiverHandshake({ password: 'pw', queue: true, deriveKeys: recording.derive, ...options });
    machine.handle({ uid: 0, packet: { name: 'Client_identity', identity: own } });
    return { machine, runs: recording.runs };
  }

  /** Runs the machine's queued work to the end; returns the packets it sent. */
  async function drain(machine: ReceiverHandshake): Promise<Frame[]> {
    const sent: Frame[] = [];
    const signal = new AbortController().signal;
    for (let work = machine.work(signal); work !== null; work = machine.work(signal)) sent.push(...(await work).send);
    return sent;
  }

  it('refuses counts outside [1, MAX_COUNT] with 0d 03 at once, without a PBKDF2', async () => {
    const { machine, runs } = receiver();
    for (const [uid, count] of [[5, BigInt(MAX_COUNT) + 1n], [6, 1n << 62n], [7, 0n]] as const) {
      expect(machine.handle(newServer(uid, count)).send).toEqual([{ uid, packet: { name: 'Spoke_failure', code: 3 } }]);
    }
    expect(await drain(machine)).toEqual([]);
    expect(runs).toEqual([]);
    expect(machine.stats).toMatchObject({ advertised: 3, refused: 3, derivationsStarted: 0 });
    expect(machine.giveUp(1).message).toBe('Timeout: no sender came within 1 s (3 senders advertised: 3 refused, 0 ignored)');
  });

  it('queues a sender at the cap, derives it once in work(), then sends 07', async () => {
    const { machine, runs } = receiver();
    expect(machine.handle(newServer(5, MAX_COUNT)).send).toEqual([]); // nothing derived inside handle()
    expect(runs).toEqual([]);
    const sent = await drain(machine);
    expect(runs.map((r) => [r.count, r.finished])).toEqual([[MAX_COUNT, true]]);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ uid: 5, packet: { name: 'X_and_client_identity', identity: own } });
  });

  it('derives a sender once: the same uid and identity advertised again is not tried again', async () => {
    const { machine, runs } = receiver();
    machine.handle(newServer(5, 16));
    machine.handle(newServer(5, 16)); // still queued
    await drain(machine);
    machine.handle(newServer(5, 16)); // tried already
    expect(await drain(machine)).toEqual([]);
    expect(runs).toHaveLength(1);
    expect(machine.stats).toMatchObject({ advertised: 3, repeated: 2, derivationsDone: 1 });
    // The same uid with another identity is another sender (the relay reused the uid).
    machine.handle(newServer(5, 16, sid(99)));
    expect(await drain(machine)).toHaveLength(1);
    expect(runs).toHaveLength(2);
  });

  it('bounds the queue in senders: the excess is ignored and counted', async () => {
    const { machine, runs } = receiver({ maxQueuedSenders: 3 });
    for (let uid = 1; uid <= 5; uid++) machine.handle(newServer(uid, 16));
    expect(machine.stats).toMatchObject({ advertised: 5, ignored: 2 });
    expect(await drain(machine)).toHaveLength(3);
    expect(runs).toHaveLength(3);
    // Drained: there is room again.
    machine.handle(newServer(6, 16));
    expect(await drain(machine)).toHaveLength(1);
  });

  it('bounds the queue in PBKDF2 work', async () => {
    const { machine, runs } = receiver({ maxQueuedWork: 100 });
    machine.handle(newServer(1, 60));
    machine.handle(newServer(2, 60)); // 120 > 100: ignored
    machine.handle(newServer(3, 40)); // 100: fits
    expect(machine.stats.ignored).toBe(1);
    await drain(machine);
    expect(runs.map((r) => r.count)).toEqual([60, 40]);
  });

  it('drops a queued sender that leaves (09) before its turn', async () => {
    const { machine, runs } = receiver();
    machine.handle(newServer(1, 16));
    machine.handle(newServer(2, 16));
    machine.handle({ uid: 0, packet: { name: 'Closed', uid: 1 } });
    const sent = await drain(machine);
    expect(runs).toHaveLength(1);
    expect(sent.map((f) => f.uid)).toEqual([2]);
  });
});

describe('a receiver against fake senders on a real relay', () => {
  let relay: Awaited<ReturnType<typeof startHostRelay>>;
  const fakes: FakeSender[] = [];

  beforeEach(async () => {
    relay = await startHostRelay({ address: '127.0.0.1', port: 0, securePort: 0, log: () => {} });
  });

  afterEach(async () => {
    for (const fake of fakes.splice(0)) fake.socket.destroy();
    await relay?.close();
  });

  async function fakeSender(count: bigint): Promise<FakeSender> {
    const fake = await registerFake(relay.ports.handshake, count);
    fakes.push(fake);
    return fake;
  }

  async function failure(promise: Promise<unknown>): Promise<BobError> {
    const error = await promise.then(
      () => new Error('expected a BobError'),
      (e: unknown) => e,
    );
    if (error instanceof BobError) return error;
    throw error;
  }

  const pair = (machine: ReceiverHandshake, timeoutMs: number) =>
    failure(pairThroughRelay('127.0.0.1', relay.ports.handshake, machine, { deadline: new Deadline(timeoutMs), log: silentLogger }));

  it('refuses senders with huge counts with 0d 03 through the relay, running no PBKDF2', async () => {
    const huge = await fakeSender(1n << 62n);
    const over = await fakeSender(BigInt(MAX_COUNT) + 1n);
    const { derive, runs } = recordingDerivation();
    const machine = new ReceiverHandshake({ password: 'pw', queue: true, deriveKeys: derive });
    const error = await pair(machine, 500);
    expect(error.code).toBe(ExitCode.Timeout);
    expect(runs).toEqual([]);
    expect(machine.stats).toMatchObject({ advertised: 2, refused: 2, derivationsStarted: 0 });
    // The relay forwards the receiver's 0d 03 to each fake.
    for (const fake of [huge, over]) {
      await until(() => fake.frames.some((f) => f.packet.name === 'Spoke_failure'));
      expect(fake.frames.find((f) => f.packet.name === 'Spoke_failure')?.packet).toEqual({ name: 'Spoke_failure', code: 3 });
    }
  });

  it('--timeout ends the handshake while a derivation is still running, and aborts it', async () => {
    await fakeSender(BigInt(MAX_COUNT));
    const { derive, runs } = recordingDerivation(stalledDerivation);
    const machine = new ReceiverHandshake({ password: 'pw', queue: true, deriveKeys: derive });
    const error = await pair(machine, 300);
    expect({ code: error.code, message: error.message }).toEqual({ code: ExitCode.Timeout, message: 'Timeout: no sender came within 0.3 s' });
    expect(runs).toHaveLength(1);
    expect(runs[0].finished).toBe(false);
    expect(runs[0].signal.aborted).toBe(true);
  });

  it('--timeout fires during a real PBKDF2 far longer than the timeout: it never finishes', async () => {
    // 4 × 2·10^6 HMACs: seconds of CPU on any machine, against a 0.3 s timeout.
    // Run in one piece, it would finish before the timer could fire.
    const count = 2_000_000;
    await fakeSender(BigInt(count));
    const machine = new ReceiverHandshake({ password: 'pw', queue: true, maxCount: count });
    const error = await pair(machine, 300);
    expect(error.code).toBe(ExitCode.Timeout);
    expect(machine.stats).toMatchObject({ advertised: 1, derivationsStarted: 1, derivationsDone: 0 });
  });

  it('a burst of senders at the cap is bounded by the queue; the rest are ignored, counted, and named in the error', async () => {
    const fakesCount = 40;
    for (let i = 0; i < fakesCount; i++) await fakeSender(BigInt(MAX_COUNT));
    const machine = new ReceiverHandshake({ password: 'pw', queue: true });
    const error = await pair(machine, 1000);
    const { advertised, ignored, derivationsStarted, derivationsDone } = machine.stats;
    expect(error.code).toBe(ExitCode.Timeout);
    expect(advertised).toBe(fakesCount);
    // The queue admits 16 senders at the cap, plus one per derivation that
    // finished (freeing its share) before the rest of the burst arrived.
    expect(ignored).toBeGreaterThanOrEqual(fakesCount - 16 - derivationsDone);
    expect(derivationsStarted).toBeLessThanOrEqual(fakesCount - ignored);
    expect(error.message).toBe(`Timeout: no sender came within 1 s (${fakesCount} senders advertised: 0 refused, ${ignored} ignored)`);
  });
});
