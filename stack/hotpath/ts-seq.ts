// TCP sequence-space, window and retransmission-timer arithmetic: the TypeScript
// twin of assembly/seq.ts. Same names, same results for every input. Arguments
// are coerced the way a Wasm i32 parameter is (ToInt32, i.e. mod 2^32), so any
// JS number gives the answer the wasm engine would give.
//
// Sequence numbers live on a circle of 2^32 (RFC 9293 3.4): a < b means b is
// less than 2^31 ahead of a, so comparisons go through the signed difference.
//
// RTT state is kept as integers scaled so that RFC 6298's fractions stay exact:
// srtt8 = SRTT * 8 and rttvar4 = RTTVAR * 4, in clock ticks. srtt8 == 0 means
// "no sample yet"; a sample of 0 ticks counts as 1 so that state is never
// re-entered by accident. Samples are capped at RTT_MAX ticks so that every
// intermediate value fits in u32 whatever the inputs.

const RTT_MAX = 0x10000000; // 2^28 ticks (about 74 hours in ms)
const WSCALE_MAX = 14; // RFC 7323 2.3: larger shifts are treated as 14
const WINDOW_FIELD_MAX = 65535;

/** a - b mod 2^32, as a signed 32-bit number. Exact: each operand is first
 *  reduced to 32 bits, so the subtraction cannot lose precision. */
export function seqDiff(a: number, b: number): number {
  return ((a | 0) - (b | 0)) | 0;
}

export function seqLt(a: number, b: number): boolean {
  return seqDiff(a, b) < 0;
}

export function seqLe(a: number, b: number): boolean {
  return seqDiff(a, b) <= 0;
}

export function seqGt(a: number, b: number): boolean {
  return seqDiff(a, b) > 0;
}

export function seqGe(a: number, b: number): boolean {
  return seqDiff(a, b) >= 0;
}

export function seqAdd(a: number, n: number): number {
  return ((a | 0) + (n | 0)) >>> 0;
}

/** rcvNxt <= s < rcvNxt + rcvWnd on the circle: the distance from rcvNxt is
 *  below the window. Exact for any window below 2^31 (TCP's is at most 2^30). */
function inWindow(s: number, rcvNxt: number, rcvWnd: number): boolean {
  return seqDiff(s, rcvNxt) >>> 0 < rcvWnd;
}

/** RFC 9293 3.10.7.4: may a segment occupying [seq, seq + segLen) of sequence
 *  space (SYN and FIN count) be processed, given the receive window? */
export function segmentAcceptable(seq: number, segLen: number, rcvNxt: number, rcvWnd: number): boolean {
  const len = segLen >>> 0;
  const wnd = rcvWnd >>> 0;
  if (len === 0) {
    return wnd === 0 ? (seq | 0) === (rcvNxt | 0) : inWindow(seq, rcvNxt, wnd);
  }
  if (wnd === 0) return false;
  return inWindow(seq, rcvNxt, wnd) || inWindow(seqAdd(seq, len - 1), rcvNxt, wnd);
}

/** The peer's window in bytes: raw << shift (shift capped at 14, result mod 2^32). */
export function windowScaled(raw: number, shift: number): number {
  return (raw << Math.min(shift >>> 0, WSCALE_MAX)) >>> 0;
}

/** The 16-bit window field that advertises `bytes` with our shift (capped at 14). */
export function windowRaw(bytes: number, shift: number): number {
  return Math.min(bytes >>> Math.min(shift >>> 0, WSCALE_MAX), WINDOW_FIELD_MAX);
}

function sample(r: number): number {
  const rr = r >>> 0;
  return rr === 0 ? 1 : Math.min(rr, RTT_MAX);
}

/** New srtt8 after a measurement of r ticks (RFC 6298 2.2 and 2.3). */
export function rttSrtt8(srtt8: number, rttvar4: number, r: number): number {
  const rr = sample(r);
  const s = srtt8 >>> 0;
  if (s === 0) return rr * 8; // SRTT = R
  // 8 * (7/8 SRTT + 1/8 R) = srtt8 - srtt8/8 + R; at most 7/8 * 2^32 + 2^28.
  return s - (s >>> 3) + rr;
}

/** New rttvar4 after a measurement of r ticks; uses the srtt8 from before it. */
export function rttRttvar4(srtt8: number, rttvar4: number, r: number): number {
  const rr = sample(r);
  const s = srtt8 >>> 0;
  if (s === 0) return rr * 2; // RTTVAR = R/2
  // 4 * (3/4 RTTVAR + 1/4 |SRTT - R|) = rttvar4 - rttvar4/4 + |srtt8 - 8R| / 8.
  const v = rttvar4 >>> 0;
  const dev = Math.abs(s - rr * 8);
  return v - (v >>> 2) + (dev >>> 3); // dev < 2^32, so >>> is exact
}

/** RTO = SRTT + max(G, 4 * RTTVAR), clamped to [lo, hi] (hi wins if lo > hi).
 *  SRTT is rounded up so the timer never fires before the estimate. With no
 *  sample yet the caller uses its initial RTO (RFC 6298 2.1) instead. */
export function rto(srtt8: number, rttvar4: number, granularity: number, lo: number, hi: number): number {
  const srtt = Math.ceil((srtt8 >>> 0) / 8);
  const sum = srtt + Math.max(granularity >>> 0, rttvar4 >>> 0);
  return Math.min(Math.max(sum, lo >>> 0), hi >>> 0);
}
