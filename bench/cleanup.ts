// What the benchmarks that boot guests and make namespaces (density,
// devices) must remove however they end: the child processes alive now, the
// network namespaces (with the TAP or veth ends inside) and temporary
// folders this run made. One registry per process; hookExit() removes them
// on exit and on SIGINT, SIGTERM or SIGHUP, and sweepStale() the namespaces
// an earlier run that was killed outright left behind.

import { type ChildProcess, execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';

export const children = new Set<ChildProcess>();
export const namespaces = new Set<string>();
export const tempDirs = new Set<string>();

/** Run a command, its stdout as text; throws on failure. */
export function run(file: string, args: string[]): string {
  return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Run a command whose failure does not matter: its stdout, or '' if it failed. */
export function quiet(file: string, args: string[]): string {
  try {
    return run(file, args);
  } catch {
    return '';
  }
}

/** Kill what is left in namespace `ns` (only processes this benchmark put
 *  there), then delete it, which deletes the interfaces inside it. */
export function deleteNamespace(ns: string): void {
  for (const pid of quiet('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  quiet('ip', ['netns', 'del', ns]);
  namespaces.delete(ns);
}

export function cleanupNow(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
  for (const ns of [...namespaces]) deleteNamespace(ns);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

let hooked = false;
/** Clean up on exit and on the usual signals (once per process); `name` says whose. */
export function hookExit(name: string): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', cleanupNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      console.error(`${name}: ${sig}: removing the namespaces, the guests and the clients`);
      cleanupNow();
      process.kill(process.pid, sig);
    });
  }
}

/** Delete namespaces whose name `pattern` matches with the owning pid in
 *  group 2 (the whole name in group 1), when that process is gone. */
export function sweepStale(pattern: RegExp): void {
  for (const line of quiet('ip', ['netns', 'list']).split('\n')) {
    const m = pattern.exec(line);
    if (!m || Number(m[2]) === process.pid) continue;
    try {
      process.kill(Number(m[2]), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') deleteNamespace(m[1]!);
    }
  }
}
