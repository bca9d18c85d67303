// The relay on host sockets (node:net): `bob relay`. Each accepted net.Socket
// is wrapped as a RelaySocket; its events go to the relay.
//
// Sockets are half-open capable (allowHalfOpen): on the peer's FIN node must
// not end our side by itself, since the relay still writes `ff ff ff ff` to a
// room socket that sent EOF (docs/bob-protocol.md §3) and decides when to close.
//
// Buffers: node hands each 'data' event a fresh Buffer that nothing reuses, so
// the relay may pass it to another socket's write(), which keeps it queued.

import net from 'node:net';
import { RealClock } from '../../stack/index.js';
import { Relay } from './relay.js';
import { DEFAULT_BACKLOG, HANDSHAKE_PORT, limitsOf, type RelayServer, type RelayServerOptions, SECURE_PORT } from './server.js';
import type { RelaySocket, SocketEvents } from './socket.js';

/** bob's identity of a remote address: `ip:port`, IPv4-mapped addresses unmapped (§2.1). */
export function hostIdentity(address: string, port: number): string {
  const ip = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  return `${ip}:${port}`;
}

class HostSocket implements RelaySocket {
  constructor(
    private readonly socket: net.Socket,
    readonly identity: string,
  ) {}

  write(bytes: Uint8Array): boolean {
    if (!this.socket.writable) return true; // ended or destroyed: dropped, like any write after close
    return this.socket.write(bytes);
  }

  end(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    if (!this.socket.destroyed) this.socket.resume();
  }
}

/** Wrap an accepted socket and route its events to the relay. */
function attach(socket: net.Socket, accept: (s: RelaySocket) => SocketEvents): void {
  // Errors (ECONNRESET, EPIPE) are followed by 'close', which is what the relay needs.
  socket.on('error', () => {});
  const { remoteAddress, remotePort } = socket;
  if (remoteAddress === undefined || remotePort === undefined) {
    socket.destroy(); // already gone
    return;
  }
  socket.setNoDelay(true);
  const events = accept(new HostSocket(socket, hostIdentity(remoteAddress, remotePort)));
  socket.on('data', (chunk: Buffer) => events.data(chunk));
  socket.on('end', () => events.end());
  socket.on('drain', () => events.drain());
  socket.once('close', () => events.close());
}

function listen(server: net.Server, port: number, host: string, backlog: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog }, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) resolve();
    else server.close(() => resolve());
  });
}

export async function startHostRelay(opts: RelayServerOptions = {}): Promise<RelayServer> {
  const relay = new Relay({ clock: new RealClock(), limits: limitsOf(opts), log: opts.log });
  const open = new Set<net.Socket>();
  const serve = (accept: (s: RelaySocket) => SocketEvents): net.Server =>
    net.createServer({ allowHalfOpen: true }, (socket) => {
      open.add(socket);
      socket.once('close', () => open.delete(socket));
      attach(socket, accept);
    });
  const handshake = serve(relay.acceptHandshake);
  const secure = serve(relay.acceptSecure);
  const address = opts.address ?? '0.0.0.0';
  const backlog = opts.backlog ?? DEFAULT_BACKLOG;
  let ports: { handshake: number; secure: number };
  try {
    ports = {
      handshake: await listen(handshake, opts.port ?? HANDSHAKE_PORT, address, backlog),
      secure: await listen(secure, opts.securePort ?? SECURE_PORT, address, backlog),
    };
  } catch (err) {
    await Promise.all([closeServer(handshake), closeServer(secure)]);
    throw err;
  }
  opts.log?.('info', `relay listening on ${address}:${ports.handshake} (handshake) and :${ports.secure} (secure room)`);

  let closing: Promise<void> | null = null;
  return {
    ports,
    stats: () => relay.stats(),
    close: () => {
      closing ??= (async () => {
        const servers = Promise.all([closeServer(handshake), closeServer(secure)]);
        relay.close();
        // Every socket still open was just destroyed; each reports 'close' once.
        const sockets = [...open].map((s) => new Promise<void>((resolve) => s.once('close', () => resolve())));
        await Promise.all([servers, ...sockets]);
      })();
      return closing;
    },
  };
}
