// The tender's half of a module guest's sandbox (sandbox.ts is the guest's):
// the Worker whose own context is frozen and cannot compile strings, so the
// guest API objects it hands the guest are no way out.
//
// V8 decides whether a context may compile strings when it makes the
// context, from a process-wide flag, and Node refuses the flag in a Worker's
// execArgv. So the flag is set while module guests' Workers make their
// contexts (until each is online) and cleared when none is starting; the
// guest checks the result before it loads anything (runtimeContextSealed).

import { Transform } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import type { Worker, WorkerOptions } from 'node:worker_threads';

/** execArgv of a module guest's Worker: vm modules for its module graph,
 *  frozen intrinsics for the runtime's context. */
export const MODULE_GUEST_EXEC_ARGV = ['--experimental-vm-modules', '--frozen-intrinsics'];

let starting = 0;

/** Make a Worker whose context cannot compile strings. */
export function startSealedWorker(make: (options: Partial<WorkerOptions>) => Worker): Worker {
  if (starting++ === 0) setFlagsFromString('--disallow-code-generation-from-strings');
  let worker: Worker;
  try {
    worker = make({ execArgv: MODULE_GUEST_EXEC_ARGV, stderr: true });
  } catch (err) {
    release();
    throw err;
  }
  let released = false;
  const once = (): void => {
    if (released) return;
    released = true;
    release();
  };
  worker.once('online', once);
  worker.once('error', once);
  worker.once('exit', once);
  worker.stderr!.pipe(withoutFlagWarnings()).pipe(process.stderr, { end: false });
  return worker;
}

function release(): void {
  if (--starting === 0) setFlagsFromString('--no-disallow-code-generation-from-strings');
}

/** Node warns once per Worker that the two flags are experimental: the
 *  runtime chose them, so the warnings are not the guest's to read. */
const FLAG_WARNING = /ExperimentalWarning: (Frozen intristics|Frozen intrinsics|VM Modules) is an experimental feature|^\(Use `node --trace-warnings/;

function withoutFlagWarnings(): Transform {
  let partial = '';
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop()!;
      const kept = lines.filter((line) => !FLAG_WARNING.test(line));
      done(null, kept.length ? kept.join('\n') + '\n' : '');
    },
    flush(done) {
      done(null, partial && !FLAG_WARNING.test(partial) ? partial : '');
    },
  });
}

/** For the guest: true when its own context is frozen and cannot compile strings. */
export function runtimeContextSealed(): boolean {
  if (!Object.isFrozen(Object.prototype) || !Object.isFrozen(Function.prototype)) return false;
  try {
    new Function('');
    return false;
  } catch {
    return true;
  }
}
