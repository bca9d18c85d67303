// The few socket operations the relay needs, so that one state machine runs on
// host sockets (host.ts, node:net) and on our own TCP stack (stack.ts).
//
// The relay talks to an adapter in two directions:
// - RelaySocket: what the relay may do to a connection;
// - SocketEvents: what the adapter reports, returned by the relay when it
//   accepts the socket (Relay.acceptHandshake / acceptSecure).
//
// Contract for adapters:
// - `data` may be a view that is valid only during the call; the relay copies
//   what it keeps. It may pass that same view to another socket's write(), so
//   write() must copy whatever it cannot hand to the transport at once.
// - write() always takes the bytes. It returns false when the caller should
//   stop writing until `drain` (the adapter's queue is above its mark).
// - end(): flush what is queued, send FIN, stop delivering data. destroy():
//   reset now, dropping what is queued. Both are idempotent, and write() after
//   either is a no-op.
// - `close` is reported exactly once per accepted socket, after end(),
//   destroy() or the peer's reset; nothing is reported after it. It may be
//   reported synchronously from inside end() or destroy().
// - `end` is the peer's FIN, after every byte before it was delivered. While
//   paused, neither `data` nor `end` is reported.

export interface RelaySocket {
  /** The remote address as text, `ip:port` (docs/bob-protocol.md §2.1). */
  readonly identity: string;
  /** Queue bytes to send; false = wait for `drain` before writing more. */
  write(bytes: Uint8Array): boolean;
  /** Close after flushing what is queued (FIN). */
  end(): void;
  /** Reset now. */
  destroy(): void;
  /** Stop reporting `data` (and `end`) until resume(). */
  pause(): void;
  resume(): void;
  /** What the bytes queued for this socket cost in memory, when the adapter
   *  knows (the stack adapter: the arena chunks its queue holds; Infinity
   *  once it could not queue a write at all). The relay's maxQueuedBytes is
   *  checked against it; without it, against the bytes written while blocked. */
  queuedBytes?(): number;
}

/** What an adapter reports about one socket. */
export interface SocketEvents {
  data(bytes: Uint8Array): void;
  /** The peer sent FIN. */
  end(): void;
  /** The send queue went below its mark after a write() returned false. */
  drain(): void;
  /** The socket is gone (after end(), destroy() or a reset). */
  close(): void;
}

/** Events of a socket the relay refused at once (it was destroyed). */
export const IGNORED_EVENTS: SocketEvents = Object.freeze({
  data() {},
  end() {},
  drain() {},
  close() {},
});
