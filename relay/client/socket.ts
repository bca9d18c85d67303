// node:net plumbing shared by both clients and both relay ports: connect with
// a deadline, read chunks one at a time (with backpressure, so a fast sender
// never fills our memory), write with backpressure, and fail a connection
// from outside (a timer, an abort) so that a pending read rejects with the
// reason. Nothing here knows the protocol.
import { lookup } from 'node:dns/promises';
import { type Socket, connect } from 'node:net';
import { BobError, ExitCode, connectError } from './errors.js';

/** What an aborted client reports (its AbortSignal fired): the signal's reason when it is a BobError (Ctrl-C's exit 130), else a generic failure. */
export function abortedError(signal?: AbortSignal): BobError {
  if (signal?.reason instanceof BobError) return signal.reason;
  return new BobError(ExitCode.Failure, 'Aborted');
}

/** `promise`, or a rejection with `abortedError(signal)` as soon as `signal` aborts (for waits no socket read would end, like a question to the user). */
export function untilAborted<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortedError(signal));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Resolves a host name once; both ports are then reached on the same IP (§3, §8 --secure-port). */
export async function resolveHost(host: string): Promise<string> {
  try {
    return (await lookup(host)).address;
  } catch (error) {
    throw connectError(error, host);
  }
}

/** A TCP connection; rejects with a BobError (exit 4 when the relay is not there). */
export function connectTcp(host: string, port: number, timeoutMs: number, signal?: AbortSignal, localAddress?: string): Promise<Socket> {
  const where = `${host}:${port}`;
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true, ...(localAddress !== undefined ? { localAddress } : {}) });
    const fail = (error: unknown) => {
      cleanup();
      socket.destroy();
      reject(connectError(error, where));
    };
    const onAbort = () => {
      cleanup();
      socket.destroy();
      reject(abortedError(signal));
    };
    const timer = setTimeout(() => fail(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })), timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('error', fail);
      signal?.removeEventListener('abort', onAbort);
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', fail);
    socket.once('connect', () => {
      cleanup();
      resolve(socket);
    });
  });
}

/**
 * Pull-based reading of a socket. `read()` gives the next chunk, or null at
 * EOF; after `fail(reason)` (or a socket error) it rejects with that reason.
 */
export class Connection {
  readonly socket: Socket;
  readonly #chunks: AsyncIterator<Buffer>;
  #failure: Error | null = null;

  constructor(socket: Socket) {
    this.socket = socket;
    // Without a listener a late socket error would crash the process; the
    // iterator below reports errors to the reader instead.
    socket.on('error', () => {});
    this.#chunks = socket[Symbol.asyncIterator]();
  }

  async read(): Promise<Uint8Array | null> {
    if (this.#failure !== null) throw this.#failure;
    try {
      const next = await this.#chunks.next();
      return next.done ? null : new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    } catch (error) {
      throw this.#failure ?? error;
    }
  }

  /** Writes `bytes`, waiting for the socket to drain when its buffer is full. */
  async write(bytes: Uint8Array): Promise<void> {
    if (this.#failure !== null) throw this.#failure;
    if (this.socket.write(bytes)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error) => {
        this.socket.off('drain', onDrain);
        this.socket.off('close', onClose);
        if (error) reject(error);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(this.#failure ?? new Error('connection closed while writing'));
      this.socket.on('drain', onDrain);
      this.socket.on('close', onClose);
    });
  }

  /** Ends the connection with `reason`: pending and later reads reject with it. */
  fail(reason: Error): void {
    if (this.#failure === null) this.#failure = reason;
    this.socket.destroy(reason);
  }

  /** Half-closes our side (FIN), then frees the socket once the peer is done or after `graceMs`. */
  end(graceMs = 1000): void {
    this.socket.end();
    setTimeout(() => this.socket.destroy(), graceMs).unref();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const MAX_TIMER_MS = 0x7fffffff;

/**
 * Runs `work` with a deadline: when `ms` passes (or `signal` aborts) first,
 * `connection.fail(reason())` makes its pending read reject with that reason.
 */
export async function withDeadline<T>(
  connection: Connection,
  ms: number | undefined,
  reason: () => Error,
  work: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const onAbort = () => connection.fail(abortedError(signal));
  // setTimeout fires at once for delays above 2^31 - 1 ms; those mean "no deadline".
  const armed = ms !== undefined && ms <= MAX_TIMER_MS;
  const timer = armed ? setTimeout(() => connection.fail(reason()), Math.max(0, ms)) : undefined;
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await work();
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}
