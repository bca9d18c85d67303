// The ts engine: the hot path in plain TypeScript over an ArrayBuffer (or a
// SharedArrayBuffer) laid out exactly like the wasm engine's memory, so the
// stack, the tests and the benchmarks can swap one engine for the other.
//
// Every integer argument is first converted the way a Wasm i32 parameter is
// (ToInt32, read as u32: `>>> 0`), so for any JS number both engines see the
// same value and give the same answer.

import type { HotPath } from './engine.js';
import { DECODED_BASE, DECODED_WORDS, ENCODE_BASE, ENCODE_WORDS, FAST_BASE, FAST_WORDS, PAGE_SIZE, type Reason } from './layout.js';
import { TsArena } from './ts-arena.js';
import { CHECKSUM_OUT_OF_RANGE, checksumUpdate16, foldSum, pseudoHeaderSumV4 } from './ts-checksum.js';
import { TsCodec } from './ts-codec.js';
import * as seq from './ts-seq.js';
import { TsTcpFast } from './ts-tcp-fast.js';
import { memoryPages } from './wasm.js';

class TsEngine implements HotPath {
  readonly name = 'ts' as const;
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  readonly bytes: Uint8Array;
  readonly decoded: Uint32Array;
  readonly request: Uint32Array;
  readonly fast: Uint32Array;
  readonly chunkCount: number;
  readonly chunksBase: number;
  private readonly size: number;
  private readonly codec: TsCodec;
  private readonly arena: TsArena;
  private readonly tcpFast: TsTcpFast;

  constructor(buffer: ArrayBuffer | SharedArrayBuffer) {
    this.buffer = buffer;
    this.size = buffer.byteLength;
    this.bytes = new Uint8Array(buffer);
    this.decoded = new Uint32Array(buffer, DECODED_BASE, DECODED_WORDS);
    this.request = new Uint32Array(buffer, ENCODE_BASE, ENCODE_WORDS);
    this.codec = new TsCodec(buffer);
    this.arena = new TsArena(buffer);
    this.chunkCount = this.arena.init(this.size);
    this.chunksBase = this.arena.chunksBase;
    this.fast = new Uint32Array(buffer, FAST_BASE, FAST_WORDS);
    this.tcpFast = new TsTcpFast(buffer, this.codec, this.arena);
  }

  // ---- Checksums -------------------------------------------------------------

  /** Folded sum of a range plus `initial`, or CHECKSUM_OUT_OF_RANGE. */
  sum16(off: number, len: number, initial: number): number {
    off >>>= 0;
    len >>>= 0;
    if (off + len > this.size) return CHECKSUM_OUT_OF_RANGE;
    return foldSum(this.codec.sum(off, len) + (initial >>> 0));
  }
  checksum(off: number, len: number, initial: number): number {
    const sum = this.sum16(off, len, initial);
    return sum === CHECKSUM_OUT_OF_RANGE ? sum : ~sum & 0xffff;
  }
  /** The ts engine has one loop; it is its own scalar reference. */
  checksumScalar(off: number, len: number, initial: number): number {
    return this.checksum(off, len, initial);
  }
  pseudoHeaderSumV4(src: number, dst: number, proto: number, length: number): number {
    return pseudoHeaderSumV4(src >>> 0, dst >>> 0, proto >>> 0, length >>> 0);
  }
  checksumUpdate16(oldChecksum: number, oldWord: number, newWord: number): number {
    return checksumUpdate16(oldChecksum >>> 0, oldWord >>> 0, newWord >>> 0);
  }

  // ---- Decode and encode -----------------------------------------------------

  decode(off: number, len: number): Reason {
    return this.codec.decode(off >>> 0, len >>> 0);
  }
  decodeTransport(proto: number, off: number, len: number, src: number, dst: number): Reason {
    return this.codec.decodeTransport(proto >>> 0, off >>> 0, len >>> 0, src >>> 0, dst >>> 0);
  }
  tcpHeaderLen(): number {
    return this.codec.tcpHeaderLen();
  }
  encodeTcp(slot: number, payloadLen: number): number {
    return this.codec.encodeTcp(slot >>> 0, payloadLen >>> 0);
  }
  encodeUdp(slot: number, payloadLen: number): number {
    return this.codec.encodeUdp(slot >>> 0, payloadLen >>> 0);
  }
  encodeIcmp(slot: number, payloadLen: number): number {
    return this.codec.encodeIcmp(slot >>> 0, payloadLen >>> 0);
  }
  encodeIpv4(slot: number, payloadLen: number): number {
    return this.codec.encodeIpv4(slot >>> 0, payloadLen >>> 0);
  }
  encodeArp(slot: number): number {
    return this.codec.encodeArp(slot >>> 0);
  }

  // ---- The TCP fast path -------------------------------------------------------

  tcpInput(off: number, len: number, now: number): number {
    return this.tcpFast.tcpInput(off >>> 0, len >>> 0, +now);
  }
  tcpSendBurst(index: number, max: number, now: number): number {
    return this.tcpFast.tcpSendBurst(index >>> 0, max >>> 0, +now);
  }

  // ---- Sequence space and RTO (ts-seq.ts converts its own arguments) --------

  seqLt(a: number, b: number): boolean {
    return seq.seqLt(a, b);
  }
  seqLe(a: number, b: number): boolean {
    return seq.seqLe(a, b);
  }
  seqGt(a: number, b: number): boolean {
    return seq.seqGt(a, b);
  }
  seqGe(a: number, b: number): boolean {
    return seq.seqGe(a, b);
  }
  seqAdd(a: number, n: number): number {
    return seq.seqAdd(a, n);
  }
  seqDiff(a: number, b: number): number {
    return seq.seqDiff(a, b);
  }
  segmentAcceptable(segSeq: number, segLen: number, rcvNxt: number, rcvWnd: number): boolean {
    return seq.segmentAcceptable(segSeq, segLen, rcvNxt, rcvWnd);
  }
  windowScaled(raw: number, shift: number): number {
    return seq.windowScaled(raw, shift);
  }
  windowRaw(bytes: number, shift: number): number {
    return seq.windowRaw(bytes, shift);
  }
  rttSrtt8(srtt8: number, rttvar4: number, r: number): number {
    return seq.rttSrtt8(srtt8, rttvar4, r);
  }
  rttRttvar4(srtt8: number, rttvar4: number, r: number): number {
    return seq.rttRttvar4(srtt8, rttvar4, r);
  }
  rto(srtt8: number, rttvar4: number, granularity: number, min: number, max: number): number {
    return seq.rto(srtt8, rttvar4, granularity, min, max);
  }

  // ---- Arena (TsArena converts its own arguments) ----------------------------

  alloc(owner: number): number {
    return this.arena.alloc(owner);
  }
  free(off: number): number {
    return this.arena.free(off);
  }
  ownerOf(off: number): number {
    return this.arena.ownerOf(off);
  }
  setOwner(off: number, owner: number): boolean {
    return this.arena.setOwner(off, owner);
  }
  chunksInUse(): number {
    return this.arena.inUse();
  }
  chunksByKind(kind: number): number {
    return this.arena.byKind(kind);
  }
  badFrees(): number {
    return this.arena.badFrees();
  }
}

/** A ts engine over a new zeroed memory of `memoryBytes` (rounded up to whole
 *  pages, like the wasm engine's). `shared` puts it in a SharedArrayBuffer so
 *  another thread (a device reader) can fill frame slots in place. */
export function createTsEngine(memoryBytes: number, shared = false): HotPath {
  const size = memoryPages(memoryBytes) * PAGE_SIZE;
  return new TsEngine(shared ? new SharedArrayBuffer(size) : new ArrayBuffer(size));
}

/** A ts engine over a memory the caller made (whole pages), e.g. a
 *  SharedArrayBuffer that the tender also sees. The arena is laid out afresh. */
export function createTsEngineOver(buffer: ArrayBuffer | SharedArrayBuffer): HotPath {
  if (buffer.byteLength % PAGE_SIZE !== 0) {
    throw new RangeError(`hot path: memory of ${buffer.byteLength} bytes is not a whole number of pages`);
  }
  memoryPages(buffer.byteLength);
  return new TsEngine(buffer);
}
