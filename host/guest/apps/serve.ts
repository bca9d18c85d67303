// A TCP server for built-in apps: listens, keeps the live sessions, and on
// stop closes the listener and every session gracefully (FIN after what is
// queued); the guest resets whatever is still open after its grace period.

import type { Connection } from '../../../stack/index.js';
import type { GuestContext } from '../app.js';

/** Backlog of the built-in servers: SYN_RECEIVED connections at once. */
const BACKLOG = 1024;

/** One connection's handler; close() ends it gracefully (on stop). */
export interface Session {
  close(): void;
}

export function serveTcp(ctx: GuestContext, port: number, open: (conn: Connection) => Session): void {
  const listener = ctx.stack.tcp.listen(port, { backlog: BACKLOG });
  const live = new Set<Session>();
  listener.onConnection = (conn) => {
    const session = open(conn);
    live.add(session);
    void conn.closed.then(() => live.delete(session));
  };
  ctx.signal.addEventListener(
    'abort',
    () => {
      listener.close();
      for (const session of live) session.close();
    },
    { once: true },
  );
}
