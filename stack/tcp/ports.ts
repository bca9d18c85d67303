// Demultiplexing table (local port -> listener and connections) and the
// ephemeral port choice.
//
// The stack has one address, so a connection is found by local port, then by
// the remote endpoint. The inner key, remoteAddr * 65536 + remotePort, is an
// exact 48-bit number: two Map lookups, no string built, no allocation per
// segment.

import type { Listener } from './listener.js';
import type { Tcb } from './tcb.js';
import type { TimeWaitTable } from './time-wait.js';

export class PortEntry {
  listener: Listener | null = null;
  readonly conns = new Map<number, Tcb>();
}

export class PortTable {
  private readonly ports = new Map<number, PortEntry>();

  get(port: number): PortEntry | undefined {
    return this.ports.get(port);
  }

  find(localPort: number, remoteKey: number): Tcb | undefined {
    return this.ports.get(localPort)?.conns.get(remoteKey);
  }

  addConn(tcb: Tcb): void {
    this.entry(tcb.localPort).conns.set(tcb.remoteKey, tcb);
  }

  removeConn(tcb: Tcb): void {
    const e = this.ports.get(tcb.localPort);
    if (!e || e.conns.get(tcb.remoteKey) !== tcb) return;
    e.conns.delete(tcb.remoteKey);
    this.prune(tcb.localPort, e);
  }

  setListener(port: number, listener: Listener): void {
    this.entry(port).listener = listener;
  }

  clearListener(port: number, listener: Listener): void {
    const e = this.ports.get(port);
    if (!e || e.listener !== listener) return;
    e.listener = null;
    this.prune(port, e);
  }

  /** Is (localPort, remote) free for a new connection? */
  tupleFree(localPort: number, remoteKey: number, timeWait: TimeWaitTable): boolean {
    return !this.ports.get(localPort)?.conns.has(remoteKey) && !timeWait.has(localPort, remoteKey);
  }

  /**
   * An ephemeral port for a connection to `remoteKey` (RFC 6056 algorithm 1:
   * random start, then sequential), or 0 after one pass over the range:
   * the search is bounded and never loops forever. Ports with a listener are skipped.
   */
  ephemeral(remoteKey: number, low: number, high: number, random: number, timeWait: TimeWaitTable): number {
    const count = high - low + 1;
    const start = random % count;
    for (let i = 0; i < count; i++) {
      const port = low + ((start + i) % count);
      const e = this.ports.get(port);
      if (e?.listener) continue;
      if (this.tupleFree(port, remoteKey, timeWait)) return port;
    }
    return 0;
  }

  private entry(port: number): PortEntry {
    let e = this.ports.get(port);
    if (!e) {
      e = new PortEntry();
      this.ports.set(port, e);
    }
    return e;
  }

  private prune(port: number, e: PortEntry): void {
    if (e.listener === null && e.conns.size === 0) this.ports.delete(port);
  }
}
