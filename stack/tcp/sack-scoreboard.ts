// What the peer told us it holds above SND.UNA (RFC 2018 SACK blocks), for
// the sender's loss recovery.
//
// A few disjoint, sorted sequence ranges in the connection's out-of-order
// chunk (layout.ts X.SACK_*): no object per block, per ACK or per connection,
// and no memory at all for a connection whose peer never sent a block. The
// table is bounded (MAX_BLOCKS); when a new block would overflow it, the
// highest block is dropped: the holes that matter first are the low ones,
// and forgetting a block only makes us resend data the peer already has,
// never lose any. Every block lies within (SND.UNA, SND.MAX]: the caller
// checks each edge before add(). One accessor is pointed at whichever
// connection is being worked on.

import { OOO_MAX_SACK, X } from '../hotpath/layout.js';
import type { HotPath } from '../hotpath/engine.js';
import { type OooHost, OwnOoo } from './buffers.js';
import { seqDiff, seqGe, seqGt, seqLe, seqLt } from '../hotpath/ts-seq.js';

/** Disjoint ranges kept at most. The peer sends at most 4 per ACK. */
export const MAX_BLOCKS = OOO_MAX_SACK;

export class SackScoreboard {
  private host: OooHost | null = null;

  constructor(private readonly w: Uint32Array) {}

  /** Point this accessor at a connection. */
  rebind(host: OooHost): void {
    this.host = host;
  }

  /** A scoreboard with a chunk of its own (tests, tools). */
  static standalone(hot: HotPath, owner: number): SackScoreboard {
    const board = new SackScoreboard(new Uint32Array(hot.buffer, 0, hot.buffer.byteLength >>> 2));
    board.rebind(new OwnOoo(hot, owner));
    return board;
  }

  /** Blocks held. */
  get count(): number {
    const b = this.host!.oooWords();
    return b < 0 ? 0 : this.w[b + X.SACK_COUNT]!;
  }

  /** Record [left, right): merged with every block it touches or overlaps.
   *  False when there is no room to keep it (the arena has no chunk). */
  add(left: number, right: number): boolean {
    const w = this.w;
    let b = this.host!.oooWords();
    if (b < 0) b = this.host!.takeOoo();
    if (b < 0) return false;
    const e = b + X.SACK_EDGES;
    // Absorb each block that touches the new one, then insert in order.
    for (let i = 0; i < w[b + X.SACK_COUNT]!; ) {
      const l = w[e + 2 * i]!;
      const r = w[e + 2 * i + 1]!;
      if (seqLe(l, right) && seqGe(r, left)) {
        if (seqLt(l, left)) left = l;
        if (seqGt(r, right)) right = r;
        this.removeAt(b, i);
      } else {
        i++;
      }
    }
    let count = w[b + X.SACK_COUNT]!;
    let at = 0;
    while (at < count && seqLt(w[e + 2 * at]!, left)) at++;
    if (count === MAX_BLOCKS) {
      if (at === MAX_BLOCKS) return true; // higher than every block held: the one dropped
      count--; // drop the highest
    }
    w.copyWithin(e + 2 * at + 2, e + 2 * at, e + 2 * count);
    w[e + 2 * at] = left;
    w[e + 2 * at + 1] = right;
    w[b + X.SACK_COUNT] = count + 1;
    return true;
  }

  /** SND.UNA moved to `una`: forget what it covers, cut a block it splits. */
  trimBelow(una: number): void {
    const w = this.w;
    const b = this.host!.oooWords();
    if (b < 0) return;
    const e = b + X.SACK_EDGES;
    while (w[b + X.SACK_COUNT]! > 0 && seqLe(w[e + 1]!, una)) this.removeAt(b, 0);
    if (w[b + X.SACK_COUNT]! > 0 && seqLt(w[e]!, una)) w[e] = una;
    if (w[b + X.SACK_COUNT] === 0) this.host!.oooEmptied();
  }

  clear(): void {
    const b = this.host!.oooWords();
    if (b < 0) return;
    this.w[b + X.SACK_COUNT] = 0;
    this.host!.oooEmptied();
  }

  /** Right edge of the highest block (valid when count > 0). */
  highest(): number {
    const b = this.host!.oooWords();
    return this.w[b + X.SACK_EDGES + 2 * this.w[b + X.SACK_COUNT]! - 1]!;
  }

  /** Bytes the blocks cover. */
  sackedBytes(): number {
    const b = this.host!.oooWords();
    if (b < 0) return 0;
    const e = b + X.SACK_EDGES;
    let n = 0;
    for (let i = 0; i < this.w[b + X.SACK_COUNT]!; i++) n += seqDiff(this.w[e + 2 * i + 1]!, this.w[e + 2 * i]!);
    return n;
  }

  /**
   * The first sequence number at or above `from` that the peer has not SACKed
   * and that lies below a SACKed block (a hole: data sent before data that
   * arrived), or -1 if there is none. holeEnd() is then the left edge of the
   * block above it.
   */
  nextHole(from: number): number {
    const b = this.host!.oooWords();
    if (b < 0) return -1;
    const e = b + X.SACK_EDGES;
    for (let i = 0; i < this.w[b + X.SACK_COUNT]!; i++) {
      const l = this.w[e + 2 * i]!;
      const r = this.w[e + 2 * i + 1]!;
      if (seqLt(from, l)) {
        this.end = l;
        return from;
      }
      if (seqLt(from, r)) from = r;
    }
    return -1;
  }

  /** End of the hole nextHole() returned. */
  holeEnd(): number {
    return this.end;
  }

  private end = 0;

  private removeAt(b: number, i: number): void {
    const e = b + X.SACK_EDGES;
    const count = this.w[b + X.SACK_COUNT]!;
    this.w.copyWithin(e + 2 * i, e + 2 * i + 2, e + 2 * count);
    this.w[b + X.SACK_COUNT] = count - 1;
  }
}
