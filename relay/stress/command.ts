// The action behind `bob stress`: flags to options, one report per run on
// stdout (text or JSON lines), exit 1 if any transfer failed.
import { type CliIo, type LogFlags, loggerFor } from '../client/cli-io.js';
import { parseRelay } from '../client/endpoint.js';
import { BobError, ExitCode, usageError } from '../client/errors.js';
import { runJson, runText, summaryJson, summaryText } from './report.js';
import { STRESS_CLIENT_TIMEOUT_MS, STRESS_QUIESCENCE_TIMEOUT_MS, stress } from './stress.js';

export interface StressFlags extends LogFlags {
  readonly relay: string;
  readonly port?: number;
  readonly securePort: number;
  readonly pairs: number;
  readonly runs: number;
  readonly size: number;
  readonly concurrency: number;
  readonly pbkdf2Count: number;
  readonly timeout?: number;
  readonly statsFile?: string;
  readonly quiescenceTimeout?: number;
  readonly json?: boolean;
}

export async function stressCommand(flags: StressFlags, io: CliIo): Promise<void> {
  const parsed = parseRelay(flags.relay, flags.securePort);
  if (typeof parsed === 'string') throw usageError(parsed);
  // -r HOST:PORT names the port itself; --port is for a bare -r HOST.
  const relay = flags.port !== undefined && !hasPort(flags.relay) ? { ...parsed, port: flags.port } : parsed;
  const summary = await stress({
    relay,
    pairs: flags.pairs,
    runs: flags.runs,
    size: flags.size,
    concurrency: flags.concurrency,
    pbkdf2Count: flags.pbkdf2Count,
    clientTimeoutMs: flags.timeout === undefined ? STRESS_CLIENT_TIMEOUT_MS : flags.timeout * 1000,
    statsFile: flags.statsFile,
    quiescenceTimeoutMs: flags.quiescenceTimeout === undefined ? STRESS_QUIESCENCE_TIMEOUT_MS : flags.quiescenceTimeout * 1000,
    log: loggerFor(flags, io),
    onRun: (report) => io.stdout.write(flags.json ? runJson(report) : runText(report)),
  });
  io.stdout.write(flags.json ? summaryJson(summary) : summaryText(summary));
  if (summary.failed > 0) throw new BobError(ExitCode.Failure, `${summary.failed} of ${summary.pairs} transfers failed`);
}

function hasPort(relay: string): boolean {
  return /^\[[^\]]+\]:/.test(relay) || (relay.split(':').length === 2 && !relay.startsWith('['));
}
