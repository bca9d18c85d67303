// `bob recv` as a library call: the handshake on the relay's first port,
// checking every sender the relay advertises against our password and
// asking before accepting one (§2.4), then the file from the secure room
// (§3, §5, §6), where the file's name and size can be approved before
// anything is written. Throws a BobError on failure.
import type { FileAnnouncement } from '../pack/decoder.js';
import type { Password } from '../spoke/spake2ee.js';
import { Deadline, type RelayEndpoint } from './endpoint.js';
import { BobError, ExitCode } from './errors.js';
import { pairThroughRelay } from './handshake-driver.js';
import { type Question, identityText } from './handshake-common.js';
import { type Logger, silentLogger } from './log.js';
import { chooseDestination } from './output.js';
import { type ReceivedFile, receiveFile } from './receive-file.js';
import { ReceiverHandshake } from './receiver-handshake.js';
import { enterSecureRoom } from './secure-room.js';
import { abortedError, resolveHost, untilAborted, withDeadline } from './socket.js';

/** A file a sender offers, as its PACK stream announces it. */
export interface FileOffer extends FileAnnouncement {
  /** The sender's identity (ip:port), escaped for printing. */
  readonly peer: string;
}

export interface ReceiveOptions {
  readonly relay: RelayEndpoint;
  readonly password: Password;
  /** Destination path; must not exist (the CLI checks it first). Default: the sender's file name. */
  readonly output?: string;
  /** Directory for relative paths and for the default name (default: the current directory). */
  readonly directory?: string;
  /**
   * Asked in the handshake for each sender with our password, knowing only
   * its identity (bob's question); a refusal sends 0b and waits for another
   * sender. Default: accept.
   */
  readonly confirm?: (identity: string) => Promise<boolean>;
  /**
   * Asked once the file's name and size are known (the PACK stream's first
   * object and the blob's header), before anything is written. A refusal
   * ends the receive (exit 5) by closing the secure room, which the sender
   * sees as a bob receiver that quit. Default: accept.
   */
  readonly acceptFile?: (offer: FileOffer) => Promise<boolean>;
  /** Files declared larger are refused (exit 5) before any byte is written; nothing past the declared size is ever inflated. */
  readonly maxFileBytes?: number;
  /** Largest PBKDF2 count accepted from a sender (default: MAX_COUNT of relay/spoke/public). */
  readonly maxCount?: number;
  /** Give up after this long without a sender (default: wait like bob). */
  readonly timeoutMs?: number;
  /** Give up at the first sender with another password. */
  readonly failFast?: boolean;
  readonly log?: Logger;
  /** Stops the receive; a BobError as the abort reason is what it then throws (exit 130 for Ctrl-C). */
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
  const { signal } = options;
  const deadline = new Deadline(options.timeoutMs);
  const confirm = options.confirm ?? (async () => true);
  const ip = await untilAborted(resolveHost(options.relay.host), signal);
  const machine = new ReceiverHandshake({
    password: options.password,
    failFast: options.failFast,
    maxCount: options.maxCount,
    queue: true,
    log,
  });
  const ask = async (q: Question) => machine.answer(q.uid, await untilAborted(confirm(q.identity), signal));
  const paired = await pairThroughRelay(ip, options.relay.port, machine, { deadline, log, ask, signal, localAddress: options.relay.localAddress });
  const { advertised, refused, ignored } = machine.stats;
  if (refused + ignored > 0) log.info(`${advertised} senders advertised: ${refused} refused, ${ignored} ignored`);
  const peer = identityText(paired.peerIdentity);
  const room = await enterSecureRoom(ip, options.relay.securePort, { identity: paired.peerIdentity, text: peer }, deadline, signal, options.relay.localAddress);
  log.info(`in the secure room with ${peer}`);
  const destination = async (name: string) => {
    const path = await chooseDestination(name, options.output, options.directory ?? process.cwd(), log);
    options.onFile?.(name, path);
    return path;
  };
  const acceptFile = options.acceptFile;
  const accept = acceptFile && ((file: FileAnnouncement) => untilAborted(acceptFile({ ...file, peer }), signal));
  const connection = room.connection;
  try {
    const receiving = () =>
      receiveFile(connection, room.leftover, paired.keys, {
        destination,
        accept,
        maxFileBytes: options.maxFileBytes,
        onProgress: options.onProgress,
      });
    const file = await withDeadline(connection, undefined, () => abortedError(signal), receiving, signal);
    connection.end(); // our FIN: the relay then sends ff ff ff ff to the sender (§3)
    return { ...file, peer };
  } catch (error) {
    // A refused file ends like a bob receiver that quits: a FIN, and the
    // relay's ff ff ff ff to the sender. Anything else drops the connection.
    if (error instanceof BobError && error.code === ExitCode.Refused) connection.end();
    else connection.destroy();
    throw error;
  }
}
