// What the per-connection modules (input, output, timers, connection) need
// from the TCP instance that owns them. Tcp implements it; the modules take it
// as their first argument, so none of them holds state of its own.

import type { HotPath } from '../hotpath/engine.js';
import type { TransportLower } from '../layers.js';
import type { TimerQueue } from '../time/timers.js';
import type { TcpOptions } from './options.js';
import type { CloseReason, TcpCounters } from './stats.js';
import type { Tcb } from './tcb.js';
import type { State } from './state.js';

export interface TcpContext {
  readonly hot: HotPath;
  readonly lower: TransportLower;
  readonly timers: TimerQueue;
  readonly opts: TcpOptions;
  readonly counters: TcpCounters;
  /** This TCP drives the engine's fast path: data segments go out in engine-built bursts. */
  readonly fastPath: boolean;
  /** Monotonic ms. */
  now(): number;
  /** Move a control block to a new state, keeping the per-state counts exact. */
  setState(tcb: Tcb, state: State): void;
  /** The one function that ends a connection (docs/architecture.md section 5). */
  release(tcb: Tcb, reason: CloseReason, detail?: string): void;
  /** Replace a closing control block by a compact TIME_WAIT record, then release it. */
  enterTimeWait(tcb: Tcb): void;
  /** RFC 5961 section 7: may one more challenge ACK go out now? (counts either way) */
  challengeAckAllowed(): boolean;
  /** Free arena chunks above the reserve kept for frames. */
  spareChunks(): number;
  /** Called when a TX slot or chunk could not be had: relieve pressure. */
  arenaPressure(): void;
  /** A duplicate segment to report in the ACK it gets (RFC 2883 D-SACK):
   *  set while the segment is processed, cleared after it (an ACK delayed
   *  past that carries no report; it is advice). One record, reused. */
  readonly dsack: DsackNote;
}

/** Which connection (its handle; NO_DSACK: none) got the duplicate bytes [left, right). */
export interface DsackNote {
  handle: number;
  left: number;
  right: number;
}

export const NO_DSACK = -1;
