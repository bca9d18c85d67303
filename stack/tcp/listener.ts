// A passive open (RFC 9293 3.10.1 OPEN, passive): a port, a bounded backlog
// and the established connections the application has not taken yet.
//
// The backlog counts both halves (connections in SYN_RECEIVED and established
// connections not yet taken); a SYN that would exceed it is dropped (counted).
// Applications take connections with the onConnection callback or the async
// iterator (or accept()); whatever is still queued when the listener closes is
// reset.
//
// Or, with ListenOptions.handles, they take no object at all: every
// connection of the listener is a number (its control block's handle) and
// the listener's callbacks hear its events (onData(handle, view)...); the
// application answers with Tcp's handle calls (write(handle, bytes),
// end(handle), close(handle), abort(handle)). Such connections cost their
// arena record and nothing on the JS heap.

import type { Connection } from './connection.js';
import { TcpError } from './errors.js';
import type { CloseInfo } from './stats.js';

/** What a Listener needs from Tcp. */
export interface ListenerCore {
  closeListener(listener: Listener): void;
  /** The application took `conn` from the listener's queue. */
  taken(conn: Connection): void;
}

export interface ListenOptions {
  /** SYN_RECEIVED + accepted-not-yet-taken connections allowed (default: TcpOptions.defaultBacklog). */
  backlog?: number;
  /** Serve connections as handles with these callbacks: no Connection objects. */
  handles?: HandleCallbacks;
}

/**
 * A handle listener's callbacks. A handle is a number naming one connection
 * while it lives; once it ended (onClose), Tcp's handle calls treat it as
 * closed (EPIPE for write, no-op otherwise), even if the record was reused.
 * Callbacks may call any of Tcp's handle calls, for this or other handles.
 */
export interface HandleCallbacks {
  /** The handshake completed. */
  onOpen?(handle: number): void;
  /** Bytes arrived, in order: a view of the arena valid only during the
   *  call. Returns how many it consumed (all, if it returns nothing); with
   *  fewer, the rest stays queued (the receive window closes as it piles up)
   *  and deliveries pause until Tcp.resume(handle). Without onData bytes are
   *  discarded. */
  onData?(handle: number, bytes: Uint8Array): number | void;
  /** The peer will send no more (its FIN, after every byte before it was consumed). */
  onEnd?(handle: number): void;
  /** Send space freed after a write() that took fewer bytes than offered. */
  onWritable?(handle: number): void;
  /** The connection ended; the handle is stale from now on. */
  onClose?(handle: number, info: CloseInfo): void;
}

type Waiter = {
  resolve: (r: IteratorResult<Connection, undefined>) => void;
  reject: (e: Error) => void;
};

export class Listener implements AsyncIterable<Connection> {
  /** Called for each new established connection; while set, nothing is queued. */
  onConnection: ((conn: Connection) => void) | null = null;
  /** Connections in SYN_RECEIVED for this listener. */
  synReceived = 0;
  /** Live handle connections (handles mode) that still refer to this listener. */
  handleConns = 0;
  private readonly queue: Connection[] = [];
  private readonly waiters: Waiter[] = [];
  private closedFlag = false;

  constructor(
    private readonly core: ListenerCore,
    /** Tcp's number for it (a control block records its listener by id). */
    readonly id: number,
    /** The port listened on; 0 for the wildcard listener (Tcp.listenAny). */
    readonly port: number,
    readonly backlog: number,
    /** Handle mode's callbacks, or null for Connection objects. */
    readonly handles: HandleCallbacks | null = null,
  ) {}

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Established connections waiting to be taken. */
  get queued(): number {
    return this.queue.length;
  }

  /** Backlog in use: SYN_RECEIVED plus queued. */
  get pending(): number {
    return this.synReceived + this.queue.length;
  }

  /** The next connection (waits for one). Rejects once the listener is closed. */
  accept(): Promise<Connection> {
    return this.next().then((r) => {
      if (r.done) throw new TcpError('ECONNABORTED', `listener on port ${this.port} closed`);
      return r.value;
    });
  }

  next(): Promise<IteratorResult<Connection, undefined>> {
    const conn = this.queue.shift();
    if (conn) {
      this.core.taken(conn);
      return Promise.resolve({ done: false, value: conn });
    }
    if (this.closedFlag) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  [Symbol.asyncIterator](): AsyncIterator<Connection, undefined> {
    return {
      next: () => this.next(),
      // Leaving a for-await loop does not close the listener; call close() for that.
      return: () => Promise.resolve({ done: true, value: undefined }),
    };
  }

  /** Stop listening: reset connections not yet taken, end the iterator. */
  close(): void {
    this.core.closeListener(this);
  }

  // ---- used by Tcp ----------------------------------------------------------

  /** A connection completed its handshake. Returns true if the application took it now. */
  deliver(conn: Connection): boolean {
    if (this.onConnection) {
      this.onConnection(conn);
      return true;
    }
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.resolve({ done: false, value: conn });
      return true;
    }
    this.queue.push(conn);
    return false;
  }

  /** A queued connection ended before it was taken. */
  forget(conn: Connection): void {
    const i = this.queue.indexOf(conn);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** Queued connections (for closing them). */
  drainQueue(): Connection[] {
    return this.queue.splice(0, this.queue.length);
  }

  /** Mark closed and end every pending iteration. */
  markClosed(): void {
    this.closedFlag = true;
    this.onConnection = null;
    for (const w of this.waiters.splice(0, this.waiters.length)) w.resolve({ done: true, value: undefined });
  }
}
