// Hostile peers for load tests against a relay or any TCP service on
// 127.0.0.1 (bench/hostile.ts, test/relay/guest-hostile.test.ts): Hello
// flooders that never read, and idle connections held open, each from a
// loopback address of its own (Linux routes all of 127.0.0.0/8 to lo).
// Every loop is bounded in count and time.

import { once } from 'node:events';
import net from 'node:net';
import { encodeFrame } from '../handshake/packet.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** One flooder: Hellos as fast as the relay takes them, reading nothing. */
export async function flood(port: number, address: string, untilMs: number): Promise<{ bytes: number; reset: boolean }> {
  const hellos = Buffer.concat(Array.from({ length: 4096 }, () => encodeFrame({ uid: 0, packet: { name: 'Hello_as_a_client' } })));
  const socket = net.connect({ host: '127.0.0.1', port, localAddress: address });
  let reset = false;
  socket.on('error', () => (reset = true));
  socket.pause();
  await once(socket, 'connect').catch(() => {});
  let bytes = 0;
  while (Date.now() < untilMs && !socket.destroyed) {
    bytes += hellos.length;
    if (!socket.write(hellos)) await Promise.race([once(socket, 'drain'), sleep(untilMs - Date.now())]);
  }
  socket.destroy();
  return { bytes, reset };
}

export interface Held {
  sockets: net.Socket[];
  connected: number;
  /** Closed by the other side while held: the guest refused (the tender resets). */
  resetWhileHeld: number;
  failed: number;
}

/** Open `count` connections to `port`, from `address(i)`, `parallel` at a time, and keep them. */
export async function openIdle(port: number, count: number, address: (i: number) => string, parallel: number): Promise<Held> {
  const held: Held = { sockets: [], connected: 0, resetWhileHeld: 0, failed: 0 };
  let next = 0;
  const one = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const socket = net.connect({ host: '127.0.0.1', port, localAddress: address(i) });
      socket.on('error', () => {});
      try {
        await once(socket, 'connect');
        held.connected++;
        held.sockets.push(socket);
        socket.on('close', () => held.resetWhileHeld++);
      } catch {
        held.failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, one));
  return held;
}

export function closeAll(held: Held): void {
  for (const s of held.sockets) {
    s.removeAllListeners('close');
    s.destroy();
  }
}
