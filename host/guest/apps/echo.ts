// echo (RFC 862): TCP and UDP port 7 send back what they receive.
//
// TCP connections are handles (no JS object each): bytes arrive as arena
// views and are written straight into the send buffer. What the send buffer
// cannot take stays in the receive queue (onData says how much it took), so
// the receive window closes and the peer waits; onWritable resumes delivery.
// The peer's FIN is answered with ours once everything it sent was consumed.

import type { GuestContext } from '../app.js';
import { serveHandles } from './serve.js';

export const ECHO_PORT = 7;

export default function echo(ctx: GuestContext): void {
  serveHandles(ctx, ECHO_PORT, (tcp) => ({
    onData: (h, bytes) => tcp.write(h, bytes),
    onWritable: (h) => tcp.resume(h),
    onEnd: (h) => tcp.end(h),
  }));
  const udp = ctx.stack.udp.bind(ECHO_PORT);
  udp.onMessage((data, address, port) => {
    udp.send(data, address, port);
  });
  ctx.signal.addEventListener('abort', () => udp.close(), { once: true });
}
