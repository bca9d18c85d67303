// discard (RFC 863): TCP port 9 reads and drops everything; the peer's FIN
// is answered with ours.

import type { GuestContext } from '../app.js';
import { serveTcp } from './serve.js';

export const DISCARD_PORT = 9;

export default function discard(ctx: GuestContext): void {
  serveTcp(ctx, DISCARD_PORT, (conn) => {
    const close = () => conn.close();
    conn.onData = ignore;
    conn.onEnd = close;
    return { close };
  });
}

function ignore(): void {}
