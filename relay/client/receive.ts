// `bob recv` as a library call: the handshake on the relay's first port,
// checking every sender the relay advertises against our password and
// asking before accepting one (§2.4), then the file from the secure room
// (§3, §5, §6). Throws a BobError on failure.
import type { Password } from '../spoke/spake2ee.js';
import { Deadline, type RelayEndpoint } from './endpoint.js';
import { pairThroughRelay } from './handshake-driver.js';
import { type Question, identityText } from './handshake-common.js';
import { type Logger, silentLogger } from './log.js';
import { chooseDestination } from './output.js';
import { type ReceivedFile, receiveFile } from './receive-file.js';
import { ReceiverHandshake } from './receiver-handshake.js';
import { enterSecureRoom } from './secure-room.js';
import { abortedError, resolveHost, withDeadline } from './socket.js';

export interface ReceiveOptions {
  readonly relay: RelayEndpoint;
  readonly password: Password;
  /** Destination path; must not exist (the CLI checks it first). Default: the sender's file name. */
  readonly output?: string;
  /** Directory for relative paths and for the default name (default: the current directory). */
  readonly directory?: string;
  /** Asked for each sender with our password (default: accept, as with -y). */
  readonly confirm?: (identity: string) => Promise<boolean>;
  /** Largest PBKDF2 count accepted from a sender (default: MAX_COUNT of relay/spoke/public). */
  readonly maxCount?: number;
  /** Give up after this long without a sender (default: wait like bob). */
  readonly timeoutMs?: number;
  /** Give up at the first sender with another password. */
  readonly failFast?: boolean;
  readonly log?: Logger;
  readonly signal?: AbortSignal;
  /** Called when the file's name and destination are known (bob prints ">>> Received a file"). */
  readonly onFile?: (name: string, destination: string) => void;
  readonly onProgress?: (received: number) => void;
}

export interface ReceiveResult extends ReceivedFile {
  readonly peer: string;
}

export async function receive(options: ReceiveOptions): Promise<ReceiveResult> {
  const log = options.log ?? silentLogger;
  const deadline = new Deadline(options.timeoutMs);
  const confirm = options.confirm ?? (async () => true);
  const ip = await resolveHost(options.relay.host);
  const machine = new ReceiverHandshake({ password: options.password, failFast: options.failFast, maxCount: options.maxCount, log });
  const ask = async (q: Question) => machine.answer(q.uid, await confirm(q.identity));
  const paired = await pairThroughRelay(ip, options.relay.port, machine, { deadline, log, ask, signal: options.signal });
  const peer = identityText(paired.peerIdentity);
  const room = await enterSecureRoom(ip, options.relay.securePort, { identity: paired.peerIdentity, text: peer }, deadline, options.signal);
  log.info(`in the secure room with ${peer}`);
  const destination = async (name: string) => {
    const path = await chooseDestination(name, options.output, options.directory ?? process.cwd(), log);
    options.onFile?.(name, path);
    return path;
  };
  const connection = room.connection;
  try {
    const receiving = () => receiveFile(connection, room.leftover, paired.keys, { destination, onProgress: options.onProgress });
    const file = await withDeadline(connection, undefined, abortedError, receiving, options.signal);
    connection.end(); // our FIN: the relay then sends ff ff ff ff to the sender (§3)
    return { ...file, peer };
  } catch (error) {
    connection.destroy();
    throw error;
  }
}
