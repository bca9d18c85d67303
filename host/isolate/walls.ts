// The operating system's walls around a guest process (`--isolate process`),
// each used where this machine and user allow it, and said in the boot line:
//
// - memory: a cgroup (v1 memory controller, or v2) limits the whole process
//   to the budget plus RUNTIME_ALLOWANCE for Node and the guest's tender;
//   without root, RLIMIT_DATA (prlimit) bounds its private writable memory.
//   (RLIMIT_AS cannot be used: V8 reserves many times the budget of address
//   space it never touches, for the Wasm memory's guard regions.)
// - network: an empty network namespace (unshare --net as root, or inside a
//   new user namespace otherwise, where the kernel allows it): no host
//   socket, TCP or UDP or abstract Unix, is reachable; the frames go over
//   the stream the parent opened before.
// - user: as root the process runs as nobody (setpriv), so Unix sockets and
//   files on the filesystem are reachable only where everyone may.
// - Node's permission model: reads only the runtime's folder and the guest's,
//   writes nothing, starts no process and loads no native addon; Workers
//   allowed (the guest is one). It does not cover the network in Node 20:
//   the namespace does.
// - the parent's death kills it (PR_SET_PDEATHSIG).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Memory a guest process needs beyond the budget: Node itself, the guest
 *  process's tender, V8's code, the Worker's fixed costs, and a heap census
 *  (SIGUSR2), which parses a snapshot of the guest's heap in that tender
 *  (the peaks are in BENCHMARKS.md "Guest isolation"). */
export const RUNTIME_ALLOWANCE = 256 * 1024 * 1024;
const NOBODY = 65534;

export interface Walls {
  /** The command and its arguments, ending with `node`; node's flags and
   *  script follow. */
  prefix: string[];
  /** Node's permission flags for the guest process. */
  nodeFlags: string[];
  /** The cgroup folder made for this process, removed by release(). */
  cgroup: string | null;
  memoryLimit: number;
  /** One line for the boot log. */
  description: string;
}

export interface WallOptions {
  budget: number;
  /** Folders the guest process may read: the runtime's, the guest's. */
  readable: string[];
  /** A name for the cgroup (unique per run). */
  name: string;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** The memory controller's folder, v1 or v2, if this process may make groups there. */
function memoryController(): { dir: string; limitFile: string } | null {
  if (!isRoot()) return null;
  const v1 = '/sys/fs/cgroup/memory';
  if (existsSync(join(v1, 'memory.limit_in_bytes'))) return { dir: v1, limitFile: 'memory.limit_in_bytes' };
  const v2 = '/sys/fs/cgroup';
  try {
    if (readFileSync(join(v2, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('memory')) return { dir: v2, limitFile: 'memory.max' };
  } catch {
    // no v2 hierarchy here
  }
  return null;
}

let userNamespacesChecked: boolean | undefined;
/** Whether an unprivileged process may make a user and network namespace. */
function userNamespaces(): boolean {
  if (userNamespacesChecked !== undefined) return userNamespacesChecked;
  try {
    execFileSync('unshare', ['--user', '--map-root-user', '--net', 'true'], { stdio: 'ignore', timeout: 5000 });
    userNamespacesChecked = true;
  } catch {
    userNamespacesChecked = false;
  }
  return userNamespacesChecked;
}

function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function buildWalls(opts: WallOptions): Walls {
  const memoryLimit = opts.budget + RUNTIME_ALLOWANCE;
  const said: string[] = [];
  const prefix: string[] = [];
  let cgroup: string | null = null;

  const controller = memoryController();
  if (controller) {
    cgroup = join(controller.dir, opts.name);
    mkdirSync(cgroup);
    writeFileSync(join(cgroup, controller.limitFile), String(memoryLimit));
    // No swap either, where the controller accounts it.
    for (const swap of ['memory.memsw.limit_in_bytes', 'memory.swap.max']) {
      if (existsSync(join(cgroup, swap))) writeFileSync(join(cgroup, swap), swap === 'memory.swap.max' ? '0' : String(memoryLimit));
    }
    // The process joins before it runs anything: the shell writes its own pid, then execs.
    prefix.push('sh', '-c', 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', 'uk-isolate', cgroup);
    said.push(`memory limit ${mib(memoryLimit)} (cgroup ${cgroup}: budget ${mib(opts.budget)} + ${mib(RUNTIME_ALLOWANCE)} for Node and the guest's tender)`);
  } else {
    prefix.push('prlimit', `--data=${memoryLimit}`, '--');
    said.push(`private memory limit ${mib(memoryLimit)} (RLIMIT_DATA; a cgroup needs root)`);
  }

  if (isRoot()) {
    prefix.push('unshare', '--net', '--', 'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--no-new-privs', '--pdeathsig', 'KILL', '--');
    said.push('empty network namespace', 'user nobody');
  } else if (userNamespaces()) {
    prefix.push('unshare', '--user', '--map-root-user', '--net', '--', 'setpriv', '--no-new-privs', '--pdeathsig', 'KILL', '--');
    said.push('empty network namespace (in a user namespace)');
  } else {
    prefix.push('setpriv', '--no-new-privs', '--pdeathsig', 'KILL', '--');
    said.push('no network namespace (needs root or user namespaces): only Node\'s permissions and the module filter stand between it and host sockets');
  }
  prefix.push(process.execPath);

  const nodeFlags = [
    '--experimental-permission',
    ...[...opts.readable, '/proc/thread-self/stat'].map((path) => `--allow-fs-read=${path}`),
    '--allow-worker',
  ];
  said.push(`Node permissions: read ${opts.readable.join(', ')}; no writes, no processes, no native addons`);
  return { prefix, nodeFlags, cgroup, memoryLimit, description: said.join('; ') };
}

/** The cgroup's memory now and at its peak, bytes (null without a cgroup). */
export function memoryUsage(walls: Walls): { current: number; peak: number } | null {
  if (!walls.cgroup) return null;
  const read = (file: string): number | null => {
    try {
      return Number(readFileSync(join(walls.cgroup!, file), 'utf8').trim());
    } catch {
      return null;
    }
  };
  const current = read('memory.usage_in_bytes') ?? read('memory.current');
  const peak = read('memory.max_usage_in_bytes') ?? read('memory.peak');
  return current === null ? null : { current, peak: peak ?? current };
}

/** Whether the cgroup's limit killed a process in it. */
export function killedByMemoryLimit(walls: Walls): boolean {
  if (!walls.cgroup) return false;
  try {
    const v1 = join(walls.cgroup, 'memory.oom_control');
    if (existsSync(v1)) return /oom_kill [1-9]/.test(readFileSync(v1, 'utf8'));
    return /oom_kill [1-9]/.test(readFileSync(join(walls.cgroup, 'memory.events'), 'utf8'));
  } catch {
    return false;
  }
}

/** Remove the cgroup (its process has ended). */
export function releaseWalls(walls: Walls): void {
  if (!walls.cgroup) return;
  try {
    rmdirSync(walls.cgroup);
  } catch {
    // still busy for a moment after the exit: try once more shortly
    setTimeout(() => {
      try {
        rmdirSync(walls.cgroup!);
      } catch {
        // left for the next run's sweep
      }
    }, 200).unref();
  }
}

export function commandAvailable(): string | null {
  for (const name of ['setpriv', 'unshare', 'prlimit']) if (!hasCommand(name)) return name;
  return null;
}

function mib(n: number): string {
  return `${Math.round(n / (1024 * 1024))}M`;
}
