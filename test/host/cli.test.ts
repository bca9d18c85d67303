// `uk run` as users meet it: the built CLI in a child process. Bad input is
// a clear one-line message and exit 2; a device that cannot be opened is
// exit 4; a guest that is not a guest app is 2, one that fails is 1; SIGINT
// and SIGTERM stop a running guest cleanly (exit 0, final stats), and
// `--stats -` writes JSON lines with the documented fields.

import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { requires } from '../helpers/capabilities.js';
import { echoThrough, FIXTURES, freePort, randomBytes, runUk, spawnUk } from '../helpers/uk.js';

const ROOT = process.getuid?.() === 0;
/** Root with a tun driver: the tender gets as far as TUNSETIFF. */
const kernelTap = requires('root', 'tun');
/** Someone without CAP_NET_ADMIN: this user, or nobody by way of setpriv. */
const unprivileged = requires('tun', ...(ROOT ? (['setpriv'] as const) : []));

/** Whether /dev/net/tun opens read-write for `who` (null: this process). */
function tunOpenable(who: { uid: number; gid: number } | null): boolean {
  if (who === null) {
    try {
      accessSync('/dev/net/tun', fsConstants.R_OK | fsConstants.W_OK);
      return true;
    } catch {
      return false;
    }
  }
  // No supplementary groups (setpriv --clear-groups): owner, group or other bits.
  const st = statSync('/dev/net/tun');
  const bits = st.uid === who.uid ? st.mode >> 6 : st.gid === who.gid ? st.mode >> 3 : st.mode;
  return (bits & 0o6) === 0o6;
}

/** The lines a failing run wrote to stderr. */
function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

async function expectUsage(args: string[], message: RegExp): Promise<void> {
  const r = await runUk(['run', ...args]);
  expect(r.code, r.stderr).toBe(2);
  expect(lines(r.stderr)).toHaveLength(1);
  expect(r.stderr).toMatch(message);
  expect(r.stdout).toBe('');
}

describe('uk run: bad input', () => {
  it('an unknown flag', () => expectUsage(['--bogus', 'echo'], /unknown option '--bogus'/));

  it('a bad --mem: not a size, too small', async () => {
    await expectUsage(['--mem', '40X', 'echo'], /^uk: --mem: invalid size '40X'/);
    await expectUsage(['--mem', '8M', 'echo'], /^uk: memory budget 8M is too small: at least 16M/);
  });

  it('a bad --mtu: not a whole number, or a frame that would not fit one arena chunk', async () => {
    await expectUsage(['--mtu', 'jumbo', 'echo'], /^uk: --mtu jumbo: expected a whole number/);
    await expectUsage(['--mtu', '9000', 'echo'], /^uk: --mtu 9000: must be a whole number from 576 to 2000 \(a frame fits one 2048-byte arena chunk\)/);
    await expectUsage(['--mtu', '575', 'echo'], /^uk: --mtu 575: must be a whole number from 576 to 2000/);
  });

  it('a bad --heap or --max-connections: not a size or count, or more than the budget holds', async () => {
    await expectUsage(['--heap', 'lots', 'echo'], /^uk: --heap: invalid size 'lots'/);
    await expectUsage(['--heap', '8M', 'echo'], /^uk: heap 8M does not fit a 40M budget/);
    await expectUsage(['--max-connections', '1.5', 'echo'], /^uk: --max-connections 1\.5: expected a whole number/);
    await expectUsage(['--max-connections', '900000', 'echo'], /^uk: max connections 900000: this budget's arena holds 1 to 83968 control blocks/);
  });

  it('a malformed guestfwd or restrict', async () => {
    await expectUsage(['--net', 'user:guestfwd=tcp:10.0.2.100:80-cmd:nc', 'echo'], /^uk: --net user: 'guestfwd=tcp:10\.0\.2\.100:80-cmd:nc' is malformed \(expected guestfwd=tcp:PORT/);
    await expectUsage(['--net', 'user:restrict=partly', 'echo'], /^uk: --net user: 'restrict=partly' is malformed/);
  });

  it('a malformed or non-loopback hostfwd', async () => {
    await expectUsage(['--net', 'user:hostfwd=tcp:127.0.0.1:9000', 'echo'], /^uk: --net user: .*hostfwd=tcp:127\.0\.0\.1:9000/);
    await expectUsage(['--net', 'user:hostfwd=tcp:10.1.2.3:9000-:7', 'echo'], /^uk: --net user: .*10\.1\.2\.3/);
    await expectUsage(['--net', 'user:hostfwd=tcp:127.0.0.1:99999-:7', 'echo'], /^uk: --net user: .*99999/);
  });

  it('an unknown network, a TAP without an interface name', async () => {
    await expectUsage(['--net', 'wifi', 'echo'], /^uk: --net: unknown network 'wifi'/);
    await expectUsage(['--net', 'tap:', 'echo'], /^uk: --net tap: missing interface name/);
    await expectUsage(['--net', 'tap:far-too-long-a-name', 'echo'], /^uk: --net tap: invalid interface name/);
  });

  it('an unknown app, a missing module, a module that is not a guest app', async () => {
    await expectUsage(['nosuchapp'], /^uk: unknown app 'nosuchapp' \(expected relay, echo, discard, chargen, or the path of an ES module\)/);
    await expectUsage(['./no/such/guest.mjs'], /^uk: app \.\/no\/such\/guest\.mjs: no such file/);
    await expectUsage([join(FIXTURES, 'not-a-guest.mjs')], /exports no guest main/);
  });

  it('bad values of the other flags', async () => {
    await expectUsage(['--hotpath', 'gpu', 'echo'], /argument 'gpu' is invalid/);
    await expectUsage(['--jit', 'turbo', 'echo'], /argument 'turbo' is invalid/);
    await expectUsage(['--stats-interval', 'soon', 'echo'], /^uk: --stats-interval soon: expected a whole number/);
    await expectUsage(['--ipv4', '10.0.2.300/24', 'echo'], /^uk: --ipv4 10\.0\.2\.300\/24/);
    await expectUsage(['--mac', 'zz:zz', 'echo'], /^uk: --mac zz:zz/);
  });

  it('no app at all', () => expectUsage([], /missing required argument 'app'/));

  it('--help is not an error', async () => {
    const r = await runUk(['run', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--mem <size>/);
    expect(r.stdout).toMatch(/--stats-interval <ms>/);
  });
});

describe('uk run: failures after the command line', () => {
  // As root with /dev/net/tun, 'lo' exists and is not a TAP: TUNSETIFF says EINVAL.
  kernelTap.it('a name that is not a TAP interface is a device error: one line, exit 4', async () => {
    const r = await runUk(['run', '--net', 'tap:lo', 'echo']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toBe('uk: tap:lo: cannot attach to the interface: it exists and is not a TAP interface\n');
  });

  // As root, drop to nobody (setpriv) to see what an unprivileged user sees;
  // otherwise this process is that user. Which step is refused depends on
  // /dev/net/tun's mode, read here: opening it, or attaching (TUNSETIFF).
  unprivileged.it('without CAP_NET_ADMIN, opening a TAP is refused for want of it: one line, exit 4', async () => {
    const wrap = ROOT ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
    const r = await runUk(['run', '--net', 'tap:ukperm0', 'echo'], wrap);
    expect(r.code, r.stderr).toBe(4);
    const expected = tunOpenable(ROOT ? { uid: 65534, gid: 65534 } : null)
      ? 'uk: tap:ukperm0: cannot attach to the interface: permission denied (needs CAP_NET_ADMIN, or a persistent TAP created for this user)\n'
      : 'uk: tap:ukperm0: cannot open /dev/net/tun: permission denied (needs CAP_NET_ADMIN)\n';
    expect(r.stderr).toBe(expected);
  });

  it('a forwarded port already in use: exit 4 naming it', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      const r = await runUk(['run', '--net', `user:hostfwd=tcp:127.0.0.1:${port}-:7`, 'echo']);
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}`));
    } finally {
      server.close();
    }
  });

  it('a guest whose main throws: its error, exit 1', async () => {
    const r = await runUk(['run', join(FIXTURES, 'crashing.mjs')]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/this guest fails on purpose/);
  });
});

describe('uk run: a guest from boot to SIGTERM', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('boots, echoes, writes stats lines, stops on %s with exit 0', async (signal) => {
    const port = await freePort();
    const uk = spawnUk(['run', '--net', `user:hostfwd=tcp:127.0.0.1:${port}-:7`, '--stats', '-', '--stats-interval', '100', 'echo']);
    try {
      await uk.waitFor(/app: echo on the wasm hot path/);
      expect(uk.stderr).toMatch(/^uk: mem: 40M = arena 24M \(384 pages, \d+ chunks\) \+ heap 16M \(old 13M, young 3M\)$/m);
      expect(uk.stderr).toMatch(new RegExp(`net: user: guest 10\\.0\\.2\\.15/24, gateway 10\\.0\\.2\\.2; hostfwd tcp 127\\.0\\.0\\.1:${port} -> guest:7; guest to host: nothing$`, "m"));
      const data = randomBytes(200_000, 3);
      expect(Buffer.compare(await echoThrough(port, data), data)).toBe(0);

      // A connection left open must be closed by the stop (the client sees its end).
      const open = net.connect(port, '127.0.0.1');
      await new Promise((resolve) => open.once('connect', resolve));
      const ended = new Promise<string>((resolve) => {
        open.on('end', () => resolve('end'));
        open.on('close', () => resolve('close'));
        open.on('error', () => resolve('error'));
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      uk.child.kill(signal);
      const r = await uk.exited;
      expect(r.code, r.stderr).toBe(0);
      expect(await ended).toBe('end');
      expect(r.stderr).toMatch(new RegExp(`${signal}: stopping the guest`));
      expect(r.stderr).toMatch(/stopped after [\d.]+s: connections 1 closed, 0 reset; frames in \d+, out \d+; arena 512 of \d+ chunks in use \(and \d+ of tables\); heap [\d.]+[KM] after GC/);

      const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
      expect(records.length).toBeGreaterThanOrEqual(3);
      for (const rec of records) {
        expect(rec.t).toEqual(expect.any(Number));
        expect(rec.mem).toMatchObject({ budget: 40 * 1024 * 1024, arenaBytes: 24 * 1024 * 1024, heapAfterGc: true });
        expect(rec.mem.arenaUsed).toEqual(expect.any(Number));
        expect(rec.mem.heapUsed).toBeGreaterThan(0);
        expect(rec.mem.heapUsed).toBeLessThan(rec.mem.heapLimit);
        expect(rec.tcp.connections).toEqual(expect.any(Number));
        expect(rec.tcp.byState.ESTABLISHED).toEqual(expect.any(Number));
        expect(rec.tcp.timers).toEqual(expect.any(Object));
      }
      // The last line is the final record, after the stop.
      const last = records.at(-1);
      expect(last.tcp.connections).toBe(0);
      expect(last.tcp.counters.bytesIn).toBeGreaterThanOrEqual(200_000);
    } finally {
      uk.child.kill('SIGKILL');
    }
  });
});
