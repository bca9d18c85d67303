// RFC 6298 round-trip estimation with Karn's rule.
//
// One segment at a time is timed. A retransmission cancels the measurement
// (Karn: an ACK for retransmitted data is ambiguous), and the backed-off RTO
// stays in force until an ACK for new data brings a fresh sample (RFC 6298 5.7).

import type { TcpOptions } from './options.js';
import type { Tcb } from './tcb.js';
import { rto, rttRttvar4, rttSrtt8, seqLt } from '../hotpath/ts-seq.js';

/** Clock granularity G of RFC 6298 2.3, in ms. */
const GRANULARITY = 1;

/** Start timing the segment ending at endSeq unless one is already being timed. */
export function startTiming(tcb: Tcb, endSeq: number, now: number): void {
  if (tcb.rttTiming) return;
  tcb.rttTiming = true;
  tcb.rttSeq = endSeq;
  tcb.startRttClock(now);
}

/** Karn's rule: data is being retransmitted, so no sample may come from it. */
export function cancelTiming(tcb: Tcb): void {
  tcb.rttTiming = false;
}

/** An ACK up to `ack` arrived: take a sample if it covers the timed segment. */
export function onAckForTiming(opts: TcpOptions, tcb: Tcb, ack: number, now: number): void {
  if (!tcb.rttTiming || seqLt(ack, tcb.rttSeq)) return;
  tcb.rttTiming = false;
  const r = Math.max(1, Math.round(tcb.rttElapsed(now)));
  const srtt8 = rttSrtt8(tcb.srtt8, tcb.rttvar4, r);
  const rttvar4 = rttRttvar4(tcb.srtt8, tcb.rttvar4, r);
  tcb.srtt8 = srtt8;
  tcb.rttvar4 = rttvar4;
  tcb.rto = rto(srtt8, rttvar4, GRANULARITY, opts.minRto, opts.maxRto);
}

/** RFC 6298 5.5: double the RTO after a timeout, up to the maximum. */
export function backOff(opts: TcpOptions, tcb: Tcb): void {
  tcb.rto = Math.min(tcb.rto * 2, opts.maxRto);
}
