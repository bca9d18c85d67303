// What the relay's parts share: limits, timers, counters and the log.

import type { RelayLimits } from './limits.js';
import type { RelayCounters } from './stats.js';
import type { RelayTimers } from './timers.js';

export type RelayLogLevel = 'debug' | 'info' | 'warn' | 'error';
export type RelayLog = (level: RelayLogLevel, message: string) => void;

export interface RelayContext {
  readonly limits: RelayLimits;
  readonly timers: RelayTimers;
  readonly counters: RelayCounters;
  readonly log: RelayLog;
}

/** Names of the plain number counters (for "count this reason" parameters). */
export type CounterName = {
  [K in keyof RelayCounters]: RelayCounters[K] extends number ? K : never;
}[keyof RelayCounters];
