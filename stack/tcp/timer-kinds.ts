// The eight TCP timer kinds (TimerKind.TcpFirst..TcpLast in layers.ts). Each
// is an entry (owner, kind) in the stack's one TimerQueue, never a closure.

import { DELAYED_ACK_TIMER_SLOT } from '../hotpath/layout.js';
import type { TimerKind } from '../layers.js';

export const TcpTimer = {
  /** RFC 6298 retransmission timer (also SYN and SYN-ACK retransmission). */
  Retransmit: 0 as TimerKind,
  /** Zero-window probe / sender SWS override (RFC 9293 3.8.6.1). */
  Persist: 1 as TimerKind,
  /** Delayed acknowledgement (RFC 9293 3.8.6.3). */
  DelayedAck: 2 as TimerKind,
  /** Keepalive idle time and probe interval (RFC 9293 3.8.4). */
  Keepalive: 3 as TimerKind,
  /** FIN_WAIT_2 timeout. */
  FinWait2: 4 as TimerKind,
  /** Expiry of the oldest compact TIME_WAIT record (owner: the TIME_WAIT table). */
  TimeWait: 5 as TimerKind,
  /** The application's connect() timeout. */
  Connect: 6 as TimerKind,
  /** Output blocked because the arena had no chunk: try again shortly. */
  Retry: 7 as TimerKind,
} as const;

export const TCP_TIMER_COUNT = 8;

/**
 * The slot of each kind among a control block's four (T.TIMERS), -1 for the
 * TIME_WAIT table's. Kinds in one slot never need to run together, so arming
 * one may displace the other (as BSD's and Linux's shared timers):
 * - retransmission and persist: data in flight or a closed window to probe,
 *   never both (output.ts updateSendTimers keeps them apart);
 * - connect, keepalive and FIN_WAIT_2: one per phase (connect before
 *   ESTABLISHED, keepalive after it, FIN_WAIT_2's once the connection is
 *   orphaned there, which keepalive gives way to);
 * - delayed ACK and retry have a slot each.
 */
export const TCB_TIMER_SLOTS: readonly number[] = [0, 0, DELAYED_ACK_TIMER_SLOT, 2, 2, -1, 2, 3];

export const TCP_TIMER_NAMES = [
  'retransmit',
  'persist',
  'delayedAck',
  'keepalive',
  'finWait2',
  'timeWait',
  'connect',
  'retry',
] as const;

/** Delay before retrying output after the arena had no chunk, ms. */
export const TX_RETRY_MS = 10;
