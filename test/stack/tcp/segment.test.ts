// One arriving segment's fields, copied from the decoded record
// (stack/tcp/segment.ts): SEG.LEN, the SACK blocks carried, and the SYN-only
// options, which a later segment without SYN leaves as they were.

import { describe, expect, it } from 'vitest';
import { D, TCP_ACK, TCP_FIN, TCP_SYN } from '../../../stack/hotpath/layout.js';
import { Segment } from '../../../stack/tcp/segment.js';

function record(fields: Partial<Record<D, number>>): Uint32Array {
  const d = new Uint32Array(64);
  for (const [k, v] of Object.entries(fields)) d[Number(k)] = v!;
  return d;
}

describe('Segment.load', () => {
  it('starts with no options: no MSS, no window scale, no SACK, no timestamps', () => {
    expect(new Segment().opts).toEqual({ mss: 0, wscale: 0xff, sackOk: false, ts: false, tsVal: 0, tsEcr: 0 });
  });

  it('copies addresses, ports, numbers, flags, window and payload; SEG.LEN counts SYN and FIN', () => {
    const s = new Segment();
    s.load(record({ [D.IP_SRC]: 0x0a000002, [D.IP_DST]: 0x0a000001, [D.SPORT]: 40000, [D.DPORT]: 80, [D.TCP_SEQ]: 0xfffffff0, [D.TCP_ACK]: 7, [D.TCP_FLAGS]: TCP_ACK | TCP_FIN, [D.TCP_WINDOW]: 1234, [D.PAYLOAD_OFF]: 4096, [D.PAYLOAD_LEN]: 100 }));
    expect([s.srcAddr, s.dstAddr, s.srcPort, s.dstPort, s.seq, s.ack, s.flags, s.wnd, s.payloadOff, s.payloadLen]).toEqual([0x0a000002, 0x0a000001, 40000, 80, 0xfffffff0, 7, TCP_ACK | TCP_FIN, 1234, 4096, 100]);
    expect(s.segLen).toBe(101);
    s.load(record({ [D.TCP_FLAGS]: TCP_SYN | TCP_FIN, [D.PAYLOAD_LEN]: 3 }));
    expect(s.segLen).toBe(5);
    s.load(record({ [D.TCP_FLAGS]: TCP_ACK }));
    expect(s.segLen).toBe(0);
  });

  it('takes a SYN\'s options, timestamps included, and keeps them through segments without SYN', () => {
    const s = new Segment();
    s.load(record({ [D.TCP_FLAGS]: TCP_SYN, [D.OPT_MSS]: 1460, [D.OPT_WSCALE]: 7, [D.OPT_SACK_OK]: 1, [D.OPT_TS]: 1, [D.OPT_TSVAL]: 11, [D.OPT_TSECR]: 22 }));
    expect(s.opts).toEqual({ mss: 1460, wscale: 7, sackOk: true, ts: true, tsVal: 11, tsEcr: 22 });
    // A segment without SYN: options it carries are not read here.
    s.load(record({ [D.TCP_FLAGS]: TCP_ACK, [D.OPT_MSS]: 536, [D.OPT_WSCALE]: 0xff, [D.OPT_TS]: 0 }));
    expect(s.opts).toEqual({ mss: 1460, wscale: 7, sackOk: true, ts: true, tsVal: 11, tsEcr: 22 });
    s.load(record({ [D.TCP_FLAGS]: TCP_SYN | TCP_ACK, [D.OPT_MSS]: 536, [D.OPT_WSCALE]: 0xff, [D.OPT_SACK_OK]: 0, [D.OPT_TS]: 0 }));
    expect(s.opts).toEqual({ mss: 536, wscale: 0xff, sackOk: false, ts: false, tsVal: 0, tsEcr: 0 });
  });

  it('copies exactly the SACK blocks the segment carries, on any segment', () => {
    const s = new Segment();
    s.sackEdges.fill(0xdead);
    s.load(record({ [D.TCP_FLAGS]: TCP_ACK, [D.OPT_SACK_COUNT]: 1, [D.OPT_SACK]: 100, [D.OPT_SACK + 1]: 200, [D.OPT_SACK + 2]: 300, [D.OPT_SACK + 3]: 400 }));
    expect(s.sackCount).toBe(1);
    expect(Array.from(s.sackEdges)).toEqual([100, 200, 0xdead, 0xdead, 0xdead, 0xdead, 0xdead, 0xdead]);
  });
});
