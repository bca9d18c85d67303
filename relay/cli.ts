#!/usr/bin/env node
// The `bob` command (docs/architecture.md §7, docs/bob-protocol.md §8): send, recv, relay and
// stress, with the flags real bob has where they exist, so that the seed's
// stress script runs unchanged with this `bob` in place of bob.com.
// `main` takes its streams as arguments and returns the exit code, so tests
// can run it in-process; only the last lines touch the real process.
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { type CliIo, type LogFlags, loggerFor, printFailure, processIo } from './client/cli-io.js';
import { type RecvFlags, type SendFlags, recvCommand, sendCommand } from './client/commands.js';
import { DEFAULT_HANDSHAKE_PORT, DEFAULT_PBKDF2_COUNT, DEFAULT_RELAY_HOST, DEFAULT_SECURE_PORT } from './client/defaults.js';
import { parsePort } from './client/endpoint.js';
import { BobError, ExitCode, asBobError } from './client/errors.js';
import { LOG_LEVELS } from './client/log.js';
import { MAX_COUNT } from './spoke/public.js';
import type { StressFlags } from './stress/command.js';
import {
  STRESS_DEFAULT_CONCURRENCY,
  STRESS_DEFAULT_PAIRS,
  STRESS_DEFAULT_RUNS,
  STRESS_DEFAULT_SIZE,
  STRESS_PBKDF2_COUNT,
} from './stress/stress.js';

const COMMANDS = ['send', 'recv', 'relay', 'stress', 'help'];

const EXIT_CODES = `
Exit codes:
  0    success
  1    runtime error (protocol, corrupted file, I/O, relay closed the connection)
  3    wrong password (a peer reported Spoke_failure 01/02, or only such peers came before --timeout)
  4    relay unreachable (connection refused, unknown host, connect timeout)
  5    refused (the receiver refused the file or sender, or --max-size; no receiver accepted before --timeout)
  6    timeout (--timeout passed with no peer, the relay timed us out, or a transfer stalled)
  7    the destination appeared while the file was being received (never overwritten)
  124  command-line error (bad flag or value, missing PATH, -o that already exists)
  125  internal error
  130  interrupted: SIGINT (Ctrl-C) or SIGTERM stopped a receive (its partial file removed)
Failures are printed on stderr as "bob: <message>."`;

/** Runs `bob` with `argv` (without node and the script) and returns the exit code; actions throw on failure. */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  try {
    await buildProgram(io).parseAsync(withImplicitCommand(argv, io), { from: 'user' });
    return ExitCode.Ok;
  } catch (error) {
    if (error instanceof CommanderError) return commanderExit(error);
    const failure = asBobError(error);
    printFailure(io, failure.message);
    return failure.code;
  }
}

/**
 * bob's shortcuts (§8): `bob PATH-OR-PASSWORD` sends an existing path and
 * receives with anything else as the password; `bob` alone receives, asking
 * for the password.
 */
function withImplicitCommand(argv: readonly string[], io: CliIo): string[] {
  const first = argv[0];
  if (first === undefined) return ['recv'];
  if (first.startsWith('-') || COMMANDS.includes(first)) return [...argv];
  return [isExistingPath(resolve(io.cwd, first)) ? 'send' : 'recv', ...argv];
}

function isExistingPath(path: string): boolean {
  try {
    realpathSync(path);
    return true;
  } catch {
    return false;
  }
}

function commanderExit(error: CommanderError): number {
  const ok = ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(error.code);
  return ok ? ExitCode.Ok : ExitCode.Usage;
}

function buildProgram(io: CliIo): Command {
  const program = new Command('bob').description('Send a file to someone who knows the same password, through a relay (bob-compatible).');
  for (const command of [sendProgram(io), recvProgram(io), relayProgram(io), stressProgram(io)]) program.addCommand(routeOutput(command, io));
  return routeOutput(program, io);
}

/** Commander errors become exceptions (exit 124 in main), and all its text goes to our streams. */
function routeOutput(command: Command, io: CliIo): Command {
  return command
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', EXIT_CODES);
}

function clientCommand(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .addOption(new Option('-r, --relay <HOST[:PORT]>', `the relay (bob's default is osau.re; ours stays local)`).default(`${DEFAULT_RELAY_HOST}:${DEFAULT_HANDSHAKE_PORT}`))
    .addOption(new Option('--secure-port <N>', "the relay's secure-room port, on the same IP").argParser(portArg).env('BOB_SECURE_PORT').default(DEFAULT_SECURE_PORT))
    .addOption(new Option('--timeout <SECONDS>', 'give up waiting for a peer after SECONDS (0: wait like bob)').argParser(secondsArg))
    .option('--fail-fast', 'give up at the first peer with another password (exit 3) instead of waiting for others')
    .addOption(logFlags())
    .addOption(new Option('-q, --quiet', 'print nothing but failures'))
    .addOption(verbosityOption());
}

function sendProgram(io: CliIo): Command {
  return clientCommand('send', 'Send a file; prints the password to give the receiver unless -p names one.')
    .argument('<PATH>', 'the file to send')
    .option('-p, --password <PASSWORD>', 'the password (default: two random pronounceable words)')
    .option('--no-compression', 'zlib level 0 instead of 4')
    .addOption(
      new Option('--pbkdf2-count <N>', `PBKDF2 iterations to advertise (bob's 16; receivers accept up to ${MAX_COUNT})`)
        .argParser(countArg)
        .env('BOB_PBKDF2_COUNT')
        .default(DEFAULT_PBKDF2_COUNT),
    )
    .action(async (path: string, flags: SendFlags) => sendCommand(path, flags, io));
}

function recvProgram(io: CliIo): Command {
  return clientCommand('recv', 'Receive a file from the sender with the same password.')
    .argument('[PASSWORD]', 'the password (asked on stdin when absent)')
    .option('-y, --yes', 'accept the file without asking (the question shows its name, size and sender)')
    .option('-o, --output <DST>', 'where to save the file (must not exist; default: the sender\'s file name)')
    .addOption(new Option('--max-size <BYTES>', 'refuse files larger than BYTES (suffixes K, M, G: powers of 1024; default: no limit)').argParser(byteSizeArg))
    .action(async (password: string | undefined, flags: RecvFlags) => recvCommand(password, flags, io));
}

interface RelayFlags extends LogFlags {
  readonly securePort: number;
  readonly timeout: number;
  readonly backlog: number;
  /** `NAME=VALUE` relay limits (relay/server/limits.ts), checked in runRelay. */
  readonly limit: string[];
}

function relayProgram(io: CliIo): Command {
  return new Command('relay')
    .description('Run a relay on host sockets (SIGINT or SIGTERM stops it, exit 0).')
    .argument('[ADDR]', 'address to listen on', '0.0.0.0')
    .argument('[PORT]', 'handshake port (0: any free port)', listenPortArg, DEFAULT_HANDSHAKE_PORT)
    .addOption(new Option('--secure-port <N>', 'secure-room port (0: any free port)').argParser(listenPortArg).default(DEFAULT_SECURE_PORT))
    .addOption(new Option('-t, --timeout <SECONDS>', 'seconds a peer may stay on the handshake port').argParser(positiveSecondsArg).default(3600))
    .addOption(new Option('-b, --backlog <N>', 'listen backlog').argParser(positiveIntArg).default(40))
    .addOption(new Option('--limit <NAME=VALUE>', 'set a relay limit, e.g. unpairedTimeoutSec=600 (repeatable; README lists them)').argParser((v: string, all: string[]) => [...all, v]).default([]))
    .addOption(logFlags())
    .addOption(new Option('-q, --quiet', 'log nothing'))
    .addOption(verbosityOption())
    .action(async (address: string, port: number, flags: RelayFlags) => runRelay(address, port, flags, io));
}

async function runRelay(address: string, port: number, flags: RelayFlags, io: CliIo): Promise<void> {
  const log = loggerFor(flags, io);
  // Loaded here, not at the top: `bob send`/`bob recv` start faster without the relay's modules.
  const { startHostRelay } = await import('./server/host.js');
  const { parseLimit } = await import('./server/limits.js');
  let limits = {};
  try {
    for (const text of flags.limit) limits = parseLimit(text, limits);
  } catch (error) {
    throw new BobError(ExitCode.Usage, `--limit: ${(error as Error).message}`);
  }
  let relay;
  try {
    relay = await startHostRelay({
      address,
      port,
      securePort: flags.securePort,
      timeoutSec: flags.timeout,
      backlog: flags.backlog,
      limits,
      log: (level, message) => log[level](message),
    });
  } catch (error) {
    throw new BobError(ExitCode.Failure, `Cannot start the relay: ${(error as Error).message}`);
  }
  const signal = await nextStopSignal();
  log.info(`${signal}: stopping`);
  await relay.close();
}

/** SIGINT as bob (Ctrl-C), or SIGTERM for service managers. */
function nextStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((done) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

function stressProgram(io: CliIo): Command {
  return new Command('stress')
    .description('Run N pairs of in-process clients through a relay, R times, checking every file (and the guest\'s memory).')
    .addOption(new Option('-r, --relay <HOST[:PORT]>', 'the relay').default(DEFAULT_RELAY_HOST))
    .addOption(new Option('--port <N>', `handshake port when -r has none (default ${DEFAULT_HANDSHAKE_PORT})`).argParser(portArg))
    .addOption(new Option('--secure-port <N>', 'secure-room port').argParser(portArg).default(DEFAULT_SECURE_PORT))
    .addOption(new Option('--pairs <N>', 'sender/receiver pairs per run').argParser(positiveIntArg).default(STRESS_DEFAULT_PAIRS))
    .addOption(new Option('--runs <N>', 'runs').argParser(positiveIntArg).default(STRESS_DEFAULT_RUNS))
    .addOption(new Option('--size <BYTES>', 'size of each random file').argParser(sizeArg).default(STRESS_DEFAULT_SIZE))
    .addOption(new Option('--concurrency <N>', 'clients running at once (>= 2)').argParser(concurrencyArg).default(STRESS_DEFAULT_CONCURRENCY))
    .addOption(new Option('--pbkdf2-count <N>', "senders' PBKDF2 count (bob's 16: receivers pay one PBKDF2 per advertised sender)").argParser(countArg).default(STRESS_PBKDF2_COUNT))
    .addOption(new Option('--timeout <SECONDS>', 'each client gives up after SECONDS without a peer (default 60)').argParser(positiveSecondsArg))
    .addOption(new Option('--stats-file <PATH>', "the relay guest's `uk run --stats` file: report its memory after each run"))
    .addOption(new Option('--quiescence-timeout <SECONDS>', 'how long to wait for the guest to reach 0 connections (default 60)').argParser(secondsArg))
    .option('--json', 'one JSON object per run, then a summary')
    .addOption(logFlags())
    .addOption(new Option('-q, --quiet', 'log nothing'))
    .addOption(verbosityOption())
    .action(async (flags: StressFlags) => (await import('./stress/command.js')).stressCommand(flags, io));
}

function logFlags(): Option {
  return new Option('-v, --verbose', 'more logs on stderr (repeat: -vvv is debug)').argParser((_: string, n: number) => n + 1).default(0);
}

function verbosityOption(): Option {
  return new Option('--verbosity <LEVEL>', 'log level').choices([...LOG_LEVELS]).env('BOB_LOGS');
}

// Value parsers: a bad value is a commander error, hence exit 124.

function portArg(text: string): number {
  const port = parsePort(text);
  if (Number.isNaN(port)) throw new InvalidArgumentError('expected a port number 1..65535.');
  return port;
}

/** A port to listen on: 0 lets the system pick one (the relay logs it at -v). */
function listenPortArg(text: string): number {
  return text === '0' ? 0 : portArg(text);
}

function positiveIntArg(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) throw new InvalidArgumentError('expected a positive integer.');
  return Number(text);
}

function concurrencyArg(text: string): number {
  const n = positiveIntArg(text);
  if (n < 2) throw new InvalidArgumentError('expected at least 2 (a sender and its receiver).');
  return n;
}

function countArg(text: string): number {
  const n = positiveIntArg(text);
  if (n > MAX_COUNT) throw new InvalidArgumentError(`expected at most ${MAX_COUNT} (receivers refuse more).`);
  return n;
}

function sizeArg(text: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new InvalidArgumentError('expected a number of bytes.');
  return Number(text);
}

const BYTE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** BYTES with an optional K, M or G (either case): 1K = 1024. */
function byteSizeArg(text: string): number {
  const match = /^(\d+)([kmg]?)$/i.exec(text);
  const bytes = match === null ? Number.NaN : Number(match[1]) * BYTE_UNITS[match[2].toLowerCase()];
  if (!Number.isSafeInteger(bytes)) throw new InvalidArgumentError('expected a number of bytes, with an optional K, M or G.');
  return bytes;
}

function secondsArg(text: string): number {
  const seconds = Number(text);
  if (text.trim() === '' || !Number.isFinite(seconds) || seconds < 0 || seconds > 1e7) throw new InvalidArgumentError('expected seconds (0..1e7).');
  return seconds;
}

function positiveSecondsArg(text: string): number {
  const seconds = secondsArg(text);
  if (seconds < 0.001) throw new InvalidArgumentError('expected more than 0 seconds.');
  return seconds;
}

/** True when this module is the process's entry point (also through the npm bin symlink). */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const code = await main(process.argv.slice(2));
  process.exit(code);
}
