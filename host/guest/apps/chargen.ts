// chargen (RFC 864): TCP port 19 sends lines of 72 printable characters, each
// line starting one character further along the 95-character ring, until the
// peer closes. Input is discarded. Writing follows the send buffer: a short
// write waits for onWritable. Connections are handles; each one's place in
// the cycle is its control block's application word (Tcp.userData).

import type { Tcp } from '../../../stack/index.js';
import type { GuestContext } from '../app.js';
import { serveHandles } from './serve.js';

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
  serveHandles(ctx, CHARGEN_PORT, (tcp) => {
    const pump = (h: number): void => send(tcp, h, pattern);
    return { onOpen: pump, onWritable: pump, onEnd: (h) => tcp.close(h) };
  });
}

/** Write the cycle from where this connection is until the send buffer is
 *  full (onWritable calls again) or the connection is closing. */
function send(tcp: Tcp, h: number, pattern: Uint8Array): void {
  let pos = tcp.userData(h);
  while (tcp.writableSpace(h) > 0) {
    const n = tcp.write(h, pattern.subarray(pos, pos + CYCLE));
    pos = (pos + n) % CYCLE;
    if (n < CYCLE) break;
  }
  tcp.setUserData(h, pos);
}
