// The actions behind `bob send` and `bob recv` (docs/bob-protocol.md §8): turn the
// parsed flags into a library call, print what bob prints, and return once
// the transfer is done. Failures are thrown as BobErrors for the CLI.
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { escapeUnsafe } from '../pack/format.js';
import { type CliIo, type LogFlags, loggerFor } from './cli-io.js';
import { DEFAULT_PBKDF2_COUNT } from './defaults.js';
import { type RelayEndpoint, parseRelay } from './endpoint.js';
import { BobError, ExitCode, usageError } from './errors.js';
import { outputProblem } from './output.js';
import { generatePassword } from './password.js';
import { ProgressBar } from './progress.js';
import { LineAsker, askPassword, askReceive } from './prompt.js';
import { receive } from './receive.js';
import { fileSource } from './send-file.js';
import { send } from './send.js';
import { untilAborted } from './socket.js';

export interface ClientFlags extends LogFlags {
  readonly relay: string;
  readonly securePort: number;
  /** Seconds; 0 or absent = wait like bob. */
  readonly timeout?: number;
  readonly failFast?: boolean;
}

export interface SendFlags extends ClientFlags {
  readonly password?: string;
  /** false with --no-compression. */
  readonly compression: boolean;
  readonly pbkdf2Count?: number;
}

export interface RecvFlags extends ClientFlags {
  readonly yes?: boolean;
  readonly output?: string;
  /** Bytes; larger files are refused before anything is written. */
  readonly maxSize?: number;
}

export async function sendCommand(path: string, flags: SendFlags, io: CliIo): Promise<void> {
  const relay = endpoint(flags);
  const file = await existingFile(resolve(io.cwd, path), path);
  const log = loggerFor(flags, io);
  let password = flags.password;
  if (password === undefined) {
    password = generatePassword();
    if (!flags.quiet) io.stdout.write(`Password: ${password}\n`);
  }
  const progress = progressBar(flags, io, `${file.name}`);
  try {
    const result = await send({
      relay,
      password,
      file,
      level: flags.compression ? undefined : 0,
      pbkdf2Count: flags.pbkdf2Count ?? DEFAULT_PBKDF2_COUNT,
      timeoutMs: timeoutMs(flags),
      failFast: flags.failFast,
      log,
      onPaired: (peer) => log.info(`sending ${file.name} to ${peer}`),
      onProgress: progress && ((sent, total) => progress.update(sent, total)),
    });
    log.info(`${result.name} (${result.size} bytes) sent to ${result.peer}`);
  } finally {
    progress?.finish();
  }
}

export async function recvCommand(givenPassword: string | undefined, flags: RecvFlags, io: CliIo): Promise<void> {
  const relay = endpoint(flags);
  if (flags.output !== undefined) {
    const problem = await outputProblem(flags.output, io.cwd);
    if (problem !== null) throw usageError(problem);
  }
  // Ctrl-C or SIGTERM ends the receive through its signal, which removes the
  // partial file; the BobError given as the reason is what it then throws.
  const interrupt = new AbortController();
  const stopListening = io.onStopSignal?.((signal) => interrupt.abort(new BobError(ExitCode.Interrupted, `Interrupted by ${signal}`)));
  const asker = new LineAsker({ input: io.stdin, output: io.stdout });
  try {
    const password = givenPassword ?? (await untilAborted(askPassword(asker), interrupt.signal));
    if (password === null) throw usageError('no password given');
    const log = loggerFor(flags, io);
    const progress = progressBar(flags, io, 'receiving');
    try {
      await receive({
        relay,
        password,
        output: flags.output,
        directory: io.cwd,
        // The question waits for the file's name and size (the handshake
        // accepts the first sender with our password): -y skips it.
        acceptFile: flags.yes ? undefined : (offer) => askReceive(asker, offer),
        maxFileBytes: flags.maxSize,
        timeoutMs: timeoutMs(flags),
        failFast: flags.failFast,
        log,
        signal: interrupt.signal,
        onFile: (name) => {
          if (flags.quiet) return;
          // bob shows -o as given (its destination is always -o here).
          const saved = flags.output === undefined ? '' : ` (save into ${escapeUnsafe(flags.output)})`;
          io.stdout.write(`>>> Received a file: ${escapeUnsafe(name)}${saved}.\n`);
        },
        onProgress: progress && ((received) => progress.update(received)),
      });
    } finally {
      progress?.finish();
    }
  } finally {
    stopListening?.();
    asker.close();
  }
}

function endpoint(flags: ClientFlags): RelayEndpoint {
  const relay = parseRelay(flags.relay, flags.securePort);
  if (typeof relay === 'string') throw usageError(relay);
  return relay;
}

/** bob refuses a PATH that does not exist with a command-line error (§8); so do we, and directories too. */
async function existingFile(path: string, shown: string) {
  const info = await stat(path).catch(() => null);
  if (info === null) throw usageError(`${shown} does not exist`);
  if (!info.isFile()) throw usageError(`${shown} is not a regular file (only single files can be sent)`);
  return fileSource(path);
}

function timeoutMs(flags: ClientFlags): number | undefined {
  return flags.timeout === undefined || flags.timeout === 0 ? undefined : flags.timeout * 1000;
}

/** A progress bar on stderr, only for a terminal and without -q. */
function progressBar(flags: ClientFlags, io: CliIo, label: string): ProgressBar | undefined {
  return io.stderr.isTTY && !flags.quiet ? new ProgressBar(io.stderr, label) : undefined;
}
