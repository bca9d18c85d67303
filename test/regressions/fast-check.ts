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
  ...Object.fromEntries(
    (['wasm', 'ts'] as const).map((engine) => [
      `stack/tcp/fuzz (${engine})`,
      [
        {
          found: '2026-12-08',
          why:
            'An abort, then SYNs at theirs, theirs + 1 and theirs - 1: the in-window SYN sent the embryonic block back to LISTEN ' +
            '(RFC 9293), the next SYN opened a new one with the same ISS (RFC 6528, the virtual clock at the same tick), and ' +
            'the checker took its SYN-ACK for a retransmission whose ACK went back. The stack was right; the checker now ' +
            'takes a SYN-ACK with another acknowledgment for a new incarnation (test/stack/tcp/fuzz.test.ts).',
          example: [
            [
              { kind: 'abort' },
              { kind: 'segment', flags: 2, seqOff: 0, ackOff: 0, len: 1, window: 0, sack: [] },
              { kind: 'segment', flags: 2, seqOff: 1, ackOff: 0, len: 1, window: 1, sack: [] },
              { kind: 'segment', flags: 2, seqOff: -1, ackOff: 0, len: 1, window: 1, sack: [] },
            ],
            undefined,
            false,
          ],
        },
      ],
    ]),
  ),
};
