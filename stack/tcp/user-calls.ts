// The user calls of RFC 9293 3.10 that act on an open connection: SEND
// (write), RECEIVE (the application consuming queued bytes), CLOSE (end and
// close), ABORT, and the per-connection switches. Connection reaches these
// through Tcp, which runs its end-of-event work after each.

import type { TcpContext } from './context.js';
import { TcpError } from './errors.js';
import { armFinWait2 } from './input.js';
import { output, receiveWindow, sendAck, sendReset } from './output.js';
import { canSendData, State } from './state.js';
import type { Tcb } from './tcb.js';
import { TcpTimer, TX_RETRY_MS } from './timer-kinds.js';
import { seqDiff } from '../hotpath/ts-seq.js';

/** Free space in the send buffer. */
export function writableSpace(ctx: TcpContext, tcb: Tcb): number {
  return tcb.released || tcb.finQueued ? 0 : Math.max(0, ctx.opts.sndBuf - tcb.sendBuf.length);
}

/** SEND: copy what fits into the send chunks and let output() decide what goes now. */
export function userWrite(ctx: TcpContext, tcb: Tcb, src: Uint8Array, off: number, len: number): number {
  if (tcb.released) throw new TcpError('EPIPE', 'connection closed');
  if (tcb.finQueued || !canSendData(tcb.state)) throw new TcpError('EPIPE', 'write after end()');
  const want = Math.min(len, writableSpace(ctx, tcb));
  const n = want > 0 ? tcb.sendBuf.appendFromArray(src, off, want) : 0;
  if (n < want) {
    // The arena is out of chunks: the Retry timer tells the writer to come back.
    ctx.arenaPressure();
    if (!ctx.timers.isArmed(tcb.timerId, TcpTimer.Retry)) ctx.timers.arm(tcb.timerId, TcpTimer.Retry, ctx.now() + TX_RETRY_MS);
  }
  if (n > 0) output(ctx, tcb);
  return n;
}

/** RECEIVE: the application consumed n bytes at the head of the receive queue. */
export function userConsume(ctx: TcpContext, tcb: Tcb, n: number): void {
  tcb.recvBuf.consume(n); // also while release() hands over the last bytes
  if (!tcb.released) maybeWindowUpdate(ctx, tcb);
}

/**
 * Announce a window the application's reading opened, once it grew by at
 * least min(2*MSS, half the buffer): receiver-side SWS avoidance
 * (RFC 9293 3.8.6.2.2) without leaving the sender stalled on a closed window.
 */
function maybeWindowUpdate(ctx: TcpContext, tcb: Tcb): void {
  if (tcb.state !== State.Established && tcb.state !== State.FinWait1 && tcb.state !== State.FinWait2) return;
  const advertised = Math.max(0, seqDiff(tcb.rcvAdvRight, tcb.rcvNxt));
  const offer = receiveWindow(ctx, tcb);
  if (offer - advertised >= Math.min(2 * tcb.rcvMss, ctx.opts.rcvBuf >>> 1)) {
    ctx.counters.windowUpdates++;
    // During input (or a close), the segment about to go out carries the update.
    if (tcb.inInput) tcb.ackNow = true;
    else sendAck(ctx, tcb);
  }
}

/** CLOSE (RFC 9293 3.10.4), the write half: our FIN follows the queued data. */
export function userEndWrite(ctx: TcpContext, tcb: Tcb): void {
  if (tcb.released || tcb.finQueued) return;
  switch (tcb.state) {
    case State.SynSent:
      ctx.release(tcb, 'aborted', 'closed before established');
      return;
    case State.SynReceived:
    case State.Established:
      tcb.finQueued = true;
      ctx.setState(tcb, State.FinWait1);
      break;
    case State.CloseWait:
      tcb.finQueued = true;
      ctx.setState(tcb, State.LastAck);
      break;
    default:
      return;
  }
  output(ctx, tcb);
}

/** The read half: queued and future bytes are discarded; the window stays open. */
export function userCloseRead(ctx: TcpContext, tcb: Tcb): void {
  if (tcb.released || tcb.readClosed) return;
  tcb.readClosed = true;
  tcb.recvBuf.clear();
  tcb.reassembly.clear();
  armFinWait2(ctx, tcb);
  maybeWindowUpdate(ctx, tcb);
}

/** Both halves, in one segment where possible: the FIN carries the reopened window. */
export function userClose(ctx: TcpContext, tcb: Tcb): void {
  if (tcb.released) return;
  const wasInInput = tcb.inInput;
  tcb.inInput = true;
  userCloseRead(ctx, tcb);
  tcb.inInput = wasInInput;
  userEndWrite(ctx, tcb);
  if (!tcb.released && tcb.ackNow && !wasInInput) output(ctx, tcb);
}

/** ABORT (RFC 9293 3.10.5): RST, and everything released at once. */
export function userAbort(ctx: TcpContext, tcb: Tcb): void {
  if (tcb.released) return;
  if (tcb.state !== State.SynSent) {
    ctx.counters.rstSentAbort++;
    sendReset(ctx, tcb);
  }
  ctx.release(tcb, 'aborted');
}

export function userSetNoDelay(ctx: TcpContext, tcb: Tcb, on: boolean): void {
  tcb.noDelay = on;
  if (on && !tcb.released) output(ctx, tcb);
}

export function userSetKeepAlive(ctx: TcpContext, tcb: Tcb, on: boolean): void {
  tcb.keepalive = on;
  if (tcb.released) return;
  const armed = ctx.timers.isArmed(tcb.timerId, TcpTimer.Keepalive);
  // An orphaned FIN_WAIT_2's timer holds the slot keepalive would take: it ends the connection anyway.
  const orphaned = ctx.timers.isArmed(tcb.timerId, TcpTimer.FinWait2);
  if (on && !armed && !orphaned && tcb.state >= State.Established) {
    ctx.timers.arm(tcb.timerId, TcpTimer.Keepalive, ctx.now() + ctx.opts.keepaliveIdle);
  } else if (!on && armed) {
    ctx.timers.cancel(tcb.timerId, TcpTimer.Keepalive);
  }
}
