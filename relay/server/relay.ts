// The bob relay (docs/bob-protocol.md §2-3), independent of any socket API: the
// handshake service on TCP 9000 and the secure room on TCP 9001, sharing
// limits, one timer structure and counters. Adapters (host.ts, stack.ts) hand
// it accepted sockets and report their events.

import type { Clock } from '../../stack/index.js';
import type { RelayContext, RelayLog } from './context.js';
import { HandshakeService } from './handshake.js';
import { type RelayLimits, resolveLimits } from './limits.js';
import { SecureService } from './secure.js';
import type { RelaySocket, SocketEvents } from './socket.js';
import { RelayCounters, type RelayStats, snapshotCounters } from './stats.js';
import { RelayTimers } from './timers.js';

export interface RelayOptions {
  /** Time for every relay timer: RealClock on host sockets, the stack's clock in a guest. */
  clock: Clock;
  limits?: Partial<RelayLimits>;
  log?: RelayLog;
}

export class Relay {
  readonly limits: RelayLimits;
  private readonly ctx: RelayContext;
  private readonly handshake: HandshakeService;
  private readonly secure: SecureService;

  constructor(opts: RelayOptions) {
    this.limits = resolveLimits(opts.limits);
    this.ctx = {
      limits: this.limits,
      timers: new RelayTimers(opts.clock),
      counters: new RelayCounters(),
      log: opts.log ?? (() => {}),
    };
    this.secure = new SecureService(this.ctx);
    this.handshake = new HandshakeService(this.ctx, this.secure);
  }

  /** A socket accepted on the handshake port (9000). */
  readonly acceptHandshake = (socket: RelaySocket): SocketEvents => this.handshake.accept(socket);

  /** A socket accepted on the secure port (9001). */
  readonly acceptSecure = (socket: RelaySocket): SocketEvents => this.secure.accept(socket);

  stats(): RelayStats {
    const { bufferedBytes, ...peers } = this.handshake.levels();
    return {
      sockets: { handshake: this.handshake.sockets, secure: this.secure.sockets },
      peers,
      rooms: this.secure.roomCounts(),
      timers: this.ctx.timers.armed,
      bufferedBytes: bufferedBytes + this.secure.bufferedBytes(),
      sources: { peers: this.handshake.sources, rooms: this.secure.sources },
      counters: snapshotCounters(this.ctx.counters),
    };
  }

  /**
   * Memory pressure, from the guest's heap guard. While on, new handshake
   * sockets are reset at accept (counted pressureRefused). When it turns on,
   * the newest handshake connections that have done the least are shed, up
   * to limits.pressureShedFraction of those open: sockets with no Hello
   * first, then registered peers with no candidate, then other registered
   * peers (counters pressureShed*). Rooms, where paired work is, are kept.
   * Repeated calls with the same value do nothing.
   */
  pressure(on: boolean): void {
    this.handshake.pressure(on);
  }

  /** Reset every socket and forget every room; accepts after this are refused.
   *  The adapters then report each socket's close. */
  close(): void {
    this.handshake.shutdown();
    this.secure.shutdown();
  }
}
