// TCP sequence-space, window and retransmission-timer arithmetic.
// stack/hotpath/ts-seq.ts is the TypeScript twin; both must give the same
// result for every u32 input.
//
// Sequence numbers live on a circle of 2^32 (RFC 9293 3.4): a < b means b is
// less than 2^31 ahead of a, so comparisons go through the signed difference.
//
// RTT state is kept as integers scaled so that RFC 6298's fractions stay exact:
// srtt8 = SRTT * 8 and rttvar4 = RTTVAR * 4, in clock ticks. srtt8 == 0 means
// "no sample yet"; a sample of 0 ticks counts as 1 so that state is never
// re-entered by accident. Samples are capped at RTT_MAX ticks so that every
// intermediate value fits in u32 whatever the inputs.

const RTT_MAX: u32 = 0x10000000; // 2^28 ticks (about 74 hours in ms)
const WSCALE_MAX: u32 = 14; // RFC 7323 2.3: larger shifts are treated as 14
const WINDOW_FIELD_MAX: u32 = 65535;

export function seqLt(a: u32, b: u32): bool {
  return <i32>(a - b) < 0;
}

export function seqLe(a: u32, b: u32): bool {
  return <i32>(a - b) <= 0;
}

export function seqGt(a: u32, b: u32): bool {
  return <i32>(a - b) > 0;
}

export function seqGe(a: u32, b: u32): bool {
  return <i32>(a - b) >= 0;
}

export function seqAdd(a: u32, n: u32): u32 {
  return a + n;
}

export function seqDiff(a: u32, b: u32): i32 {
  return <i32>(a - b);
}

/** rcvNxt <= s < rcvNxt + rcvWnd on the circle: the distance from rcvNxt is
 *  below the window. Exact for any window below 2^31 (TCP's is at most 2^30). */
function inWindow(s: u32, rcvNxt: u32, rcvWnd: u32): bool {
  return s - rcvNxt < rcvWnd;
}

/** RFC 9293 3.10.7.4: may a segment occupying [seq, seq + segLen) of sequence
 *  space (SYN and FIN count) be processed, given the receive window? */
export function segmentAcceptable(seq: u32, segLen: u32, rcvNxt: u32, rcvWnd: u32): bool {
  if (segLen == 0) {
    return rcvWnd == 0 ? seq == rcvNxt : inWindow(seq, rcvNxt, rcvWnd);
  }
  if (rcvWnd == 0) return false;
  return inWindow(seq, rcvNxt, rcvWnd) || inWindow(seq + segLen - 1, rcvNxt, rcvWnd);
}

/** The peer's window in bytes: raw << shift (shift capped at 14, result mod 2^32). */
export function windowScaled(raw: u32, shift: u32): u32 {
  return raw << min(shift, WSCALE_MAX);
}

/** The 16-bit window field that advertises `bytes` with our shift (capped at 14). */
export function windowRaw(bytes: u32, shift: u32): u32 {
  return min(bytes >> min(shift, WSCALE_MAX), WINDOW_FIELD_MAX);
}

function sample(r: u32): u32 {
  return r == 0 ? 1 : min(r, RTT_MAX);
}

/** New srtt8 after a measurement of r ticks (RFC 6298 2.2 and 2.3). */
export function rttSrtt8(srtt8: u32, rttvar4: u32, r: u32): u32 {
  const rr = sample(r);
  if (srtt8 == 0) return rr * 8; // SRTT = R
  // 8 * (7/8 SRTT + 1/8 R) = srtt8 - srtt8/8 + R; at most 7/8 * 2^32 + 2^28.
  return srtt8 - (srtt8 >> 3) + rr;
}

/** New rttvar4 after a measurement of r ticks; uses the srtt8 from before it. */
export function rttRttvar4(srtt8: u32, rttvar4: u32, r: u32): u32 {
  const rr = sample(r);
  if (srtt8 == 0) return rr * 2; // RTTVAR = R/2
  // 4 * (3/4 RTTVAR + 1/4 |SRTT - R|) = rttvar4 - rttvar4/4 + |srtt8 - 8R| / 8.
  const r8 = rr * 8;
  const dev = srtt8 >= r8 ? srtt8 - r8 : r8 - srtt8;
  return rttvar4 - (rttvar4 >> 2) + (dev >> 3);
}

/** RTO = SRTT + max(G, 4 * RTTVAR), clamped to [lo, hi] (hi wins if lo > hi).
 *  SRTT is rounded up so the timer never fires before the estimate. With no
 *  sample yet the caller uses its initial RTO (RFC 6298 2.1) instead. */
export function rto(srtt8: u32, rttvar4: u32, granularity: u32, lo: u32, hi: u32): u32 {
  const srtt = <u64>((srtt8 >> 3) + <u32>((srtt8 & 7) != 0));
  const sum = srtt + <u64>max(granularity, rttvar4);
  return <u32>min<u64>(max<u64>(sum, <u64>lo), <u64>hi);
}
