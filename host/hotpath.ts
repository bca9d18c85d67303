// Node loader for the hot-path engines: reads build/hotpath.wasm once, keeps
// the compiled module, and instantiates engines over fresh fixed memories.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTsEngine, createWasmEngineSync, type EngineName, type HotPath } from '../stack/hotpath/index.js';

const DEFAULT_MEMORY_BYTES = 16 * 1024 * 1024;

let compiled: Promise<WebAssembly.Module> | undefined;

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

/** Path of the release build of the module. */
export function hotpathWasmPath(): string {
  return join(packageRoot(), 'build', 'hotpath.wasm');
}

/** The compiled module, read and compiled once per process. */
export function loadHotpathModule(): Promise<WebAssembly.Module> {
  compiled ??= compileFromDisk();
  return compiled;
}

async function compileFromDisk(): Promise<WebAssembly.Module> {
  const path = hotpathWasmPath();
  if (!existsSync(path)) {
    compiled = undefined; // let a later call retry once the build exists
    throw new Error(`hot path: ${path} is missing; run \`npm run build:wasm\` first`);
  }
  return WebAssembly.compile(readFileSync(path));
}

/** A hot-path engine over a new fixed memory of `memoryBytes` (whole pages). */
export async function createEngine(name: EngineName, memoryBytes = DEFAULT_MEMORY_BYTES): Promise<HotPath> {
  if (name === 'ts') return createTsEngine(memoryBytes);
  if (name === 'wasm') return createWasmEngineSync(await loadHotpathModule(), memoryBytes);
  throw new Error(`hot path: unknown engine ${String(name)} (expected 'wasm' or 'ts')`);
}
