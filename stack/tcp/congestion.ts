// Reno congestion control (RFC 5681) with NewReno fast recovery (RFC 6582);
// SACK holes and limited transmit (RFC 3042) act in input.ts / output.ts.
//
// cwnd and ssthresh are in bytes. The sender may have at most
// min(cwnd, SND.WND) bytes in flight (output.ts).

import type { Tcb } from './tcb.js';
import { seqDiff, seqGe, seqGt } from '../hotpath/ts-seq.js';

/** RFC 5681 3.1 / RFC 6928: IW = min(10*MSS, max(2*MSS, 14600)). */
export function initialWindow(mss: number): number {
  return Math.min(10 * mss, Math.max(2 * mss, 14600));
}

/** Bytes sent and not yet acknowledged. */
export function flightSize(tcb: Tcb): number {
  return Math.max(0, seqDiff(tcb.sndMax, tcb.sndUna));
}

/** RFC 5681 eq. 4: ssthresh = max(FlightSize / 2, 2*SMSS). */
function halveSsthresh(tcb: Tcb): void {
  tcb.ssthresh = Math.max(flightSize(tcb) >>> 1, 2 * tcb.sndMss);
}

/** New data acknowledged outside fast recovery: slow start or congestion avoidance. */
export function onNewAck(tcb: Tcb, acked: number): void {
  const mss = tcb.sndMss;
  if (tcb.cwnd < tcb.ssthresh) {
    // RFC 5681 3.1 eq. 2 (byte counting with L = 1 SMSS).
    tcb.cwnd += Math.min(acked, mss);
  } else {
    // RFC 5681 3.1 eq. 3: about one SMSS per round trip.
    tcb.cwnd += Math.max(1, Math.floor((mss * mss) / tcb.cwnd));
  }
}

/**
 * Third duplicate ACK: enter fast recovery (RFC 6582 3.2 step 2) unless the
 * duplicates belong to a loss we already recovered from. Returns true when the
 * caller must retransmit the first unacknowledged segment.
 */
export function onThirdDupAck(tcb: Tcb): boolean {
  if (tcb.inRecovery) return false;
  // RFC 6582 4.1: only if the ACK covers more than "recover" (avoids a second
  // reduction for one window of losses after a timeout).
  if (!seqGt(tcb.sndUna, tcb.recover)) return false;
  halveSsthresh(tcb);
  tcb.recover = tcb.sndMax;
  tcb.cwnd = tcb.ssthresh + 3 * tcb.sndMss;
  tcb.inRecovery = true;
  return true;
}

/** Further duplicate ACKs in recovery inflate cwnd (RFC 6582 3.2 step 3). */
export function onDupAckInRecovery(tcb: Tcb): void {
  tcb.cwnd += tcb.sndMss;
}

/**
 * A new ACK while in fast recovery (RFC 6582 3.2 steps 4 and 5). Returns true
 * for a partial ACK: the caller retransmits the next unacknowledged segment.
 */
export function onAckInRecovery(tcb: Tcb, ack: number, acked: number): boolean {
  if (seqGe(ack, tcb.recover)) {
    // Full acknowledgement: deflate (RFC 6582 step 4, option 1 bounded by flight).
    tcb.cwnd = Math.min(tcb.ssthresh, flightSize(tcb) + tcb.sndMss);
    tcb.inRecovery = false;
    tcb.dupAcks = 0;
    return false;
  }
  // Partial acknowledgement: deflate by the amount acked, add back one SMSS.
  tcb.cwnd = Math.max(tcb.sndMss, tcb.cwnd - acked + (acked >= tcb.sndMss ? tcb.sndMss : 0));
  return true;
}

/** Retransmission timeout (RFC 5681 3.1 eq. 4 and "loss window"). */
export function onTimeout(tcb: Tcb): void {
  if (tcb.retries === 0) halveSsthresh(tcb); // only on the first timeout of a run
  tcb.cwnd = tcb.sndMss;
  tcb.inRecovery = false;
  tcb.dupAcks = 0;
  tcb.recover = tcb.sndMax;
}
