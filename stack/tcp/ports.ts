// Demultiplexing table (local port -> listener and connections) and the
// ephemeral port choice (RFC 6056).
//
// The stack has one address, so a connection is found by local port, then by
// the remote endpoint. The inner key, remoteAddr * 65536 + remotePort, is an
// exact 48-bit number: two Map lookups, no string built, no allocation per
// segment.

import { keyedHash, randomSecret } from './isn.js';
import type { Listener } from './listener.js';
import type { Tcb } from './tcb.js';
import type { TimeWaitTable } from './time-wait.js';

export class PortEntry {
  listener: Listener | null = null;
  readonly conns = new Map<number, Tcb>();
}

/** RFC 6056 algorithm 4's table of counters (a power of two). */
const PORT_COUNTERS = 256;

export class PortTable {
  private readonly ports = new Map<number, PortEntry>();
  private readonly portSecret = randomSecret();
  private readonly tableSecret = randomSecret();
  private readonly counters = randomCounters();

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
   * An ephemeral port for a connection to `remoteKey`, by RFC 6056 algorithm 4
   * (double-hash): a secret per-destination offset plus a counter from a small
   * table that moves on with every port tried. Successive connections to one
   * destination walk the whole range before a port comes back, so a 4-tuple
   * is not reused while the peer may still hold it in TIME_WAIT with a
   * sequence number above our new ISN (random choice, algorithm 1, reused
   * ports within milliseconds and such SYNs were answered with ACKs until the
   * connect timed out). 0 after one pass over the range: the search is
   * bounded. Ports with a listener are skipped.
   */
  ephemeral(remoteKey: number, low: number, high: number, timeWait: TimeWaitTable): number {
    const count = high - low + 1;
    const remotePort = remoteKey % 65536;
    const remoteAddr = (remoteKey - remotePort) / 65536;
    const offset = keyedHash(this.portSecret, remoteAddr, remotePort);
    const slot = keyedHash(this.tableSecret, remoteAddr, remotePort) & (PORT_COUNTERS - 1);
    for (let i = 0; i < count; i++) {
      const port = low + ((offset + this.counters[slot]!) % count);
      this.counters[slot] = (this.counters[slot]! + 1) >>> 0;
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

/** Counters start at random values, so the first ports reveal nothing either. */
function randomCounters(): Uint32Array {
  const counters = new Uint32Array(PORT_COUNTERS);
  globalThis.crypto.getRandomValues(counters);
  return counters;
}
