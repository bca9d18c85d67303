// Out-of-order data (stack/tcp/buffers.ts Reassembly): held at its real cost
// (bytes packed into shared chunks, not a 2 KiB chunk per segment), bounded in
// ranges and chunks, checked against a model, and pruned under arena
// pressure before a new connection is refused (stack/tcp/tcp.ts).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../../../host/hotpath.js';
import { CHUNK_SIZE } from '../../../stack/hotpath/layout.js';
import { OwnerKind, ownerTag } from '../../../stack/hotpath/engine.js';
import { ChunkQueue, Reassembly } from '../../../stack/tcp/buffers.js';
import { ACK, add, SYN, TcpPeer } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;
const OWNER = ownerTag(OwnerKind.TcpReassembly, 1);
const BIG = 1 << 20; // bounds that never bind

/** Byte at sequence offset i of the test stream. */
const byteAt = (i: number) => (i * 131 + (i >>> 8)) & 0xff;

describe.each(ENGINES)('Reassembly (%s)', (engine) => {
  async function setup() {
    const hot = await createEngine(engine, 4 * 1024 * 1024);
    const r = Reassembly.standalone(hot, OWNER);
    const q = ChunkQueue.standalone(hot, ownerTag(OwnerKind.TcpRecv, 1));
    const scratch = hot.alloc(ownerTag(OwnerKind.App, 0));
    /** Insert stream bytes [from, from+len) as one segment (base seq 1000). */
    const put = (from: number, len: number, maxSegments = BIG, maxChunks = BIG) => {
      for (let i = 0; i < len; i++) hot.bytes[scratch + i] = byteAt(from + i);
      return r.insert((1000 + from) >>> 0, len, scratch, maxSegments, maxChunks);
    };
    return { hot, r, q, put };
  }

  it('packs tiny segments: 32 one-byte segments take one chunk, not 32', async () => {
    const { hot, r, put } = await setup();
    expect(hot.chunksByKind(OwnerKind.TcpReassembly)).toBe(0); // nothing held, no chunk at all
    for (let i = 0; i < 32; i++) expect(put(10 + 2 * i, 1)).toBe(true);
    expect(r.count).toBe(32);
    expect(r.bytes).toBe(32);
    expect(r.chunkCount).toBe(1);
    // The bytes' chunk, and the out-of-order chunk that lists the ranges.
    expect(hot.chunksByKind(OwnerKind.TcpReassembly)).toBe(2);
    r.clear();
    expect(hot.chunksByKind(OwnerKind.TcpReassembly)).toBe(0);
  });

  it('a train of segments continuing each other becomes one range; a segment crossing a chunk is split', async () => {
    const { r, put } = await setup();
    for (let i = 0; i < 3; i++) put(100 + 1000 * i, 1000);
    // 3,000 bytes: 2,048 in the first chunk, 952 in the second; two ranges, one block.
    expect([r.count, r.bytes, r.chunkCount]).toEqual([2, 3000, 2]);
    const blocks = new Uint32Array(8);
    expect(r.writeBlocks(blocks, 0, 4, 1100)).toBe(1);
    expect([blocks[0], blocks[1]]).toEqual([1100, 4100]);
  });

  it('refuses what is beyond its bounds: ranges and chunks', async () => {
    const { r, put } = await setup();
    expect(put(10, 1, 2)).toBe(true);
    expect(put(20, 1, 2)).toBe(true);
    expect(put(30, 1, 2)).toBe(false);
    expect(put(40, 2048, BIG, 1)).toBe(true); // fills the first chunk up to its end, the rest refused
    expect(r.chunkCount).toBe(1);
    expect(r.bytes).toBe(2 + 2046);
  });

  it('holds exactly the union of what was inserted, delivers it intact, and frees every chunk (model)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 60_000 }), fc.integer({ min: 1, max: 1500 })), { minLength: 1, maxLength: 60 }),
        async (segments) => {
          const { hot, r, q, put } = await setup();
          const held = new Set<number>();
          for (const [from, len] of segments) {
            put(from, len, 64, 40);
            expect(r.chunkCount).toBeLessThanOrEqual(40);
            expect(r.count).toBeLessThanOrEqual(64);
          }
          // What was stored is a subset of what was sent, without overlaps.
          const blocks = new Uint32Array(2 * 64);
          const n = r.writeBlocks(blocks, 0, 64, r.count > 0 ? r.firstSeq() : 0);
          let total = 0;
          for (let b = 0; b < n; b++) {
            for (let s = blocks[2 * b]!; s < blocks[2 * b + 1]!; s++) held.add(s - 1000);
            total += blocks[2 * b + 1]! - blocks[2 * b]!;
          }
          expect(total).toBe(r.bytes);
          expect(held.size).toBe(r.bytes);
          expect(r.chunkCount).toBeLessThanOrEqual(Math.ceil(r.bytes / CHUNK_SIZE) + 1);
          // As if everything before the first held byte had arrived in order:
          // draining there delivers the contiguous run that starts with it.
          const next = held.size > 0 ? Math.min(...held) : 0;
          let rcvNxt = (1000 + next) >>> 0;
          rcvNxt = r.drainInto(rcvNxt, q);
          let run = 0;
          while (held.has(next + run)) run++;
          expect(q.length).toBe(run);
          const out = new Uint8Array(run);
          q.copyToArray(0, run, out, 0);
          for (let i = 0; i < run; i++) expect(out[i]).toBe(byteAt(next + i));
          expect(rcvNxt).toBe((1000 + next + run) >>> 0);
          q.clear();
          r.clear();
          expect(hot.chunksByKind(OwnerKind.TcpReassembly)).toBe(0);
          expect(hot.badFrees()).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('drains in order across chunks and frees each chunk as its ranges leave', async () => {
    const { hot, r, q, put } = await setup();
    put(1000, 3000); // held: [1000, 4000)
    put(5000, 100); // held apart: [5000, 5100)
    const before = r.chunkCount;
    expect(before).toBe(2);
    const next = r.drainInto(3000, q); // rcvNxt inside the first range: bytes before it are dropped
    expect(next).toBe(1000 + 4000);
    expect(q.length).toBe(3000 - 1000);
    expect(r.count).toBe(1);
    expect(r.bytes).toBe(100);
    expect(r.chunkCount).toBe(1); // the first chunk held only drained bytes: freed
    r.drainInto(1000 + 5000, q);
    expect([r.count, r.bytes, r.chunkCount]).toEqual([0, 0, 0]);
    expect(hot.chunksByKind(OwnerKind.TcpReassembly)).toBe(0);
  });
});

describe.each(ENGINES)('out-of-order data under arena pressure (%s)', (engine) => {
  it('tiny out-of-order segments on many connections do not deny new connections (4 MiB arena)', async () => {
    const p = await TcpPeer.create(engine, { memoryBytes: 4 * 1024 * 1024 });
    const listener = p.tcp.listen(80);
    // The attack: 63 connections, each holding 32 one-to-two-byte segments after a hole.
    for (let k = 0; k < 63; k++) {
      const { theirs, ours } = await p.accept({ sport: 2000 + k, listener });
      for (let i = 0; i < 32; i++) {
        p.inject({ flags: ACK, seq: add(theirs, 10 + 3 * i), ack: ours, sport: 2000 + k, payload: Uint8Array.of(i, i) });
      }
      p.drain(); // the duplicate ACKs
    }
    // Two chunks each (the ranges' bookkeeping, the bytes), not 32.
    expect(p.tcpChunks().reassembly).toBe(2 * 63);
    p.inject({ flags: SYN, seq: 1, sport: 9999, mss: 1460 });
    p.expect({ flags: SYN | ACK });
    expect(p.tcp.stats().counters.dropSynNoMemory).toBe(0);
  });

  it('when the arena runs out, held out-of-order data is dropped before a SYN is refused', async () => {
    const p = await TcpPeer.create(engine, { memoryBytes: 2 * 1024 * 1024 });
    const listener = p.tcp.listen(80);
    // Ten connections, each with a hole at the front and 60 KiB held behind it.
    for (let k = 0; k < 10; k++) {
      const c = await p.accept({ sport: 3000 + k, listener });
      for (let off = 1460; off + 1460 <= 61_000; off += 1460) {
        p.inject({ flags: ACK, seq: add(c.theirs, off), ack: c.ours, sport: 3000 + k, payload: new Uint8Array(1460) });
      }
      p.drain();
    }
    const held = p.tcpChunks().reassembly;
    expect(held).toBeGreaterThanOrEqual(10 * 29);
    // Something else takes every spare chunk (an application's buffers, say).
    while (p.tcp.spareChunks() > 0) expect(p.hot.alloc(ownerTag(OwnerKind.App, 7))).not.toBe(0);
    p.inject({ flags: SYN, seq: 1, sport: 9999, mss: 1460 });
    p.expect({ flags: SYN | ACK });
    const s = p.tcp.stats();
    expect(s.counters.dropSynNoMemory).toBe(0);
    expect(s.counters.reassemblyPrunes).toBeGreaterThan(0);
    expect(s.counters.reassemblyPrunedBytes).toBeGreaterThan(0);
    expect(p.tcpChunks().reassembly).toBeLessThan(held);
    expect(p.tcp.spareChunks()).toBeGreaterThan(0);
    // Pruning stops once the reserve is back: not every connection lost its data.
    expect(s.counters.reassemblyPrunes).toBeLessThan(10);
  });
});
