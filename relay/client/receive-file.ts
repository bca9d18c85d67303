// The receiver's half of the secure room (docs/bob-protocol.md §5, §6): records
// opened with subkey 0 and cipher 0, treated as one byte stream, decoded by
// the PACK decoder into a temporary file that takes its name only once the
// SHA-1 trailer verifies. The receiver never sends a data record (§5: a bob
// sender would choke on the ChaCha20 direction); it closes its side after
// the trailer and the relay tells the sender with `ff ff ff ff`.
// Nothing touches the disk before the blob's header: by then the name (the
// first object) is checked and the size is known, so the user can be asked
// about both, and --max-size applied, before a single byte is written.
import { type FileAnnouncement, PackDecoder, type PackResult } from '../pack/decoder.js';
import { escapeUnsafe } from '../pack/format.js';
import { RecordReader, recordCipherProblem, senderToReceiver } from '../records.js';
import type { SharedKeys } from '../spoke/spake2ee.js';
import { TRANSFER_IDLE_TIMEOUT_MS } from './defaults.js';
import { BobError, ExitCode } from './errors.js';
import { IdleTimer } from './idle-timer.js';
import { PendingFile } from './output.js';
import type { Connection } from './socket.js';

export interface ReceiveFileOptions {
  /** Picks the destination once the sender's file is accepted. */
  readonly destination: (name: string) => Promise<string>;
  /**
   * Asked once the file's name and size are known, before anything is
   * written; false refuses the file (a BobError with exit 5). Default: accept.
   */
  readonly accept?: (file: FileAnnouncement) => Promise<boolean>;
  /** Larger declared sizes are refused (exit 5) before any byte is written. */
  readonly maxFileBytes?: number;
  /** Called with the file bytes written so far. */
  readonly onProgress?: (received: number) => void;
  readonly idleTimeoutMs?: number;
}

export interface ReceivedFile {
  readonly name: string;
  readonly size: number;
  readonly path: string;
}

export async function receiveFile(
  room: Connection,
  leftover: Uint8Array,
  keys: SharedKeys,
  options: ReceiveFileOptions,
): Promise<ReceivedFile> {
  const { subkey, cipher } = senderToReceiver(keys);
  const problem = recordCipherProblem(cipher);
  if (problem !== null) throw new BobError(ExitCode.Failure, problem);
  const records = new RecordReader(subkey, cipher);
  const idle = new IdleTimer(room, options.idleTimeoutMs ?? TRANSFER_IDLE_TIMEOUT_MS);
  let file: PendingFile | null = null;
  let received = 0;
  const decoder = new PackDecoder({
    maxFileBytes: options.maxFileBytes,
    onFile: async (announced) => {
      if (options.accept !== undefined) {
        // The user may take longer to answer than the transfer may stall.
        idle.stop();
        const accepted = await options.accept(announced);
        idle.restart();
        if (!accepted) throw new BobError(ExitCode.Refused, `Refused: "${escapeUnsafe(announced.name)}" (${announced.size} bytes) was not accepted`);
      }
      file = await PendingFile.create(await options.destination(announced.name));
    },
    onData: async (chunk) => {
      await file!.write(chunk);
      received += chunk.length;
      options.onProgress?.(received);
    },
  });
  try {
    const result = await decodeStream(room, leftover, records, decoder, idle);
    const done = file as PendingFile | null;
    if (done === null) throw new BobError(ExitCode.Internal, 'Internal error: a complete PACK without a file');
    await done.publish();
    return { name: result.name, size: result.size, path: done.destination };
  } catch (error) {
    const partial = file as PendingFile | null;
    await partial?.discard();
    if (partial !== null && error instanceof BobError && error.code === ExitCode.Interrupted) {
      throw new BobError(error.code, `${error.message}; the partial file was removed`);
    }
    throw error;
  } finally {
    idle.stop();
  }
}

type Complete = Extract<PackResult, { status: 'complete' }>;

/** Feeds the room's bytes through records and PACK until the trailer verifies. */
async function decodeStream(
  room: Connection,
  first: Uint8Array,
  records: RecordReader,
  decoder: PackDecoder,
  idle: IdleTimer,
): Promise<Complete> {
  let chunk: Uint8Array | null = first;
  for (;;) {
    const opened = chunk === null ? records.end() : records.push(chunk);
    for (const plaintext of opened.plaintexts) {
      const result = await decoder.push(plaintext);
      if (result.status === 'complete') return result;
      if (result.status === 'invalid') throw packError(result);
    }
    if (opened.status === 'corrupted') throw new BobError(ExitCode.Failure, `Corrupted stream (${opened.reason})`);
    if (opened.status === 'end') {
      const result = decoder.finish();
      throw new BobError(ExitCode.Failure, `End of input: the sender stopped before the end of the file (${result.status === 'invalid' ? result.reason : 'incomplete'})`);
    }
    chunk = await room.read();
    idle.touch();
  }
}

function packError(result: Extract<PackResult, { status: 'invalid' }>): BobError {
  const { reason } = result;
  if (result.tooLarge) return new BobError(ExitCode.Refused, `Refused: ${reason}`);
  // bob's message for a trailer mismatch, so scripts matching on it keep working.
  if (reason.includes('SHA-1 trailer')) return new BobError(ExitCode.Failure, 'Corrupted file (unexpected hash)');
  return new BobError(ExitCode.Failure, `Invalid file stream: ${reason}`);
}
