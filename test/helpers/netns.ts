// Network namespaces for tests that talk to the real Linux kernel.
//
// Topology. Each test gets a namespace of its own holding the kernel's end of
// a TAP interface, 10.77.0.1/24; our userspace stack is the other end and
// plays 10.77.0.2. Nothing in the namespace routes anywhere else, so test
// traffic cannot leave it.
//
//   root namespace (the test process)        namespace ukt-<pid>-<n>-<label>
//   openTap(ns.tapName) -> fd ==========TAP========> tapName 10.77.0.1/24, up
//
// The order matters. TUNSETIFF looks the name up (or creates the interface) in
// the namespace the process opened /dev/net/tun in, which is the root one
// here; Node cannot switch its own namespace. So the test opens the TAP
// first, then `adoptTap()` moves the interface into the namespace with
// `ip link set dev X netns NS` (the fd stays attached) and configures it.
// The interface only exists in the root namespace, down and without an
// address, for the moment between the two. (A program run under
// `ip netns exec NS` opens its TAP inside the namespace directly; that is the
// way to deploy, but a test runner cannot do it to itself.)
//
// With { tap: 'inside' } the interface is instead made inside the namespace
// up front, for a program the test runs there (see NetnsOptions).
//
// Cleanup. destroy() deletes the namespace, which deletes a TAP inside it, and
// any interface of ours left in the root namespace. Every handle is also
// destroyed when the process exits, and namespaces left by dead test processes
// (killed with SIGKILL, say) are swept on the next run: names carry the pid.
//
//   requires(...KERNEL).describe('...', () => {   // test/helpers/capabilities.ts
//     const ns = createNetns('ping');
//     const tap = await openTap(ns.tapName);
//     ns.adoptTap();
//     const r = await ns.exec(`ping -c 3 -W 1 ${ns.peerIp}`);
//     ...
//     await tap.close();
//     ns.destroy();
//   });

import { execFile, execFileSync } from 'node:child_process';
import { KERNEL, missingOf } from './capabilities.js';

export interface ExecResult {
  code: number; // exit status; -1 if killed (timeout) or not started
  stdout: string;
  stderr: string;
}

export interface NetnsOptions {
  /** Where the TAP interface comes from:
   *  - 'adopt' (default): nothing is created here; the test opens `tapName`
   *    (TUNSETIFF creates it in the root namespace), then calls adoptTap().
   *  - 'precreate': made beforehand with `ip tuntap add` (persistent) in the
   *    root namespace; the test opens it, then calls adoptTap().
   *  - 'inside': made persistent inside the namespace and configured at once,
   *    for a process run inside the namespace (`exec('node ...')`), which
   *    attaches to it by name. This process cannot open it. */
  tap?: 'adopt' | 'precreate' | 'inside';
}

export interface Netns {
  /** The namespace's name (for `ip netns exec`). */
  readonly name: string;
  /** The TAP interface for this namespace, at most 15 bytes, unique per run. */
  readonly tapName: string;
  /** The kernel's address on the TAP, inside the namespace. */
  readonly kernelIp: string;
  /** The address the userspace side plays. */
  readonly peerIp: string;
  readonly prefix: number;
  /** Move `tapName` (opened by this process in the root namespace) into the
   *  namespace, give it kernelIp/prefix, bring it and lo up. IPv6 is turned
   *  off on it so the kernel sends only what a test provokes (no MLD, no
   *  router solicitations). Call it again after re-opening a closed TAP. */
  adoptTap(): void;
  /** Run a shell command inside the namespace without blocking the event loop
   *  (our side of the TAP must keep answering meanwhile). Never rejects. */
  exec(cmd: string, timeoutMs?: number): Promise<ExecResult>;
  /** Same, synchronously; throws when the command fails. Only for commands
   *  that need no answer from our side. */
  execSync(cmd: string): string;
  /** Remove the namespace and the interface. Idempotent. */
  destroy(): void;
}

const NS_PREFIX = 'ukt-';
const TAP_PREFIX = 'ukt';

let probed: { ok: boolean; reason?: string } | undefined;

/** Whether this process can run the kernel tests: the capabilities in KERNEL
 *  (root, /dev/net/tun, iproute2, ping, and namespaces that can really be
 *  made). Tests gate on requires(...KERNEL) (test/helpers/capabilities.ts),
 *  which also decides skip or CI failure; this is for createNetns' own check. */
export function hasNetAdmin(): { ok: boolean; reason?: string } {
  if (probed === undefined) {
    const missing = missingOf(KERNEL);
    probed = missing.length === 0 ? { ok: true } : { ok: false, reason: missing.map((m) => `${m.capability}: ${m.reason}`).join('; ') };
  }
  return probed;
}

let counter = 0;
const live = new Set<Netns>();
let hooked = false;
let swept = false;

/** Create a namespace for one test; see the top of this file. `label` only
 *  makes the name readable. */
export function createNetns(label: string, opts: NetnsOptions = {}): Netns {
  const h = hasNetAdmin();
  if (!h.ok) throw new Error(`network namespaces unavailable: ${h.reason}`);
  if (!swept) {
    swept = true;
    sweepStale();
  }
  hookExit();

  const n = ++counter;
  const clean = label.replace(/[^a-zA-Z0-9]/g, '').slice(0, 16) || 'ns';
  const name = `${NS_PREFIX}${process.pid}-${n}-${clean}`;
  // 'ukt' + pid and counter in base 36: at most 3 + 5 + 1 + 6 = 15 bytes.
  const tapName = `${TAP_PREFIX}${process.pid.toString(36)}n${n.toString(36)}`;
  const kernelIp = '10.77.0.1';
  const peerIp = '10.77.0.2';
  const prefix = 24;

  const configure = () => {
    run('ip', ['netns', 'exec', name, 'sysctl', '-q', '-w', `net.ipv6.conf.${tapName}.disable_ipv6=1`]);
    run('ip', ['-n', name, 'addr', 'add', `${kernelIp}/${prefix}`, 'dev', tapName]);
    run('ip', ['-n', name, 'link', 'set', 'dev', tapName, 'up']);
  };
  let destroyed = false;
  const handle: Netns = {
    name,
    tapName,
    kernelIp,
    peerIp,
    prefix,
    adoptTap() {
      run('ip', ['link', 'set', 'dev', tapName, 'netns', name]);
      configure();
    },
    exec(cmd, timeoutMs = 30_000) {
      return new Promise((resolve) => {
        execFile(
          'ip',
          ['netns', 'exec', name, 'sh', '-c', cmd],
          { timeout: timeoutMs, encoding: 'utf8' },
          (err, stdout, stderr) => {
            const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
            resolve({ code, stdout, stderr });
          },
        );
      });
    },
    execSync(cmd) {
      return run('ip', ['netns', 'exec', name, 'sh', '-c', cmd]);
    },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      live.delete(handle);
      quiet('ip', ['netns', 'del', name]);
      // Still in the root namespace if never adopted, or persistent.
      quiet('ip', ['link', 'del', 'dev', tapName]);
    },
  };
  live.add(handle);

  try {
    run('ip', ['netns', 'add', name]);
    run('ip', ['-n', name, 'link', 'set', 'dev', 'lo', 'up']);
    if (opts.tap === 'precreate') run('ip', ['tuntap', 'add', 'dev', tapName, 'mode', 'tap']);
    if (opts.tap === 'inside') {
      run('ip', ['-n', name, 'tuntap', 'add', 'dev', tapName, 'mode', 'tap']);
      configure();
    }
  } catch (err) {
    handle.destroy();
    throw err;
  }
  return handle;
}

/** Destroy every namespace this process still has. */
export function destroyAllNetns(): void {
  for (const h of [...live]) h.destroy();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', destroyAllNetns);
  // A signal's default action skips 'exit': clean up, then die of it as before.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      destroyAllNetns();
      process.kill(process.pid, sig);
    });
  }
}

/** Remove namespaces and root-namespace interfaces named after a test
 *  process that no longer exists. Parallel test files are alive, so theirs
 *  are left alone. */
function sweepStale(): void {
  const alive = (pid: number) => {
    if (pid === process.pid) return true;
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  };
  for (const line of quiet('ip', ['netns', 'list']).split('\n')) {
    const m = /^(ukt-(\d+)-\S+)/.exec(line);
    if (m && !alive(Number(m[2]))) quiet('ip', ['netns', 'del', m[1]]);
  }
  for (const line of quiet('ip', ['-o', 'link', 'show']).split('\n')) {
    const m = /^\d+: (ukt([0-9a-z]+)n[0-9a-z]+)[:@]/.exec(line);
    if (m && !alive(parseInt(m[2], 36))) quiet('ip', ['link', 'del', 'dev', m[1]]);
  }
}

function run(file: string, args: string[]): string {
  return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function quiet(file: string, args: string[]): string {
  try {
    return run(file, args);
  } catch {
    return '';
  }
}
