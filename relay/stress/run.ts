// One stress run, what the seed's script does with 2N bob processes, done
// with 2N in-process clients (relay/client as a library: 512 clients cost a
// few MB, not 512 processes): N pairs with unique random passwords, started
// in shuffled order under a concurrency bound, each received file checked
// against the sent one by SHA-256.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RelayEndpoint, bufferSource, receive, send } from '../client/index.js';
import { asBobError, BobError, ExitCode } from '../client/errors.js';
import type { Logger } from '../client/log.js';
import { type Role, type Slot, StartSchedule } from './schedule.js';

export interface RunOptions {
  readonly relay: RelayEndpoint;
  readonly pairs: number;
  readonly size: number;
  readonly concurrency: number;
  readonly pbkdf2Count: number;
  /** Each client gives up after this long without a peer. */
  readonly clientTimeoutMs: number;
  /** Hard limit on one client's whole life (default 3 x clientTimeoutMs):
   *  whatever it waits for, it is aborted then and counted as failed, so a
   *  run always ends. */
  readonly clientLimitMs?: number;
  readonly log: Logger;
  /** Each client's own address (pair index and role), e.g. one loopback
   *  address per client; default: the system's choice for all. */
  readonly sourceAddress?: (pair: number, role: Role) => string | undefined;
}

export interface Failure {
  readonly pair: number;
  readonly role: Role | 'check';
  readonly code: number;
  readonly message: string;
}

export interface RunResult {
  readonly pairs: number;
  readonly ok: number;
  readonly failed: number;
  readonly wallMs: number;
  readonly failures: Failure[];
}

interface Pair {
  readonly password: string;
  readonly data: Uint8Array;
  readonly sha256: string;
  readonly output: string;
}

export async function runStress(options: RunOptions): Promise<RunResult> {
  const dir = await mkdtemp(join(tmpdir(), 'bob-stress-'));
  try {
    const pairs = makePairs(options.pairs, options.size, dir);
    const started = performance.now();
    const failures = await runClients(pairs, options);
    const wallMs = performance.now() - started;
    const broken = new Set(failures.map((f) => f.pair));
    for (const [index, pair] of pairs.entries()) {
      if (broken.has(index)) continue;
      const problem = await checkOutput(pair);
      if (problem !== null) failures.push({ pair: index, role: 'check', code: 1, message: problem });
    }
    const failed = new Set(failures.map((f) => f.pair)).size;
    return { pairs: pairs.length, ok: pairs.length - failed, failed, wallMs, failures };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function makePairs(count: number, size: number, dir: string): Pair[] {
  const passwords = new Set<string>();
  while (passwords.size < count) passwords.add(randomBytes(12).toString('base64url'));
  return [...passwords].map((password, i) => {
    const data = new Uint8Array(randomBytes(size));
    return { password, data, sha256: sha256(data), output: join(dir, `file.txt.${i}`) };
  });
}

/** Starts every client as the schedule allows; resolves with the failures once all have ended. */
function runClients(pairs: Pair[], options: RunOptions): Promise<Failure[]> {
  const schedule = new StartSchedule(pairs.length, options.concurrency);
  const failures: Failure[] = [];
  return new Promise((resolve) => {
    const pump = () => {
      for (let slot = schedule.next(); slot !== null; slot = schedule.next()) start(slot);
      if (schedule.queued === 0 && schedule.running === 0) resolve(failures);
    };
    const start = (slot: Slot) => {
      runClient(slot, pairs[slot.pair], options)
        .catch((error: unknown) => {
          const e = asBobError(error);
          failures.push({ pair: slot.pair, role: slot.role, code: e.code, message: e.message });
          options.log.info(`pair ${slot.pair} ${slot.role}: ${e.message}`);
        })
        .finally(() => {
          schedule.finished(slot);
          pump();
        });
    };
    pump();
  });
}

async function runClient(slot: Slot, pair: Pair, options: RunOptions): Promise<void> {
  const limitMs = options.clientLimitMs ?? 3 * options.clientTimeoutMs;
  const abort = new AbortController();
  const localAddress = options.sourceAddress?.(slot.pair, slot.role);
  const relay = localAddress === undefined ? options.relay : { ...options.relay, localAddress };
  const common = { relay, password: pair.password, timeoutMs: options.clientTimeoutMs, signal: abort.signal };
  const client = slot.role === 'send'
    ? send({ ...common, file: bufferSource('file.txt', pair.data), pbkdf2Count: options.pbkdf2Count })
    : receive({ ...common, output: pair.output });
  // At the limit the signal makes the client fail its sockets, and the race
  // stops waiting even where a client would not notice. The timer goes with
  // the client, so nothing outlives it.
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abort.abort();
      reject(new BobError(ExitCode.Timeout, `the client had not finished after ${limitMs / 1000} s (stress's limit per client)`));
    }, limitMs);
  });
  client.catch(() => {}); // after the limit, its own failure is no longer news
  try {
    await Promise.race([client, limit]);
  } finally {
    clearTimeout(timer);
  }
}

async function checkOutput(pair: Pair): Promise<string | null> {
  let received: Uint8Array;
  try {
    received = await readFile(pair.output);
  } catch {
    return 'no output file';
  }
  return sha256(received) === pair.sha256 ? null : 'SHA-256 of the received file differs from the sent one';
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
