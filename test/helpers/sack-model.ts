// A model of the SACK scoreboard (stack/tcp/sack-scoreboard.ts) for tests:
// merged [left, right) blocks as plain offsets, sorted, at most MAX_BLOCKS,
// the highest forgotten beyond that.

import { MAX_BLOCKS } from '../../stack/tcp/sack-scoreboard.js';

/** The model: merged intervals as plain offsets, the highest dropped beyond MAX_BLOCKS. */
export class SackModel {
  blocks: [number, number][] = [];
  add(l: number, r: number): void {
    const keep: [number, number][] = [];
    for (const [bl, br] of this.blocks) {
      if (bl <= r && br >= l) {
        l = Math.min(l, bl);
        r = Math.max(r, br);
      } else {
        keep.push([bl, br]);
      }
    }
    keep.push([l, r]);
    keep.sort((a, b) => a[0] - b[0]);
    this.blocks = keep.slice(0, MAX_BLOCKS);
  }
  trim(una: number): void {
    this.blocks = this.blocks.filter(([, r]) => r > una).map(([l, r]) => [Math.max(l, una), r]);
  }
  nextHole(from: number): [number, number] | null {
    for (const [l, r] of this.blocks) {
      if (from < l) return [from, l];
      if (from < r) from = r;
    }
    return null;
  }
}
