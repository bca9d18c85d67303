// Segment arrival for a connection with a control block: RFC 9293 3.10.7.3
// (SYN_SENT) and 3.10.7.4 (every other state), with the RFC 5961 blind-attack
// mitigations. LISTEN is handled by Tcp (it creates the control block) and
// TIME_WAIT by the compact record table (time-wait.ts).
//
// The functions mutate the control block and may end it through ctx.release();
// after a call, callers check tcb.released before touching it again. They send
// only what the rules demand at once (RSTs, challenge ACKs, handshake
// segments); the caller runs output() afterwards, once the application has
// seen the new data, so that the ACK carries the window its reading reopened.

import { CHUNK_SIZE, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, TCP_URG } from '../hotpath/layout.js';
import { initialWindow, onAckInRecovery, onDupAckInRecovery, onNewAck, onThirdDupAck } from './congestion.js';
import type { TcpContext } from './context.js';
import { NO_WSCALE, type SegmentOptions } from './options.js';
import {
  finSeq, restartRetransmit, retransmitFirst, retransmitHole, sendAck, sendChallengeAck, sendResetReply, sendSyn,
} from './output.js';
import { cancelTiming, onAckForTiming } from './rtt.js';
import type { Segment } from './segment.js';
import { canReceiveData, State } from './state.js';
import { type Tcb, TcbEvent } from './tcb.js';
import { TcpTimer } from './timer-kinds.js';
import { segmentAcceptable, seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt, windowScaled } from '../hotpath/ts-seq.js';

/** MSS assumed when the peer sends no MSS option (RFC 9293 3.7.1). */
export const DEFAULT_MSS = 536;

/** RTO once the handshake completes after a SYN timeout (RFC 6298 5.7), ms. */
const SYN_TIMEOUT_RTO = 3000;

/** Apply the options of the peer's SYN (RFC 9293 3.7.1 MSS, RFC 7323 2 window scale, RFC 2018 SACK). */
export function applySynOptions(tcb: Tcb, o: SegmentOptions): void {
  const peer = o.mss !== 0 ? o.mss : DEFAULT_MSS;
  // A floor of 64 bytes: a peer announcing a tiny MSS cannot make us send
  // (and account for) one segment per byte.
  tcb.sndMss = Math.max(64, Math.min(peer, tcb.rcvMss));
  // Window scaling holds only when both SYNs carry the option (RFC 7323 2.2);
  // a shift above 14 is used as 14 (2.3). Without it our SYN-ACK offers none.
  if (o.wscale !== NO_WSCALE && tcb.wscaleOffer !== NO_WSCALE) {
    tcb.sndShift = Math.min(o.wscale, 14);
    tcb.rcvShift = tcb.wscaleOffer;
  } else {
    tcb.wscaleOffer = NO_WSCALE;
    tcb.sndShift = 0;
    tcb.rcvShift = 0;
  }
  // SACK likewise needs both SYNs (RFC 2018 section 2).
  tcb.sackOk = o.sackOk && tcb.sackOffer;
  tcb.sackOffer = tcb.sackOk;
  // Timestamps stay off until we send that option ourselves (options.ts).
}

/** Handshake complete: set up the window, congestion state and timers. */
function establish(ctx: TcpContext, tcb: Tcb, seg: Segment): void {
  ctx.setState(tcb, State.Established);
  ctx.counters.established++;
  tcb.sndWnd = windowScaled(seg.wnd, (seg.flags & TCP_SYN) !== 0 ? 0 : tcb.sndShift);
  tcb.sndWl1 = seg.seq;
  tcb.sndWl2 = seg.ack;
  if (tcb.sndWnd > tcb.maxSndWnd) tcb.maxSndWnd = tcb.sndWnd;
  tcb.cwnd = initialWindow(tcb.sndMss);
  tcb.recover = tcb.iss;
  // RFC 6298 5.7: after a SYN timed out (and so gave no RTT sample), data
  // starts with an RTO of at least 3 s.
  if (tcb.retries > 0 && tcb.srtt8 === 0) tcb.rto = Math.max(tcb.rto, SYN_TIMEOUT_RTO);
  tcb.retries = 0;
  const timers = ctx.timers;
  if (timers.isArmed(tcb.timerId, TcpTimer.Connect)) timers.cancel(tcb.timerId, TcpTimer.Connect);
  if (tcb.keepalive) timers.arm(tcb.timerId, TcpTimer.Keepalive, ctx.now() + ctx.opts.keepaliveIdle);
  tcb.events |= TcbEvent.Established;
}

/** Our SYN was acknowledged by SEG.ACK (SYN_SENT or SYN_RECEIVED). */
function synAcked(ctx: TcpContext, tcb: Tcb, ack: number): void {
  tcb.sndUna = ack;
  if (seqGt(ack, tcb.sndNxt)) tcb.sndNxt = ack;
  onAckForTiming(ctx.opts, tcb, ack, ctx.now());
  if (ctx.timers.isArmed(tcb.timerId, TcpTimer.Retransmit)) ctx.timers.cancel(tcb.timerId, TcpTimer.Retransmit);
}

// ---------------------------------------------------------------------------
// RFC 9293 3.10.7.3: SYN_SENT.

export function synSentArrives(ctx: TcpContext, tcb: Tcb, seg: Segment): void {
  const flags = seg.flags;
  if ((flags & TCP_ACK) !== 0) {
    // First: an ACK that does not acknowledge our SYN.
    if (seqLe(seg.ack, tcb.iss) || seqGt(seg.ack, tcb.sndMax)) {
      ctx.counters.dropBadSynSent++;
      if ((flags & TCP_RST) === 0) {
        ctx.counters.rstSentBadAck++;
        sendResetReply(ctx, seg);
      }
      return;
    }
  }
  if ((flags & TCP_RST) !== 0) {
    // Second: a RST is acceptable only if it acknowledges our SYN (RFC 5961 3.2).
    if ((flags & TCP_ACK) !== 0) {
      ctx.counters.rstReceived++;
      ctx.release(tcb, 'refused');
    } else {
      ctx.counters.rstIgnored++;
    }
    return;
  }
  if ((flags & TCP_SYN) === 0) {
    ctx.counters.dropBadSynSent++;
    return;
  }
  // Fourth: the peer's SYN.
  tcb.irs = seg.seq;
  tcb.rcvNxt = seqAdd(seg.seq, 1);
  tcb.rcvAdvRight = seqAdd(tcb.rcvNxt, ctx.opts.rcvBuf > 65535 ? 65535 : ctx.opts.rcvBuf);
  applySynOptions(tcb, seg.opts);
  if ((flags & TCP_ACK) !== 0) {
    synAcked(ctx, tcb, seg.ack);
    establish(ctx, tcb, seg);
    tcb.ackNow = true;
    if (seg.payloadLen > 0 || (flags & TCP_FIN) !== 0) textAndFin(ctx, tcb, seg);
    return;
  }
  // Simultaneous open: SYN_RECEIVED, answer <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>.
  // Data carried by the SYN is not queued; the peer will send it again.
  ctx.setState(tcb, State.SynReceived);
  tcb.sndWnd = seg.wnd;
  tcb.sndWl1 = seg.seq;
  if (ctx.timers.isArmed(tcb.timerId, TcpTimer.Retransmit)) ctx.timers.cancel(tcb.timerId, TcpTimer.Retransmit);
  cancelTiming(tcb);
  sendSyn(ctx, tcb, false);
}

// ---------------------------------------------------------------------------
// RFC 9293 3.10.7.4: SYN_RECEIVED and the synchronized states.

export function segmentArrives(ctx: TcpContext, tcb: Tcb, seg: Segment): void {
  const flags = seg.flags;
  if (tcb.state === State.SynReceived && (flags & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN && seg.seq === tcb.irs) {
    // The peer's SYN again: our SYN-ACK was lost. Answer it now rather than at our RTO.
    ctx.counters.synRetransmits++;
    sendSyn(ctx, tcb, false);
    return;
  }
  // First: is the segment in the window?
  const rcvWnd = Math.max(0, seqDiff(tcb.rcvAdvRight, tcb.rcvNxt));
  if (!segmentAcceptable(seg.seq, seg.segLen, tcb.rcvNxt, rcvWnd)) {
    ctx.counters.dropNotAcceptable++;
    if ((flags & TCP_RST) === 0) ackUnacceptable(ctx, tcb, seg);
    return;
  }
  // Second: RST (RFC 5961 3.2: only an exact match resets; in-window gets a challenge ACK).
  if ((flags & TCP_RST) !== 0) {
    rstArrives(ctx, tcb, seg);
    return;
  }
  // Fourth: SYN (RFC 5961 4.2: challenge ACK in synchronized states).
  if ((flags & TCP_SYN) !== 0) {
    if (tcb.state === State.SynReceived && !tcb.active) {
      // RFC 9293: a passive open returns to LISTEN; the listener stays, this block goes.
      ctx.counters.embryonicDropped++;
      ctx.release(tcb, 'reset', 'syn');
      return;
    }
    ctx.counters.challengeForSyn++;
    sendChallengeAck(ctx, tcb);
    return;
  }
  // Fifth: ACK.
  if ((flags & TCP_ACK) === 0) {
    ctx.counters.dropNoAck++;
    return;
  }
  if (tcb.state === State.SynReceived) {
    if (!(seqLt(tcb.sndUna, seg.ack) && seqLe(seg.ack, tcb.sndMax))) {
      ctx.counters.rstSentBadAck++;
      sendResetReply(ctx, seg);
      return;
    }
    synAcked(ctx, tcb, seg.ack);
    establish(ctx, tcb, seg);
  }
  if (!ackArrives(ctx, tcb, seg)) return;
  if (!closingAckChecks(ctx, tcb)) return;
  // Sixth, URG: urgent data stays in line, in order, with the rest of the
  // stream (RFC 6093's advice; there is no out-of-band byte); counted.
  if ((flags & TCP_URG) !== 0 && seg.payloadLen > 0) ctx.counters.urgentInLine++;
  // Seventh and eighth: text and FIN.
  if (seg.payloadLen > 0 || (flags & TCP_FIN) !== 0) textAndFin(ctx, tcb, seg);
}

/** Least interval between ACKs answering unacceptable pure ACKs, ms. */
const OOW_ACK_INTERVAL = 500;

/**
 * RFC 9293: an unacceptable segment is answered with an ACK. For pure ACKs
 * (nothing that needs acknowledging) the answer is rate-limited per
 * connection, so that two confused endpoints cannot ping-pong ACKs forever
 * (the same guard as Linux's tcp_invalid_ratelimit).
 */
function ackUnacceptable(ctx: TcpContext, tcb: Tcb, seg: Segment): void {
  // Data wholly below RCV.NXT: we have it. Report it with the ACK (RFC 2883 4.1).
  if (seg.payloadLen > 0 && tcb.sackOk && seqLe(seqAdd(seg.seq, seg.segLen), tcb.rcvNxt)) {
    const start = (seg.flags & TCP_SYN) !== 0 ? seqAdd(seg.seq, 1) : seg.seq;
    noteDsack(ctx, tcb, start, seqAdd(start, seg.payloadLen));
  }
  if (seg.segLen === 0) {
    const now = ctx.now();
    if (tcb.oowAckedWithin(now, OOW_ACK_INTERVAL)) {
      ctx.counters.oowAcksRateLimited++;
      return;
    }
    tcb.noteOowAck(now);
  }
  sendAck(ctx, tcb);
}

/** Bytes [left, right) we already had: for the ACK this segment gets (RFC 2883). */
function noteDsack(ctx: TcpContext, tcb: Tcb, left: number, right: number): void {
  const d = ctx.dsack;
  d.handle = tcb.handle;
  d.left = left;
  d.right = right;
}

/** RST in an acceptable segment. */
function rstArrives(ctx: TcpContext, tcb: Tcb, seg: Segment): void {
  if (seg.seq !== tcb.rcvNxt) {
    ctx.counters.challengeForRst++;
    sendChallengeAck(ctx, tcb);
    return;
  }
  ctx.counters.rstReceived++;
  if (tcb.state === State.SynReceived) {
    if (!tcb.active) ctx.counters.embryonicDropped++;
    ctx.release(tcb, tcb.active ? 'refused' : 'reset');
    return;
  }
  ctx.release(tcb, 'reset');
}

/**
 * The ACK field in a synchronized state. Returns false when the segment must
 * be dropped (RFC 5961 5.2 and RFC 9293: outside [SND.UNA - MAX.SND.WND, SND.NXT]).
 */
function ackArrives(ctx: TcpContext, tcb: Tcb, seg: Segment): boolean {
  const ack = seg.ack;
  if (seqGt(ack, tcb.sndMax)) {
    ctx.counters.dropAckUnsent++;
    ctx.counters.challengeForAck++;
    sendChallengeAck(ctx, tcb);
    return false;
  }
  if (seqLt(ack, seqAdd(tcb.sndUna, -tcb.maxSndWnd))) {
    ctx.counters.dropAckTooOld++;
    ctx.counters.challengeForAck++;
    sendChallengeAck(ctx, tcb);
    return false;
  }
  tcb.heardFrom(ctx.now(), true); // the peer answers our probes of either kind
  const wnd = windowScaled(seg.wnd, tcb.sndShift);
  if (tcb.sackOk) recordSack(ctx, tcb, ack, seg.sackCount, seg.sackEdges, 0);
  if (seqGt(ack, tcb.sndUna)) {
    newAck(ctx, tcb, ack);
  } else if (ack === tcb.sndUna && isDuplicateAck(ctx, tcb, seg, wnd)) {
    duplicateAck(ctx, tcb);
  }
  // Window update (RFC 9293 3.10.7.4 fifth): only from a segment not older than the last one used.
  if (seqGe(ack, tcb.sndUna) &&
      (seqLt(tcb.sndWl1, seg.seq) || (tcb.sndWl1 === seg.seq && seqLe(tcb.sndWl2, ack)))) {
    tcb.sndWnd = wnd;
    tcb.sndWl1 = seg.seq;
    tcb.sndWl2 = ack;
    if (wnd > tcb.maxSndWnd) tcb.maxSndWnd = wnd;
  }
  return true;
}

/**
 * Keep the peer's SACK blocks (RFC 2018) for loss recovery: what SEG.ACK now
 * covers is forgotten; a block counts only within (SEG.ACK, SND.MAX], so a
 * D-SACK, a stale or a forged block changes nothing (counted). The `count`
 * blocks are edges[at..]: left, right, left, right, ... (a Segment's, or the
 * decoded record's when the engine's fast path took the segment: Tcp.fastInput).
 */
export function recordSack(ctx: TcpContext, tcb: Tcb, ack: number, count: number, edges: ArrayLike<number>, at: number): void {
  if (seqGt(ack, tcb.sndUna)) tcb.sackBoard.trimBelow(ack);
  for (let i = 0; i < count; i++) {
    const left = edges[at + 2 * i]!;
    const right = edges[at + 2 * i + 1]!;
    if (seqGt(left, ack) && seqGt(right, left) && seqLe(right, tcb.sndMax)) {
      // Without an arena chunk to keep it, a block is forgotten: we may resend what the peer has.
      if (!tcb.sackBoard.add(left, right)) ctx.counters.sackBlocksIgnored++;
    } else {
      ctx.counters.sackBlocksIgnored++;
    }
  }
}

/** RFC 5681 section 2 "DUPLICATE ACKNOWLEDGMENT". */
function isDuplicateAck(ctx: TcpContext, tcb: Tcb, seg: Segment, wnd: number): boolean {
  return seg.payloadLen === 0 && (seg.flags & (TCP_SYN | TCP_FIN)) === 0 &&
    wnd === tcb.sndWnd && seqGt(tcb.sndMax, tcb.sndUna);
}

function duplicateAck(ctx: TcpContext, tcb: Tcb): void {
  tcb.dupAcks++;
  if (tcb.inRecovery) {
    // NewReno inflates cwnd by one segment so a new one can take the place
    // of the one that left; with SACK, a hole the peer's blocks show takes
    // that place instead (as many packets as NewReno, holes first).
    onDupAckInRecovery(tcb);
    retransmitHole(ctx, tcb, true);
  } else if (tcb.dupAcks === 3 && onThirdDupAck(tcb)) {
    ctx.counters.fastRetransmits++;
    cancelTiming(tcb);
    retransmitFirst(ctx, tcb);
  }
}

/** SND.UNA < SEG.ACK <= SND.MAX: new data (and maybe our FIN) acknowledged. */
function newAck(ctx: TcpContext, tcb: Tcb, ack: number): void {
  const acked = seqDiff(ack, tcb.sndUna);
  let dataAcked = acked;
  if (tcb.finQueued && !tcb.finAcked && seqGt(ack, finSeq(ctx, tcb))) {
    tcb.finAcked = true;
    dataAcked -= 1;
  }
  tcb.sendBuf.consume(dataAcked);
  tcb.sndUna = ack;
  if (seqGt(ack, tcb.sndNxt)) tcb.sndNxt = ack;
  onAckForTiming(ctx.opts, tcb, ack, ctx.now());
  tcb.retries = 0;
  if (tcb.inRecovery) {
    if (onAckInRecovery(tcb, ack, acked)) {
      // NewReno partial ACK: the next hole is lost too; retransmit it at once,
      // unless SACK recovery has resent it already: then the next hole.
      if (tcb.sackOk && seqLt(tcb.sndUna, tcb.sackRetxHigh)) {
        retransmitHole(ctx, tcb, false);
      } else {
        ctx.counters.partialAckRetransmits++;
        retransmitFirst(ctx, tcb);
      }
      restartRetransmit(ctx, tcb);
    }
  } else {
    tcb.dupAcks = 0;
    onNewAck(tcb, acked);
  }
  // RFC 6298 5.3: restart the timer for what remains outstanding (5.2: output()
  // stops it once everything is acknowledged).
  if (seqGt(tcb.sndMax, tcb.sndUna)) restartRetransmit(ctx, tcb);
  if (dataAcked > 0) tcb.events |= TcbEvent.Writable;
}

/** FIN_WAIT_1 / CLOSING / LAST_ACK: has our FIN been acknowledged? Returns false if tcb ended. */
function closingAckChecks(ctx: TcpContext, tcb: Tcb): boolean {
  if (!tcb.finAcked) return true;
  switch (tcb.state) {
    case State.FinWait1:
      ctx.setState(tcb, State.FinWait2);
      armFinWait2(ctx, tcb);
      return true;
    case State.Closing:
      ctx.enterTimeWait(tcb);
      return false;
    case State.LastAck:
      ctx.release(tcb, 'closed');
      return false;
    default:
      return true;
  }
}

/**
 * FIN_WAIT_2 is bounded once the application has closed its read side too
 * (close(), not end()): nobody waits for the peer's data any more, so a peer
 * that never sends its FIN cannot pin the connection. A half-closed
 * connection whose application still reads lasts as long as the peer does.
 */
export function armFinWait2(ctx: TcpContext, tcb: Tcb): void {
  if (tcb.state === State.FinWait2 && tcb.readClosed && !ctx.timers.isArmed(tcb.timerId, TcpTimer.FinWait2)) {
    ctx.timers.arm(tcb.timerId, TcpTimer.FinWait2, ctx.now() + ctx.opts.finWait2Timeout);
  }
}

// ---------------------------------------------------------------------------
// Seventh and eighth: segment text and FIN.

function textAndFin(ctx: TcpContext, tcb: Tcb, seg: Segment): void {
  // Data starts after a SYN (a SYN-ACK may carry data).
  const start = (seg.flags & TCP_SYN) !== 0 ? seqAdd(seg.seq, 1) : seg.seq;
  const end = seqAdd(start, seg.payloadLen);
  // Read before the data moves: draining the held data may free where the FIN is kept.
  const held = tcb.finHeld ? tcb.reassembly.finSeq : null;
  if (seg.payloadLen > 0) {
    if (canReceiveData(tcb.state)) receiveText(ctx, tcb, start, seg.payloadOff, seg.payloadLen);
    // CLOSE_WAIT, CLOSING, LAST_ACK: the peer already sent FIN; ignore text.
  }
  if ((seg.flags & TCP_FIN) !== 0 && end === tcb.rcvNxt) {
    tcb.finHeld = false;
    finArrives(ctx, tcb);
  } else if ((seg.flags & TCP_FIN) !== 0 && seqGt(end, tcb.rcvNxt)) {
    holdFin(ctx, tcb, end);
  } else if (held !== null && tcb.rcvNxt === held) {
    // The data before an out-of-order FIN is all in: now the FIN.
    tcb.finHeld = false;
    finArrives(ctx, tcb);
  }
}

/**
 * A FIN beyond RCV.NXT (RFC 9293 3.10.7.4 eighth says to process a FIN only
 * in order). Kept when it comes right after held data, so that filling the
 * hole completes the stream without waiting for the peer's retransmission;
 * otherwise dropped (the peer resends it). One FIN only: a FIN at another
 * sequence number does not replace the held one.
 */
function holdFin(ctx: TcpContext, tcb: Tcb, seq: number): void {
  // Out of order: say where the hole is at once (RFC 5681 4.2).
  tcb.ackNow = true;
  if (!canReceiveData(tcb.state) || tcb.finHeld || !tcb.reassembly.endsAt(seq)) {
    ctx.counters.finOutOfOrderDropped++;
    return;
  }
  tcb.reassembly.finSeq = seq;
  tcb.finHeld = true;
  ctx.counters.finHeld++;
}

/** Payload [seq, seq+len) at arena offset off: in order into the receive queue, else reassembly. */
function receiveText(ctx: TcpContext, tcb: Tcb, seq: number, off: number, len: number): void {
  const c = ctx.counters;
  // Trim what we already have (RFC 9293 3.10.7.4 first: "trim to the window").
  const dup = seqDiff(tcb.rcvNxt, seq);
  if (dup > 0) {
    // Bytes we had already: say so in the ACK (RFC 2883 4.1), so that the
    // peer can tell a needless retransmission from a loss.
    if (tcb.sackOk) {
      noteDsack(ctx, tcb, seq, seqAdd(seq, Math.min(dup, len)));
      tcb.ackNow = true;
    }
    if (dup >= len) {
      tcb.ackNow = true;
      return;
    }
    seq = tcb.rcvNxt;
    off += dup;
    len -= dup;
  }
  // Trim what lies beyond the right edge we advertised.
  const room = seqDiff(tcb.rcvAdvRight, seq);
  if (len > room) {
    c.dropOutOfWindowData += len - Math.max(0, room);
    len = Math.max(0, room);
    tcb.ackNow = true;
  }
  if (len === 0) return;
  if (seq !== tcb.rcvNxt) {
    // Out of order: keep it if we can, and say where the hole is at once (RFC 5681 4.2).
    if (tcb.readClosed || !tcb.reassembly.insert(seq, len, off, ctx.opts.maxReassemblySegments, reassemblyChunks(ctx))) {
      c.dropReassemblyFull++;
    } else {
      tcb.sackLatest = seq;
    }
    tcb.ackNow = true;
    return;
  }
  let taken = len;
  if (tcb.readClosed) {
    c.dropAfterReadClose += len;
  } else {
    taken = tcb.recvBuf.appendFromArena(off, len);
    if (taken < len) {
      c.dropRecvNoMemory += len - taken;
      ctx.arenaPressure();
    }
    tcb.events |= TcbEvent.Data;
  }
  c.bytesIn += taken;
  tcb.rcvNxt = seqAdd(tcb.rcvNxt, taken);
  if (tcb.reassembly.count > 0) {
    // A hole may have filled: move what is now in order, and ACK at once (RFC 5681 4.2).
    const before = tcb.rcvNxt;
    tcb.rcvNxt = tcb.reassembly.drainInto(tcb.rcvNxt, tcb.recvBuf);
    c.bytesIn += seqDiff(tcb.rcvNxt, before);
    tcb.ackNow = true;
  }
  scheduleAck(ctx, tcb, taken);
}

/** Chunks out-of-order data may hold: the receive window's bytes, plus two
 *  for chunks that drains left partly used. */
function reassemblyChunks(ctx: TcpContext): number {
  return Math.ceil(ctx.opts.rcvBuf / CHUNK_SIZE) + 2;
}

/** Delayed ACK (RFC 9293 3.8.6.3; RFC 5681 4.2): ACK at least every second full-size segment, else within delayedAckMs. */
function scheduleAck(ctx: TcpContext, tcb: Tcb, bytes: number): void {
  tcb.unackedBytes += bytes;
  if (tcb.unackedBytes >= 2 * tcb.rcvMss) {
    tcb.ackNow = true;
  } else if (!tcb.ackNow && !ctx.timers.isArmed(tcb.timerId, TcpTimer.DelayedAck)) {
    ctx.timers.arm(tcb.timerId, TcpTimer.DelayedAck, ctx.now() + ctx.opts.delayedAckMs);
  }
}

/** The peer's FIN, in order. */
function finArrives(ctx: TcpContext, tcb: Tcb): void {
  tcb.rcvNxt = seqAdd(tcb.rcvNxt, 1);
  tcb.finReceived = true;
  tcb.ackNow = true;
  tcb.events |= TcbEvent.Eof;
  switch (tcb.state) {
    case State.SynReceived:
    case State.Established:
      ctx.setState(tcb, State.CloseWait);
      break;
    case State.FinWait1:
      if (tcb.finAcked) {
        sendAck(ctx, tcb);
        ctx.enterTimeWait(tcb);
      } else {
        ctx.setState(tcb, State.Closing);
      }
      break;
    case State.FinWait2:
      sendAck(ctx, tcb);
      ctx.enterTimeWait(tcb);
      break;
    default:
      break; // CLOSE_WAIT, CLOSING, LAST_ACK: a retransmitted FIN; the ACK goes out
  }
}
