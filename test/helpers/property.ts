// fast-check properties with recorded seeds and recorded regressions.
//
// Seeds. vitest.config.ts runs test/setup/fast-check.ts before every test
// file: it takes the seed from FC_SEED, or picks one, gives it to
// fc.configureGlobal, and prints it in one line. Every fc.assert in that file
// then runs from that seed, so a failure is replayed with
//   FC_SEED=<seed> npx vitest run <file> -t '<test name>'
// (fast-check's own failure report also names the seed, and the path of the
// shrunk counterexample).
//
// Regressions. checkProperty(id, property, params) is fc.assert, except that
// it first tries the failures recorded for `id` in test/regressions/fast-check.ts:
// examples go in front of the random runs (fast-check's `examples`), replays
// (seed and path) run on their own first. A property that has failed once goes
// through checkProperty, so its counterexample is tried on every run.

import fc from 'fast-check';
import { REGRESSIONS, type Regression } from '../regressions/fast-check.js';

type Registry = Readonly<Record<string, readonly Regression[]>>;

/** The seed for this test file: FC_SEED when set, else a fresh 32-bit one. */
export function seedFrom(env: Readonly<Record<string, string | undefined>>, pick: () => number = Math.random): number {
  const text = env.FC_SEED?.trim();
  if (text === undefined || text === '') return Math.floor(pick() * 0x1_0000_0000) | 0;
  if (!/^-?\d+$/.test(text)) throw new Error(`FC_SEED must be an integer (as fast-check prints it), not '${env.FC_SEED}'`);
  const seed = Number(text);
  if (seed < -0x8000_0000 || seed > 0xffff_ffff) throw new Error(`FC_SEED ${text} is not a 32-bit seed`);
  return seed | 0;
}

/** fc.assert, after the recorded failures of `id`. */
export function checkProperty<Ts>(id: string, property: fc.IAsyncProperty<Ts>, params?: fc.Parameters<Ts>, registry?: Registry): Promise<void>;
export function checkProperty<Ts>(id: string, property: fc.IProperty<Ts>, params?: fc.Parameters<Ts>, registry?: Registry): void;
export function checkProperty<Ts>(
  id: string,
  property: fc.IAsyncProperty<Ts> | fc.IProperty<Ts>,
  params: fc.Parameters<Ts> = {},
  registry: Registry = REGRESSIONS,
): Promise<void> | void {
  const recorded = registry[id] ?? [];
  const examples = recorded.flatMap((r) => ('example' in r ? [r.example as unknown as Ts] : []));
  const replays = recorded.flatMap((r) => ('seed' in r ? [{ seed: r.seed, path: r.path }] : []));
  const withExamples: fc.Parameters<Ts> = { ...params, examples: [...(params.examples ?? []), ...examples] };
  const replay = (r: { seed: number; path: string }): fc.Parameters<Ts> => ({ ...params, seed: r.seed, path: r.path, endOnFailure: true });
  if (property.isAsync()) {
    const p = property as fc.IAsyncProperty<Ts>;
    return (async () => {
      for (const r of replays) await fc.assert(p, replay(r));
      await fc.assert(p, withExamples);
    })();
  }
  const p = property as fc.IProperty<Ts>;
  for (const r of replays) fc.assert(p, replay(r));
  fc.assert(p, withExamples);
}
