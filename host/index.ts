// The public API of `uk-runtime/node`: what only Node can do. The loaders read
// the hot path's WebAssembly module from the package (build/hotpath.wasm) and
// the tender boots guests under a memory budget, the same as `uk run`.
// The platform-neutral stack is `uk-runtime` (stack/index.ts).

export { createEngine, loadHotpathModule, hotpathWasmPath, packageRoot } from './hotpath.js';
export {
  startGuest,
  RunError,
  DEFAULT_MEM,
  type RunOptions,
  type RunResult,
  type GuestRun,
} from './run.js';
export type { NetSpec } from './net-backend.js';
export { parseSize, splitBudget, describeSplit, formatBytes, BudgetError, type MemorySplit } from './budget.js';
export type { GuestMain, GuestContext, AppArena, AppArenaStats } from './guest/app.js';
