// echo (RFC 862): TCP and UDP port 7 send back what they receive.
//
// TCP uses the callback API: bytes arrive as arena views and are written
// straight into the send buffer. When the send buffer is full, the rest of
// the view is parked in one app chunk, reading pauses (the receive window
// closes), and writing resumes on onWritable. The peer's FIN is answered with
// ours once everything was sent back.

import type { Connection } from '../../../stack/index.js';
import type { AppArena, GuestContext } from '../app.js';
import { serveTcp, type Session } from './serve.js';

export const ECHO_PORT = 7;

export default function echo(ctx: GuestContext): void {
  serveTcp(ctx, ECHO_PORT, (conn) => new EchoSession(conn, ctx.arena));
  const udp = ctx.stack.udp.bind(ECHO_PORT);
  udp.onMessage((data, address, port) => {
    udp.send(data, address, port);
  });
  ctx.signal.addEventListener('abort', () => udp.close(), { once: true });
}

class EchoSession implements Session {
  /** Bytes write() did not take: in an app chunk, or on the heap when the
   *  arena refused one (a rare, bounded fallback: at most one view's worth). */
  private parkedOff = 0;
  private parkedHeap: Uint8Array | null = null;
  private parkedStart = 0;
  private parkedEnd = 0;
  private peerEnded = false;

  constructor(
    private readonly conn: Connection,
    private readonly arena: AppArena,
  ) {
    conn.onData = this.onData;
    conn.onWritable = this.onWritable;
    conn.onEnd = this.onEnd;
    conn.onClose = this.onClose;
  }

  /** Stop: drop what is parked, FIN after what is queued, read no more. */
  close(): void {
    this.unpark();
    this.conn.close();
  }

  private readonly onData = (bytes: Uint8Array): void => {
    const n = this.conn.write(bytes);
    if (n < bytes.length) {
      this.park(bytes, n);
      this.conn.pause();
    }
  };

  private readonly onWritable = (): void => {
    if (!this.parked) return;
    const src = this.parkedHeap ?? this.arena.bytes;
    this.parkedStart += this.conn.write(src.subarray(this.parkedStart, this.parkedEnd));
    if (this.parkedStart < this.parkedEnd) return; // onWritable comes again
    this.unpark();
    if (this.peerEnded) this.conn.end();
    else this.conn.resume();
  };

  private readonly onEnd = (): void => {
    this.peerEnded = true;
    if (!this.parked) this.conn.end();
  };

  private readonly onClose = (): void => this.unpark();

  private get parked(): boolean {
    return this.parkedStart < this.parkedEnd;
  }

  private park(bytes: Uint8Array, from: number): void {
    const len = bytes.length - from;
    const off = len <= this.arena.chunkSize ? this.arena.alloc(ECHO_PORT) : 0;
    if (off !== 0) {
      this.arena.bytes.set(bytes.subarray(from), off);
      this.parkedOff = off;
      this.parkedStart = off;
      this.parkedEnd = off + len;
    } else {
      this.parkedHeap = bytes.slice(from);
      this.parkedStart = 0;
      this.parkedEnd = len;
    }
  }

  private unpark(): void {
    if (this.parkedOff !== 0) this.arena.free(this.parkedOff);
    this.parkedOff = 0;
    this.parkedHeap = null;
    this.parkedStart = this.parkedEnd = 0;
  }
}
