// Building and sending segments (RFC 9293 3.8.6, 3.7.4; RFC 5681; RFC 6298).
//
// Every segment is built the same way (layers.ts TransportLower): take a TX
// chunk, fill the encode request's TCP words, copy the payload from the send
// chunks to slot + 34 + tcpHeaderLen() (a segment spanning two chunks is
// copied in two pieces), and hand the slot to IPv4. No JS object is allocated
// per segment.

import { Burst, BURST_MAX, CHUNK_SIZE, E, F, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from '../hotpath/layout.js';
import { NO_DSACK, type TcpContext } from './context.js';
import { NO_WSCALE } from './options.js';
import { cancelTiming, startTiming } from './rtt.js';
import type { Segment } from './segment.js';
import { State } from './state.js';
import type { Tcb } from './tcb.js';
import { TcpTimer, TX_RETRY_MS } from './timer-kinds.js';
import { seqAdd, seqDiff, seqGe, seqGt, seqLt, windowRaw, windowScaled } from '../hotpath/ts-seq.js';

/** Fill the option words of a SYN (MSS, window scale, SACK-permitted) or, with
 *  zeros and NO_WSCALE, of any other segment (options.ts). */
function setOptions(r: Uint32Array, mss: number, wscale: number, sackOk = false): void {
  r[E.OPT_MSS] = mss;
  r[E.OPT_WSCALE] = wscale;
  r[E.OPT_SACK_OK] = sackOk ? 1 : 0;
  r[E.OPT_TS] = 0;
  r[E.OPT_SACK_COUNT] = 0;
}

/**
 * The window to advertise, in bytes. Never moves the right edge left
 * (RFC 9293 3.8.6.2.2 "shrinking the window is strongly discouraged"), and
 * moves it right only by at least min(RCV.BUFF / 2, MSS) (receiver-side SWS
 * avoidance). The space offered is what the buffer and the arena can hold.
 */
export function receiveWindow(ctx: TcpContext, tcb: Tcb): number {
  const current = Math.max(0, seqDiff(tcb.rcvAdvRight, tcb.rcvNxt));
  let space = tcb.readClosed ? ctx.opts.rcvBuf : ctx.opts.rcvBuf - tcb.recvBuf.length;
  if (!tcb.readClosed) {
    // Arena pressure: offer only what free chunks can hold (docs/architecture.md section 4).
    const canHold = tcb.recvBuf.tailRoom() + ctx.spareChunks() * CHUNK_SIZE;
    if (canHold < space) space = Math.max(0, canHold);
  }
  const threshold = Math.min(ctx.opts.rcvBuf >>> 1, tcb.rcvMss);
  if (space - current >= threshold) return space;
  return current;
}

/** The window field for a non-SYN segment; records the right edge it promises. */
function windowField(ctx: TcpContext, tcb: Tcb): number {
  let raw = windowRaw(receiveWindow(ctx, tcb), tcb.rcvShift);
  let right = seqAdd(tcb.rcvNxt, windowScaled(raw, tcb.rcvShift));
  // A scaled field rounds down; rounding the promised edge left would shrink
  // the window, so round up by one unit instead (RFC 7323 2.4).
  if (seqLt(right, tcb.rcvAdvRight) && raw < 65535) {
    raw++;
    right = seqAdd(tcb.rcvNxt, windowScaled(raw, tcb.rcvShift));
  }
  if (seqGt(right, tcb.rcvAdvRight)) tcb.rcvAdvRight = right;
  return raw;
}

/**
 * SACK blocks for the out-of-order data we hold (RFC 2018 section 4): the block
 * with the most recent segment first, then the others in sequence order, as
 * many as the option space allows. A segment with `len` payload bytes gets
 * only what fits beside it within our MSS, so it never outgrows the MTU or a
 * TX chunk (a full-sized segment carries none; the next pure ACK does).
 */
function setSackBlocks(ctx: TcpContext, r: Uint32Array, tcb: Tcb, len: number): void {
  const room = tcb.rcvMss - len;
  const fit = room >= 12 ? Math.min(4, (room - 4) >>> 3) : 0;
  if (fit === 0) return;
  // A duplicate just received goes first, as a D-SACK block (RFC 2883 4.1).
  const d = ctx.dsack;
  let first = 0;
  if (d.handle === tcb.handle) {
    r[E.OPT_SACK] = d.left;
    r[E.OPT_SACK + 1] = d.right;
    first = 1;
    d.handle = NO_DSACK;
    ctx.counters.dsackSent++;
  }
  const held = fit > first ? tcb.reassembly.writeBlocks(r, E.OPT_SACK + 2 * first, fit - first, tcb.sackLatest) : 0;
  r[E.OPT_SACK_COUNT] = first + held;
  if (r[E.OPT_SACK_COUNT]! > 0) ctx.counters.sackAcksSent++;
}

/** Take a TX chunk; on failure count it and schedule a retry. */
function takeSlot(ctx: TcpContext, tcb: Tcb | null): number {
  const slot = ctx.lower.allocTx();
  if (slot !== 0) return slot;
  ctx.counters.txNoSlot++;
  ctx.arenaPressure();
  if (tcb !== null && !tcb.released && !ctx.timers.isArmed(tcb.timerId, TcpTimer.Retry)) {
    ctx.timers.arm(tcb.timerId, TcpTimer.Retry, ctx.now() + TX_RETRY_MS);
  }
  return 0;
}

/**
 * Send one segment of tcb: `len` payload bytes taken from the send buffer at
 * position `pos` (0 = SND.UNA). Returns false if no TX chunk was available.
 */
export function transmit(ctx: TcpContext, tcb: Tcb, seq: number, flags: number, pos: number, len: number): boolean {
  const slot = takeSlot(ctx, tcb);
  if (slot === 0) return false;
  const hot = ctx.hot;
  const r = hot.request;
  r[E.SPORT] = tcb.localPort;
  r[E.DPORT] = tcb.remotePort;
  r[E.TCP_SEQ] = seq;
  r[E.TCP_FLAGS] = flags;
  r[E.TCP_URG] = 0;
  if ((flags & TCP_SYN) !== 0) {
    // RFC 7323 2.2: the window in a SYN is never scaled.
    const raw = windowRaw(receiveWindow(ctx, tcb), 0);
    r[E.TCP_WINDOW] = raw;
    r[E.TCP_ACK] = (flags & TCP_ACK) !== 0 ? tcb.rcvNxt : 0;
    if ((flags & TCP_ACK) !== 0) {
      const right = seqAdd(tcb.rcvNxt, raw);
      if (seqGt(right, tcb.rcvAdvRight)) tcb.rcvAdvRight = right;
    }
    setOptions(r, tcb.rcvMss, tcb.wscaleOffer, tcb.sackOffer);
  } else {
    r[E.TCP_ACK] = tcb.rcvNxt;
    r[E.TCP_WINDOW] = (flags & TCP_RST) !== 0 ? 0 : windowField(ctx, tcb);
    setOptions(r, 0, NO_WSCALE);
    if (tcb.sackOk && (flags & TCP_RST) === 0 && (tcb.reassembly.count > 0 || ctx.dsack.handle === tcb.handle)) setSackBlocks(ctx, r, tcb, len);
  }
  if (len > 0) tcb.sendBuf.copyToArena(pos, len, slot + ctx.lower.transportAt + hot.tcpHeaderLen());
  ctx.lower.sendTcp(slot, len, tcb.remoteAddr, tcb.localAddr);
  ctx.counters.segmentsOut++;
  ctx.counters.bytesOut += len;
  if ((flags & TCP_ACK) !== 0) ackSent(ctx, tcb);
  return true;
}

/** Any segment carrying our current RCV.NXT acknowledges everything received. */
function ackSent(ctx: TcpContext, tcb: Tcb): void {
  tcb.unackedBytes = 0;
  tcb.ackNow = false;
  if (ctx.timers.isArmed(tcb.timerId, TcpTimer.DelayedAck)) ctx.timers.cancel(tcb.timerId, TcpTimer.DelayedAck);
}

/**
 * An empty ACK <SEQ=SND.MAX><ACK=RCV.NXT><CTL=ACK>. After a go-back-N rewind,
 * SND.NXT may lie below what the peer already received; a pure ACK carrying
 * it would be "not acceptable" there and its ACK field ignored (and two such
 * stacks would answer each other's ACKs forever), so pure ACKs carry the
 * highest sequence number sent, as BSD does.
 */
export function sendAck(ctx: TcpContext, tcb: Tcb): boolean {
  return transmit(ctx, tcb, tcb.sndMax, TCP_ACK, 0, 0);
}

/** RFC 5961 section 7: a challenge ACK, if the stack-wide rate limit allows. */
export function sendChallengeAck(ctx: TcpContext, tcb: Tcb): void {
  if (ctx.challengeAckAllowed()) {
    ctx.counters.challengeAcks++;
    sendAck(ctx, tcb);
  } else {
    ctx.counters.challengeAcksRateLimited++;
  }
}

/**
 * <SEQ=ISS><CTL=SYN> or, for a passive or simultaneous open, SYN-ACK. The
 * first transmission is timed; retransmissions are not (Karn's rule).
 */
export function sendSyn(ctx: TcpContext, tcb: Tcb, first: boolean): void {
  const flags = tcb.state === State.SynSent ? TCP_SYN : TCP_SYN | TCP_ACK;
  if (transmit(ctx, tcb, tcb.iss, flags, 0, 0) && first) startTiming(tcb, tcb.sndNxt, ctx.now());
  armRetransmit(ctx, tcb);
}

/** <SEQ=SND.MAX><CTL=RST,ACK> for a connection we abort or give up on (SND.MAX:
 *  the peer's RCV.NXT is most likely there, and RFC 5961 wants an exact match). */
export function sendReset(ctx: TcpContext, tcb: Tcb): void {
  if (transmit(ctx, tcb, tcb.sndMax, TCP_RST | TCP_ACK, 0, 0)) {
    ctx.counters.rstSent++;
  }
}

/** Keepalive probe (RFC 9293 3.8.4) and zero-window probe: <SEQ=SND.UNA-1><CTL=ACK>,
 *  an old sequence number that makes the peer answer with its current ACK and window. */
export function sendProbe(ctx: TcpContext, tcb: Tcb): void {
  transmit(ctx, tcb, seqAdd(tcb.sndUna, -1), TCP_ACK, 0, 0);
}

/**
 * RST in reply to a segment that has no connection, or is unacceptable in
 * LISTEN / SYN_SENT / SYN_RECEIVED (RFC 9293 3.10.7.1 and the reset generation
 * rules of 3.5.2): if the segment has ACK, <SEQ=SEG.ACK><CTL=RST>, otherwise
 * <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>. Never in reply to a RST.
 */
export function sendResetReply(ctx: TcpContext, seg: Segment): void {
  if ((seg.flags & TCP_RST) !== 0) return;
  const sent = (seg.flags & TCP_ACK) !== 0
    ? sendControl(ctx, seg.dstAddr, seg.dstPort, seg.srcAddr, seg.srcPort, seg.ack, 0, TCP_RST)
    : sendControl(ctx, seg.dstAddr, seg.dstPort, seg.srcAddr, seg.srcPort, 0, seqAdd(seg.seq, seg.segLen), TCP_RST | TCP_ACK);
  if (sent) ctx.counters.rstSent++;
}

/** An ACK for a TIME_WAIT record: <SEQ=snd_nxt><ACK=rcv_nxt>, window 0 (we take no data). */
export function sendBareAck(
  ctx: TcpContext, localAddr: number, localPort: number, remoteAddr: number, remotePort: number, seq: number, ack: number,
): void {
  sendControl(ctx, localAddr, localPort, remoteAddr, remotePort, seq, ack, TCP_ACK);
}

/**
 * A SYN-ACK that keeps no state (syn-cookies.ts): <SEQ=cookie><ACK=SEG.SEQ+1>
 * with our MSS only (no window scale, no SACK-permitted: nothing would
 * remember them) and an unscaled window.
 */
export function sendCookieSynAck(ctx: TcpContext, seg: Segment, cookie: number, ourMss: number, window: number): boolean {
  return sendControl(
    ctx, seg.dstAddr, seg.dstPort, seg.srcAddr, seg.srcPort, cookie, seqAdd(seg.seq, 1), TCP_SYN | TCP_ACK, window, ourMss,
  );
}

/** A segment without a control block, from the address the segment it
 *  answers was sent to: no payload, window 0 and no options unless given (a
 *  cookie SYN-ACK). */
function sendControl(
  ctx: TcpContext, localAddr: number, localPort: number, remoteAddr: number, remotePort: number, seq: number, ack: number, flags: number,
  window = 0, mss = 0,
): boolean {
  const slot = takeSlot(ctx, null);
  if (slot === 0) return false;
  const r = ctx.hot.request;
  r[E.SPORT] = localPort;
  r[E.DPORT] = remotePort;
  r[E.TCP_SEQ] = seq;
  r[E.TCP_ACK] = ack;
  r[E.TCP_FLAGS] = flags;
  r[E.TCP_WINDOW] = window;
  r[E.TCP_URG] = 0;
  setOptions(r, mss, NO_WSCALE);
  ctx.lower.sendTcp(slot, 0, remoteAddr, localAddr);
  ctx.counters.segmentsOut++;
  return true;
}

// ---------------------------------------------------------------------------
// Data and FIN.

/** Our FIN's sequence number once the application closed (data never follows it). */
export function finSeq(ctx: TcpContext, tcb: Tcb): number {
  return seqAdd(tcb.sndUna, tcb.sendBuf.length);
}

/** True when our FIN has been sent (and not necessarily acknowledged). */
export function finSent(ctx: TcpContext, tcb: Tcb): boolean {
  return tcb.finQueued && (tcb.finAcked || seqGt(tcb.sndMax, finSeq(ctx, tcb)));
}

/**
 * Nagle (RFC 9293 3.7.4) and sender-side SWS avoidance (3.8.6.2.1): may a
 * segment of `len` bytes go now, with `avail` bytes unsent and `inFlight` unacked?
 */
function worthSending(tcb: Tcb, len: number, avail: number, inFlight: number, carriesFin: boolean): boolean {
  if (len >= tcb.sndMss) return true;
  if (carriesFin) return true; // the last segment before our FIN: nothing more will coalesce
  if (len === avail && (tcb.noDelay || inFlight === 0)) return true;
  return tcb.maxSndWnd > 0 && len >= tcb.maxSndWnd >>> 1 && inFlight === 0;
}

/**
 * RFC 3042 limited transmit: each of the first two duplicate ACKs (before fast
 * recovery) lets one new segment out beyond cwnd, which itself is unchanged.
 * With a small window, those segments bring the third duplicate ACK that fast
 * retransmit needs, where otherwise only a timeout would recover the loss.
 */
function limitedTransmit(tcb: Tcb): number {
  return tcb.inRecovery ? 0 : Math.min(tcb.dupAcks, 2) * tcb.sndMss;
}

/** States in which data and FIN may be sent. */
function canTransmit(s: State): boolean {
  return s === State.Established || s === State.CloseWait || s === State.FinWait1 ||
    s === State.Closing || s === State.LastAck;
}

/**
 * Send what the windows, Nagle and SWS avoidance allow; then the pending ACK
 * if nothing carried it; then set the retransmission and persist timers.
 * Called after every event that may have made sending possible.
 */
export function output(ctx: TcpContext, tcb: Tcb): void {
  if (tcb.released) return;
  // A D-SACK report to make: the segments are built here, where SACK blocks are.
  const burst = ctx.fastPath && ctx.dsack.handle !== tcb.handle;
  if (canTransmit(tcb.state) && !(burst && sendBurst(ctx, tcb))) sendData(ctx, tcb, false);
  if (tcb.ackNow) sendAck(ctx, tcb);
  updateSendTimers(ctx, tcb);
}

/** The data/FIN loop of output(). force: ignore Nagle/SWS (persist override).
 *  After the engine's burst (sendBurst) it sends what the engine leaves, by
 *  the same rules: our FIN, segments with SACK blocks, a probe's forced segment. */
function sendData(ctx: TcpContext, tcb: Tcb, force: boolean): number {
  let sent = 0;
  for (;;) {
    const inFlight = seqDiff(tcb.sndNxt, tcb.sndUna);
    const pos = inFlight; // send-buffer position of SND.NXT (FIN excluded below)
    const avail = tcb.sendBuf.length - pos;
    if (avail < 0) break; // only the FIN is beyond SND.NXT: nothing left
    const usable = Math.min(tcb.sndWnd, tcb.cwnd + limitedTransmit(tcb)) - inFlight;
    const len = Math.max(0, Math.min(avail, tcb.sndMss, usable));
    // All remaining data fits this segment: our FIN (if queued) rides on it,
    // provided the window has room for its sequence number too.
    const fin = tcb.finQueued && len === avail && usable > len;
    if (len === 0 && !fin) break;
    if (len > 0 && !force && !worthSending(tcb, len, avail, inFlight, fin)) break;
    let flags = TCP_ACK;
    if (len > 0 && len === avail) flags |= TCP_PSH;
    if (fin) flags |= TCP_FIN;
    const seq = tcb.sndNxt;
    if (!transmit(ctx, tcb, seq, flags, pos, len)) break;
    const end = seqAdd(seq, len + (fin ? 1 : 0));
    if (seqGe(seq, tcb.sndMax)) startTiming(tcb, end, ctx.now()); // new data only (Karn)
    else ctx.counters.retransmittedSegments++;
    tcb.sndNxt = end;
    if (seqGt(end, tcb.sndMax)) tcb.sndMax = end;
    sent++;
    if (fin || force) break;
  }
  return sent;
}

/**
 * The engine builds the data segments the windows allow, BURST_MAX at a
 * time, in one call each (hot.tcpSendBurst: the rules of sendData and
 * transmit, over the record), and IPv4 hands them to the device. Only when
 * the next hop's MAC is known: otherwise frames go one by one, to wait for ARP.
 * Returns true when nothing is left for sendData's loop (the engine stopped
 * because the rules allow no more), false when the loop must look.
 */
function sendBurst(ctx: TcpContext, tcb: Tcb): boolean {
  if (!tcb.ackNow) {
    const inFlight = seqDiff(tcb.sndNxt, tcb.sndUna);
    // The windows are full (a sender between ACKs): neither data nor a FIN may go.
    if (inFlight >= Math.min(tcb.sndWnd, tcb.cwnd + limitedTransmit(tcb))) return true;
    // Nothing unsent (a receiver between its ACKs): only a queued FIN would be left.
    if (tcb.sendBuf.length <= inFlight) return !tcb.finQueued;
  }
  const hot = ctx.hot;
  const f = hot.fast;
  const c = ctx.counters;
  for (;;) {
    if (!ctx.lower.routeBurst(tcb.remoteAddr, tcb.localAddr)) return false;
    const n = hot.tcpSendBurst(tcb.index, BURST_MAX, ctx.now());
    ctx.lower.sendBurst(n);
    if (n > 0) {
      c.segmentsOut += n;
      c.burstSegments += n;
      c.bytesOut += f[F.BURST_BYTES]!;
      c.retransmittedSegments += f[F.BURST_RETX]!;
      // The segments carried RCV.NXT (the engine cleared the pending ACK).
      if (ctx.timers.isArmed(tcb.timerId, TcpTimer.DelayedAck)) ctx.timers.cancel(tcb.timerId, TcpTimer.DelayedAck);
    }
    const stop = f[F.BURST_STOP]!;
    if (stop !== Burst.LIMIT) return stop === Burst.DONE;
  }
}

/**
 * Retransmit the first unacknowledged segment (fast retransmit, NewReno partial
 * ACK) without moving SND.NXT.
 */
export function retransmitFirst(ctx: TcpContext, tcb: Tcb): void {
  if (tcb.state === State.SynSent || tcb.state === State.SynReceived) {
    sendSyn(ctx, tcb, false);
    return;
  }
  const len = Math.min(tcb.sendBuf.length, tcb.sndMss);
  const fin = tcb.finQueued && len === tcb.sendBuf.length && finSent(ctx, tcb);
  if (len === 0 && !fin) return;
  let flags = TCP_ACK;
  if (fin) flags |= TCP_FIN;
  if (len > 0 && len === tcb.sendBuf.length) flags |= TCP_PSH;
  if (transmit(ctx, tcb, tcb.sndUna, flags, 0, len)) {
    ctx.counters.retransmittedSegments++;
    const end = seqAdd(tcb.sndUna, len + (fin ? 1 : 0));
    if (seqGt(end, tcb.sndNxt)) tcb.sndNxt = end;
    tcb.sackRetxHigh = end;
  }
}

/**
 * In fast recovery with SACK: resend the next hole the peer's blocks show
 * (data below a SACKed block, not resent yet in this recovery), one segment's
 * worth. With `withinCwnd`, only if NewReno's (inflated) cwnd would let one
 * more segment out, and that room is then used up: the hole takes the place
 * of the new segment, so recovery sends no more than NewReno would. Returns
 * false when there is none, no room, or no TX chunk.
 */
export function retransmitHole(ctx: TcpContext, tcb: Tcb, withinCwnd: boolean): boolean {
  const board = tcb.sackBoard;
  if (!tcb.sackOk || board.count === 0) return false;
  const seq = board.nextHole(seqGt(tcb.sackRetxHigh, tcb.sndUna) ? tcb.sackRetxHigh : tcb.sndUna);
  if (seq === -1) return false;
  const pos = seqDiff(seq, tcb.sndUna);
  const len = Math.min(tcb.sndMss, seqDiff(board.holeEnd(), seq), tcb.sendBuf.length - pos);
  if (len <= 0) return false;
  if (withinCwnd && seqDiff(tcb.sndNxt, tcb.sndUna) + len > tcb.cwnd) return false;
  const flags = pos + len === tcb.sendBuf.length ? TCP_ACK | TCP_PSH : TCP_ACK;
  if (!transmit(ctx, tcb, seq, flags, pos, len)) return false;
  if (withinCwnd) tcb.cwnd -= len;
  ctx.counters.retransmittedSegments++;
  ctx.counters.sackRetransmits++;
  cancelTiming(tcb); // Karn: a sample across a retransmission is ambiguous
  tcb.sackRetxHigh = seqAdd(seq, len);
  return true;
}

/**
 * Persist timer expiry: if the window is open but too small for Nagle/SWS, send
 * what fits (the SWS override of RFC 9293 3.8.6.2.1); if it is closed, probe.
 */
export function persistSend(ctx: TcpContext, tcb: Tcb): void {
  const usable = Math.min(tcb.sndWnd, tcb.cwnd) - seqDiff(tcb.sndNxt, tcb.sndUna);
  if (usable > 0 && canTransmit(tcb.state) && sendData(ctx, tcb, true) > 0) return;
  ctx.counters.zeroWindowProbes++;
  tcb.persistProbes++;
  sendProbe(ctx, tcb);
}

/** Unsent data (or an unsent FIN) is waiting. */
function hasUnsent(ctx: TcpContext, tcb: Tcb): boolean {
  const pos = seqDiff(tcb.sndNxt, tcb.sndUna);
  if (pos < tcb.sendBuf.length) return true;
  return tcb.finQueued && !finSent(ctx, tcb);
}

/**
 * RFC 6298 5.1-5.3: the retransmission timer runs while anything is
 * unacknowledged. The persist timer runs instead when nothing is in flight but
 * data waits for the window (RFC 9293 3.8.6.1).
 */
export function updateSendTimers(ctx: TcpContext, tcb: Tcb): void {
  if (tcb.released) return;
  const timers = ctx.timers;
  if (tcb.sndWnd === 0 && canTransmit(tcb.state) && (hasUnsent(ctx, tcb) || tcb.sndMax !== tcb.sndUna)) {
    zeroWindow(ctx, tcb);
    return;
  }
  // Asked before arming retransmission, which takes the persist timer's slot.
  const persisting = timers.isArmed(tcb.timerId, TcpTimer.Persist);
  const outstanding = seqGt(tcb.sndMax, tcb.sndUna);
  if (outstanding) {
    armRetransmit(ctx, tcb);
  } else if (timers.isArmed(tcb.timerId, TcpTimer.Retransmit)) {
    timers.cancel(tcb.timerId, TcpTimer.Retransmit);
  }
  const waiting = !outstanding && canTransmit(tcb.state) && hasUnsent(ctx, tcb);
  if (waiting) {
    if (!timers.isArmed(tcb.timerId, TcpTimer.Persist)) armPersist(ctx, tcb);
  } else if (persisting) {
    timers.cancel(tcb.timerId, TcpTimer.Persist);
    tcb.persistBackoff = 0;
    tcb.persistProbes = 0;
  }
}

/**
 * The peer's window is closed: whatever is beyond SND.UNA counts as unsent
 * again, the retransmission timer gives way to the persist timer, and probes
 * keep asking for the window for as long as the peer answers them.
 */
function zeroWindow(ctx: TcpContext, tcb: Tcb): void {
  const timers = ctx.timers;
  if (timers.isArmed(tcb.timerId, TcpTimer.Retransmit)) timers.cancel(tcb.timerId, TcpTimer.Retransmit);
  tcb.retries = 0;
  tcb.sndNxt = tcb.sndUna;
  if (!timers.isArmed(tcb.timerId, TcpTimer.Persist)) armPersist(ctx, tcb);
}

/** Arm the retransmission timer unless it is running (RFC 6298 5.1). */
export function armRetransmit(ctx: TcpContext, tcb: Tcb): void {
  if (!ctx.timers.isArmed(tcb.timerId, TcpTimer.Retransmit)) {
    ctx.timers.arm(tcb.timerId, TcpTimer.Retransmit, ctx.now() + tcb.rto);
  }
}

/** (Re)start the retransmission timer (RFC 6298 5.3: on an ACK for new data). */
export function restartRetransmit(ctx: TcpContext, tcb: Tcb): void {
  ctx.timers.arm(tcb.timerId, TcpTimer.Retransmit, ctx.now() + tcb.rto);
}

/** Persist interval: the RTO backed off exponentially, bounded by maxPersist. */
export function armPersist(ctx: TcpContext, tcb: Tcb): void {
  const base = Math.max(tcb.rto, ctx.opts.minRto);
  const delay = Math.min(base * 2 ** Math.min(tcb.persistBackoff, 16), ctx.opts.maxPersist);
  ctx.timers.arm(tcb.timerId, TcpTimer.Persist, ctx.now() + delay);
}
