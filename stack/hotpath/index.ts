// The hot path: byte layout, the interface, and its two engines.
export * from './layout.js';
export * from './engine.js';
export {
  instantiateWasmEngine,
  createWasmEngineSync,
  createWasmEngineOnMemory,
  memoryPages,
  MAX_MEMORY_PAGES,
} from './wasm.js';
export { createTsEngine, createTsEngineOver } from './ts.js';
export { CHECKSUM_OUT_OF_RANGE } from './ts-checksum.js';
