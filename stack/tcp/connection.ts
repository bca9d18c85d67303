// The application's side of one connection (RFC 9293 3.10 user interface):
// WHATWG streams for ordinary code, and a callback API without copies for hot
// consumers such as the relay.
//
// A Connection is made only for applications that ask for objects (listen()
// without `handles`, connect()): it holds its control block's handle, and
// Tcp keeps it in one table by record index (tcb.conn). When the connection
// ends, Tcp.release() calls released(), which settles every pending
// operation, closes or errors the streams, resolves `closed`, and cuts the
// link both ways (the handle is stale from then on). An application that
// keeps a Connection afterwards keeps only this small object, never the
// control block or its buffers.

import type { HotPath } from '../hotpath/engine.js';
import { errorForClose, TcpError } from './errors.js';
import type { CloseInfo } from './stats.js';
import type { Tcb } from './tcb.js';
import { TcbEvent } from './tcb.js';

/** What a Connection asks of Tcp: its handle calls (a no-op or an error once
 *  the handle is stale), and a control block accessor for the length of one
 *  call (enter/leave, strictly nested). */
export interface ConnectionCore {
  readonly hot: HotPath;
  /** Queue up to len bytes of src[off..]; returns how many were taken. Throws EPIPE after end(). */
  write(handle: number, src: Uint8Array, off?: number, len?: number): number;
  /** No more writes: FIN after the queued data (RFC 9293 3.10.4 CLOSE). */
  end(handle: number): void;
  /** No more reads: discard what is queued and whatever arrives later. */
  closeRead(handle: number): void;
  /** closeRead() and end() together. */
  close(handle: number): void;
  /** RST now and release everything (RFC 9293 3.10.5 ABORT). */
  abort(handle: number): void;
  setNoDelay(handle: number, on: boolean): void;
  setKeepAlive(handle: number, on: boolean): void;
  /** Free space in the send buffer. */
  writableSpace(handle: number): number;
  /** Bytes received and not consumed, bytes queued to send. */
  recvQueued(handle: number): number;
  sendQueued(handle: number): number;
  /** An accessor pointed at the handle's record, null if it is stale. */
  enter(handle: number): Tcb | null;
  /** A detached accessor for diagnostics (Tcp.inspect). */
  inspect(handle: number): Tcb | null;
  /** Done with what enter() gave. */
  leave(tcb: Tcb): void;
  /** The application consumed n bytes at the head of tcb's receive queue. */
  consume(tcb: Tcb, n: number): void;
}

/** Largest single chunk a readable stream enqueues. */
const READ_CHUNK_MAX = 65536;

type PendingWrite = { chunk: Uint8Array; off: number; resolve: () => void; reject: (e: Error) => void };

export class Connection {
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Settles once, when the connection has ended, with the reason. Never rejects. */
  readonly closed: Promise<CloseInfo>;

  /** Called (callback API) after the peer's FIN, once every byte before it was delivered. */
  onEnd: (() => void) | null = null;
  /** Called once after write() accepted fewer bytes than offered, when space frees up. */
  onWritable: (() => void) | null = null;
  /** Called when the connection has ended, after `closed` settles. */
  onClose: ((info: CloseInfo) => void) | null = null;

  /** @internal The control block's handle, -1 once released. */
  handle: number;
  /** @internal connect() waiting for the handshake. */
  connectWaiter: { resolve: (c: Connection) => void; reject: (e: Error) => void } | null = null;

  private dataHandler: ((bytes: Uint8Array) => void) | null = null;
  private settleClosed!: (info: CloseInfo) => void;
  private info: CloseInfo | null = null;
  private paused = false;
  private pumping = false;
  private eofDelivered = false;
  private wantWritable = false;
  /** Bytes of a graceful end that nobody was reading yet (held outside the arena). */
  private leftover: Uint8Array | null = null;

  private readableStream: ReadableStream<Uint8Array> | null = null;
  private readController: ReadableStreamDefaultController<Uint8Array> | null = null;
  private pullPending = false;
  private writableStream: WritableStream<Uint8Array> | null = null;
  private writeController: WritableStreamDefaultController | null = null;
  private writableEnded = false;
  private pendingWrite: PendingWrite | null = null;
  /** end() came while a stream write waited for room: FIN once it is buffered. */
  private endAfterWrite = false;

  constructor(
    private readonly core: ConnectionCore,
    tcb: Tcb,
    addresses: { localAddress: string; remoteAddress: string },
  ) {
    this.handle = tcb.handle;
    this.localAddress = addresses.localAddress;
    this.localPort = tcb.localPort;
    this.remoteAddress = addresses.remoteAddress;
    this.remotePort = tcb.remotePort;
    this.closed = new Promise((resolve) => {
      this.settleClosed = resolve;
    });
  }

  // ---- state ------------------------------------------------------------------

  /** Why the connection ended, or null while it is alive. */
  get closeInfo(): CloseInfo | null {
    return this.info;
  }

  /** Bytes received and not yet consumed by the application. */
  get readableLength(): number {
    return this.core.recvQueued(this.handle);
  }

  /** Bytes queued to send and not yet acknowledged. */
  get writableLength(): number {
    return this.core.sendQueued(this.handle);
  }

  /** Room in the send buffer: how much write() would accept now. */
  get writableSpace(): number {
    return this.core.writableSpace(this.handle);
  }

  // ---- callback API -------------------------------------------------------------

  /**
   * Receive without copies: called with a view of the arena that is valid only
   * during the call. Bytes count as consumed when the call returns. Setting it
   * delivers what is already queued.
   */
  get onData(): ((bytes: Uint8Array) => void) | null {
    return this.dataHandler;
  }

  set onData(fn: ((bytes: Uint8Array) => void) | null) {
    this.dataHandler = fn;
    if (fn) this.pump();
  }

  /** Stop onData deliveries; bytes stay queued and the receive window closes as they pile up. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.pump();
  }

  /**
   * Queue bytes to send; returns how many were accepted (the rest did not fit
   * the send buffer: wait for onWritable). Throws once the write side is closed.
   */
  write(bytes: Uint8Array): number {
    const n = this.core.write(this.liveHandle(), bytes, 0, bytes.length);
    if (n < bytes.length) this.wantWritable = true;
    return n;
  }

  /** Half-close: FIN after the queued data (including a stream write still
   *  waiting for room); reading continues until the peer's FIN. */
  end(): void {
    this.writableEnded = true;
    if (this.handle < 0) return;
    if (this.pendingWrite) this.endAfterWrite = true;
    else this.core.end(this.handle);
  }

  /** Graceful close: FIN after the queued data, and nothing more is read. */
  close(): void {
    const h = this.handle;
    if (h < 0) return;
    this.writableEnded = true;
    this.finishReadable();
    if (this.pendingWrite) {
      this.endAfterWrite = true;
      this.core.closeRead(h);
    } else {
      this.core.close(h);
    }
  }

  /** Reset the connection now; everything it holds is released at once. */
  abort(): void {
    if (this.handle >= 0) this.core.abort(this.handle);
  }

  /** Disable (true) or enable Nagle's algorithm. */
  setNoDelay(on = true): void {
    if (this.handle >= 0) this.core.setNoDelay(this.handle, on);
  }

  setKeepAlive(on = true): void {
    if (this.handle >= 0) this.core.setKeepAlive(this.handle, on);
  }

  // ---- streams ----------------------------------------------------------------------

  /**
   * Received bytes as a pull-based stream: bytes leave the arena (as copies)
   * only when the stream pulls, so an unread stream closes the receive window.
   */
  get readable(): ReadableStream<Uint8Array> {
    if (!this.readableStream) {
      this.readableStream = new ReadableStream<Uint8Array>(
        {
          start: (controller) => {
            this.readController = controller;
            if (this.handle < 0) this.endReadableAfterRelease();
          },
          pull: () => {
            this.pullPending = true;
            this.pump();
          },
          cancel: () => {
            this.readController = null;
            this.eofDelivered = true;
            if (this.handle >= 0) this.core.closeRead(this.handle);
          },
        },
        { highWaterMark: 0 },
      );
    }
    return this.readableStream;
  }

  /**
   * Bytes to send. write() resolves once the bytes are in the send buffer
   * (backpressure while it is full); close() sends our FIN after them.
   */
  get writable(): WritableStream<Uint8Array> {
    if (!this.writableStream) {
      this.writableStream = new WritableStream<Uint8Array>(
        {
          start: (controller) => {
            this.writeController = controller;
            if (this.handle < 0 && this.info) controller.error(errorForClose(this.info.reason, this.info.detail));
          },
          write: (chunk) => this.streamWrite(chunk),
          close: () => this.end(),
          abort: () => this.abort(),
        },
        { highWaterMark: 1 },
      );
    }
    return this.writableStream;
  }

  /** @internal Diagnostics and tests: an accessor of the control block
   *  (Tcp.inspect), null once the connection ended. */
  inspect(): Tcb | null {
    return this.core.inspect(this.handle);
  }

  // ---- used by Tcp ---------------------------------------------------------------------

  /** @internal Events of the last segment or timer (TcbEvent bits) of tcb, its record. */
  events(ev: number, tcb: Tcb): void {
    if ((ev & (TcbEvent.Data | TcbEvent.Eof)) !== 0) this.pumpWith(tcb);
    if ((ev & TcbEvent.Writable) !== 0 && this.handle >= 0) this.writableAgain();
  }

  /**
   * @internal The connection ended (Tcp.release); tcb is its record, whose
   * chunks are freed after this returns, so a graceful end still hands over
   * every byte.
   */
  released(info: CloseInfo, tcb: Tcb): void {
    if (this.handle >= 0 && info.reason === 'closed') this.keepUnreadBytes(tcb);
    this.handle = -1;
    this.info = info;
    // An Error captures a stack trace, which costs more than the rest of a
    // release: make it only when something is still waiting to hear why.
    let err: TcpError | undefined;
    const error = (): TcpError => (err ??= errorForClose(info.reason, info.detail));
    const waiter = this.connectWaiter;
    this.connectWaiter = null;
    waiter?.reject(error());
    const pending = this.pendingWrite;
    this.pendingWrite = null;
    pending?.reject(error());
    if (this.readController) this.endReadableAfterRelease();
    if (info.reason === 'closed' && this.leftover === null && !this.eofDelivered) this.deliverEof();
    if (this.writeController && !this.writableEnded) this.writeController.error(error());
    this.writeController = null;
    this.settleClosed(info);
    const onClose = this.onClose;
    // Drop the application's callbacks: nothing reachable from here outlives the call.
    this.dataHandler = null;
    this.onEnd = null;
    this.onWritable = null;
    this.onClose = null;
    onClose?.(info);
  }

  /** @internal Handshake completed for connect(). */
  established(): void {
    const waiter = this.connectWaiter;
    this.connectWaiter = null;
    waiter?.resolve(this);
  }

  // ---- internals -------------------------------------------------------------------------

  private liveHandle(): number {
    if (this.handle >= 0) return this.handle;
    const info = this.info ?? { reason: 'closed' as const };
    throw errorForClose(info.reason, info.detail);
  }

  /** pumpWith() from an application call: with an accessor of our own. */
  private pump(): void {
    if (this.pumping || this.handle < 0) return;
    const tcb = this.core.enter(this.handle);
    if (!tcb) return;
    try {
      this.pumpWith(tcb);
    } finally {
      this.core.leave(tcb);
    }
  }

  /** Deliver what is queued to whoever reads: onData (views) or a pending stream pull (a copy). */
  private pumpWith(tcb: Tcb): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      if (this.handle < 0) return;
      if (this.dataHandler) {
        this.deliverViews(tcb, false);
      } else if (this.readController && this.pullPending && tcb.recvBuf.length > 0) {
        const n = Math.min(tcb.recvBuf.length, READ_CHUNK_MAX);
        const copy = new Uint8Array(n);
        tcb.recvBuf.copyToArray(0, n, copy, 0);
        this.pullPending = false;
        this.core.consume(tcb, n);
        this.readController.enqueue(copy);
      }
      if (this.handle >= 0) this.maybeEof(tcb);
    } finally {
      this.pumping = false;
    }
  }

  /** Hand arena views of queued bytes to onData, chunk by chunk, consuming each after the call. */
  private deliverViews(tcb: Tcb, evenIfPaused: boolean): void {
    const bytes = this.core.hot.bytes;
    // While released() hands over the last bytes the record is already
    // retired (tcb.released) but this Connection still holds its handle.
    while (tcb.recvBuf.length > 0 && this.dataHandler && (evenIfPaused || !this.paused) && this.handle >= 0) {
      const run = tcb.recvBuf.headRun();
      const at = tcb.recvBuf.headOffset();
      this.dataHandler(bytes.subarray(at, at + run));
      if (this.handle < 0) return; // released by the callback: the chunks are gone
      this.core.consume(tcb, run);
    }
  }

  /** The peer's FIN is delivered once every byte before it has been. */
  private maybeEof(tcb: Tcb): void {
    if (this.eofDelivered || !tcb.finReceived || tcb.recvBuf.length > 0) return;
    if (this.dataHandler && this.paused) return;
    if (!this.dataHandler && !this.readController && !this.onEnd) return;
    this.deliverEof();
  }

  /** End of the byte stream: close the readable and tell onEnd, once. */
  private deliverEof(): void {
    this.eofDelivered = true;
    this.closeReadController();
    this.onEnd?.();
  }

  private closeReadController(): void {
    const c = this.readController;
    this.readController = null;
    if (c) {
      try {
        c.close();
      } catch {
        // already closed or cancelled by the reader
      }
    }
  }

  /** close(): the readable ends here; later bytes are discarded. */
  private finishReadable(): void {
    this.eofDelivered = true;
    this.closeReadController();
  }

  /**
   * A graceful end frees the arena: onData gets every remaining byte now
   * (even if paused); bytes nobody is reading move to the JS heap, where a
   * readable stream (even one created later) still finds them.
   */
  private keepUnreadBytes(tcb: Tcb): void {
    if (this.dataHandler) this.deliverViews(tcb, true);
    const left = tcb.recvBuf.length;
    if (left > 0 && !this.eofDelivered) {
      const copy = new Uint8Array(left);
      tcb.recvBuf.copyToArray(0, left, copy, 0);
      this.leftover = copy;
    }
  }

  /** After release: a graceful end closes the readable (after any leftover bytes), an error errors it. */
  private endReadableAfterRelease(): void {
    const c = this.readController;
    if (!c || this.eofDelivered) return;
    const info = this.info;
    if (info && info.reason !== 'closed') {
      this.readController = null;
      this.eofDelivered = true;
      c.error(errorForClose(info.reason, info.detail));
      return;
    }
    if (this.leftover) {
      c.enqueue(this.leftover);
      this.leftover = null;
    }
    this.deliverEof();
  }

  private streamWrite(chunk: Uint8Array): Promise<void> | void {
    if (!(chunk instanceof Uint8Array)) throw new TypeError('Connection.writable accepts Uint8Array chunks only');
    const n = this.core.write(this.liveHandle(), chunk, 0, chunk.length);
    if (n === chunk.length) return;
    return new Promise<void>((resolve, reject) => {
      this.pendingWrite = { chunk, off: n, resolve, reject };
    });
  }

  /** Send space was freed: continue a blocked stream write, then tell onWritable. */
  private writableAgain(): void {
    const p = this.pendingWrite;
    if (p) {
      try {
        p.off += this.core.write(this.handle, p.chunk, p.off, p.chunk.length - p.off);
      } catch (err) {
        this.pendingWrite = null;
        p.reject(err as Error);
        return;
      }
      if (p.off < p.chunk.length) return;
      this.pendingWrite = null;
      p.resolve();
      if (this.endAfterWrite && this.handle >= 0) {
        this.endAfterWrite = false;
        this.core.end(this.handle);
      }
    }
    if (this.wantWritable && this.handle >= 0 && this.core.writableSpace(this.handle) > 0) {
      this.wantWritable = false;
      this.onWritable?.();
    }
  }
}
