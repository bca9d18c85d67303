// The guest's memory after a stress run, read from the JSON lines that
// `uk run --stats FILE` appends (docs/architecture.md §7: each line has at least t,
// mem.budget, mem.arenaUsed, mem.heapUsed (after GC), tcp.connections, ...).
// After a run we wait for quiescence: a line written after the run ended
// that shows no TCP connection left. That is the number issue #499 is about:
// memory in use once every connection is gone, run after run.
import { open, stat } from 'node:fs/promises';

export interface GuestMemory {
  readonly arenaUsed: number;
  readonly heapUsed: number;
  /** heapUsed by V8 heap space (old_space, code_space, ...), when the line has them. */
  readonly heapSpaces: Readonly<Record<string, number>>;
  /** The program's part of the heap: from a census (mem.heapCensus), code,
   *  bytecode and their metadata plus V8's own bookkeeping (hidden classes,
   *  internal lists); else code and bytecode with their metadata (mem.heapCode,
   *  V8's code statistics); or, in lines without either,
   *  code_space and code_large_object_space. With the optimizing compiler this
   *  part keeps growing for many runs (new optimized code, its deoptimization
   *  data and relocation info: bench/heap-attribution.ts); it is not state
   *  connections left behind. */
  readonly codeBytes: number;
  /** heapUsed without codeBytes: the data the verdict compares. From a
   *  heap census when the line has one (mem.heapCensus), which is exact. */
  readonly dataHeapUsed: number;
  /** Whether program and data come from a heap census (a heap snapshot). */
  readonly census: boolean;
  readonly connections: number;
  /** False when the timeout passed with connections still open. */
  readonly quiescent: boolean;
}

const TAIL_BYTES = 64 * 1024;
const POLL_MS = 100;

/** The file's size now: pass it to `waitForQuiescence` to require a newer line. */
export async function statsMark(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/**
 * Polls `path` until a line written after `mark` shows tcp.connections == 0,
 * or `timeoutMs` passes (then the latest line, with quiescent: false).
 * Null when the file never holds a usable line.
 */
export async function waitForQuiescence(path: string, mark: number, timeoutMs: number): Promise<GuestMemory | null> {
  const end = Date.now() + timeoutMs;
  let latest: GuestMemory | null = null;
  for (;;) {
    const size = await statsMark(path);
    if (size > mark) {
      const line = await lastLine(path, size);
      latest = line === null ? latest : memoryOf(line);
      if (latest !== null && latest.connections === 0) return { ...latest, quiescent: true };
    }
    if (Date.now() >= end) return latest === null ? null : { ...latest, quiescent: false };
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** The last complete, parsable line within the file's last 64 KiB. */
async function lastLine(path: string, size: number): Promise<unknown> {
  return lastLineWith(path, size, () => true);
}

/** The last complete, parsable line within the file's last 64 KiB that `wanted` accepts. */
async function lastLineWith(path: string, size: number, wanted: (line: unknown) => boolean): Promise<unknown> {
  const length = Math.min(size, TAIL_BYTES);
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    const lines = buffer.toString('utf8').split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      try {
        const parsed: unknown = JSON.parse(lines[i]);
        if (wanted(parsed)) return parsed;
      } catch {
        // a partial line (being written, or cut by the 64 KiB window): try the previous one
      }
    }
    return null;
  } finally {
    await handle.close();
  }
}

/** V8's spaces that hold compiled code. */
const CODE_SPACES = ['code_space', 'code_large_object_space'];

function memoryOf(line: unknown): GuestMemory | null {
  const arenaUsed = field(line, 'mem', 'arenaUsed');
  const heapUsed = field(line, 'mem', 'heapUsed');
  const connections = field(line, 'tcp', 'connections');
  if (arenaUsed === undefined || heapUsed === undefined || connections === undefined) return null;
  const heapSpaces = spacesOf(line);
  const census = censusOf(line);
  if (census !== undefined) {
    return { arenaUsed, heapUsed, heapSpaces, codeBytes: census.program, dataHeapUsed: census.data, census: true, connections, quiescent: false };
  }
  const program = programOf(line);
  const codeBytes = program ?? CODE_SPACES.reduce((sum, name) => sum + (heapSpaces[name] ?? 0), 0);
  return { arenaUsed, heapUsed, heapSpaces, codeBytes, dataHeapUsed: heapUsed - codeBytes, census: false, connections, quiescent: false };
}

/** mem.heapCensus (program and data bytes), or undefined when the line has none. */
function censusOf(line: unknown): { program: number; data: number } | undefined {
  const mem = typeof line === 'object' && line !== null ? (line as Record<string, unknown>).mem : undefined;
  const census = typeof mem === 'object' && mem !== null ? (mem as Record<string, unknown>).heapCensus : undefined;
  if (typeof census !== 'object' || census === null) return undefined;
  const { program, runtime, data } = census as Record<string, unknown>;
  if (typeof program !== 'number' || typeof data !== 'number') return undefined;
  // The engine's bookkeeping goes with the program: it follows the code, not the connections.
  return { program: program + (typeof runtime === 'number' ? runtime : 0), data };
}

/**
 * Polls `path` for a line written after `mark` that carries a heap census
 * (`uk run` writes one on SIGUSR2), until `timeoutMs`. Null when none came.
 */
export async function waitForCensus(path: string, mark: number, timeoutMs: number): Promise<GuestMemory | null> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const size = await statsMark(path);
    if (size > mark) {
      const found = await lastLineWith(path, size, (line) => censusOf(line) !== undefined);
      const memory = found === null ? null : memoryOf(found);
      if (memory !== null) return { ...memory, quiescent: memory.connections === 0 };
    }
    if (Date.now() >= end) return null;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** mem.heapCode's two figures summed, or undefined when the line has none. */
function programOf(line: unknown): number | undefined {
  if (typeof line !== 'object' || line === null) return undefined;
  const mem = (line as Record<string, unknown>).mem;
  const code = typeof mem === 'object' && mem !== null ? (mem as Record<string, unknown>).heapCode : undefined;
  if (typeof code !== 'object' || code === null) return undefined;
  const { codeAndMetadata, bytecodeAndMetadata } = code as Record<string, unknown>;
  if (typeof codeAndMetadata !== 'number' || typeof bytecodeAndMetadata !== 'number') return undefined;
  return codeAndMetadata + bytecodeAndMetadata;
}

/** mem.heapSpaces (or the flat "mem.heapSpaces"), numbers only; {} when absent. */
function spacesOf(line: unknown): Record<string, number> {
  if (typeof line !== 'object' || line === null) return {};
  const record = line as Record<string, unknown>;
  const mem = record.mem;
  const raw = typeof mem === 'object' && mem !== null ? (mem as Record<string, unknown>).heapSpaces : record['mem.heapSpaces'];
  const out: Record<string, number> = {};
  if (typeof raw !== 'object' || raw === null) return out;
  for (const [name, value] of Object.entries(raw)) if (typeof value === 'number' && Number.isFinite(value)) out[name] = value;
  return out;
}

/** `obj.group.name`, or the flat key `"group.name"`: either shape is accepted. */
function field(obj: unknown, group: string, name: string): number | undefined {
  if (typeof obj !== 'object' || obj === null) return undefined;
  const record = obj as Record<string, unknown>;
  const nested = record[group];
  const value = typeof nested === 'object' && nested !== null ? (nested as Record<string, unknown>)[name] : record[`${group}.${name}`];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
