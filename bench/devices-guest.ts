// The guest of the device benchmark (bench/devices.ts), run as a module guest:
//   uk run --net ... dist/bench/devices-guest.js
// It serves two TCP ports with the stack's callback API, so the guest's own
// work per byte is as small as the API allows:
//   discard (DISCARD_PORT)  onData drops the arena views it is given (no copy);
//                           the peer's FIN is answered with ours
//   chargen (CHARGEN_PORT)  writes one fixed 64 KiB buffer with write() until
//                           the send buffer takes less, then again from
//                           onWritable, until the peer closes or resets
// Everything else the benchmark measures (the device, the link, the tender) is
// the same for any app.

import type { Connection, Listener } from '../stack/index.js';
import type { GuestContext } from '../host/guest/app.js';

export const DISCARD_PORT = 9;
export const CHARGEN_PORT = 19;

/** What chargen sends, again and again: its content does not matter. */
const CHARGEN_BLOCK = new Uint8Array(64 * 1024).map((_, i) => 32 + (i % 95));

function serveDiscard(conn: Connection): void {
  conn.onData = () => {}; // the view is consumed when the call returns
  conn.onEnd = () => conn.close();
}

function serveChargen(conn: Connection): void {
  const pump = (): void => {
    // A short write arms onWritable, which calls pump again.
    while (conn.closeInfo === null && conn.write(CHARGEN_BLOCK) === CHARGEN_BLOCK.length);
  };
  conn.onData = () => {}; // chargen ignores its input
  conn.onEnd = () => conn.close();
  conn.onWritable = pump;
  pump();
}

/** Listen on `port`; every connection is served by `serve` and closed on stop. */
function listen(ctx: GuestContext, port: number, serve: (conn: Connection) => void): Listener {
  const listener = ctx.stack.tcp.listen(port);
  const live = new Set<Connection>();
  listener.onConnection = (conn) => {
    live.add(conn);
    void conn.closed.then(() => live.delete(conn));
    serve(conn);
  };
  ctx.signal.addEventListener(
    'abort',
    () => {
      listener.close();
      for (const conn of live) conn.close();
    },
    { once: true },
  );
  return listener;
}

export default function main(ctx: GuestContext): void {
  listen(ctx, DISCARD_PORT, serveDiscard);
  listen(ctx, CHARGEN_PORT, serveChargen);
  ctx.log(`discard on ${DISCARD_PORT}, chargen on ${CHARGEN_PORT}`);
}
