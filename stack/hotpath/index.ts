// The hot path: byte layout, the interface, and its two engines.
export * from './layout.js';
export * from './engine.js';
export { instantiateWasmEngine, createWasmEngineSync, memoryPages, MAX_MEMORY_PAGES } from './wasm.js';
export { createTsEngine } from './ts.js';
export { CHECKSUM_OUT_OF_RANGE } from './ts-checksum.js';
