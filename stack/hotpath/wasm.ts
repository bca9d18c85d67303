// The wasm engine: build/hotpath.wasm (compiled from assembly/) behind the
// HotPath interface. Platform-neutral: the caller supplies the module or its
// bytes (host/hotpath.ts reads them from disk on Node).
//
// The module imports its memory. The host creates it with initial = maximum,
// so it can never grow and every typed-array view over it stays valid for the
// engine's life; its size is the guest's arena, chosen per guest.

import type { HotPath } from './engine.js';
import {
  DECODED_BASE,
  DECODED_WORDS,
  ENCODE_BASE,
  ENCODE_WORDS,
  FAST_BASE,
  FAST_WORDS,
  PAGE_SIZE,
  SCRATCH_BASE,
  type Reason,
} from './layout.js';

/** Largest memory either engine accepts: 2 GiB keeps every byte position an
 *  int32, which the ts engine's bitwise arithmetic relies on. */
export const MAX_MEMORY_PAGES = 32768;

/** Pages needed for `memoryBytes` (rounded up to whole pages). Both engines
 *  size their memory with this, so they hold the same number of chunks. */
export function memoryPages(memoryBytes: number): number {
  if (!Number.isFinite(memoryBytes) || memoryBytes <= 0) {
    throw new RangeError(`hot path: memory size must be a positive number of bytes, got ${memoryBytes}`);
  }
  const pages = Math.ceil(memoryBytes / PAGE_SIZE);
  if (pages > MAX_MEMORY_PAGES) {
    throw new RangeError(`hot path: memory of ${memoryBytes} bytes exceeds ${MAX_MEMORY_PAGES * PAGE_SIZE}`);
  }
  return pages;
}

/** The module's exports, as JS sees them (i32 results may come back negative). */
interface Exports {
  staticDataEnd(): number;
  sum16(off: number, len: number, initial: number): number;
  checksum(off: number, len: number, initial: number): number;
  checksumScalar(off: number, len: number, initial: number): number;
  pseudoHeaderSumV4(src: number, dst: number, proto: number, length: number): number;
  checksumUpdate16(oldChecksum: number, oldWord: number, newWord: number): number;
  decode(off: number, len: number): number;
  decodeTransport(proto: number, off: number, len: number, src: number, dst: number): number;
  tcpHeaderLen(): number;
  encodeTcp(slot: number, payloadLen: number): number;
  encodeUdp(slot: number, payloadLen: number): number;
  encodeIcmp(slot: number, payloadLen: number): number;
  encodeIpv4(slot: number, payloadLen: number): number;
  encodeArp(slot: number): number;
  seqLt(a: number, b: number): number;
  seqLe(a: number, b: number): number;
  seqGt(a: number, b: number): number;
  seqGe(a: number, b: number): number;
  seqAdd(a: number, n: number): number;
  seqDiff(a: number, b: number): number;
  segmentAcceptable(seq: number, segLen: number, rcvNxt: number, rcvWnd: number): number;
  windowScaled(raw: number, shift: number): number;
  windowRaw(bytes: number, shift: number): number;
  rttSrtt8(srtt8: number, rttvar4: number, r: number): number;
  rttRttvar4(srtt8: number, rttvar4: number, r: number): number;
  rto(srtt8: number, rttvar4: number, granularity: number, min: number, max: number): number;
  arenaInit(memBytes: number): number;
  arenaChunksBase(): number;
  arenaAlloc(owner: number): number;
  arenaFree(off: number): number;
  arenaOwnerOf(off: number): number;
  arenaSetOwner(off: number, owner: number): number;
  arenaInUse(): number;
  arenaByKind(kind: number): number;
  arenaBadFrees(): number;
  tcpInput(off: number, len: number, now: number): number;
  tcpSendBurst(index: number, max: number, now: number): number;
}

// Every method is one call into the module: the per-call work stays on the
// Wasm side, and the JS side only turns i32 results into u32 (>>> 0) or
// booleans (!== 0). Wasm converts arguments with ToInt32 and reads them as u32.
class WasmEngine implements HotPath {
  readonly name = 'wasm' as const;
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;
  readonly decoded: Uint32Array;
  readonly request: Uint32Array;
  readonly fast: Uint32Array;
  readonly chunkCount: number;
  readonly chunksBase: number;
  private readonly x: Exports;

  constructor(exports: Exports, memory: WebAssembly.Memory) {
    this.x = exports;
    this.buffer = memory.buffer;
    this.bytes = new Uint8Array(this.buffer);
    this.decoded = new Uint32Array(this.buffer, DECODED_BASE, DECODED_WORDS);
    this.request = new Uint32Array(this.buffer, ENCODE_BASE, ENCODE_WORDS);
    this.fast = new Uint32Array(this.buffer, FAST_BASE, FAST_WORDS);
    this.chunkCount = exports.arenaInit(this.buffer.byteLength) >>> 0;
    this.chunksBase = exports.arenaChunksBase() >>> 0;
  }

  sum16(off: number, len: number, initial: number): number {
    return this.x.sum16(off, len, initial) >>> 0;
  }
  checksum(off: number, len: number, initial: number): number {
    return this.x.checksum(off, len, initial) >>> 0;
  }
  checksumScalar(off: number, len: number, initial: number): number {
    return this.x.checksumScalar(off, len, initial) >>> 0;
  }
  pseudoHeaderSumV4(src: number, dst: number, proto: number, length: number): number {
    return this.x.pseudoHeaderSumV4(src, dst, proto, length) >>> 0;
  }
  checksumUpdate16(oldChecksum: number, oldWord: number, newWord: number): number {
    return this.x.checksumUpdate16(oldChecksum, oldWord, newWord) >>> 0;
  }

  decode(off: number, len: number): Reason {
    return this.x.decode(off, len) as Reason;
  }
  decodeTransport(proto: number, off: number, len: number, src: number, dst: number): Reason {
    return this.x.decodeTransport(proto, off, len, src, dst) as Reason;
  }

  tcpHeaderLen(): number {
    return this.x.tcpHeaderLen() >>> 0;
  }
  encodeTcp(slot: number, payloadLen: number): number {
    return this.x.encodeTcp(slot, payloadLen) >>> 0;
  }
  encodeUdp(slot: number, payloadLen: number): number {
    return this.x.encodeUdp(slot, payloadLen) >>> 0;
  }
  encodeIcmp(slot: number, payloadLen: number): number {
    return this.x.encodeIcmp(slot, payloadLen) >>> 0;
  }
  encodeIpv4(slot: number, payloadLen: number): number {
    return this.x.encodeIpv4(slot, payloadLen) >>> 0;
  }
  encodeArp(slot: number): number {
    return this.x.encodeArp(slot) >>> 0;
  }

  seqLt(a: number, b: number): boolean {
    return this.x.seqLt(a, b) !== 0;
  }
  seqLe(a: number, b: number): boolean {
    return this.x.seqLe(a, b) !== 0;
  }
  seqGt(a: number, b: number): boolean {
    return this.x.seqGt(a, b) !== 0;
  }
  seqGe(a: number, b: number): boolean {
    return this.x.seqGe(a, b) !== 0;
  }
  seqAdd(a: number, n: number): number {
    return this.x.seqAdd(a, n) >>> 0;
  }
  seqDiff(a: number, b: number): number {
    return this.x.seqDiff(a, b) | 0; // signed by contract
  }
  segmentAcceptable(seq: number, segLen: number, rcvNxt: number, rcvWnd: number): boolean {
    return this.x.segmentAcceptable(seq, segLen, rcvNxt, rcvWnd) !== 0;
  }
  windowScaled(raw: number, shift: number): number {
    return this.x.windowScaled(raw, shift) >>> 0;
  }
  windowRaw(bytes: number, shift: number): number {
    return this.x.windowRaw(bytes, shift) >>> 0;
  }
  rttSrtt8(srtt8: number, rttvar4: number, r: number): number {
    return this.x.rttSrtt8(srtt8, rttvar4, r) >>> 0;
  }
  rttRttvar4(srtt8: number, rttvar4: number, r: number): number {
    return this.x.rttRttvar4(srtt8, rttvar4, r) >>> 0;
  }
  rto(srtt8: number, rttvar4: number, granularity: number, min: number, max: number): number {
    return this.x.rto(srtt8, rttvar4, granularity, min, max) >>> 0;
  }

  alloc(owner: number): number {
    return this.x.arenaAlloc(owner) >>> 0;
  }
  free(off: number): number {
    return this.x.arenaFree(off) >>> 0;
  }
  ownerOf(off: number): number {
    return this.x.arenaOwnerOf(off) >>> 0;
  }
  setOwner(off: number, owner: number): boolean {
    return this.x.arenaSetOwner(off, owner) !== 0;
  }
  chunksInUse(): number {
    return this.x.arenaInUse() >>> 0;
  }
  chunksByKind(kind: number): number {
    return this.x.arenaByKind(kind) >>> 0;
  }
  badFrees(): number {
    return this.x.arenaBadFrees() >>> 0;
  }

  tcpInput(off: number, len: number, now: number): number {
    return this.x.tcpInput(off, len, now) >>> 0;
  }
  tcpSendBurst(index: number, max: number, now: number): number {
    return this.x.tcpSendBurst(index, max, now) >>> 0;
  }
}

function importsFor(memory: WebAssembly.Memory): WebAssembly.Imports {
  return {
    env: {
      memory,
      // The module is built with abort disabled; this only serves debug builds
      // made without that setting, so a failed assertion names its location.
      abort(_message: number, _file: number, line: number, column: number): never {
        throw new Error(`hotpath.wasm aborted at ${line}:${column}`);
      },
    },
  };
}

/** A new fixed memory: initial = maximum, so it never grows and views never detach. */
function fixedMemory(memoryBytes: number): WebAssembly.Memory {
  const pages = memoryPages(memoryBytes);
  return new WebAssembly.Memory({ initial: pages, maximum: pages });
}

function engineFor(instance: WebAssembly.Instance, memory: WebAssembly.Memory): HotPath {
  const exports = instance.exports as unknown as Exports;
  // The fixed records start at SCRATCH_BASE; static data below must not reach them.
  const dataEnd = exports.staticDataEnd() >>> 0;
  if (dataEnd > SCRATCH_BASE) {
    throw new Error(`hotpath.wasm: static data ends at ${dataEnd}, past SCRATCH_BASE (${SCRATCH_BASE})`);
  }
  return new WasmEngine(exports, memory);
}

/** Instantiate a compiled hot-path module synchronously (Node, workers; browsers
 *  refuse synchronous instantiation of larger modules on their main thread). */
export function createWasmEngineSync(module: WebAssembly.Module, memoryBytes: number): HotPath {
  const memory = fixedMemory(memoryBytes);
  return engineFor(new WebAssembly.Instance(module, importsFor(memory)), memory);
}

/** Instantiate over a memory the caller made, e.g. a shared one that another
 *  thread (the tender) also sees. It must be fixed (initial = maximum) and
 *  match the module's import: build/hotpath.shared.wasm for a shared memory. */
export function createWasmEngineOnMemory(module: WebAssembly.Module, memory: WebAssembly.Memory): HotPath {
  memoryPages(memory.buffer.byteLength); // same size bounds as fixedMemory
  return engineFor(new WebAssembly.Instance(module, importsFor(memory)), memory);
}

/** Compile (if given bytes) and instantiate the hot-path module. */
export async function instantiateWasmEngine(
  module: WebAssembly.Module | BufferSource,
  memoryBytes: number,
): Promise<HotPath> {
  const compiled = module instanceof WebAssembly.Module ? module : await WebAssembly.compile(module);
  const memory = fixedMemory(memoryBytes);
  return engineFor(await WebAssembly.instantiate(compiled, importsFor(memory)), memory);
}
