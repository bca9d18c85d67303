// The SACK scoreboard when it is full (stack/tcp/README.md: at most
// MAX_BLOCKS disjoint ranges; a block above all of them is the one forgotten,
// one below pushes the highest out), and fast recovery's use of it: a hole
// goes out only when NewReno's cwnd would let a segment out (RFC 6582 3.2
// step 3, the hole taking the new segment's place), a partial ACK whose first
// segment was resent already moves on to the next hole at once, NewReno
// without SACK resends from SND.UNA on any partial ACK, and a timeout forgets
// every block (RFC 2018 section 8: the receiver may renege).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../../../host/hotpath.js';
import { OwnerKind, ownerTag } from '../../../stack/hotpath/engine.js';
import { MAX_BLOCKS, SackScoreboard } from '../../../stack/tcp/sack-scoreboard.js';

const SACK_OWNER = ownerTag(OwnerKind.TcpReassembly, 1);
import { SackModel } from '../../helpers/sack-model.js';
import { ACK, add, TcpPeer } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;

describe('SACK scoreboard at capacity', () => {
  it('holds the lowest MAX_BLOCKS disjoint ranges of any sequence of blocks (model)', async () => {
    const hot = await createEngine('ts', 1 << 20);
    const BASE = 0xffff_ff00; // across the 2^32 wrap
    // Many short blocks on a coarse grid: most stay disjoint, so the table overflows.
    const block = fc.record({ slot: fc.integer({ min: 1, max: 40 }), len: fc.integer({ min: 1, max: 60 }) });
    fc.assert(
      fc.property(fc.array(block, { minLength: 1, maxLength: 40 }), (blocks) => {
        const board = SackScoreboard.standalone(hot, SACK_OWNER);
        const reference = new SackModel();
        for (const { slot, len } of blocks) {
          const l = slot * 50;
          board.add((BASE + l) >>> 0, (BASE + l + len) >>> 0);
          reference.add(l, l + len);
          expect(board.count).toBe(reference.blocks.length);
        }
        const model = reference.blocks;
        expect(board.highest()).toBe((BASE + model.at(-1)![1]) >>> 0);
        expect(board.sackedBytes()).toBe(model.reduce((n, [l, r]) => n + r - l, 0));
        // Walk every hole: each lies below a held range and ends at its left edge.
        let from = 0;
        for (const [l, r] of model) {
          if (from < l) {
            expect(board.nextHole((BASE + from) >>> 0)).toBe((BASE + from) >>> 0);
            expect(board.holeEnd()).toBe((BASE + l) >>> 0);
          }
          from = r;
        }
        expect(board.nextHole((BASE + from) >>> 0)).toBe(-1);
        board.clear();
      }),
      { numRuns: 300 },
    );
  });

  it('takes its chunk with the first block and gives it back when trimmed empty; without one it answers as empty', async () => {
    const hot = await createEngine('ts', 1 << 20);
    const board = SackScoreboard.standalone(hot, SACK_OWNER);
    const base = hot.chunksInUse();
    // No chunk yet: every query is "nothing held", and trimming or clearing takes none.
    expect([board.count, board.sackedBytes(), board.nextHole(10)]).toEqual([0, 0, -1]);
    board.trimBelow(500);
    board.clear();
    expect(hot.chunksInUse()).toBe(base);
    expect(board.add(100, 200)).toBe(true);
    expect(board.add(300, 400)).toBe(true);
    expect(hot.chunksInUse()).toBe(base + 1);
    // SND.UNA inside the first block cuts it; the chunk stays while a block is left.
    board.trimBelow(150);
    expect([board.count, board.sackedBytes(), board.nextHole(150)]).toEqual([2, 150, 200]);
    expect(board.holeEnd()).toBe(300);
    board.trimBelow(400);
    expect([board.count, hot.chunksInUse()]).toEqual([0, base]);
  });

  it('keeps nothing and says so when the arena has no chunk for it', async () => {
    const hot = await createEngine('ts', 1 << 20);
    const hog: number[] = [];
    for (let c = hot.alloc(ownerTag(OwnerKind.App, 1)); c !== 0; c = hot.alloc(ownerTag(OwnerKind.App, 1))) hog.push(c);
    const board = SackScoreboard.standalone(hot, SACK_OWNER);
    expect(board.add(100, 200)).toBe(false);
    expect(board.count).toBe(0);
    for (const c of hog) hot.free(c);
    expect(board.add(100, 200)).toBe(true);
    expect(board.count).toBe(1);
    board.clear();
  });

  it('full: a block above every range is dropped; one below takes the highest range\'s place', async () => {
    const hot = await createEngine('ts', 1 << 20);
    const board = SackScoreboard.standalone(hot, SACK_OWNER);
    for (let i = 0; i < MAX_BLOCKS; i++) board.add(100 + i * 100, 150 + i * 100);
    expect(board.count).toBe(MAX_BLOCKS);
    const top = 150 + (MAX_BLOCKS - 1) * 100;
    expect(board.highest()).toBe(top);
    expect(board.add(5000, 5100)).toBe(true); // taken into account: it is the one forgotten
    expect(board.count).toBe(MAX_BLOCKS);
    expect(board.highest()).toBe(top);
    expect(board.sackedBytes()).toBe(MAX_BLOCKS * 50);
    board.add(10, 20); // below all: the highest range is forgotten
    expect(board.count).toBe(MAX_BLOCKS);
    expect(board.highest()).toBe(top - 100);
    expect(board.nextHole(0)).toBe(0);
    expect(board.holeEnd()).toBe(10);
    // Merging frees a place: the next block above fits again.
    board.add(120, 260); // joins [100,150) and [200,250)
    expect(board.count).toBe(MAX_BLOCKS - 1);
    board.add(5000, 5100);
    expect(board.count).toBe(MAX_BLOCKS);
    expect(board.highest()).toBe(5100);
  });
});

describe.each(ENGINES)('fast recovery with SACK (%s)', (engine) => {
  const M = 500;

  /** 10 segments of 500 bytes out, SACK negotiated, Nagle off; ack() returns the data segments sent in answer (by index). */
  async function flight(sackOk = true) {
    const p = await TcpPeer.create(engine);
    const e = await p.accept({ sackOk, mss: M });
    e.conn.setNoDelay(true);
    e.conn.write(new Uint8Array(40 * M));
    expect(p.drain().filter((s) => s.payload.length > 0)).toHaveLength(10);
    const S = (i: number) => add(e.ours, i * M);
    const ack = (upTo: number, blocks: number[][] = []) => {
      p.inject({ flags: ACK, seq: e.theirs, ack: S(upTo), sack: sackOk ? blocks.flat().map(S) : [] });
      return p.drain().filter((s) => s.payload.length > 0).map((s) => (s.seq - e.ours) / M);
    };
    return { p, e, tcb: e.conn.inspect()!, ack };
  }

  it('a known hole waits until cwnd lets a segment out, then goes instead of new data', async () => {
    const { p, tcb, ack } = await flight();
    // Segments 0 and 4 are lost.
    expect(ack(0, [[1, 2]])).toEqual([10]); // limited transmit
    expect(ack(0, [[1, 3]])).toEqual([11]);
    expect(ack(0, [[1, 4]])).toEqual([0]); // fast retransmit: 12 out, cwnd = 6 + 3 segments
    expect(tcb.cwnd).toBe(9 * M);
    // The hole at 4 is known from here on, but cwnd (10, 11, 12) is not above the 12 out.
    expect(ack(0, [[5, 6], [1, 4]])).toEqual([]);
    expect(ack(0, [[5, 7], [1, 4]])).toEqual([]);
    expect(ack(0, [[5, 8], [1, 4]])).toEqual([]);
    // cwnd 13: one segment may go, and it is the hole.
    expect(ack(0, [[5, 9], [1, 4]])).toEqual([4]);
    expect(tcb.cwnd).toBe(12 * M);
    // No hole left below the blocks: new data, one per duplicate.
    expect(ack(0, [[5, 10], [1, 4]])).toEqual([12]);
    expect(ack(0, [[5, 11], [1, 4]])).toEqual([13]);
    expect(p.tcp.stats().counters.sackRetransmits).toBe(1);
  });

  it('a partial ACK whose first segment was resent already sends the next hole at once', async () => {
    const { p, ack } = await flight();
    // Segments 0, 4 and 8 are lost.
    ack(0, [[1, 2]]);
    ack(0, [[1, 3]]);
    expect(ack(0, [[1, 4]])).toEqual([0]);
    ack(0, [[5, 6], [1, 4]]);
    ack(0, [[5, 7], [1, 4]]);
    ack(0, [[5, 8], [1, 4]]);
    expect(ack(0, [[9, 10], [5, 8], [1, 4]])).toEqual([4]);
    // The resent 0 arrived: SND.UNA = 4, which was resent too; 8 is next.
    expect(ack(4, [[9, 10], [5, 8]])).toEqual([8, 12]);
    const c = p.tcp.stats().counters;
    expect(c.sackRetransmits).toBe(2);
    expect(c.partialAckRetransmits).toBe(0);
  });

  it('without SACK, a partial ACK resends from SND.UNA, even one covering part of the resent segment', async () => {
    const { p, e, ack } = await flight(false);
    ack(0);
    ack(0);
    expect(ack(0)).toEqual([0]);
    p.inject({ flags: ACK, seq: e.theirs, ack: add(e.ours, 200) });
    const out = p.drain().filter((s) => s.payload.length > 0);
    expect(out.map((s) => [s.seq, s.payload.length])).toEqual([[add(e.ours, 200), M]]);
    expect(p.tcp.stats().counters.partialAckRetransmits).toBe(1);
  });

  it('a timeout forgets every block; the next recovery learns them again', async () => {
    const { p, tcb, ack } = await flight();
    ack(0, [[1, 2]]);
    ack(0, [[1, 3], [5, 7]]);
    expect(tcb.sackBoard!.count).toBe(2);
    p.fireNext(); // RTO
    expect(tcb.sackBoard!.count).toBe(0);
    expect(p.drain().filter((s) => s.payload.length > 0).map((s) => s.seq)).toHaveLength(1);
  });
});
