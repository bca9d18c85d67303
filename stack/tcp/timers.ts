// What each TCP timer does when it fires (timer-kinds.ts lists them). Timers
// are entries (tcb, kind) in the stack's TimerQueue; Tcp.onTimer() routes a
// fired entry here. Every give-up ends the connection through ctx.release().

import { onTimeout } from './congestion.js';
import type { TcpContext } from './context.js';
import { armPersist, output, persistSend, sendProbe, sendReset, sendSyn, updateSendTimers } from './output.js';
import { backOff, cancelTiming } from './rtt.js';
import { isSynchronized, State } from './state.js';
import { type Tcb, TcbEvent } from './tcb.js';
import { TcpTimer } from './timer-kinds.js';

export function onTcbTimer(ctx: TcpContext, tcb: Tcb, kind: number): void {
  switch (kind) {
    case TcpTimer.Retransmit:
      return retransmitTimeout(ctx, tcb);
    case TcpTimer.Persist:
      return persistTimeout(ctx, tcb);
    case TcpTimer.DelayedAck:
      ctx.counters.delayedAcks++;
      tcb.ackNow = true;
      return output(ctx, tcb);
    case TcpTimer.Keepalive:
      return keepaliveTimeout(ctx, tcb);
    case TcpTimer.FinWait2:
      return finWait2Timeout(ctx, tcb);
    case TcpTimer.Connect:
      if (tcb.state === State.SynSent || tcb.state === State.SynReceived) {
        ctx.counters.giveUpConnectTimeout++;
        ctx.release(tcb, 'timeout', 'connect');
      }
      return;
    case TcpTimer.Retry:
      // The arena had no chunk: try sending again, and let a blocked writer retry.
      tcb.events |= TcbEvent.Writable;
      if (tcb.state === State.SynSent || tcb.state === State.SynReceived) return;
      return output(ctx, tcb);
    default:
      return;
  }
}

/** RFC 6298 5.4-5.7 and RFC 9293 3.8.3 (R2 give-up). */
function retransmitTimeout(ctx: TcpContext, tcb: Tcb): void {
  const c = ctx.counters;
  if (tcb.state === State.SynSent || tcb.state === State.SynReceived) {
    if (tcb.retries >= ctx.opts.synRetries) {
      c.giveUpSyn++;
      ctx.release(tcb, 'timeout', 'syn');
      return;
    }
    tcb.retries++;
    backOff(ctx.opts, tcb);
    cancelTiming(tcb);
    c.synRetransmits++;
    sendSyn(ctx, tcb, false);
    return;
  }
  if (tcb.retries >= ctx.opts.maxRetries) {
    c.giveUpRetransmit++;
    sendReset(ctx, tcb);
    ctx.release(tcb, 'timeout', 'retransmit');
    return;
  }
  c.retransmitTimeouts++;
  onTimeout(tcb); // before retries++: ssthresh shrinks on the first timeout only
  tcb.retries++;
  backOff(ctx.opts, tcb);
  cancelTiming(tcb); // Karn
  // Go back N: everything unacknowledged is sent again as cwnd (now 1 MSS) allows.
  // What the peer SACKed is forgotten: it may renege (RFC 2018 section 8).
  tcb.sndNxt = tcb.sndUna;
  tcb.sackBoard.clear();
  output(ctx, tcb);
}

/** RFC 9293 3.8.6.1: probe a closed window, backing off, for as long as the peer answers. */
function persistTimeout(ctx: TcpContext, tcb: Tcb): void {
  if (tcb.persistProbes >= ctx.opts.maxRetries) {
    ctx.counters.giveUpPersist++;
    ctx.release(tcb, 'timeout', 'persist');
    return;
  }
  persistSend(ctx, tcb);
  tcb.persistBackoff++;
  updateSendTimers(ctx, tcb);
  // Still nothing in flight and the window still closed: keep probing.
  if (!tcb.released && !ctx.timers.isArmed(tcb.timerId, TcpTimer.Persist) && !ctx.timers.isArmed(tcb.timerId, TcpTimer.Retransmit)) {
    armPersist(ctx, tcb);
  }
}

/** RFC 9293 3.8.4: after keepaliveIdle of silence, probe every keepaliveInterval; give up after keepaliveCount. */
function keepaliveTimeout(ctx: TcpContext, tcb: Tcb): void {
  if (!tcb.keepalive || !isSynchronized(tcb.state)) return;
  const o = ctx.opts;
  const now = ctx.now();
  // Compare with the very deadline we would arm: `now - lastHeard < idle` can
  // hold while `lastHeard + idle` rounds to `now` itself, and the timer would
  // then re-arm for the instant it fires, forever.
  const due = tcb.lastHeard + o.keepaliveIdle;
  if (tcb.keepaliveProbes === 0 && now < due) {
    ctx.timers.arm(tcb.timerId, TcpTimer.Keepalive, due);
    return;
  }
  if (tcb.keepaliveProbes >= o.keepaliveCount) {
    ctx.counters.giveUpKeepalive++;
    sendReset(ctx, tcb);
    ctx.release(tcb, 'keepalive');
    return;
  }
  tcb.keepaliveProbes++;
  ctx.counters.keepaliveProbes++;
  sendProbe(ctx, tcb);
  ctx.timers.arm(tcb.timerId, TcpTimer.Keepalive, now + o.keepaliveInterval);
}

/**
 * An orphaned FIN_WAIT_2 (the application closed both ways) lasts
 * finWait2Timeout from the moment it began, whatever the peer sends (as
 * Linux's tcp_fin_timeout): nobody reads any more, and a peer that keeps
 * talking without ever sending its FIN must not pin the connection.
 */
function finWait2Timeout(ctx: TcpContext, tcb: Tcb): void {
  if (tcb.state !== State.FinWait2) return;
  ctx.counters.finWait2Timeouts++;
  sendReset(ctx, tcb);
  ctx.release(tcb, 'timeout', 'finWait2');
}
