// What a guest's JS heap holds, in three parts: the program, the engine's
// own bookkeeping, and the data the program's objects hold.
//
// The tender takes a V8 heap snapshot of the guest's isolate (the snapshot
// streams to the tender's thread, so the guest's heap pays nothing for it)
// and sums the objects' own sizes by the snapshot's node type:
// - "code": compiled code, bytecode and everything that describes them
//   (relocation info, deoptimization data, constant pools, source positions,
//   feedback metadata, ...): the program;
// - "hidden" and "object shape": V8's internal lists and tables and the
//   hidden classes (maps) of objects: the engine's bookkeeping;
// - everything else (objects, arrays and their backing stores, closures and
//   contexts, strings, numbers): data. Connection state, whatever holds it,
//   is data: a control block, a Connection, a Map entry, a closure.
// Types "native" and "synthetic" describe memory outside the JS heap (array
// buffer stores such as the arena) or snapshot bookkeeping and are left out.
//
// Why: with V8's optimizing compiler the heap keeps growing for many runs of
// the same work; a snapshot diff shows the growth is code (new optimized
// code, its deoptimization data and relocation info) and V8's lists that
// keep what optimized code depends on (WeakArrayLists of retained maps; see
// bench/heap-attribution.ts). A verdict about connection state compares data.

export interface HeapCensus {
  /** Bytes of type "code": compiled code, bytecode and their metadata. */
  program: number;
  /** Bytes of types "hidden" and "object shape": V8's own lists, tables and maps. */
  runtime: number;
  /** Bytes of every other JS heap object. */
  data: number;
  /** Objects counted. */
  objects: number;
}

interface SnapshotJson {
  snapshot: { meta: { node_fields: string[]; node_types: (string[] | string)[] } };
  nodes: number[];
}

/** The census of a heap snapshot's JSON text. */
export function censusOf(snapshotJson: string): HeapCensus {
  const s = JSON.parse(snapshotJson) as SnapshotJson;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0] as string[];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const sizeAt = fields.indexOf('self_size');
  if (typeAt < 0 || sizeAt < 0) throw new Error('heap snapshot: no type or self_size field');
  const census: HeapCensus = { program: 0, runtime: 0, data: 0, objects: 0 };
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + typeAt]!];
    const size = s.nodes[i + sizeAt]!;
    if (type === 'native' || type === 'synthetic') continue;
    if (type === 'code') census.program += size;
    else if (type === 'hidden' || type === 'object shape') census.runtime += size;
    else census.data += size;
    census.objects++;
  }
  return census;
}

/** Read a snapshot stream whole and take its census. */
export async function censusOfStream(stream: NodeJS.ReadableStream): Promise<HeapCensus> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return censusOf(Buffer.concat(parts).toString('utf8'));
}
