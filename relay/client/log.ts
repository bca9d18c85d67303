// Leveled logs on stderr, as bob has them (docs/bob-protocol.md §8): warning by
// default, each -v one level more (-vvv and beyond = debug), -q nothing.
import { escapeUnsafe } from '../pack/format.js';

export const LOG_LEVELS = ['quiet', 'error', 'warning', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  /** True when debug lines are printed; lets callers skip building costly messages. */
  readonly debugEnabled: boolean;
}

/**
 * Writes `bob: [LEVEL] message` lines through `write` for levels up to
 * `level`. Messages carry peers' text (names, identities), so control and
 * bidi characters are escaped: a line can neither be rewritten nor forged.
 */
export function createLogger(level: LogLevel, write: (line: string) => void, tag = 'bob'): Logger {
  const rank = LOG_LEVELS.indexOf(level);
  const at = (lineLevel: LogLevel, label: string) =>
    LOG_LEVELS.indexOf(lineLevel) <= rank ? (message: string) => write(`${tag}: [${label}] ${escapeUnsafe(message)}\n`) : () => {};
  return {
    error: at('error', 'ERROR'),
    warn: at('warning', 'WARNING'),
    info: at('info', 'INFO'),
    debug: at('debug', 'DEBUG'),
    debugEnabled: rank >= LOG_LEVELS.indexOf('debug'),
  };
}

export const silentLogger: Logger = createLogger('quiet', () => {});

/** The level for `-v` given `count` times (0: warning), or quiet with -q. */
export function levelFromFlags(verbose: number, quiet: boolean): LogLevel {
  if (quiet) return 'quiet';
  const index = Math.min(LOG_LEVELS.indexOf('warning') + verbose, LOG_LEVELS.length - 1);
  return LOG_LEVELS[index];
}

export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}
