// The built `bob` (dist/relay/cli.js, as npm installs it) in child processes:
// a real transfer between two processes with a generated password, and
// `bob relay` answering SIGINT with exit 0. `npm test` builds dist first.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostRelay } from '../../relay/server/host.js';

const CLI = resolve(import.meta.dirname, '../../dist/relay/cli.js');

let dir: string;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm test does it)`);
  dir = await mkdtemp(join(tmpdir(), 'bob-proc-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; `watch` sees everything printed so far on stdout and stderr after each chunk. */
function bob(args: string[], cwd: string, watch?: (stdout: string, stderr: string) => void): { child: ChildProcess; done: Promise<Exit> } {
  // stdin at EOF, as under GNU parallel: recv must take that as "accept".
  const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d;
    watch?.(stdout, stderr);
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d;
    watch?.(stdout, stderr);
  });
  const done = new Promise<Exit>((res) => child.on('close', (code) => res({ code, stdout, stderr })));
  return { child, done };
}

/** Resolves with `pattern`'s first match in the output, or fails if the process ends first. */
function waitForOutput(pattern: RegExp, args: string[], cwd: string): { match: Promise<RegExpExecArray>; proc: ReturnType<typeof bob> } {
  let found!: (m: RegExpExecArray) => void;
  const seen = new Promise<RegExpExecArray>((res) => (found = res));
  const proc = bob(args, cwd, (stdout, stderr) => {
    const m = pattern.exec(stdout + stderr);
    if (m) found(m);
  });
  const ended = proc.done.then((exit): RegExpExecArray => {
    throw new Error(`bob ${args.join(' ')} ended before printing ${pattern}: ${JSON.stringify(exit)}`);
  });
  return { match: Promise.race([seen, ended]), proc };
}

describe('bob as a process', () => {
  it('starts with a node shebang', async () => {
    expect((await readFile(CLI, 'utf8')).split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it('sends a file to another process; recv accepts on stdin EOF and saves it under the sender\'s name', async () => {
    const relay = await startHostRelay({ address: '127.0.0.1', port: 0, securePort: 0, log: () => {} });
    try {
      const at = ['-r', `127.0.0.1:${relay.ports.handshake}`, '--secure-port', String(relay.ports.secure)];
      const data = randomBytes(300_000);
      await writeFile(join(dir, 'photo.jpg'), data);
      const out = join(dir, 'inbox');
      await mkdir(out);
      const sender = waitForOutput(/^Password: (\S+)\n/, ['send', 'photo.jpg', ...at], dir);
      try {
        const pw = (await sender.match)[1];
        expect(pw).toMatch(/^[a-z]+-[a-z]+$/);
        const received = await bob(['recv', pw, ...at], out).done;
        const sent = await sender.proc.done;
        expect(received.stderr).toBe('');
        expect(received.code).toBe(0);
        expect(received.stdout).toMatch(/^Receive "photo\.jpg" \(293\.0 KiB\) from 127\.0\.0\.1:\d+ \[Y\/n\]: \n>>> Received a file: photo\.jpg\.\n$/);
        expect(sent).toEqual({ code: 0, stdout: `Password: ${pw}\n`, stderr: '' });
        const copy = await readFile(join(out, 'photo.jpg'));
        expect(createHash('sha256').update(copy).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
      } finally {
        sender.proc.child.kill(); // a no-op once it has exited
      }
    } finally {
      await relay.close();
    }
  });

  it('`bob relay` listens, serves, and exits 0 on SIGINT', async () => {
    const started = waitForOutput(/listening on 127\.0\.0\.1:(\d+) \(handshake\) and :(\d+)/, ['relay', '127.0.0.1', '0', '--secure-port', '0', '-v'], dir);
    const relay = started.proc;
    const [, handshakePort, securePort] = await started.match;
    try {
      const at = ['-r', `127.0.0.1:${handshakePort}`, '--secure-port', securePort];
      await writeFile(join(dir, 'small.txt'), 'hello');
      const [sent, received] = await Promise.all([
        bob(['send', 'small.txt', '-p', 'via-cli-relay', '--pbkdf2-count', '16', '-q', ...at], dir).done,
        bob(['recv', 'via-cli-relay', '-y', '-q', '-o', 'small.copy', ...at], dir).done,
      ]);
      expect(sent.code).toBe(0);
      expect(received).toEqual({ code: 0, stdout: '', stderr: '' });
      expect(await readFile(join(dir, 'small.copy'), 'utf8')).toBe('hello');
    } finally {
      relay.child.kill('SIGINT');
    }
    const exit = await relay.done;
    expect(exit.code).toBe(0);
  });
});
