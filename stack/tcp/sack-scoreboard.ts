// What the peer told us it holds above SND.UNA (RFC 2018 SACK blocks), for
// the sender's loss recovery.
//
// A few disjoint, sorted sequence ranges in one typed array: no object per
// block or per ACK. The table is bounded (MAX_BLOCKS); when a new block would
// overflow it, the highest block is dropped: the holes that matter first are
// the low ones, and forgetting a block only makes us resend data the peer
// already has, never lose any. Every block lies within (SND.UNA, SND.MAX]:
// the caller checks each edge before add().

import type { HotPath } from '../hotpath/engine.js';

/** Disjoint ranges kept at most. The peer sends at most 4 per ACK. */
export const MAX_BLOCKS = 8;

export class SackScoreboard {
  /** left0, right0, left1, right1, ... sorted by left edge, never touching. */
  private readonly edges = new Uint32Array(2 * MAX_BLOCKS);
  /** Blocks held. */
  count = 0;

  constructor(private readonly hot: HotPath) {}

  /** Record [left, right): merged with every block it touches or overlaps. */
  add(left: number, right: number): void {
    const hot = this.hot;
    const e = this.edges;
    // Absorb each block that touches the new one, then insert in order.
    for (let i = 0; i < this.count; ) {
      const l = e[2 * i]!;
      const r = e[2 * i + 1]!;
      if (hot.seqLe(l, right) && hot.seqGe(r, left)) {
        if (hot.seqLt(l, left)) left = l;
        if (hot.seqGt(r, right)) right = r;
        this.removeAt(i);
      } else {
        i++;
      }
    }
    let at = 0;
    while (at < this.count && hot.seqLt(e[2 * at]!, left)) at++;
    if (this.count === MAX_BLOCKS) {
      if (at === MAX_BLOCKS) return; // higher than every block held: the one dropped
      this.count--; // drop the highest
    }
    e.copyWithin(2 * at + 2, 2 * at, 2 * this.count);
    e[2 * at] = left;
    e[2 * at + 1] = right;
    this.count++;
  }

  /** SND.UNA moved to `una`: forget what it covers, cut a block it splits. */
  trimBelow(una: number): void {
    const hot = this.hot;
    const e = this.edges;
    while (this.count > 0 && hot.seqLe(e[1]!, una)) this.removeAt(0);
    if (this.count > 0 && hot.seqLt(e[0]!, una)) e[0] = una;
  }

  clear(): void {
    this.count = 0;
  }

  /** Right edge of the highest block (valid when count > 0). */
  highest(): number {
    return this.edges[2 * this.count - 1]!;
  }

  /** Bytes the blocks cover. */
  sackedBytes(): number {
    let n = 0;
    for (let i = 0; i < this.count; i++) n += this.hot.seqDiff(this.edges[2 * i + 1]!, this.edges[2 * i]!);
    return n;
  }

  /**
   * The first sequence number at or above `from` that the peer has not SACKed
   * and that lies below a SACKed block (a hole: data sent before data that
   * arrived), or -1 if there is none. holeEnd() is then the left edge of the
   * block above it.
   */
  nextHole(from: number): number {
    const hot = this.hot;
    const e = this.edges;
    for (let i = 0; i < this.count; i++) {
      const l = e[2 * i]!;
      const r = e[2 * i + 1]!;
      if (hot.seqLt(from, l)) {
        this.end = l;
        return from;
      }
      if (hot.seqLt(from, r)) from = r;
    }
    return -1;
  }

  /** End of the hole nextHole() returned. */
  holeEnd(): number {
    return this.end;
  }

  private end = 0;

  private removeAt(i: number): void {
    this.edges.copyWithin(2 * i, 2 * i + 2, 2 * this.count);
    this.count--;
  }
}
