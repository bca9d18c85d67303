// Listeners by port, and the ephemeral port choice (RFC 6056).
//
// Connections are found by their whole 4-tuple in the TCB table's hash
// (tcb-table.ts); this table only knows which ports have a listener. Its size
// is the application's doing (one entry per listen()), never a peer's.

import { keyedHash, randomSecret } from './isn.js';
import type { Listener } from './listener.js';
import type { TcbTable } from './tcb-table.js';
import type { TimeWaitTable } from './time-wait.js';
import { remoteKeyOf } from './tcb.js';

/** RFC 6056 algorithm 4's table of counters (a power of two). */
const PORT_COUNTERS = 256;

export class PortTable {
  private readonly listeners = new Map<number, Listener>();
  private readonly portSecret = randomSecret();
  private readonly tableSecret = randomSecret();
  private readonly counters = randomCounters();

  constructor(
    private readonly table: TcbTable,
    private readonly timeWait: TimeWaitTable,
  ) {}

  listener(port: number): Listener | undefined {
    return this.listeners.get(port);
  }

  setListener(port: number, listener: Listener): void {
    this.listeners.set(port, listener);
  }

  clearListener(port: number, listener: Listener): void {
    if (this.listeners.get(port) === listener) this.listeners.delete(port);
  }

  /** Is the 4-tuple free for a new connection (no connection, no TIME_WAIT record)? */
  tupleFree(localAddr: number, localPort: number, remoteAddr: number, remotePort: number): boolean {
    return (
      this.table.find(localAddr, localPort, remoteAddr, remotePort) < 0 &&
      this.timeWait.lookup(localPort, remoteKeyOf(remoteAddr, remotePort), localAddr) < 0
    );
  }

  /**
   * An ephemeral port for a connection to (remoteAddr, remotePort), by RFC
   * 6056 algorithm 4 (double-hash): a secret per-destination offset plus a
   * counter from a small table that moves on with every port tried.
   * Successive connections to one destination walk the whole range before a
   * port comes back, so a 4-tuple is not reused while the peer may still hold
   * it in TIME_WAIT with a sequence number above our new ISN (random choice,
   * algorithm 1, reused ports within milliseconds and such SYNs were answered
   * with ACKs until the connect timed out). 0 after one pass over the range:
   * the search is bounded. Ports with a listener are skipped.
   */
  ephemeral(localAddr: number, remoteAddr: number, remotePort: number, low: number, high: number): number {
    const count = high - low + 1;
    const offset = keyedHash(this.portSecret, remoteAddr, remotePort);
    const slot = keyedHash(this.tableSecret, remoteAddr, remotePort) & (PORT_COUNTERS - 1);
    for (let i = 0; i < count; i++) {
      const port = low + ((offset + this.counters[slot]!) % count);
      this.counters[slot] = (this.counters[slot]! + 1) >>> 0;
      if (this.listeners.has(port)) continue;
      if (this.tupleFree(localAddr, port, remoteAddr, remotePort)) return port;
    }
    return 0;
  }
}

/** Counters start at random values, so the first ports reveal nothing either. */
function randomCounters(): Uint32Array {
  const counters = new Uint32Array(PORT_COUNTERS);
  globalThis.crypto.getRandomValues(counters);
  return counters;
}
