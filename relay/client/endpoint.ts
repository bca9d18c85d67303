// The relay's address as `-r HOST[:PORT]` and `--secure-port` give it
// (docs/bob-protocol.md §8), and the deadline a client's `--timeout` sets.
import { isIP } from 'node:net';
import { DEFAULT_HANDSHAKE_PORT, DEFAULT_RELAY_HOST, DEFAULT_SECURE_PORT } from './defaults.js';

export interface RelayEndpoint {
  readonly host: string;
  /** The handshake port (9000). */
  readonly port: number;
  /** The secure room's port (9001), on the same IP as the handshake (§3). */
  readonly securePort: number;
  /** Our address for both connections (default: the system's choice). The
   *  stress tool gives each client its own loopback address, so that a
   *  relay's per-address limits see many users, as they would. */
  readonly localAddress?: string;
}

export const DEFAULT_ENDPOINT: RelayEndpoint = {
  host: DEFAULT_RELAY_HOST,
  port: DEFAULT_HANDSHAKE_PORT,
  securePort: DEFAULT_SECURE_PORT,
};

/**
 * `HOST`, `HOST:PORT`, `[IPv6]:PORT` or a bare IPv6 address. Returns an
 * error message for anything else (the CLI exits 124 with it).
 */
export function parseRelay(text: string, securePort: number = DEFAULT_SECURE_PORT): RelayEndpoint | string {
  let host = text;
  let port = DEFAULT_HANDSHAKE_PORT;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracketed !== null) {
    host = bracketed[1];
    if (bracketed[2] !== undefined) port = parsePort(bracketed[2]);
  } else if (isIP(text) !== 6 && text.includes(':')) {
    const at = text.lastIndexOf(':');
    host = text.slice(0, at);
    port = parsePort(text.slice(at + 1));
  }
  if (host === '' || /[\s/]/.test(host)) return `invalid relay host "${text}"`;
  if (Number.isNaN(port)) return `invalid relay port in "${text}"`;
  return { host, port, securePort };
}

/** A TCP port 1..65535, or NaN. */
export function parsePort(text: string): number {
  if (!/^\d{1,5}$/.test(text)) return Number.NaN;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : Number.NaN;
}

/** Time left before an optional deadline. */
export class Deadline {
  readonly seconds: number | undefined;
  readonly #end: number | undefined;

  constructor(timeoutMs: number | undefined) {
    this.seconds = timeoutMs === undefined ? undefined : Math.round(timeoutMs / 100) / 10;
    this.#end = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
  }

  /** Milliseconds left (never negative), or undefined without a deadline. */
  remaining(): number | undefined {
    return this.#end === undefined ? undefined : Math.max(0, this.#end - Date.now());
  }

  /** `limit`, or the time left if that is shorter. */
  cap(limit: number): number {
    const left = this.remaining();
    return left === undefined ? limit : Math.min(limit, left);
  }
}
