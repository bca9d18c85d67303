// The sender's half of the secure room (docs/bob-protocol.md §5, §6): the PACK
// stream in records segmented exactly as bob segments it (relay/pack
// encodePack: the SHA-1 trailer alone in the last record, nothing after),
// sealed with subkey 0 and cipher 0, then a wait for the relay's
// `ff ff ff ff` (or EOF) that says the receiver is done.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { PackEncodeError, encodePack } from '../pack/encoder.js';
import { nameProblem } from '../pack/format.js';
import { RecordWriter, recordCipherProblem, senderToReceiver } from '../records.js';
import type { SharedKeys } from '../spoke/spake2ee.js';
import { TRANSFER_IDLE_TIMEOUT_MS } from './defaults.js';
import { BobError, ExitCode } from './errors.js';
import { IdleTimer } from './idle-timer.js';
import type { Connection } from './socket.js';

/** What the sender sends: a name, an exact size and the bytes (read when the transfer starts). */
export interface FileSource {
  readonly name: string;
  readonly size: number;
  open(): AsyncIterable<Uint8Array>;
}

/** A regular file on disk, sent under its basename. Missing or unusable paths are BobErrors. */
export async function fileSource(path: string): Promise<FileSource> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw new BobError(ExitCode.Failure, `Cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  if (!info.isFile()) throw new BobError(ExitCode.Failure, `${path} is not a regular file (only single files can be sent)`);
  const name = basename(path);
  const problem = nameProblem(name);
  if (problem !== null) throw new BobError(ExitCode.Failure, `Cannot send ${path}: ${problem}`);
  return { name, size: info.size, open: () => createReadStream(path, { highWaterMark: 64 * 1024 }) };
}

/** Bytes held in memory (the stress tool). */
export function bufferSource(name: string, bytes: Uint8Array): FileSource {
  return {
    name,
    size: bytes.length,
    open: async function* () {
      yield bytes;
    },
  };
}

export interface StreamOptions {
  /** zlib level 0..9 for both PACK objects (bob: 4, or 0 with --no-compression). */
  readonly level: number;
  /** Called with the file bytes consumed so far and the total. */
  readonly onProgress?: (sent: number, total: number) => void;
  readonly idleTimeoutMs?: number;
}

export async function streamFile(room: Connection, keys: SharedKeys, file: FileSource, options: StreamOptions): Promise<void> {
  const { subkey, cipher } = senderToReceiver(keys);
  const problem = recordCipherProblem(cipher);
  if (problem !== null) throw new BobError(ExitCode.Failure, problem);
  const writer = new RecordWriter(subkey, cipher);
  const idle = new IdleTimer(room, options.idleTimeoutMs ?? TRANSFER_IDLE_TIMEOUT_MS);
  try {
    let sent = 0;
    const counted = async function* () {
      for await (const chunk of file.open()) {
        sent += chunk.length;
        options.onProgress?.(Math.min(sent, file.size), file.size);
        yield chunk;
      }
    };
    for await (const segment of encodePack({ name: file.name, size: file.size, data: counted() }, { level: options.level })) {
      await writeRecord(room, writer.seal(segment));
      idle.touch();
    }
    await waitForEnd(room, idle);
  } catch (error) {
    if (error instanceof PackEncodeError) throw new BobError(ExitCode.Failure, `Cannot send ${file.name}: ${error.message}`);
    throw error;
  } finally {
    idle.stop();
  }
}

async function writeRecord(room: Connection, record: Uint8Array): Promise<void> {
  try {
    await room.write(record);
  } catch (error) {
    if (error instanceof BobError) throw error;
    throw new BobError(ExitCode.Failure, 'Connection closed by peer during the transfer');
  }
}

/**
 * After the trailer bob's sender waits for a record header: `ff ff` (the
 * relay's close marker) or EOF ends the transfer well. Anything else would
 * be a data record from the receiver, which no bob receiver sends (§5).
 */
async function waitForEnd(room: Connection, idle: IdleTimer): Promise<void> {
  let header = new Uint8Array(0);
  for (;;) {
    let chunk: Uint8Array | null;
    try {
      chunk = await room.read();
    } catch (error) {
      if (error instanceof BobError) throw error;
      // A reset means the relay dropped bytes of ours unread: the receiver may lack the end.
      throw new BobError(ExitCode.Failure, 'Connection reset before the receiver confirmed the file');
    }
    if (chunk === null) return;
    idle.touch();
    header = Uint8Array.from([...header, ...chunk.subarray(0, 2 - header.length)]);
    if (header.length < 2) continue;
    if (header[0] === 0xff && header[1] === 0xff) return;
    throw new BobError(ExitCode.Failure, 'Unexpected data from the receiver after the file');
  }
}
