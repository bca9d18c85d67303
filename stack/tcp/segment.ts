// The fields of one arriving segment, read from the decoded-frame record once
// at the top of Tcp.input(). The record itself may be overwritten by a nested
// decode (an application callback that causes a frame to arrive), so the
// state machine reads only this copy. One instance is reused per TCP instance.

import { D, TCP_FIN, TCP_SYN } from '../hotpath/layout.js';
import type { SegmentOptions } from './options.js';

export class Segment {
  srcAddr = 0;
  dstAddr = 0;
  srcPort = 0;
  dstPort = 0;
  seq = 0;
  ack = 0;
  flags = 0;
  /** Raw (unscaled) window field. */
  wnd = 0;
  /** Arena offset and length of the payload (valid only during input()). */
  payloadOff = 0;
  payloadLen = 0;
  /** Sequence space the segment occupies: payload + SYN + FIN (RFC 9293 3.4 SEG.LEN). */
  segLen = 0;
  readonly opts: SegmentOptions = { mss: 0, wscale: 0xff, sackOk: false, ts: false, tsVal: 0, tsEcr: 0 };
  /** SACK blocks the segment carries (RFC 2018): count, and left/right edge pairs. */
  sackCount = 0;
  readonly sackEdges = new Uint32Array(8);

  /** Copy the decoded record's TCP fields. */
  load(d: Uint32Array): void {
    this.srcAddr = d[D.IP_SRC]!;
    this.dstAddr = d[D.IP_DST]!;
    this.srcPort = d[D.SPORT]!;
    this.dstPort = d[D.DPORT]!;
    this.seq = d[D.TCP_SEQ]!;
    this.ack = d[D.TCP_ACK]!;
    this.flags = d[D.TCP_FLAGS]!;
    this.wnd = d[D.TCP_WINDOW]!;
    this.payloadOff = d[D.PAYLOAD_OFF]!;
    this.payloadLen = d[D.PAYLOAD_LEN]!;
    this.segLen = this.payloadLen + ((this.flags & TCP_SYN) !== 0 ? 1 : 0) + ((this.flags & TCP_FIN) !== 0 ? 1 : 0);
    // SACK blocks matter on any segment; MSS, window scale and SACK-permitted
    // on SYNs only; timestamps stay unread until they are implemented.
    this.sackCount = d[D.OPT_SACK_COUNT]!;
    for (let i = 0; i < 2 * this.sackCount; i++) this.sackEdges[i] = d[D.OPT_SACK + i]!;
    if ((this.flags & TCP_SYN) !== 0) {
      const o = this.opts;
      o.mss = d[D.OPT_MSS]!;
      o.wscale = d[D.OPT_WSCALE]!;
      o.sackOk = d[D.OPT_SACK_OK]! === 1;
      o.ts = d[D.OPT_TS]! === 1;
      o.tsVal = d[D.OPT_TSVAL]!;
      o.tsEcr = d[D.OPT_TSECR]!;
    }
  }
}
