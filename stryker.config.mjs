// Mutation testing of the TCP implementation (with the fast path's TypeScript
// engine) and the SPAKE2+EE exchange:
// `npm run mutation` (not part of `npm test`). Results and how to read them:
// docs/testing.md, "Mutation testing". Everything it writes goes under
// reports/mutation/ (git-ignored): the HTML and JSON reports, the incremental
// file (reruns only test mutants whose code or tests changed), the sandbox.

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: {
    configFile: 'vitest.mutation.config.ts',
    // The list in vitest.mutation.config.ts is chosen by hand; per-test
    // coverage then picks the tests each mutant needs.
    related: false,
  },
  mutate: ['stack/tcp/**/*.ts', 'stack/hotpath/ts-tcp-fast.ts', 'relay/spoke/**/*.ts'],
  coverageAnalysis: 'perTest',
  // The leak tests force a collection (globalThis.gc).
  testRunnerNodeArgs: ['--expose-gc'],
  // One test process: the machine is shared.
  concurrency: 1,
  incremental: true,
  incrementalFile: 'reports/mutation/stryker-incremental.json',
  tempDirName: 'reports/mutation/.stryker-tmp',
  ignorePatterns: ['dist', 'reports', 'bench', 'BENCHMARKS.md'],
  reporters: ['html', 'json', 'clear-text', 'progress'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  // No type checker runs (vitest strips types), and assembly/ is not TypeScript Babel can read.
  disableTypeChecks: false,
};
