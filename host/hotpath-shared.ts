// The guest's arena as shared memory: the tender makes it, the guest's hot
// path runs over it, and both threads see the same bytes (frames land in RX
// slots without a message or a copy between threads).
//
// The wasm engine needs a module built for a shared imported memory
// (build/hotpath.shared.wasm, from asconfig.shared.json: the same
// assembly/index.ts with --sharedMemory and the threads feature); the ts
// engine runs over a SharedArrayBuffer.

import { type EngineName, PAGE_SIZE } from '../stack/index.js';
import { buildWasmPath, wasmModuleLoader } from './hotpath.js';

export interface SharedArena {
  engine: EngineName;
  /** What the guest gets: a shared WebAssembly.Memory (wasm) or the buffer itself (ts). */
  memory: WebAssembly.Memory | SharedArrayBuffer;
  /** The bytes, as the tender sees them. */
  buffer: SharedArrayBuffer;
  /** The compiled shared module (wasm only). */
  module?: WebAssembly.Module;
}

export function sharedHotpathWasmPath(): string {
  return buildWasmPath('hotpath.shared.wasm');
}

/** The shared-memory module, read and compiled once per process. */
export const loadSharedHotpathModule = wasmModuleLoader('hotpath.shared.wasm');

/** A fixed shared arena of `pages` 64 KiB pages (initial = maximum: it never grows). */
export async function createSharedArena(engine: EngineName, pages: number): Promise<SharedArena> {
  if (engine === 'ts') {
    const buffer = new SharedArrayBuffer(pages * PAGE_SIZE);
    return { engine, memory: buffer, buffer };
  }
  const module = await loadSharedHotpathModule();
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  return { engine, memory, buffer: memory.buffer as unknown as SharedArrayBuffer, module };
}
