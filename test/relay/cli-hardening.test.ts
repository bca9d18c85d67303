// `bob recv` and `bob send` on the command line against hostile or careless
// peers: the accept question shows the file's name and size, --max-size,
// the PBKDF2 count senders advertise by default, refused and ignored
// senders in the logs, and Ctrl-C (SIGINT/SIGTERM) removing a partial file
// (the last in child processes of the built CLI, as a user would press it).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { deflateSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connectTcp } from '../../relay/client/socket.js';
import { main } from '../../relay/cli.js';
import { HandshakeDecoder } from '../../relay/handshake/decoder.js';
import { type Frame, encodeFrame } from '../../relay/handshake/packet.js';
import { objectHeader, packHeader } from '../../relay/pack/format.js';
import { startHostRelay } from '../../relay/server/host.js';
import { MAX_COUNT } from '../../relay/spoke/public.js';
import { type FakeSender, craftedSender, fakeSender, until } from '../helpers/bob-peers.js';

const CLI = resolve(import.meta.dirname, '../../dist/relay/cli.js');

let relay: Awaited<ReturnType<typeof startHostRelay>>;
let at: string[];
let dir: string;
const fakes: FakeSender[] = [];

beforeEach(async () => {
  relay = await startHostRelay({ address: '127.0.0.1', port: 0, securePort: 0, log: () => {} });
  at = ['-r', `127.0.0.1:${relay.ports.handshake}`, '--secure-port', String(relay.ports.secure)];
  dir = await mkdtemp(join(tmpdir(), 'bob-cli-hardening-'));
});

afterEach(async () => {
  for (const fake of fakes.splice(0)) fake.socket.destroy();
  await relay?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `bob` in-process; stdin holds `stdinText` then ends. */
async function bob(args: string[], stdinText = ''): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    stdin: Readable.from([stdinText]),
    cwd: dir,
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

/** `bob send NAME` of `bytes` with password `pw`, and `bob recv pw -o out ...recvArgs` with `stdinText`. */
async function transfer(name: string, bytes: Uint8Array, pw: string, recvArgs: string[], stdinText = '') {
  await writeFile(join(dir, name), bytes);
  const [sent, received] = await Promise.all([
    bob(['send', name, '-p', pw, '-q', '--timeout', '10', ...at]),
    bob(['recv', pw, '-o', 'out', '--timeout', '10', ...recvArgs, ...at], stdinText),
  ]);
  return { sent, received };
}

describe('bob recv asks about the file, not just the sender', () => {
  it('shows the name and size; "n" refuses it (exit 5) and nothing is saved', async () => {
    const { received } = await transfer('report.txt', new Uint8Array(randomBytes(3000)), 'ask-n', [], 'n\n');
    expect(received.code).toBe(5);
    expect(received.stdout).toMatch(/^Receive "report\.txt" \(2\.9 KiB\) from 127\.0\.0\.1:\d+ \[Y\/n\]: $/);
    expect(received.stderr).toBe('bob: Refused: "report.txt" (3000 bytes) was not accepted.\n');
    expect(await readdir(dir)).toEqual(['report.txt']);
  });

  it('"y" accepts; a name with quotes is shown quoted unambiguously', async () => {
    const data = new Uint8Array(randomBytes(10));
    const { received } = await transfer('say "hi".txt', data, 'ask-y', [], 'y\n');
    expect(received.code).toBe(0);
    expect(received.stdout).toMatch(/^Receive "say \\"hi\\"\.txt" \(10 bytes\) from 127\.0\.0\.1:\d+ \[Y\/n\]: >>> Received a file: say "hi"\.txt \(save into out\)\.\n$/);
    expect(new Uint8Array(await readFile(join(dir, 'out')))).toEqual(data);
  });

  it('-y asks nothing', async () => {
    const { received } = await transfer('a.bin', Uint8Array.of(1), 'ask-yes', ['-y']);
    expect(received).toEqual({ code: 0, stdout: '>>> Received a file: a.bin (save into out).\n', stderr: '' });
  });
});

describe('bob recv --max-size', () => {
  const data = new Uint8Array(randomBytes(3050));

  it('takes K as 1024 bytes: 3050 bytes fit in 3K', async () => {
    const { received } = await transfer('m.bin', data, 'max-3k', ['-y', '--max-size', '3K']);
    expect(received.code).toBe(0);
  });

  it('refuses a larger file with exit 5 before writing it (suffixes in either case)', async () => {
    const { received } = await transfer('m.bin', data, 'max-2k', ['-y', '--max-size', '2k']);
    expect(received.code).toBe(5);
    expect(received.stderr).toBe('bob: Refused: "m.bin" (3050 bytes) exceeds the limit of 2048 bytes.\n');
    expect(await readdir(dir)).toEqual(['m.bin']);
  });

  it('takes M and G', async () => {
    expect((await transfer('m.bin', data, 'max-m', ['-y', '--max-size', '1M'])).received.code).toBe(0);
    await rm(join(dir, 'out'));
    expect((await transfer('m.bin', data, 'max-g', ['-y', '--max-size', '1G'])).received.code).toBe(0);
  });

  it.each(['1X', '1.5M', '-1', 'K', '99999999999G'])('refuses --max-size %s (exit 124)', async (value) => {
    const run = await bob(['recv', 'pw', '--max-size', value, '-r', '127.0.0.1:1']);
    expect(run.code).toBe(124);
    expect(run.stderr).toContain(`--max-size <BYTES>' argument '${value}' is invalid`);
  });
});

describe('bob send advertises bob\'s PBKDF2 count', () => {
  /** The count in the public packet the relay shows a receiver for `bob send ...args`. */
  async function advertisedCount(args: string[]): Promise<number> {
    await writeFile(join(dir, 'c.txt'), 'x');
    const socket = await connectTcp('127.0.0.1', relay.ports.handshake, 5000);
    try {
      const decoder = new HandshakeDecoder();
      const frames: Frame[] = [];
      socket.on('data', (chunk: Buffer) => frames.push(...decoder.push(new Uint8Array(chunk)).frames));
      socket.write(encodeFrame({ uid: 0, packet: { name: 'Hello_as_a_client' } }));
      const sending = bob(['send', 'c.txt', '-p', 'pw', '-q', '--timeout', '1', ...args, ...at]);
      await until(() => frames.some((f) => f.packet.name === 'New_server'));
      expect((await sending).code).toBe(6); // nobody ever answers it
      const advertised = frames.find((f) => f.packet.name === 'New_server')!.packet as { public: Uint8Array };
      return Number(new DataView(advertised.public.buffer, advertised.public.byteOffset).getBigUint64(4));
    } finally {
      socket.destroy();
    }
  }

  it('16 by default; --pbkdf2-count and BOB_PBKDF2_COUNT change it', async () => {
    expect(await advertisedCount([])).toBe(16);
    expect(await advertisedCount(['--pbkdf2-count', String(MAX_COUNT)])).toBe(MAX_COUNT);
    process.env.BOB_PBKDF2_COUNT = '1000';
    try {
      expect(await advertisedCount([])).toBe(1000);
    } finally {
      delete process.env.BOB_PBKDF2_COUNT;
    }
  });
});

describe('bob recv logs the senders it refuses or ignores', () => {
  it('warns once about a count above the cap (then -v), and names the refusals in the timeout', async () => {
    for (let i = 0; i < 3; i++) fakes.push(await fakeSender(relay.ports.handshake, 1_000_000n));
    const run = await bob(['recv', 'pw', '-o', 'out', '--timeout', '0.5', ...at]);
    expect(run.code).toBe(6);
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^bob: \[WARNING\] refused sender 127\.0\.0\.1:\d+: invalid public packet: PBKDF2 count 1000000 outside \[1, 20000\]$/);
    expect(lines[1]).toBe('bob: Timeout: no sender came within 0.5 s (3 senders advertised: 3 refused, 0 ignored).');
  });

  it('-v says when the queue starts ignoring senders, and the timeout counts them', async () => {
    const count = 40;
    for (let i = 0; i < count; i++) fakes.push(await fakeSender(relay.ports.handshake, BigInt(MAX_COUNT)));
    const run = await bob(['recv', 'pw', '-o', 'out', '--timeout', '1', '-v', ...at]);
    expect(run.code).toBe(6);
    expect(run.stderr.match(/\[INFO\] ignoring sender 127\.0\.0\.1:\d+: \d+ senders \(PBKDF2 work \d+\) already queued\n/g)).toHaveLength(1);
    const ignored = Number(/\((\d+) senders advertised: 0 refused, (\d+) ignored\)\.\n$/.exec(run.stderr)?.[2]);
    expect(ignored).toBeGreaterThan(0);
  });
});

describe('Ctrl-C during bob recv (the built CLI in a child process)', () => {
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm test does it)`);
  });

  function recvProcess(args: string[], cwd: string): { child: ChildProcess; done: Promise<Run>; stderr: () => string } {
    const child = spawn(process.execPath, [CLI, 'recv', ...args, ...at], { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d));
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    const done = new Promise<Run>((res) => child.on('close', (code) => res({ code: code ?? -1, stdout, stderr })));
    return { child, done, stderr: () => stderr };
  }

  /** The receiver's `.bob-xxxxxx.part`, once it holds bytes ('' if the receiver ended first). */
  async function partialFile(inbox: string, ended: () => boolean): Promise<string> {
    let found = '';
    await until(async () => {
      if (ended()) return true;
      for (const name of await readdir(inbox)) {
        if (/^\.bob-[a-z0-9]{6}\.part$/.test(name) && (await stat(join(inbox, name))).size > 0) found = name;
      }
      return found !== '';
    }, 20);
    return found;
  }

  it('while waiting for a sender: exit 130', async () => {
    const proc = recvProcess(['pw', '-v'], dir);
    let exited = false;
    void proc.done.then(() => (exited = true));
    // Registered at the relay: the handshake is under way (or it ended, and the assertions say why).
    await until(() => exited || /the relay knows us as/.test(proc.stderr()), 20);
    proc.child.kill('SIGINT');
    const exit = await proc.done;
    expect(exit.code).toBe(130);
    expect(exit.stderr).toMatch(/^bob: \[INFO\] the relay knows us as 127\.0\.0\.1:\d+\nbob: Interrupted by SIGINT\.\n$/);
  });

  it.each(['SIGINT', 'SIGTERM'] as const)('mid-file, %s removes the .part file and exits 130', async (signal) => {
    const inbox = join(dir, 'inbox');
    await mkdir(inbox);
    // A sender that sends the start of a 1 MiB file, then stalls.
    const data = randomBytes(1024 * 1024);
    const zlib = new Uint8Array(deflateSync(data, { level: 0 }));
    const name = new TextEncoder().encode('big.bin');
    const start = [packHeader(), objectHeader(4, name.length), new Uint8Array(deflateSync(name)), objectHeader(3, data.length), zlib.subarray(0, 256 * 1024)];
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    const sender = craftedSender({ host: '127.0.0.1', port: relay.ports.handshake, securePort: relay.ports.secure }, 'ctrl-c', start, hold);
    const proc = recvProcess(['ctrl-c', '-y', '-o', 'big.bin'], inbox);
    let exited = false;
    void proc.done.then(() => (exited = true));
    try {
      expect(await partialFile(inbox, () => exited)).not.toBe('');
      proc.child.kill(signal);
      const exit = await proc.done;
      expect(exit.code).toBe(130);
      expect(exit.stderr).toBe(`bob: Interrupted by ${signal}; the partial file was removed.\n`);
      expect(await readdir(inbox)).toEqual([]);
    } finally {
      release();
      proc.child.kill('SIGKILL');
      await sender;
    }
  });
});

afterAll(() => {
  delete process.env.BOB_PBKDF2_COUNT;
});
