// What a test needs from the machine, and what happens when it is missing.
//
// Some tests need more than Node: root, /dev/net/tun, network namespaces, or a
// program (tshark, capinfos, GNU parallel, ping, setpriv), or node
// --expose-gc. On a newcomer's machine a missing one is a SKIP, with the
// reason in the test's name. In CI (UK_CI set, as .ci/run does) the machine is
// supposed to have everything, so a missing one is a FAILURE naming exactly
// what is missing: a CI box that lost tshark must not go green by skipping.
//
//   const tshark = requires('tshark');
//   tshark.it('is read by tshark', () => { ... });          // one test
//   requires(...KERNEL).describe('against the kernel', () => { ... }); // a block
//
// gate.it / gate.describe take the place of it / describe. Outside CI with
// something missing they skip, and the name ends with " (skipped: ...)". In
// CI with something missing they run, and fail at once with the list of what
// is missing (a describe fails in a beforeAll that comes before every hook of
// its own, so none of them runs against the missing capability). With
// nothing missing they are it / describe.
//
// decide() holds the rule on its own, so that it can be tested with any
// environment and any probe results (test/helpers/capabilities.test.ts).

import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { beforeAll, describe as vitestDescribe, it as vitestIt, type TestContext, type TestOptions } from 'vitest';

/** Everything a test may need beyond Node and the repository itself. */
export type Capability =
  | 'root' // uid 0
  | 'tun' // /dev/net/tun exists (a character device)
  | 'iproute2' // the `ip` tool
  | 'netns' // a network namespace can really be made (`ip netns add`)
  | 'ping' // iputils ping
  | 'tshark'
  | 'capinfos'
  | 'parallel' // GNU parallel (moreutils has another `parallel`)
  | 'setpriv' // util-linux setpriv, to drop root
  | 'gc'; // node --expose-gc (vitest.config.ts passes it)

/** The environment variable that declares CI. */
export const CI_VARIABLE = 'UK_CI';

/** What the kernel tests need: TAP devices inside namespaces, pinged from there. */
export const KERNEL: readonly Capability[] = ['root', 'tun', 'iproute2', 'ping', 'netns'];

/** Whether `env` declares CI: UK_CI set to anything but '', '0' or 'false'. */
export function ciMode(env: Readonly<Record<string, string | undefined>> = process.env): boolean {
  const v = env[CI_VARIABLE];
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

export interface Missing {
  capability: Capability;
  /** Why it counts as missing, e.g. "not found on PATH (apt-get install tshark)". */
  reason: string;
}

export type Decision =
  | { action: 'run' }
  | { action: 'skip'; reason: string }
  | { action: 'fail'; reason: string };

/** The rule: nothing missing runs; something missing skips, or fails in CI. */
export function decide(missing: readonly Missing[], ci: boolean): Decision {
  if (missing.length === 0) return { action: 'run' };
  const list = missing.map((m) => `${m.capability}: ${m.reason}`).join('; ');
  if (!ci) return { action: 'skip', reason: list };
  return {
    action: 'fail',
    reason: `${CI_VARIABLE} is set, so a missing capability fails instead of skipping. Missing: ${list}`,
  };
}

// ---- probes -----------------------------------------------------------------------

/** null when the capability is there, else why not. `env` is the environment
 *  programs are looked up in (PATH). */
export type Probe = (capability: Capability, env?: NodeJS.ProcessEnv) => string | null;

/** Runs `file args` and says why it could not, or null. */
function program(file: string, args: string[], install: string, env: NodeJS.ProcessEnv): string | null {
  const r = spawnSync(file, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `not found on PATH (${install})` : `\`${file} ${args.join(' ')}\` failed: ${code ?? r.error.message}`;
  }
  if (r.status !== 0) return `\`${file} ${args.join(' ')}\` exited with status ${r.status}`;
  if (file === 'parallel' && !r.stdout.startsWith('GNU parallel')) {
    return 'the `parallel` on PATH is not GNU parallel (moreutils has another one; apt-get install parallel)';
  }
  return null;
}

/** The real machine. */
export const probeMachine: Probe = (capability, env = process.env) => {
  switch (capability) {
    case 'root': {
      const uid = process.getuid?.();
      if (uid === undefined) return `no uid on ${process.platform}`;
      return uid === 0 ? null : `running as uid ${uid}; TAP devices and namespaces need CAP_NET_ADMIN and CAP_SYS_ADMIN`;
    }
    case 'tun': {
      if (process.platform !== 'linux') return `not Linux (${process.platform})`;
      try {
        return statSync('/dev/net/tun').isCharacterDevice() ? null : '/dev/net/tun is not a character device';
      } catch (err) {
        return `/dev/net/tun: ${(err as NodeJS.ErrnoException).code} (modprobe tun, or pass the device into the container)`;
      }
    }
    case 'iproute2':
      return program('ip', ['-V'], 'apt-get install iproute2', env);
    case 'netns': {
      if (process.platform !== 'linux') return `not Linux (${process.platform})`;
      const name = `ukt-${process.pid}-probe`;
      const r = spawnSync('ip', ['netns', 'add', name], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      spawnSync('ip', ['netns', 'del', name], { env, stdio: 'ignore' });
      if (r.error) return `cannot run \`ip netns add\`: ${(r.error as NodeJS.ErrnoException).code}`;
      if (r.status !== 0) return `cannot create a network namespace: ${(r.stderr || '').trim().split('\n')[0]}`;
      return null;
    }
    case 'ping':
      return program('ping', ['-V'], 'apt-get install iputils-ping', env);
    case 'tshark':
      return program('tshark', ['--version'], 'apt-get install tshark', env);
    case 'capinfos':
      return program('capinfos', ['-v'], 'apt-get install tshark (capinfos comes with it)', env);
    case 'parallel':
      return program('parallel', ['--version'], 'apt-get install parallel', env);
    case 'setpriv':
      return program('setpriv', ['--version'], 'apt-get install util-linux', env);
    case 'gc':
      return typeof (globalThis as { gc?: unknown }).gc === 'function' ? null : 'node was started without --expose-gc';
  }
};

// The machine does not change during a run: probe each capability once.
const cache = new Map<Capability, string | null>();
function cachedProbe(capability: Capability): string | null {
  if (!cache.has(capability)) cache.set(capability, probeMachine(capability));
  return cache.get(capability)!;
}

/** Which of `capabilities` are missing, in the order given, each once. */
export function missingOf(capabilities: readonly Capability[], probe: (c: Capability) => string | null = cachedProbe): Missing[] {
  const out: Missing[] = [];
  for (const capability of new Set(capabilities)) {
    const reason = probe(capability);
    if (reason !== null) out.push({ capability, reason });
  }
  return out;
}

// ---- gates --------------------------------------------------------------------------

type Body = (ctx: TestContext) => unknown;

export interface Gate {
  readonly decision: Decision;
  readonly missing: readonly Missing[];
  /** True when the test must be skipped (something missing, not CI). */
  readonly skip: boolean;
  /** " (skipped: ...)" when skipping, '' otherwise: for a test's name. */
  readonly note: string;
  /** Throws the CI failure when something is missing in CI; otherwise nothing. */
  check(): void;
  /** `body`, preceded by check(). */
  guard(body: Body): Body;
  /** `it`, gated. */
  it(name: string, body: Body, timeout?: number): void;
  it(name: string, options: TestOptions, body: Body): void;
  /** `describe`, gated. */
  describe(name: string, factory: () => void): void;
}

export interface GateOptions {
  /** Default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Default: the real machine (each capability probed once per test file). */
  probe?: (capability: Capability) => string | null;
}

/** A gate for tests that need every one of `capabilities`. */
export function requires(...capabilities: Capability[]): Gate {
  return gate(capabilities);
}

/** requires(), with the environment and the probe results given (for tests of this file). */
export function gate(capabilities: readonly Capability[], opts: GateOptions = {}): Gate {
  const missing = missingOf(capabilities, opts.probe);
  const decision = decide(missing, ciMode(opts.env ?? process.env));
  const skip = decision.action === 'skip';
  const note = decision.action === 'skip' ? ` (skipped: ${decision.reason})` : '';
  const check = (): void => {
    if (decision.action === 'fail') throw new Error(decision.reason);
  };
  const guard = (body: Body): Body => (ctx) => {
    check();
    return body(ctx);
  };
  return {
    decision,
    missing,
    skip,
    note,
    check,
    guard,
    it(name: string, a: Body | TestOptions, b?: Body | number): void {
      const test = vitestIt.skipIf(skip);
      if (typeof a === 'function') test(name + note, guard(a), b as number | undefined);
      else test(name + note, a, guard(b as Body));
    },
    describe(name: string, factory: () => void): void {
      vitestDescribe.skipIf(skip)(name + note, () => {
        if (decision.action === 'fail') beforeAll(check);
        factory();
      });
    },
  };
}
