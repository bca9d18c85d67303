// TCP servers for built-in apps. Each listens and, on stop, closes the
// listener and every connection gracefully (FIN after what is queued); the
// guest resets whatever is still open after its grace period.
//
// - serveHandles: the connections are handles (stack/tcp/listener.ts
//   HandleCallbacks): no JS object per connection, so an idle connection costs
//   its control block record in the arena and nothing on the heap. echo,
//   discard and chargen serve this way.
// - serveTcp: a Connection object per connection, for apps that want one.

import type { Connection, HandleCallbacks, Tcp } from '../../../stack/index.js';
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

/** Serve `port` with handle callbacks made for the stack's Tcp; on stop,
 *  every connection is closed gracefully (`stop`, or Tcp.close). */
export function serveHandles(
  ctx: GuestContext,
  port: number,
  callbacks: (tcp: Tcp) => HandleCallbacks,
  stop: (tcp: Tcp, handle: number) => void = (tcp, h) => tcp.close(h),
): void {
  const tcp = ctx.stack.tcp;
  const listener = tcp.listen(port, { backlog: BACKLOG, handles: callbacks(tcp) });
  ctx.signal.addEventListener(
    'abort',
    () => {
      const live = tcp.handlesOf(listener);
      listener.close();
      for (const h of live) stop(tcp, h);
    },
    { once: true },
  );
}
