// What both ends of a link hold: typed views of the shared control block
// (layout.ts), its header words and each ring's length and offset tables.
// The guest and the tender index the same tables, from opposite sides.

import { linkTables, type LinkConfig } from './layout.js';

export abstract class LinkEnd {
  protected readonly ctl: Int32Array;
  protected readonly rxLen: Int32Array;
  protected readonly rxOff: Int32Array;
  protected readonly txLen: Int32Array;
  protected readonly txOff: Int32Array;
  /** Ring sizes are powers of two: a running index masked by these is its slot. */
  protected readonly rxMask: number;
  protected readonly txMask: number;

  protected constructor(config: LinkConfig) {
    const t = linkTables(config.rxSlots, config.txSlots);
    this.ctl = new Int32Array(config.control);
    this.rxLen = this.ctl.subarray(t.rxLen, t.rxLen + t.rxSlots);
    this.rxOff = this.ctl.subarray(t.rxOff, t.rxOff + t.rxSlots);
    this.txLen = this.ctl.subarray(t.txLen, t.txLen + t.txSlots);
    this.txOff = this.ctl.subarray(t.txOff, t.txOff + t.txSlots);
    this.rxMask = t.rxSlots - 1;
    this.txMask = t.txSlots - 1;
  }
}
