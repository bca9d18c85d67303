// What the `bob` commands read and write, injectable so tests can run the
// CLI in-process: streams, the working directory, and how a failure is
// printed (`bob: <message>.` on stderr, docs/bob-protocol.md §8).
import type { Readable } from 'node:stream';
import { escapeUnsafe } from '../pack/format.js';
import { type LogLevel, type Logger, createLogger, isLogLevel, levelFromFlags } from './log.js';

export interface Output {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export interface CliIo {
  readonly stdout: Output;
  readonly stderr: Output;
  readonly stdin: Readable;
  readonly cwd: string;
  /**
   * Calls `handler` on SIGINT or SIGTERM until the returned function is
   * called; absent in-process (tests), where signals belong to the runner.
   */
  readonly onStopSignal?: (handler: (signal: NodeJS.Signals) => void) => () => void;
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, cwd: process.cwd(), onStopSignal: onProcessStopSignal };
}

/** Once only: a second Ctrl-C finds no handler and kills the process, should the cleanup hang. */
function onProcessStopSignal(handler: (signal: NodeJS.Signals) => void): () => void {
  const off = () => {
    process.off('SIGINT', once);
    process.off('SIGTERM', once);
  };
  const once = (signal: NodeJS.Signals) => {
    off();
    handler(signal);
  };
  process.on('SIGINT', once);
  process.on('SIGTERM', once);
  return off;
}

/** Flags every client command shares (§8 "Common"). */
export interface LogFlags {
  readonly quiet?: boolean;
  readonly verbose?: number;
  readonly verbosity?: string;
}

/** --verbosity wins over -v/-q; BOB_LOGS comes in through --verbosity's env binding. */
export function logLevel(flags: LogFlags): LogLevel {
  if (flags.verbosity !== undefined && isLogLevel(flags.verbosity)) return flags.verbosity;
  return levelFromFlags(flags.verbose ?? 0, flags.quiet ?? false);
}

export function loggerFor(flags: LogFlags, io: CliIo): Logger {
  return createLogger(logLevel(flags), (line) => io.stderr.write(line));
}

/** bob's failure line: `bob: <message>.`, control characters escaped as in the logs. */
export function printFailure(io: CliIo, message: string): void {
  io.stderr.write(`bob: ${escapeUnsafe(message).replace(/\.$/, '')}.\n`);
}
