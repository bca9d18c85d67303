// A TCP host forward: a node:net server on a loopback address; each accepted
// host socket becomes a gateway-stack connection to the guest's port, joined
// by a Splice. That connection has the host client's own address as its
// source (the gateway stack is transparent): the guest sees who connected.
// Its port is the gateway's own ephemeral port (RFC 6056 algorithm 4), not the
// client's: the host reuses a client port as soon as its own side allows,
// which can be while the guest still holds the old connection in TIME_WAIT
// (the guest closed first) with a sequence space the new SYN falls below;
// the gateway's ports advance per destination and do not come back so soon.
//
// The host socket is accepted paused (pauseOnConnect), so nothing is read from
// it until the guest has accepted; if the guest refuses or does not answer in
// time, the host socket is reset, as a host client connecting to a closed port
// would expect.

import { createServer, isIPv4, type Server, type Socket } from 'node:net';
import type { Stack, Connection } from '../../stack/index.js';
import type { HostForward } from './hostfwd.js';
import { destroyWithReset, newRelayCounters, SpliceSet, type RelayCounters } from './splice.js';

export interface TcpForwardOptions {
  stack: Stack;
  guestAddress: string;
  /** Give up on the guest's handshake after this many ms. */
  connectTimeoutMs: number;
}

export class TcpForward {
  readonly counters: RelayCounters = newRelayCounters();
  private readonly server: Server;
  private readonly splices = new SpliceSet(this.counters);
  /** Host sockets waiting for the guest's handshake. */
  private readonly opening = new Set<Socket>();
  private closing = false;
  private abortListen: (() => void) | null = null;

  constructor(
    readonly rule: HostForward,
    private readonly opts: TcpForwardOptions,
  ) {
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, this.onSocket);
  }

  /** Resolves once the server listens; rejects with a readable error (EADDRINUSE, EACCES). */
  listen(): Promise<void> {
    const { hostAddress, hostPort } = this.rule;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => reject(listenError(err, 'tcp', hostAddress, hostPort));
      this.server.once('error', onError);
      // close() during the listen: Node then drops the listen without a word.
      this.abortListen = () => reject(new Error(`${hostAddress}:${hostPort}: the user network closed before it was ready`));
      this.server.listen({ host: hostAddress, port: hostPort, exclusive: true }, () => {
        this.server.removeListener('error', onError);
        this.abortListen = null;
        resolve();
      });
    });
  }

  /** Stop accepting and reset every relayed connection. */
  async close(): Promise<void> {
    this.closing = true;
    this.abortListen?.();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.opening) destroyWithReset(socket);
    this.splices.resetAll();
    if (this.server.listening) await closed;
  }

  private readonly onSocket = (socket: Socket): void => {
    if (this.closing) {
      destroyWithReset(socket);
      return;
    }
    const c = this.counters;
    c.total++;
    c.active++;
    this.opening.add(socket);
    // Until the guest answers: an error here only needs the socket gone.
    const onEarlyError = (): void => {};
    socket.on('error', onEarlyError);
    this.opts.stack.tcp
      .connect(this.opts.guestAddress, this.rule.guestPort, {
        timeout: this.opts.connectTimeoutMs,
        ...clientAddress(socket),
      })
      .then(
        (conn) => {
          socket.removeListener('error', onEarlyError);
          this.opened(socket, conn);
        },
        () => {
          socket.removeListener('error', onEarlyError);
          this.opening.delete(socket);
          c.errors++;
          c.active--;
          destroyWithReset(socket);
        },
      );
  };

  private opened(socket: Socket, conn: Connection): void {
    this.opening.delete(socket);
    if (socket.destroyed || this.closing) {
      // The host side went away (or we are closing) during the handshake.
      this.counters.active--;
      if (!this.closing) this.counters.errors++;
      conn.abort();
      destroyWithReset(socket);
      return;
    }
    this.splices.open(socket, conn);
  }

  /** Bytes held in JS by the open splices (a walk over them: for stats only). */
  buffered(): number {
    return this.splices.buffered();
  }
}

/** The host client's IPv4 address, for the guest-side connection's source
 *  (an IPv4-mapped address unmapped); none if it has no IPv4 one. */
function clientAddress(socket: Socket): { localAddress?: string } {
  const address = socket.remoteAddress?.replace(/^::ffff:/, '');
  if (!address || !isIPv4(address)) return {};
  return { localAddress: address };
}

/** "EADDRINUSE: 127.0.0.1:9000 is in use" rather than Node's bare message. */
export function listenError(err: NodeJS.ErrnoException, proto: string, address: string, port: number): Error {
  const where = `${address}:${port}`;
  const why =
    err.code === 'EADDRINUSE' ? `${where} is in use`
    : err.code === 'EACCES' ? `${where} needs privileges to bind`
    : err.code === 'EADDRNOTAVAIL' ? `${where} is not an address of this machine`
    : `cannot listen on ${where}: ${err.message}`;
  const out = new Error(`${err.code ?? 'ERROR'}: ${why} (${proto} host forward)`) as NodeJS.ErrnoException;
  out.code = err.code;
  return out;
}
