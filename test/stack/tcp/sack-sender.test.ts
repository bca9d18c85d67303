// SACK on the sending side: the peer's blocks kept in a bounded scoreboard,
// and used in fast recovery to resend holes with the segments NewReno may
// send, where NewReno alone resends one hole per partial ACK (a round trip each).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../../../host/hotpath.js';
import { OwnerKind, ownerTag } from '../../../stack/hotpath/engine.js';
import { MAX_BLOCKS, SackScoreboard } from '../../../stack/tcp/sack-scoreboard.js';

const SACK_OWNER = ownerTag(OwnerKind.TcpReassembly, 1);
import { ACK, add, TcpPeer } from '../../helpers/tcp-peer.js';
import { SackModel as Model } from '../../helpers/sack-model.js';

const ENGINES = ['wasm', 'ts'] as const;
const MSS = 1460;

// ---- The scoreboard against a model ---------------------------------------------

type Op = { kind: 'add'; left: number; len: number } | { kind: 'trim'; to: number };

describe('SACK scoreboard', () => {
  it('matches a model of merged, bounded blocks across the sequence wrap', async () => {
    const hot = await createEngine('ts', 1 << 20);
    const BASE = 0xffff_f000; // offsets cross 2^32
    const op = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), left: fc.integer({ min: 1, max: 20_000 }), len: fc.integer({ min: 1, max: 3000 }) }),
      fc.record({ kind: fc.constant('trim' as const), to: fc.integer({ min: 0, max: 25_000 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.integer({ min: 0, max: 25_000 }), (ops: Op[], from) => {
        const board = SackScoreboard.standalone(hot, SACK_OWNER);
        const model = new Model();
        let una = 0;
        for (const o of ops) {
          if (o.kind === 'add') {
            if (o.left <= una) continue; // the caller only adds blocks above SND.UNA
            board.add((BASE + o.left) >>> 0, (BASE + o.left + o.len) >>> 0);
            model.add(o.left, o.left + o.len);
          } else if (o.to > una) {
            una = o.to;
            board.trimBelow((BASE + una) >>> 0);
            model.trim(una);
          }
          expect(board.count).toBe(model.blocks.length);
          expect(board.count).toBeLessThanOrEqual(MAX_BLOCKS);
        }
        expect(board.sackedBytes()).toBe(model.blocks.reduce((n, [l, r]) => n + r - l, 0));
        if (model.blocks.length > 0) expect(board.highest()).toBe((BASE + model.blocks.at(-1)![1]) >>> 0);
        const start = Math.max(from, una);
        const hole = model.nextHole(start);
        const got = board.nextHole((BASE + start) >>> 0);
        if (hole === null) {
          expect(got).toBe(-1);
        } else {
          expect(got).toBe((BASE + hole[0]) >>> 0);
          expect(board.holeEnd()).toBe((BASE + hole[1]) >>> 0);
        }
        // The board's chunk exists only while it holds blocks.
        expect(hot.chunksByKind(OwnerKind.TcpReassembly)).toBe(board.count > 0 ? 1 : 0);
        board.clear();
        expect(hot.chunksByKind(OwnerKind.TcpReassembly)).toBe(0);
      }),
      { numRuns: 500 },
    );
  });
});

// ---- Fast recovery with and without SACK ------------------------------------------

/**
 * Ten segments go out; the peer loses segments 1 and 5 and acknowledges the
 * rest as it would (duplicate ACKs, with SACK blocks when negotiated), then
 * the two resent segments arrive. Returns the sequence offsets (in segments)
 * of what was resent, in order, and the counters.
 */
async function twoLosses(engine: 'wasm' | 'ts', sackOk: boolean) {
  const p = await TcpPeer.create(engine);
  const e = await p.accept({ sackOk });
  e.conn.setNoDelay(true);
  e.conn.write(new Uint8Array(10 * MSS));
  expect(p.drain().map((s) => s.payload.length)).toEqual(Array(10).fill(MSS));
  const S = (i: number) => add(e.ours, i * MSS);
  const resent: number[] = [];
  const ack = (upTo: number, blocks: number[][] = []) => {
    p.inject({ flags: ACK, seq: e.theirs, ack: S(upTo), sack: sackOk ? blocks.flat().map(S) : [] });
    for (const s of p.drain()) if (s.payload.length > 0) resent.push((s.seq - e.ours) / MSS);
  };
  ack(1); // segment 0
  ack(1, [[2, 3]]);
  ack(1, [[2, 4]]);
  ack(1, [[2, 5]]); // third duplicate: fast retransmit of 1
  ack(1, [[6, 7], [2, 5]]);
  ack(1, [[6, 8], [2, 5]]);
  ack(1, [[6, 9], [2, 5]]);
  ack(1, [[6, 10], [2, 5]]);
  ack(5, [[6, 10]]); // the resent 1 arrived: a partial ACK
  ack(10); // the resent 5 arrived
  p.advance(10_000);
  return { resent, counters: p.tcp.stats().counters, p };
}

describe.each(ENGINES)('TCP fast recovery with SACK (%s)', (engine) => {
  it('resends the second hole on the next duplicate ACK, not a round trip later on the partial ACK', async () => {
    const { resent, counters } = await twoLosses(engine, true);
    expect(resent).toEqual([1, 5]);
    expect(counters.fastRetransmits).toBe(1);
    expect(counters.sackRetransmits).toBe(1);
    expect(counters.partialAckRetransmits).toBe(0);
    expect(counters.retransmitTimeouts).toBe(0);
    expect(counters.retransmittedSegments).toBe(2);
  });

  it('without SACK, NewReno resends the second hole only on the partial ACK', async () => {
    const { resent, counters } = await twoLosses(engine, false);
    expect(resent).toEqual([1, 5]);
    expect(counters.sackRetransmits).toBe(0);
    expect(counters.partialAckRetransmits).toBe(1);
    expect(counters.retransmittedSegments).toBe(2);
  });

  it('ignores (and counts) blocks below SND.UNA, beyond SND.MAX or inverted; they resend nothing', async () => {
    const p = await TcpPeer.create(engine);
    const e = await p.accept({ sackOk: true });
    e.conn.setNoDelay(true);
    e.conn.write(new Uint8Array(4 * MSS));
    p.drain();
    const S = (i: number) => add(e.ours, i * MSS);
    p.inject({ flags: ACK, seq: e.theirs, ack: S(1), sack: [S(0), S(1), S(2), S(9), S(3), S(2), add(e.ours, -5000), S(0)] });
    expect(p.tcp.stats().counters.sackBlocksIgnored).toBe(4);
    p.drain();
    for (let i = 0; i < 4; i++) p.inject({ flags: ACK, seq: e.theirs, ack: S(1), sack: [S(2), S(9)] });
    // Only NewReno's fast retransmit of segment 1: no hole came from the forged blocks.
    const resent = p.drain().filter((s) => s.payload.length > 0);
    expect(resent.map((s) => s.seq)).toEqual([S(1)]);
    expect(p.tcp.stats().counters.sackRetransmits).toBe(0);
  });
});
