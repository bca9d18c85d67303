// chargen (RFC 864): TCP port 19 sends lines of 72 printable characters, each
// line starting one character further along the 95-character ring, until the
// peer closes. Input is discarded. Writing follows the send buffer: a short
// write waits for onWritable.

import type { Connection } from '../../../stack/index.js';
import type { GuestContext } from '../app.js';
import { serveTcp, type Session } from './serve.js';

export const CHARGEN_PORT = 19;

const LINE = 72;
const PRINTABLE = 95; // ' ' (32) to '~' (126)
/** One full cycle: 95 lines of 72 characters and CR LF. */
const CYCLE = PRINTABLE * (LINE + 2);

/** The cycle twice over, so any window of CYCLE bytes is one contiguous view. */
function cycleTwice(): Uint8Array {
  const out = new Uint8Array(2 * CYCLE);
  for (let line = 0; line < 2 * PRINTABLE; line++) {
    const at = line * (LINE + 2);
    for (let i = 0; i < LINE; i++) out[at + i] = 32 + ((line + i) % PRINTABLE);
    out[at + LINE] = 13;
    out[at + LINE + 1] = 10;
  }
  return out;
}

export default function chargen(ctx: GuestContext): void {
  const pattern = cycleTwice();
  serveTcp(ctx, CHARGEN_PORT, (conn) => new ChargenSession(conn, pattern));
}

class ChargenSession implements Session {
  private pos = 0;
  private done = false;

  constructor(
    private readonly conn: Connection,
    private readonly pattern: Uint8Array,
  ) {
    conn.onData = ignore;
    conn.onEnd = this.close;
    conn.onClose = this.close;
    conn.onWritable = this.pump;
    this.pump();
  }

  /** Stop writing; FIN after what is queued. */
  readonly close = (): void => {
    if (this.done) return;
    this.done = true;
    this.conn.close();
  };

  private readonly pump = (): void => {
    while (!this.done) {
      const n = this.conn.write(this.pattern.subarray(this.pos, this.pos + CYCLE));
      this.pos = (this.pos + n) % CYCLE;
      if (n < CYCLE) return; // the send buffer is full: onWritable calls again
    }
  };
}

function ignore(): void {}
