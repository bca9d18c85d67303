// discard (RFC 863): TCP port 9 reads and drops everything; the peer's FIN
// is answered with ours. Connections are handles: nothing on the heap each.

import type { GuestContext } from '../app.js';
import { serveHandles } from './serve.js';

export const DISCARD_PORT = 9;

export default function discard(ctx: GuestContext): void {
  // No onData: the stack consumes and drops what arrives.
  serveHandles(ctx, DISCARD_PORT, (tcp) => ({ onEnd: (h) => tcp.close(h) }));
}
