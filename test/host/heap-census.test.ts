// The heap census (host/heap-census.ts): a snapshot's objects summed by node
// type into program (code), runtime (V8's lists and maps) and data, on a
// synthetic snapshot and on a real guest's.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { censusOf } from '../../host/heap-census.js';
import { startGuest } from '../../host/run.js';
import { FIXTURES } from '../helpers/uk.js';

/** A minimal .heapsnapshot: nodes as [type, name, id, self_size, edge_count]. */
function snapshot(nodes: [string, number][]): string {
  const types = ['hidden', 'array', 'string', 'object', 'code', 'closure', 'regexp', 'number', 'native', 'synthetic', 'concatenated string', 'sliced string', 'symbol', 'bigint', 'object shape'];
  return JSON.stringify({
    snapshot: { meta: { node_fields: ['type', 'name', 'id', 'self_size', 'edge_count'], node_types: [types, 'string', 'number', 'number', 'number'] } },
    nodes: nodes.flatMap(([type, size], i) => [types.indexOf(type), 0, i + 1, size, 0]),
    edges: [],
    strings: [''],
  });
}

describe('censusOf', () => {
  it('sums code as program, hidden and object shapes as runtime, the rest as data, and leaves out native and synthetic', () => {
    const c = censusOf(snapshot([
      ['code', 100], ['code', 50], ['hidden', 7], ['object shape', 3],
      ['object', 10], ['array', 20], ['closure', 5], ['string', 4], ['number', 1],
      ['native', 1_000_000], ['synthetic', 0],
    ]));
    expect(c).toEqual({ program: 150, runtime: 10, data: 40, objects: 9 });
  });

  it('rejects a snapshot without the fields it needs', () => {
    const bad = JSON.stringify({ snapshot: { meta: { node_fields: ['id'], node_types: [[]] } }, nodes: [] });
    expect(() => censusOf(bad)).toThrow(/no type or self_size/);
  });
});

describe('a guest\'s census', () => {
  it('adds up to about its heap, and the program part is there', async () => {
    const run = await startGuest({ app: join(FIXTURES, 'whoami.mjs'), log: () => {} });
    try {
      const rec = await run.census();
      const census = rec.mem.heapCensus!;
      expect(census.program).toBeGreaterThan(100_000);
      expect(census.data).toBeGreaterThan(100_000);
      // The snapshot is taken after a GC, the stats a moment later: within 15% of heapUsed.
      const sum = census.program + census.runtime + census.data;
      expect(Math.abs(sum - rec.mem.heapUsed) / rec.mem.heapUsed).toBeLessThan(0.15);
    } finally {
      await run.stop();
    }
  });
});
