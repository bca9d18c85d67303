// Node loader for the hot-path engines: reads build/hotpath.wasm once, keeps
// the compiled module, and instantiates engines over fresh fixed memories.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTsEngine, createWasmEngineSync, type EngineName, type HotPath } from '../stack/index.js';

const DEFAULT_MEMORY_BYTES = 16 * 1024 * 1024;

/** The package root: the nearest folder above this file holding package.json
 *  (host/ when run from source, dist/host/ when run from the build). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('hot path: package.json not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

/** Path of a module under build/ (asconfig.json and asconfig.shared.json write there). */
export function buildWasmPath(fileName: string): string {
  return join(packageRoot(), 'build', fileName);
}

/** A loader for build/`fileName` that reads and compiles the module once per
 *  process, on its first call, and hands every caller the same compile. */
export function wasmModuleLoader(fileName: string): () => Promise<WebAssembly.Module> {
  let compiled: Promise<WebAssembly.Module> | undefined;
  const compileFromDisk = async (): Promise<WebAssembly.Module> => {
    const path = buildWasmPath(fileName);
    if (!existsSync(path)) throw new Error(`hot path: ${path} is missing; run \`npm run build:wasm\` first`);
    return WebAssembly.compile(readFileSync(path));
  };
  return () => {
    if (!compiled) {
      // A failed load is forgotten, so a later call retries once the build exists.
      const attempt = compileFromDisk();
      compiled = attempt;
      attempt.catch(() => {
        if (compiled === attempt) compiled = undefined;
      });
    }
    return compiled;
  };
}

/** Path of the release build of the module. */
export function hotpathWasmPath(): string {
  return buildWasmPath('hotpath.wasm');
}

/** The compiled module, read and compiled once per process. */
export const loadHotpathModule = wasmModuleLoader('hotpath.wasm');

/** A hot-path engine over a new fixed memory of `memoryBytes` (whole pages). */
export async function createEngine(name: EngineName, memoryBytes = DEFAULT_MEMORY_BYTES): Promise<HotPath> {
  if (name === 'ts') return createTsEngine(memoryBytes);
  if (name === 'wasm') return createWasmEngineSync(await loadHotpathModule(), memoryBytes);
  throw new Error(`hot path: unknown engine ${String(name)} (expected 'wasm' or 'ts')`);
}
