// What starting a relay server takes and gives, the same on host sockets
// (host.ts) and on our stack (stack.ts).

import type { RelayLog } from './context.js';
import type { RelayLimits } from './limits.js';
import type { RelayStats } from './stats.js';

export const HANDSHAKE_PORT = 9000;
export const SECURE_PORT = 9001;
/** bob relay's -b default. */
export const DEFAULT_BACKLOG = 40;

export interface RelayServerOptions {
  /** Address to bind (host sockets only; default '0.0.0.0', like bob). */
  address?: string;
  /** Handshake port (default 9000; 0 = ephemeral on host sockets). */
  port?: number;
  /** Secure-room port (default 9001; 0 = ephemeral on host sockets). */
  securePort?: number;
  /** bob's -t, seconds; overrides limits.handshakeTimeoutSec. */
  timeoutSec?: number;
  /** Listen backlog (default 40, bob's -b). */
  backlog?: number;
  limits?: Partial<RelayLimits>;
  log?: RelayLog;
  /** On our stack only: the share of the arena all sockets' send queues may
   *  hold together (default 0.25, relay/server/stack.ts). */
  queueArenaShare?: number;
}

export interface RelayServer {
  /** The ports actually bound. */
  readonly ports: { handshake: number; secure: number };
  stats(): RelayStats;
  /** Stop listening, reset every socket; resolves once all are closed. */
  close(): Promise<void>;
}

/** The relay limits an options object asks for. */
export function limitsOf(opts: RelayServerOptions): Partial<RelayLimits> {
  const limits = { ...opts.limits };
  if (opts.timeoutSec !== undefined) limits.handshakeTimeoutSec = opts.timeoutSec;
  return limits;
}
