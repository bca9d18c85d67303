// Exit codes and the one error type the clients throw. Every runtime failure
// of `bob send`/`bob recv` ends as a BobError: the CLI prints
// `bob: <message>.` on stderr and exits with its code (docs/bob-protocol.md §8
// uses 1 for every runtime error; we keep 1 as the generic code and give the
// failures a script wants to tell apart codes of their own).

export const ExitCode = {
  /** The transfer completed (or the relay stopped cleanly). */
  Ok: 0,
  /** Any other runtime failure: protocol error, corrupted stream, I/O error. */
  Failure: 1,
  /** A Spoke_failure 01/02 (§1): the peer's password differs from ours. */
  WrongPassword: 3,
  /** The relay could not be reached (refused, unknown host, connect timeout). */
  RelayUnreachable: 4,
  /** The receiver refused the sender or its file (the prompt, --max-size), or the sender was never accepted. */
  Refused: 5,
  /** `--timeout` expired, or the relay timed us out (0f, 9001 status 01). */
  Timeout: 6,
  /** The destination appeared while the file was being received. */
  OutputExists: 7,
  /** SIGINT (Ctrl-C) or SIGTERM stopped a receive; the partial file was removed (128 + SIGINT, as shells report). */
  Interrupted: 130,
  /** Command-line error (bob uses 124, as Cmdliner does). */
  Usage: 124,
  /** A bug: an exception nobody expected (bob uses 125). */
  Internal: 125,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** A runtime failure with its exit code; `message` has no trailing period. */
export class BobError extends Error {
  override readonly name = 'BobError';
  readonly code: ExitCodeValue;

  constructor(code: ExitCodeValue, message: string) {
    super(message);
    this.code = code;
  }
}

/** A command-line error: exit 124 before anything touches the network. */
export function usageError(message: string): BobError {
  return new BobError(ExitCode.Usage, message);
}

/** Any thrown value as a BobError: unexpected ones become exit 125. */
export function asBobError(error: unknown): BobError {
  if (error instanceof BobError) return error;
  const message = error instanceof Error ? error.message : String(error);
  // A socket failing under us (the relay reset it, the network went away) is a
  // runtime error like any other end of the relay's connection, not a bug.
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code !== undefined && SOCKET_FAILURES.has(code)) return new BobError(ExitCode.Failure, `Connection lost: ${message}`);
  return new BobError(ExitCode.Internal, `Internal error: ${message}`);
}

/** Errors of an established socket that end a transfer without any bug of ours. */
const SOCKET_FAILURES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Error codes of a failed connect() that mean "the relay is not there". */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EADDRNOTAVAIL']);

/** Maps a connect() failure to exit 4 (or 1 for anything unusual). */
export function connectError(error: unknown, where: string): BobError {
  if (error instanceof BobError) return error;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const detail = code ?? (error instanceof Error ? error.message : String(error));
  const exit = code !== undefined && UNREACHABLE_CODES.has(code) ? ExitCode.RelayUnreachable : ExitCode.Failure;
  return new BobError(exit, `Connection failed: ${where}: ${detail}`);
}
