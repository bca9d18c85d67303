// Hot-path benchmark: checksum throughput, decode and encode latency, for the
// wasm engine (SIMD and scalar checksum loops) and the ts engine, measured side
// by side in one run. Prints a table, writes the "Hot path" section of
// BENCHMARKS.md and bench/results/hotpath.json.
//
//   npm run bench:hotpath      (builds, then node --expose-gc dist/bench/hotpath.js)

import { createEngine, packageRoot } from '../host/hotpath.js';
import { E, Reason, TCP_ACK, TCP_PSH, type HotPath } from '../stack/hotpath/index.js';
import { seqGt } from '../stack/hotpath/ts-seq.js';
import {
  collectGarbage,
  cpuNow,
  describeMachine,
  isMain,
  median,
  writeMarkdownSection,
  writeResults,
  type Machine,
  type SummaryRow,
} from './common.js';

/** Runs per figure; the median is reported. */
const RUNS = 7;
/** Target duration of one timed loop. */
const RUN_MS = 100;
/** Untimed rounds before the timed ones. */
const WARMUP_RUNS = 2;

// ---- Timed loops ------------------------------------------------------------------
// One small loop per operation, each seeing only the two engine classes, so V8
// inlines the engine call as it would in the stack. Results are folded into a
// value the caller keeps, so no call can be optimised away.

function loopChecksum(hot: HotPath, off: number, len: number, n: number): number {
  let x = 0;
  for (let i = 0; i < n; i++) x ^= hot.checksum(off, len, i & 0xff);
  return x;
}

function loopChecksumScalar(hot: HotPath, off: number, len: number, n: number): number {
  let x = 0;
  for (let i = 0; i < n; i++) x ^= hot.checksumScalar(off, len, i & 0xff);
  return x;
}

function loopDecode(hot: HotPath, off: number, len: number, n: number): number {
  let x = 0;
  for (let i = 0; i < n; i++) x += hot.decode(off, len);
  return x;
}

function loopEncodeTcp(hot: HotPath, slot: number, payloadLen: number, n: number): number {
  let x = 0;
  const req = hot.request;
  for (let i = 0; i < n; i++) {
    req[E.TCP_SEQ] = i; // a stack changes a few words per segment
    x += hot.encodeTcp(slot, payloadLen);
  }
  return x;
}

function loopSeqGtEngine(hot: HotPath, n: number): number {
  let x = 0;
  for (let i = 0; i < n; i++) if (hot.seqGt(i, 0x7fff0000)) x++;
  return x;
}

function loopSeqGtTwin(n: number): number {
  let x = 0;
  for (let i = 0; i < n; i++) if (seqGt(i, 0x7fff0000)) x++;
  return x;
}

type Loop = (n: number) => number;
let sink = 0;

/** Nanoseconds of CPU time per operation over n operations. */
function nsPerOp(loop: Loop, n: number): number {
  const t0 = cpuNow();
  sink ^= loop(n);
  return (cpuNow() - t0) / n;
}

/** Warm the loop up and find an iteration count that runs about RUN_MS. */
function calibrate(loop: Loop): number {
  let n = 1000;
  for (;;) {
    const ms = (nsPerOp(loop, n) * n) / 1e6;
    if (ms > RUN_MS / 4) return Math.max(1, Math.round((n * RUN_MS) / ms));
    n *= 4;
  }
}

/** Median ns per operation of each variant, runs interleaved so that drift in
 *  the machine's speed hits every variant alike. */
function sideBySide(variants: Record<string, Loop>): Record<string, number> {
  const names = Object.keys(variants);
  const counts = names.map((k) => calibrate(variants[k]));
  const samples: number[][] = names.map(() => []);
  collectGarbage();
  // One discarded round: V8 may still be re-optimising code that another
  // figure warmed up with different feedback (e.g. long checksums before
  // short ones); the first timed run would pay for it.
  for (let r = -WARMUP_RUNS; r < RUNS; r++) {
    names.forEach((k, i) => {
      const ns = nsPerOp(variants[k], counts[i]);
      if (r >= 0) samples[i].push(ns);
    });
  }
  return Object.fromEntries(names.map((k, i) => [k, median(samples[i])]));
}

// ---- Figures ----------------------------------------------------------------------

interface Row {
  figure: string;
  unit: 'GB/s' | 'ns';
  wasm: number;
  wasmScalar?: number;
  ts: number;
}

function fillRandom(bytes: Uint8Array): void {
  let x = 0x2545f491;
  for (let i = 0; i < bytes.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
}

function checksumRows(wasm: HotPath, ts: HotPath): Row[] {
  const rows: Row[] = [];
  const data = new Uint8Array(70_000);
  fillRandom(data);
  const off = wasm.chunksBase; // aligned, as frame slots are
  wasm.bytes.set(data, off);
  ts.bytes.set(data, off);
  for (const [label, len] of [
    ['40 B', 40],
    ['1500 B', 1500],
    ['64 KiB', 65536],
  ] as const) {
    const ns = sideBySide({
      wasm: (n) => loopChecksum(wasm, off, len, n),
      wasmScalar: (n) => loopChecksumScalar(wasm, off, len, n),
      ts: (n) => loopChecksum(ts, off, len, n),
    });
    rows.push({
      figure: `checksum ${label}`,
      unit: 'GB/s',
      wasm: len / ns.wasm,
      wasmScalar: len / ns.wasmScalar,
      ts: len / ns.ts,
    });
  }
  return rows;
}

/** Fill the encode request for a data segment of an established connection. */
function tcpRequest(hot: HotPath): void {
  const r = hot.request;
  r.fill(0);
  r[E.DST_MAC_HI] = 0x0200;
  r[E.DST_MAC_LO] = 0x0000000b;
  r[E.SRC_MAC_HI] = 0x0200;
  r[E.SRC_MAC_LO] = 0x0000000a;
  r[E.IP_SRC] = 0x0a000001;
  r[E.IP_DST] = 0x0a000002;
  r[E.IP_TTL] = 64;
  r[E.IP_FRAG] = 0x4000;
  r[E.SPORT] = 40000;
  r[E.DPORT] = 9000;
  r[E.TCP_SEQ] = 0x12345678;
  r[E.TCP_ACK] = 0x9abcdef0;
  r[E.TCP_FLAGS] = TCP_ACK | TCP_PSH;
  r[E.TCP_WINDOW] = 5000;
  r[E.OPT_WSCALE] = 0xff;
  r[E.OPT_TS] = 1;
  r[E.OPT_TSVAL] = 1000;
  r[E.OPT_TSECR] = 2000;
}

function frameRows(wasm: HotPath, ts: HotPath): Row[] {
  const decodeRows: Row[] = [];
  const encodeRows: Row[] = [];
  const slot = wasm.chunksBase + 2048;
  for (const payloadLen of [0, 1448]) {
    // Build the frame once (timestamps option, like Linux), copy it to both engines.
    tcpRequest(wasm);
    fillRandom(wasm.bytes.subarray(slot + 66, slot + 66 + payloadLen));
    const len = wasm.encodeTcp(slot, payloadLen);
    ts.bytes.set(wasm.bytes.subarray(slot, slot + len), slot);
    if (wasm.decode(slot, len) !== Reason.Ok || ts.decode(slot, len) !== Reason.Ok) {
      throw new Error('bench: the test frame does not decode');
    }
    const decode = sideBySide({
      wasm: (n) => loopDecode(wasm, slot, len, n),
      ts: (n) => loopDecode(ts, slot, len, n),
    });
    decodeRows.push({ figure: `decode TCP/IPv4 ${len} B`, unit: 'ns', wasm: decode.wasm, ts: decode.ts });

    const out = wasm.chunksBase + 8 * 2048;
    tcpRequest(wasm);
    tcpRequest(ts);
    const encode = sideBySide({
      wasm: (n) => loopEncodeTcp(wasm, out, payloadLen, n),
      ts: (n) => loopEncodeTcp(ts, out, payloadLen, n),
    });
    encodeRows.push({ figure: `encodeTcp ${len} B`, unit: 'ns', wasm: encode.wasm, ts: encode.ts });
  }
  return [...decodeRows, ...encodeRows];
}

/** Why TCP compares sequence numbers in TypeScript: an engine call per
 *  comparison (wasm column) against the TypeScript twin TCP calls
 *  (stack/hotpath/ts-seq.ts, ts column). */
function seqRows(wasm: HotPath): Row[] {
  const r = sideBySide({ wasm: (n) => loopSeqGtEngine(wasm, n), ts: (n) => loopSeqGtTwin(n) });
  return [{ figure: 'seqGt: engine call (wasm) or TypeScript twin (ts)', unit: 'ns', wasm: r.wasm, ts: r.ts }];
}

// ---- Report -----------------------------------------------------------------------

function fmt(x: number | undefined, unit: Row['unit']): string {
  if (x === undefined) return '—';
  return unit === 'GB/s' ? x.toFixed(2) : x.toFixed(1);
}

/** wasm / ts as a speed-up: higher is better for wasm either way. */
function ratio(r: Row): string {
  const speedup = r.unit === 'GB/s' ? r.wasm / r.ts : r.ts / r.wasm;
  return `${speedup.toFixed(1)}x`;
}

function table(rows: Row[]): string {
  const head = '| Figure | Unit | wasm (SIMD) | wasm scalar | ts | wasm vs ts |';
  const rule = '|---|---|---:|---:|---:|---:|';
  const lines = rows.map(
    (r) => `| ${r.figure} | ${r.unit} | ${fmt(r.wasm, r.unit)} | ${fmt(r.wasmScalar, r.unit)} | ${fmt(r.ts, r.unit)} | ${ratio(r)} |`,
  );
  return [head, rule, ...lines].join('\n');
}

function section(machine: Machine, rows: Row[]): string {
  return [
    '## Hot path',
    '',
    `Machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.date}`,
    `(load average ${machine.load.toFixed(1)} when the run started). Command: \`npm run bench:hotpath\`.`,
    '',
    `Each figure is the median of ${RUNS} timed loops of about ${RUN_MS} ms of process CPU time (time spent`,
    'descheduled by other work on the machine is not counted), the engines measured side by side in the',
    'same run.',
    'Checksums run over random data at an aligned offset: "wasm (SIMD)" is `checksum`, which switches',
    'to its v128 loop from 128 bytes up; "wasm scalar" is `checksumScalar`. The TCP frames carry the',
    'timestamps option (66 bytes with no payload, 1514 bytes with 1448): decode validates every header',
    'and both checksums, encodeTcp writes every header and checksum. "wasm vs ts" is the speed-up of',
    'wasm (SIMD) over ts. The seqGt line times one sequence comparison as a call into the wasm engine',
    'and as the TypeScript twin TCP calls instead (a ratio below 1x: the call costs more than its work).',
    '',
    table(rows),
    '',
  ].join('\n');
}

/** Runs the benchmark, prints its table, writes its BENCHMARKS.md section and
 *  bench/results/hotpath.json; returns its lines for the combined table. */
export async function runHotpathBench(): Promise<SummaryRow[]> {
  const wasm = await createEngine('wasm', 16 * 1024 * 1024);
  const ts = await createEngine('ts', 16 * 1024 * 1024);
  const rows = [...checksumRows(wasm, ts), ...frameRows(wasm, ts), ...seqRows(wasm)];
  const machine = describeMachine();
  console.log(`Hot path — ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, load ${machine.load.toFixed(1)}\n`);
  console.log(table(rows));

  const root = packageRoot();
  writeMarkdownSection(root, 'Hot path', section(machine, rows));
  writeResults(root, 'hotpath', { machine, runs: RUNS, runMs: RUN_MS, rows });
  if (sink === 0.5) console.log(''); // keep `sink` observable
  return rows.map((r) => ({
    figure: r.figure,
    unit: r.unit,
    wasm: fmt(r.wasm, r.unit),
    ts: fmt(r.ts, r.unit),
    speedup: ratio(r),
  }));
}

if (isMain(import.meta.url)) await runHotpathBench();
