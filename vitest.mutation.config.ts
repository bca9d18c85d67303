// Vitest configuration for mutation testing only (`npm run mutation`, see
// stryker.config.mjs and docs/testing.md "Mutation testing"). `npm test` keeps
// using vitest.config.ts.
//
// It lists the test files that drive stack/tcp and relay/spoke through their
// TypeScript source, in this process, on a virtual clock, so that a mutant in
// those folders is seen and each mutant run stays short. Left out on purpose:
//   - tests that spawn the built binaries in dist/ or need root, TAP or
//     network namespaces (test/host/**, relay cli-process, main-job,
//     stress-seed): they never load the mutated source;
//   - tests on real sockets and wall-clock timeouts (relay client-transfer,
//     client-secure-room, stress-run, guest-e2e, host user-net/run-*): slow,
//     timing-dependent, and what they reach of relay/spoke the vectors and
//     handshake tests already cover;
//   - the long scenario runs (test/stack/scenarios/{transfers,endings,
//     seed-miniature,fuzz-live}): each takes tens of seconds, and every
//     surviving mutant on the data path would pay for all of them.
//
// Stryker's vitest runner forces the `threads` pool; the leak tests need
// `gc`, which stryker.config.mjs provides through testRunnerNodeArgs
// (--expose-gc). Run by hand, use:
//   node --expose-gc node_modules/vitest/vitest.mjs run -c vitest.mutation.config.ts

import { defineConfig } from 'vitest/config';

export const MUTATION_TESTS = [
  // stack/tcp through the scripted peer (test/helpers/tcp-peer.ts), unit
  // tests of its tables, and stacks on the in-process switch.
  'test/stack/tcp/**/*.test.ts',
  'test/stack/stack.test.ts',
  'test/stack/scenarios/regressions.test.ts',
  // The engines' TCP fast path: the TypeScript twin against the wasm engine.
  'test/hotpath/tcp-fast-agree.test.ts',
  // relay/spoke: SPAKE2+EE, PBKDF2 variant, key schedule, vectors.
  'test/relay/spake2ee.test.ts',
  'test/relay/spoke-vectors.test.ts',
  'test/relay/spoke-rules.test.ts',
  // The clients' handshake machines run serverInit from relay/spoke.
  'test/relay/client-handshake.test.ts',
  // The relay on our own stack: TCP under a real application, virtual clock.
  'test/relay/server-stack.test.ts',
];

/**
 * One fast-check seed for every run (test/setup/fast-check.ts reads FC_SEED):
 * a property then explores the same cases with every mutant, so a mutant is
 * killed or not by the tests, not by the draw, and reruns agree.
 */
const MUTATION_FC_SEED = '20261207';

export default defineConfig({
  test: {
    include: MUTATION_TESTS,
    setupFiles: ['test/setup/fast-check.ts'],
    env: { FC_SEED: MUTATION_FC_SEED },
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
