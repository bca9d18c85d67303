// `uk run relay`: the bob relay as a guest app on the guest's own stack, TCP
// 9000 and 9001. Arguments (after APP): [-t|--timeout SECONDS]
// [--secure-port N] [--port N] [-b|--backlog N] [--limit NAME=VALUE]...
// [-v|--verbose].

import type { Stack } from '../../stack/index.js';
import type { RelayLogLevel } from './context.js';
import { parseLimit, type RelayLimits } from './limits.js';
import type { RelayServerOptions } from './server.js';
import { startStackRelay } from './stack.js';

export interface RelayGuestContext {
  stack: Stack;
  args: readonly string[];
  log(...values: unknown[]): void;
  /** Aborted when the guest is asked to stop: the relay closes. */
  signal?: AbortSignal;
  /** The tender's stats lines carry the relay's stats (GuestContext.publishStats). */
  publishStats?(provide: () => unknown): void;
}

export interface RelayGuestArgs {
  timeoutSec?: number;
  port?: number;
  securePort?: number;
  backlog: number;
  verbose: boolean;
  /** From --limit NAME=VALUE (limits.ts), checked here. */
  limits?: Partial<RelayLimits>;
}

/** Many clients connect at once in a stress run; SYNs beyond the backlog wait a retransmission. */
const GUEST_BACKLOG = 1024;

export const RELAY_GUEST_USAGE =
  'relay [-t|--timeout SECONDS] [--secure-port N] [--port N] [-b|--backlog N] [--limit NAME=VALUE]... [-v|--verbose]';

export function parseRelayArgs(args: readonly string[]): RelayGuestArgs {
  const out: RelayGuestArgs = { backlog: GUEST_BACKLOG, verbose: false };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = splitFlag(args[i]!);
    const value = (): string => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new Error(`${flag} needs a value; usage: ${RELAY_GUEST_USAGE}`);
      return v;
    };
    switch (flag) {
      case '-t':
      case '--timeout':
        out.timeoutSec = number(flag, value(), false);
        break;
      case '--secure-port':
        out.securePort = number(flag, value(), true);
        break;
      case '--port':
        out.port = number(flag, value(), true);
        break;
      case '-b':
      case '--backlog':
        out.backlog = number(flag, value(), true);
        break;
      case '--limit':
        out.limits = limitArg(value(), out.limits);
        break;
      case '-v':
      case '--verbose':
        out.verbose = true;
        break;
      default:
        throw new Error(`unknown argument ${args[i]}; usage: ${RELAY_GUEST_USAGE}`);
    }
  }
  return out;
}

export default async function main(ctx: RelayGuestContext): Promise<void> {
  const { verbose, ...listen } = parseRelayArgs(ctx.args);
  const log = (level: RelayLogLevel, message: string): void => {
    if (level !== 'debug' || verbose) ctx.log(`${level}: ${message}`);
  };
  const options: RelayServerOptions = { ...listen, log };
  const server = await startStackRelay(ctx.stack, options);
  ctx.publishStats?.(() => server.stats());
  ctx.signal?.addEventListener('abort', () => void server.close(), { once: true });
}

function splitFlag(arg: string): [string, string | undefined] {
  const eq = arg.indexOf('=');
  return arg.startsWith('--') && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
}

function limitArg(text: string, previous: Partial<RelayLimits> | undefined): Partial<RelayLimits> {
  try {
    return parseLimit(text, previous);
  } catch (error) {
    throw new Error(`--limit: ${(error as Error).message}`);
  }
}

function number(flag: string, text: string, integer: boolean): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`${flag}: ${text} is not a ${integer ? 'positive integer' : 'positive number'}`);
  }
  return n;
}
