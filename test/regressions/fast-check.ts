// Failures fast-check has found, kept so that they are tried again on every
// `npm test`, before the property's random runs (test/helpers/property.ts).
//
// Keyed by the property's id, the first argument of its checkProperty() call.
// An entry is either
//   - an example: the property's arguments, as the failure report printed
//     them after "Counterexample:" (fc.stringify output is TypeScript), which
//     survives changes to the arbitraries; or
//   - a replay: the seed and path of the report's "{ seed: ..., path: ... }",
//     for counterexamples too large to paste; it replays the same case only
//     as long as the property's arbitraries are unchanged.
// with when it was found and what it showed. Fix the bug, add the entry, and
// leave it: it is the test that the bug stays fixed. docs/testing.md tells
// the whole procedure.

export interface Found {
  /** When it was found (YYYY-MM-DD). */
  readonly found: string;
  /** What the case showed, and where it was fixed. */
  readonly why: string;
}

export type Regression =
  | (Found & { readonly example: readonly unknown[] })
  | (Found & { readonly seed: number; readonly path: string });

export const REGRESSIONS: Readonly<Record<string, readonly Regression[]>> = {
};
