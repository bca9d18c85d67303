// One relayed TCP connection: a host socket (node:net) joined to a connection
// of the gateway stack, bytes flowing both ways with backpressure, half-close
// and resets carried across.
//
// Backpressure, host -> guest: a socket chunk goes to conn.write(); whatever
// the stack's send buffer does not take is kept (one chunk at most) and the
// socket is paused, so the host kernel's receive window closes; onWritable
// writes the rest and resumes the socket.
// Backpressure, guest -> host: onData views are copied into socket.write();
// when it returns false the connection is paused, so its receive buffer fills
// and the advertised window closes; 'drain' resumes it. Either way the bytes
// held in JS per direction are bounded by one socket chunk or the socket's
// high-water mark plus one arena run (at a graceful end the stack hands over
// what it still holds, at most a window, even while paused).
//
// Ends: a FIN on one side becomes a FIN on the other (socket 'end' ->
// conn.end() after the kept bytes; conn onEnd -> socket.end()). A reset or an
// error on one side resets the other. The splice is done once both the socket
// has closed and the connection has ended, whichever path got there.

import type { Socket } from 'node:net';
import type { Connection, CloseInfo } from '../../stack/index.js';

/** Counters shared by every splice of one forward. */
export interface RelayCounters {
  active: number;
  total: number;
  bytesToGuest: number;
  bytesToHost: number;
  errors: number;
}

export function newRelayCounters(): RelayCounters {
  return { active: 0, total: 0, bytesToGuest: 0, bytesToHost: 0, errors: 0 };
}

export class Splice {
  /** Bytes of the last socket chunk the stack has not taken yet. */
  private pending: Uint8Array | null = null;
  private hostEnded = false;
  private guestEnded = false;
  private socketClosed = false;
  private connClosed = false;
  /** Set when we reset both sides ourselves: not counted as an error. */
  private resetting = false;
  private finished = false;

  /** Both ends must be open: the socket connected, the connection established. */
  constructor(
    private readonly socket: Socket,
    private readonly conn: Connection,
    private readonly counters: RelayCounters,
    private readonly onDone: (splice: Splice) => void,
  ) {
    socket.on('data', this.onSocketData);
    socket.on('end', this.onSocketEnd);
    socket.on('drain', this.onDrain);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onSocketClose);
    conn.onWritable = this.onWritable;
    conn.onEnd = this.onConnEnd;
    conn.onClose = this.onConnClose;
    conn.onData = this.onConnData; // delivers what the stack already holds
    socket.resume();
  }

  /** Bytes held in JS between the two sides: the socket's write queue and the kept chunk. */
  get buffered(): number {
    return this.socket.writableLength + (this.pending?.length ?? 0);
  }

  /** Reset both sides now (user-net close). */
  reset(): void {
    this.resetting = true;
    this.conn.abort();
    destroyWithReset(this.socket);
  }

  // ---- host -> guest ------------------------------------------------------------

  private readonly onSocketData = (chunk: Buffer): void => {
    if (this.pending) {
      // A chunk already in flight when we paused: keep it behind the rest.
      this.pending = Buffer.concat([this.pending, chunk]);
      return;
    }
    this.toGuest(chunk);
  };

  /** Offer bytes to the stack; keep and pause on a short write. */
  private toGuest(bytes: Uint8Array): void {
    if (this.conn.closeInfo) return; // the connection ended: the socket is being torn down
    let n: number;
    try {
      n = this.conn.write(bytes);
    } catch {
      this.fail(); // EPIPE: the guest reset while the bytes were on their way
      return;
    }
    this.counters.bytesToGuest += n;
    if (n < bytes.length) {
      this.pending = bytes.subarray(n);
      this.socket.pause();
    } else {
      this.pending = null;
    }
  }

  private readonly onWritable = (): void => {
    const pending = this.pending;
    if (!pending) return;
    this.toGuest(pending);
    if (this.pending) return; // still short: onWritable comes again
    if (this.hostEnded) this.conn.end();
    else this.socket.resume();
  };

  private readonly onSocketEnd = (): void => {
    this.hostEnded = true;
    if (!this.pending && !this.conn.closeInfo) this.conn.end();
  };

  // ---- guest -> host -------------------------------------------------------------

  private readonly onConnData = (view: Uint8Array): void => {
    this.counters.bytesToHost += view.length;
    // Corked for the rest of this turn: what a batch of segments delivers
    // leaves in one writev(2), not a write(2) per view (which was half of
    // the tender's time when the guest sends in bulk).
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      queueMicrotask(this.uncork);
    }
    // The view is only valid during the call: the socket gets a copy.
    if (!this.socket.write(Buffer.from(view))) this.conn.pause();
  };

  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  private readonly onDrain = (): void => {
    this.conn.resume();
  };

  private readonly onConnEnd = (): void => {
    this.guestEnded = true;
    this.socket.end();
  };

  // ---- ends ------------------------------------------------------------------------

  private readonly onConnClose = (info: CloseInfo): void => {
    this.connClosed = true;
    if (info.reason !== 'closed') {
      if (!this.resetting) this.counters.errors++;
      destroyWithReset(this.socket);
    }
    this.maybeDone();
  };

  private readonly onSocketError = (): void => {
    // 'close' follows with hadError; counting happens there.
  };

  private readonly onSocketClose = (hadError: boolean): void => {
    this.socketClosed = true;
    if (hadError) this.pending = null;
    // A clean close means both FINs crossed: the connection finishes on its own
    // (bytes still kept go out before its FIN). Anything else resets it.
    if (!this.connClosed && (hadError || !this.hostEnded || !this.guestEnded)) {
      if (!this.resetting) this.counters.errors++;
      this.resetting = true;
      this.conn.abort();
    }
    this.maybeDone();
  };

  private fail(): void {
    this.counters.errors++;
    this.resetting = true;
    this.conn.abort();
    destroyWithReset(this.socket);
  }

  private maybeDone(): void {
    if (this.finished || !this.socketClosed || !this.connClosed) return;
    this.finished = true;
    this.pending = null;
    this.socket.removeListener('data', this.onSocketData);
    this.socket.removeListener('drain', this.onDrain);
    this.onDone(this);
  }
}

/** Close a socket with a RST; one still connecting is simply destroyed
 *  (resetAndDestroy would wait for the connect to complete). */
export function destroyWithReset(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting) {
    socket.destroy();
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy(); // not a TCP handle (or already closing): a plain close will do
  }
}

/** The open splices of one forward (or of the outbound relay): a splice
 *  leaves the set, and the forward's active count, once it is done. */
export class SpliceSet {
  private readonly splices = new Set<Splice>();

  constructor(private readonly counters: RelayCounters) {}

  /** Join an open socket and an established connection. */
  open(socket: Socket, conn: Connection): void {
    // The gateway passes on what each side wrote as soon as it has it: Nagle
    // belongs to the endpoints (a relay hop adding its own would add delayed-ACK
    // stalls to every request/response exchange).
    socket.setNoDelay(true);
    conn.setNoDelay(true);
    this.splices.add(new Splice(socket, conn, this.counters, this.spliceDone));
  }

  /** Reset both sides of every splice (each then leaves the set). */
  resetAll(): void {
    for (const splice of [...this.splices]) splice.reset();
  }

  /** Bytes held in JS by the open splices (a walk over them: for stats only). */
  buffered(): number {
    let sum = 0;
    for (const splice of this.splices) sum += splice.buffered;
    return sum;
  }

  private readonly spliceDone = (splice: Splice): void => {
    this.splices.delete(splice);
    this.counters.active--;
  };
}
