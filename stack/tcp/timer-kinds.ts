// The eight TCP timer kinds (TimerKind.TcpFirst..TcpLast in layers.ts). Each
// is an entry (owner, kind) in the stack's one TimerQueue, never a closure.

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
