// `bob send` as a library call: the handshake on the relay's first port
// until a receiver accepts (§2.4), then the file through the secure room
// (§3, §5, §6). Throws a BobError on failure; used by the CLI and, many at a
// time in one process, by the stress tool.
import { BOB_LEVEL } from '../pack/encoder.js';
import { serverInit } from '../spoke/spake2ee.js';
import { DEFAULT_PBKDF2_COUNT } from './defaults.js';
import { Deadline, type RelayEndpoint } from './endpoint.js';
import { BobError, ExitCode } from './errors.js';
import { pairThroughRelay } from './handshake-driver.js';
import { identityText } from './handshake-common.js';
import { type Logger, silentLogger } from './log.js';
import { enterSecureRoom } from './secure-room.js';
import { type FileSource, streamFile } from './send-file.js';
import { SenderHandshake } from './sender-handshake.js';
import { abortedError, resolveHost, withDeadline } from './socket.js';

export interface SendOptions {
  readonly relay: RelayEndpoint;
  readonly password: string;
  readonly file: FileSource;
  /** zlib level for the PACK (default 4, bob's; 0 for --no-compression). */
  readonly level?: number;
  /** PBKDF2 count to advertise (default DEFAULT_PBKDF2_COUNT). */
  readonly pbkdf2Count?: number;
  /** Give up after this long without a receiver (default: wait like bob). */
  readonly timeoutMs?: number;
  /** Give up at the first receiver with another password. */
  readonly failFast?: boolean;
  readonly log?: Logger;
  readonly signal?: AbortSignal;
  /** Called once the pairing is done, with the receiver's identity. */
  readonly onPaired?: (peer: string) => void;
  readonly onProgress?: (sent: number, total: number) => void;
}

export interface SendResult {
  readonly peer: string;
  readonly name: string;
  readonly size: number;
}

export async function send(options: SendOptions): Promise<SendResult> {
  const log = options.log ?? silentLogger;
  const deadline = new Deadline(options.timeoutMs);
  const init = initSpoke(options.password, options.pbkdf2Count ?? DEFAULT_PBKDF2_COUNT);
  const ip = await resolveHost(options.relay.host);
  const machine = new SenderHandshake({ publicBytes: init.public, secret: init.secret, failFast: options.failFast, log });
  const paired = await pairThroughRelay(ip, options.relay.port, machine, { deadline, log, signal: options.signal, localAddress: options.relay.localAddress });
  const peer = identityText(paired.peerIdentity);
  options.onPaired?.(peer);
  const { connection: room } = await enterSecureRoom(
    ip, options.relay.securePort, { identity: paired.peerIdentity, text: peer }, deadline, options.signal, options.relay.localAddress,
  );
  try {
    log.info(`in the secure room with ${peer}; sending ${options.file.name}`);
    const stream = { level: options.level ?? BOB_LEVEL, onProgress: options.onProgress };
    await withDeadline(room, undefined, abortedError, () => streamFile(room, paired.keys, options.file, stream), options.signal);
  } finally {
    room.destroy();
  }
  return { peer, name: options.file.name, size: options.file.size };
}

/** The public packet and secret; a bad count is a usage problem, reported as such. */
function initSpoke(password: string, count: number) {
  try {
    return serverInit(password, { count });
  } catch (error) {
    throw new BobError(ExitCode.Usage, `Invalid PBKDF2 count ${count}: ${(error as Error).message}`);
  }
}
