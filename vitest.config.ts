import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // fast-check: one seed per test file, from FC_SEED or picked, printed (docs/testing.md).
    setupFiles: ['test/setup/fast-check.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Leak tests force GC to prove WeakRefs to closed connections clear.
    pool: 'forks',
    execArgv: ['--expose-gc'],
  },
});
