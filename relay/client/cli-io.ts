// What the `bob` commands read and write, injectable so tests can run the
// CLI in-process: streams, the working directory, and how a failure is
// printed (`bob: <message>.` on stderr, docs/bob-protocol.md §8).
import type { Readable } from 'node:stream';
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
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, cwd: process.cwd() };
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

/** bob's failure line: `bob: <message>.` */
export function printFailure(io: CliIo, message: string): void {
  io.stderr.write(`bob: ${message.replace(/\.$/, '')}.\n`);
}
