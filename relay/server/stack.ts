// The relay on our own TCP stack (`uk run relay`), through the Connection
// callback API (stack/tcp/connection.ts):
// - onData hands a view of the arena valid only during the call; the relay
//   copies what it keeps, and write() below copies what the send buffer does
//   not take at once;
// - Connection.write() accepts what fits the send buffer; the rest waits here
//   and goes out on onWritable, after which the relay gets `drain`;
// - pause()/resume() stop and restart onData deliveries (the receive window
//   closes as bytes pile up), which is the backpressure of the room pipe;
// - end() is Connection.close(): FIN after what is queued, nothing more read;
//   the stack bounds a silent peer with its FIN_WAIT_2 timeout, the relay with
//   its linger timer; destroy() is abort() (RST, released at once).

import type { Stack, Connection, Listener } from '../../stack/index.js';
import { Relay } from './relay.js';
import { DEFAULT_BACKLOG, HANDSHAKE_PORT, limitsOf, type RelayServer, type RelayServerOptions, SECURE_PORT } from './server.js';
import { IGNORED_EVENTS, type RelaySocket, type SocketEvents } from './socket.js';

class StackSocket implements RelaySocket {
  readonly identity: string;
  private events: SocketEvents = IGNORED_EVENTS;
  /** Bytes the send buffer did not take yet (copies), oldest first. */
  private queue: Uint8Array[] = [];
  private ending = false;
  private closed = false;

  constructor(private readonly conn: Connection) {
    this.identity = `${conn.remoteAddress}:${conn.remotePort}`;
    // Wired first: a refusal inside accept() aborts the connection at once.
    conn.onClose = this.onClose;
    // Handshake packets are small request/response exchanges: Nagle would hold
    // each behind the peer's delayed ACK (as socket.setNoDelay in host.ts).
    conn.setNoDelay(true);
  }

  /** Start reporting to the relay (after accept returned its events). */
  attach(events: SocketEvents): void {
    if (this.closed) return;
    this.events = events;
    this.conn.onEnd = () => this.events.end();
    this.conn.onWritable = this.flush;
    // Last: setting onData delivers what is already queued (and a FIN after it).
    this.conn.onData = (bytes) => this.events.data(bytes);
  }

  write(bytes: Uint8Array): boolean {
    if (this.closed || this.ending) return true; // dropped, like any write after close
    if (this.queue.length > 0) {
      this.queue.push(bytes.slice());
      return false;
    }
    const n = this.offer(bytes);
    if (n === bytes.length) return true;
    this.queue.push(bytes.slice(n));
    return false;
  }

  end(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    if (this.queue.length === 0) this.conn.close();
  }

  destroy(): void {
    if (this.closed) return;
    this.queue = [];
    this.conn.abort();
  }

  pause(): void {
    this.conn.pause();
  }

  resume(): void {
    if (!this.closed) this.conn.resume();
  }

  /** Send space freed up: move queued bytes to the send buffer, then drain (or close). */
  private readonly flush = (): void => {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = this.offer(head);
      if (n < head.length) {
        this.queue[0] = head.subarray(n);
        return; // onWritable comes again
      }
      this.queue.shift();
    }
    if (this.ending) this.conn.close();
    else this.events.drain();
  };

  /** Connection.write, with a closed write side counted as taken (the bytes are dropped). */
  private offer(bytes: Uint8Array): number {
    try {
      return this.conn.write(bytes);
    } catch {
      return bytes.length;
    }
  }

  private readonly onClose = (): void => {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.events.close();
  };
}

function serve(listener: Listener, accept: (s: RelaySocket) => SocketEvents): void {
  listener.onConnection = (conn) => {
    const socket = new StackSocket(conn);
    socket.attach(accept(socket));
  };
}

/** The relay on `stack`, ports 9000 and 9001 unless told otherwise (0 is not a port here). */
export async function startStackRelay(stack: Stack, opts: RelayServerOptions = {}): Promise<RelayServer> {
  const relay = new Relay({ clock: stack.clock, limits: limitsOf(opts), log: opts.log });
  const backlog = opts.backlog ?? DEFAULT_BACKLOG;
  const ports = { handshake: opts.port ?? HANDSHAKE_PORT, secure: opts.securePort ?? SECURE_PORT };
  const handshake = stack.tcp.listen(ports.handshake, { backlog });
  let secure: Listener;
  try {
    secure = stack.tcp.listen(ports.secure, { backlog });
  } catch (err) {
    handshake.close();
    throw err;
  }
  serve(handshake, relay.acceptHandshake);
  serve(secure, relay.acceptSecure);
  opts.log?.('info', `relay listening on ${ports.handshake} (handshake) and ${ports.secure} (secure room)`);
  return {
    ports,
    stats: () => relay.stats(),
    close: async () => {
      handshake.close();
      secure.close();
      // Aborting releases each connection at once, and its onClose runs inside.
      relay.close();
    },
  };
}
