// The `bob` command line in-process: usage errors exit 124 before any network
// use, help lists the exit codes, and runtime failures print `bob: <message>.`
// with their documented code.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../relay/cli.js';
import { startHostRelay } from '../../relay/server/host.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bob-cli-'));
  await writeFile(join(dir, 'exists.txt'), 'x');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

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

/** A local port nothing listens on, so that a mistaken connection fails fast instead of hanging. */
const NOWHERE = ['-r', '127.0.0.1:1'];

describe('bob command line: usage errors exit 124', () => {
  it.each([
    ['an unknown option', ['recv', '--bogus', 'pw', ...NOWHERE], /unknown option '--bogus'/],
    ['an unknown command-less option', ['--bogus'], /unknown option '--bogus'/],
    ['send without PATH', ['send', ...NOWHERE], /missing required argument 'PATH'/],
    ['send of a missing file', ['send', 'nope.txt', ...NOWHERE], /^bob: nope\.txt does not exist\.$/m],
    ['send of a directory', ['send', '.', ...NOWHERE], /^bob: \. is not a regular file/m],
    ['recv -o of an existing file', ['recv', 'pw', '-o', 'exists.txt', ...NOWHERE], /^bob: Output "exists\.txt" already exists\.$/m],
    ['recv -o .', ['recv', 'pw', '-o', '.', ...NOWHERE], /^bob: Invalid output "\.": not a file name\.$/m],
    ['recv -o ..', ['recv', 'pw', '-o', '..', ...NOWHERE], /^bob: Invalid output "\.\.": not a file name\.$/m],
    ['a bad relay port', ['recv', 'pw', '-r', '127.0.0.1:99999'], /^bob: invalid relay port in "127\.0\.0\.1:99999"\.$/m],
    ['a bad --secure-port', ['recv', 'pw', '--secure-port', 'x', ...NOWHERE], /--secure-port <N>' argument 'x' is invalid/],
    ['a bad --timeout', ['recv', 'pw', '--timeout', '-1', ...NOWHERE], /--timeout <SECONDS>' argument '-1' is invalid/],
    ['a PBKDF2 count above the cap', ['send', 'exists.txt', '--pbkdf2-count', '20001', ...NOWHERE], /expected at most 20000/],
    ['a PBKDF2 count of 0', ['send', 'exists.txt', '--pbkdf2-count', '0', ...NOWHERE], /expected a positive integer/],
    ['extra arguments', ['recv', 'pw', 'extra', ...NOWHERE], /too many arguments/],
    ['stress --concurrency 1', ['stress', '--concurrency', '1'], /expected at least 2/],
    ['an unknown --verbosity', ['recv', 'pw', '--verbosity', 'loud', ...NOWHERE], /Allowed choices are quiet, error, warning, info, debug/],
    ['recv without a password and nothing on stdin', ['recv', ...NOWHERE], /^bob: no password given\.$/m],
  ])('%s', async (_, args, message) => {
    const run = await bob(args);
    expect(run.code).toBe(124);
    expect(run.stderr).toMatch(message);
  });
});

describe('bob command line: help and runtime errors', () => {
  it('--help lists the commands and every exit code, exit 0', async () => {
    const run = await bob(['--help']);
    expect(run.code).toBe(0);
    for (const text of ['send [options] <PATH>', 'recv [options] [PASSWORD]', 'relay [options] [ADDR] [PORT]', 'stress [options]']) {
      expect(run.stdout).toContain(text);
    }
    for (const code of ['0 ', '1 ', '3 ', '4 ', '5 ', '6 ', '7 ', '124', '125']) expect(run.stdout).toMatch(new RegExp(`^ {2}${code}`, 'm'));
  });

  it('send --help documents the flags the seed script uses and the defaults', async () => {
    const run = await bob(['send', '--help']);
    expect(run.code).toBe(0);
    for (const flag of ['-r, --relay', '--secure-port', '-p, --password', '--no-compression', '--pbkdf2-count', '--timeout', '-v, --verbose', '-q, --quiet']) {
      expect(run.stdout).toContain(flag);
    }
    expect(run.stdout).toContain('default: "127.0.0.1:9000"');
    expect(run.stdout).toContain('default: 16,');
  });

  it('an unreachable relay is exit 4, after printing the generated password', async () => {
    const run = await bob(['send', 'exists.txt', ...NOWHERE]);
    expect(run.code).toBe(4);
    expect(run.stdout).toMatch(/^Password: [a-z]{8}-[a-z]{8}\n$/);
    expect(run.stderr).toBe('bob: Connection failed: 127.0.0.1:1: ECONNREFUSED.\n');
  });

  it('-vvv (one argument, as the seed script writes it) turns debug logs on', async () => {
    const run = await bob(['recv', 'pw', '-vvv', ...NOWHERE]);
    expect(run.code).toBe(4);
    expect(run.stderr).toMatch(/^bob: \[DEBUG\] connecting to the relay at 127\.0\.0\.1:1\n/);
    expect((await bob(['recv', 'pw', '-vv', ...NOWHERE])).stderr).toContain('[DEBUG]');
    expect((await bob(['recv', 'pw', '-v', ...NOWHERE])).stderr).not.toContain('[DEBUG]');
  });

  it('`bob PATH` sends and `bob PASSWORD` receives (bob\'s shortcut)', async () => {
    const asSend = await bob(['exists.txt', ...NOWHERE, '-q']);
    expect(asSend).toEqual({ code: 4, stdout: '', stderr: 'bob: Connection failed: 127.0.0.1:1: ECONNREFUSED.\n' });
    const asRecv = await bob(['some-password', ...NOWHERE, '-o', 'new.txt']);
    expect(asRecv.code).toBe(4);
  });

  it('a wrong password: recv --fail-fast exits 3 at once, send exits 3 at its --timeout', async () => {
    const relay = await startHostRelay({ address: '127.0.0.1', port: 0, securePort: 0, log: () => {} });
    try {
      const at = ['-r', `127.0.0.1:${relay.ports.handshake}`, '--secure-port', String(relay.ports.secure)];
      const [sent, received] = await Promise.all([
        bob(['send', 'exists.txt', '-p', 'right', '--pbkdf2-count', '16', '--timeout', '1.5', ...at]),
        bob(['recv', 'wrong', '--fail-fast', '-o', 'out.txt', '--timeout', '10', ...at]),
      ]);
      expect(received.code).toBe(3);
      expect(received.stderr).toMatch(/^bob: \[WARNING\] Wrong password: the sender 127\.0\.0\.1:\d+ uses another one\nbob: Wrong password: the sender 127\.0\.0\.1:\d+ uses another one\.\n$/);
      expect(sent.code).toBe(3);
      expect(sent.stderr).toMatch(/^bob: \[WARNING\] Wrong password: the receiver .*\nbob: Wrong password: 1 receiver used another one, and none with ours came within 1\.5 s\.\n$/);
    } finally {
      await relay.close();
    }
  });
});
