// The relay on our own TCP stack (`uk run relay`), through the Connection
// callback API (stack/tcp/connection.ts):
// - onData hands a view of the arena valid only during the call; the relay
//   copies what it keeps, and write() below copies what the send buffer does
//   not take at once into a byte queue in the arena (ArenaQueues), owned by
//   the socket (owner kind app), never onto the JS heap: a peer that does
//   not read costs the arena bytes it makes us queue, counted in chunks; a
//   handshake peer's queue is capped (the relay's maxQueuedBytes, checked
//   against the chunks held), a pipe's by the relay pausing its other end,
//   and the total of all queues by a quarter of the arena;
// - Connection.write() accepts what fits the send buffer; the rest waits here
//   and goes out on onWritable, after which the relay gets `drain`;
// - pause()/resume() stop and restart onData deliveries (the receive window
//   closes as bytes pile up), which is the backpressure of the room pipe;
// - end() is Connection.close(): FIN after what is queued, nothing more read;
//   the stack bounds a silent peer with its FIN_WAIT_2 timeout, the relay with
//   its linger timer; destroy() is abort() (RST, released at once).

import {
  CHUNK_SIZE, ChunkQueue, type Connection, type HotPath, type Listener, OwnerKind, ownerTag, type Stack,
} from '../../stack/index.js';
import { Relay } from './relay.js';
import { DEFAULT_BACKLOG, HANDSHAKE_PORT, limitsOf, type RelayServer, type RelayServerOptions, SECURE_PORT } from './server.js';
import { IGNORED_EVENTS, type RelaySocket, type SocketEvents } from './socket.js';

/** Share of the arena the relay's send queues may hold together: enough for
 *  every legitimate burst (a handshake packet per peer), while the rest stays
 *  for TCP's own buffers and new connections whatever peers do. */
const QUEUE_ARENA_SHARE = 0.25;

/** The arena chunks all sockets' send queues hold, against their budget. */
class ArenaQueues {
  chunks = 0;
  /** Writes refused because the total budget or the arena had no chunk. */
  refused = 0;
  private nextId = 1;
  readonly limit: number;

  constructor(
    readonly hot: HotPath,
    share = QUEUE_ARENA_SHARE,
  ) {
    if (!(share > 0 && share <= 1)) throw new RangeError(`relay queueArenaShare must be in (0, 1], got ${share}`);
    this.limit = Math.floor(hot.chunkCount * share);
  }

  /** An owner tag for a new socket's queue (app#id in the arena report). */
  owner(): number {
    const id = this.nextId;
    this.nextId = id >= 0xffffff ? 1 : id + 1;
    return ownerTag(OwnerKind.App, id);
  }
}

class StackSocket implements RelaySocket {
  readonly identity: string;
  private events: SocketEvents = IGNORED_EVENTS;
  /** Bytes the send buffer did not take yet, oldest first, in the arena. */
  private readonly queue: ChunkQueue;
  /** A write found no room for its bytes: reported as an unbounded queue,
   *  which makes the relay reset this socket (its slow-reader rule). */
  private starved = false;
  private ending = false;
  private closed = false;

  constructor(
    private readonly conn: Connection,
    private readonly queues: ArenaQueues,
  ) {
    this.identity = `${conn.remoteAddress}:${conn.remotePort}`;
    this.queue = ChunkQueue.standalone(queues.hot, queues.owner());
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
    const taken = this.queue.length > 0 ? 0 : this.offer(bytes);
    if (taken === bytes.length) return true;
    this.enqueue(bytes, taken);
    return false;
  }

  /** What this socket's queue costs: its chunks (Infinity once a write found no room). */
  queuedBytes(): number {
    return this.starved ? Infinity : this.queue.chunkCount * CHUNK_SIZE;
  }

  end(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    if (this.queue.length === 0) this.conn.close();
  }

  destroy(): void {
    if (this.closed) return;
    this.dropQueue();
    this.conn.abort();
  }

  pause(): void {
    this.conn.pause();
  }

  resume(): void {
    if (!this.closed) this.conn.resume();
  }

  /** Queue bytes[from..] in the arena, within the relay's share of it. */
  private enqueue(bytes: Uint8Array, from: number): void {
    const len = bytes.length - from;
    const need = Math.ceil(Math.max(0, len - this.queue.tailRoom()) / CHUNK_SIZE);
    const q = this.queues;
    if (this.starved || q.chunks + need > q.limit) {
      this.starve();
      return;
    }
    const before = this.queue.chunkCount;
    const done = this.queue.appendFromArray(bytes, from, len);
    q.chunks += this.queue.chunkCount - before;
    if (done < len) this.starve(); // the arena itself ran out
  }

  /** A write could not be queued: its bytes are lost, so this socket cannot
   *  go on. The relay sees queuedBytes() Infinity and resets a handshake
   *  peer at once (slowReader); whatever it is, the socket is reset right
   *  after this call (not inside write(), which must not report close). */
  private starve(): void {
    if (this.starved) return;
    this.starved = true;
    this.queues.refused++;
    queueMicrotask(() => this.destroy());
  }

  /** Send space freed up: move queued bytes to the send buffer, then drain (or close). */
  private readonly flush = (): void => {
    const bytes = this.queues.hot.bytes;
    while (this.queue.length > 0) {
      const run = this.queue.headRun();
      const at = this.queue.headOffset();
      const n = this.offer(bytes.subarray(at, at + run));
      this.consume(n);
      if (n < run) return; // onWritable comes again
    }
    if (this.ending) this.conn.close();
    else this.events.drain();
  };

  private consume(n: number): void {
    const before = this.queue.chunkCount;
    this.queue.consume(n);
    this.queues.chunks -= before - this.queue.chunkCount;
  }

  private dropQueue(): void {
    this.queues.chunks -= this.queue.chunkCount;
    this.queue.clear();
  }

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
    this.dropQueue();
    this.events.close();
  };
}

function serve(listener: Listener, queues: ArenaQueues, accept: (s: RelaySocket) => SocketEvents): void {
  listener.onConnection = (conn) => {
    const socket = new StackSocket(conn, queues);
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
  const queues = new ArenaQueues(stack.hot, opts.queueArenaShare);
  serve(handshake, queues, relay.acceptHandshake);
  serve(secure, queues, relay.acceptSecure);
  // The stack's admission signal (heap over its mark, connection table nearly
  // full) makes the relay shed its newest unauthenticated peers.
  const previous = stack.onPressure;
  stack.onPressure = (on) => {
    previous?.(on);
    relay.pressure(on);
  };
  if (stack.admission.pressure) relay.pressure(true);
  opts.log?.('info', `relay listening on ${ports.handshake} (handshake) and ${ports.secure} (secure room)`);
  return {
    ports,
    stats: () => ({ ...relay.stats(), arenaQueues: { chunks: queues.chunks, limit: queues.limit, refused: queues.refused } }),
    close: async () => {
      handshake.close();
      secure.close();
      stack.onPressure = previous;
      // Aborting releases each connection at once, and its onClose runs inside.
      relay.close();
    },
  };
}
