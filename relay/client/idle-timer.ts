// Fails a connection when nothing moves on it for a while: a running
// transfer has no other timeout (docs/bob-protocol.md §3: the relay's pipe has
// none either), so a vanished peer would otherwise hang us forever.
import { BobError, ExitCode } from './errors.js';
import type { Connection } from './socket.js';

export class IdleTimer {
  readonly #connection: Connection;
  readonly #ms: number;
  #timer: NodeJS.Timeout;

  constructor(connection: Connection, ms: number) {
    this.#connection = connection;
    this.#ms = ms;
    this.#timer = this.#arm();
  }

  /** Something moved: start counting again. */
  touch(): void {
    this.#timer.refresh();
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  /** Counting starts again from now (after a stop: while the user answers a question, nothing is expected to move). */
  restart(): void {
    clearTimeout(this.#timer);
    this.#timer = this.#arm();
  }

  #arm(): NodeJS.Timeout {
    const seconds = Math.round(this.#ms / 1000);
    return setTimeout(() => this.#connection.fail(new BobError(ExitCode.Timeout, `Timeout: the transfer stalled for ${seconds} s`)), this.#ms);
  }
}
