// One connection on TCP 9001 (docs/bob-protocol.md §3): it reads a line naming its
// partner, waits in a room, then is piped to the partner.

import type { Room } from './rooms.js';
import type { RelaySocket } from './socket.js';
import type { Timed } from './timers.js';

/** line: reading the line; waiting: in a room, paused; piping: paired;
 *  closing: released, socket flushing; closed: the adapter reported close. */
export type SecureState = 'line' | 'waiting' | 'piping' | 'closing' | 'closed';

export interface SecureTimerHandler {
  onSecureTimer(conn: SecureConn): void;
}

export class SecureConn implements Timed {
  timerSlot = -1;
  state: SecureState = 'line';
  /** The line read so far (without its `\n`). */
  readonly line: Uint8Array;
  lineLength = 0;
  room: Room | null = null;
  partner: SecureConn | null = null;
  /** Paused because the partner's send queue is full (backpressure). */
  held = false;

  constructor(
    readonly socket: RelaySocket,
    maxLine: number,
    private readonly handler: SecureTimerHandler,
  ) {
    this.line = new Uint8Array(maxLine);
  }

  onTimer(): void {
    this.handler.onSecureTimer(this);
  }
}
