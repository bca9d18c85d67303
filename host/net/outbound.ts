// Guest-initiated TCP connections to the gateway address, carried to the same
// port on the host's loopback (as QEMU's user networking maps 10.0.2.2 to the
// host): the gateway stack accepts SYNs on the ports it was granted (or on
// any port, restrict=off: user.ts makes the listeners), and each new
// connection is joined to a node:net connection to 127.0.0.1:PORT.
//
// The gateway completes the guest's handshake before the host connect is
// tried, so a refused host connect shows up in the guest as a reset right
// after its connect() resolved. Until the host socket is connected, nothing is
// read from the guest: its bytes wait in the gateway's receive buffer.

import { connect, type Socket } from 'node:net';
import type { Connection, Listener } from '../../stack/index.js';
import { destroyWithReset, newRelayCounters, SpliceSet, type RelayCounters } from './splice.js';

export interface OutboundCounters extends RelayCounters {
  /** Host connects that failed (the guest connection was reset). */
  refused: number;
}

export class Outbound {
  readonly counters: OutboundCounters = { ...newRelayCounters(), refused: 0 };
  private readonly splices = new SpliceSet(this.counters);
  /** Guest connections whose host socket is still connecting. */
  private readonly opening = new Map<Connection, Socket>();
  private closing = false;

  constructor(
    private readonly listeners: Listener[],
    private readonly hostAddress: string,
  ) {
    for (const listener of listeners) listener.onConnection = this.onConnection;
  }

  close(): void {
    this.closing = true;
    for (const listener of this.listeners) listener.close();
    // Each abort runs the connection's onClose below, which drops its socket.
    for (const conn of [...this.opening.keys()]) conn.abort();
    this.splices.resetAll();
  }

  private readonly onConnection = (conn: Connection): void => {
    const c = this.counters;
    c.total++;
    c.active++;
    const socket = connect({ host: this.hostAddress, port: conn.localPort, allowHalfOpen: true });
    this.opening.set(conn, socket);
    const settle = (): boolean => {
      socket.removeListener('connect', onConnect);
      socket.removeListener('error', onError);
      conn.onClose = null;
      return this.opening.delete(conn);
    };
    const onConnect = (): void => {
      if (!settle()) return;
      this.splices.open(socket, conn);
    };
    const onError = (): void => {
      if (!settle()) return;
      c.refused++;
      c.active--;
      conn.abort(); // RST: the guest learns the port is closed
    };
    socket.once('connect', onConnect);
    socket.once('error', onError);
    // The guest gave up (reset) before the host answered, or we are closing.
    conn.onClose = () => {
      if (!settle()) return;
      if (!this.closing) c.errors++;
      c.active--;
      socket.on('error', () => {});
      destroyWithReset(socket);
    };
  };

  /** Bytes held in JS by the open splices (a walk over them: for stats only). */
  buffered(): number {
    return this.splices.buffered();
  }
}
