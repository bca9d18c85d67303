// A pcap sink backed by a file (Node only). Bytes are gathered in a buffer and
// written with synchronous writes when it fills, on flush() and on close(), so a
// capture costs one system call per ~64 KiB rather than one per frame.

import { closeSync, openSync, writeSync } from 'node:fs';
import type { PcapSink } from '../stack/index.js';

const DEFAULT_BUFFER_BYTES = 64 * 1024;

/** A PcapSink (call it with bytes) that also flushes and closes its file. */
export interface PcapFileSink extends PcapSink {
  readonly path: string;
  /** Write buffered bytes to the file now. */
  flush(): void;
  /** Flush and close the file; later writes throw. Idempotent. */
  close(): void;
}

/** Create (or truncate) `path` and return a sink appending to it. Pass it to
 *  `new PcapWriter(sink)`, which writes the global header first. */
export function openPcapFile(path: string, opts: { bufferBytes?: number } = {}): PcapFileSink {
  let fd: number | undefined = openSync(path, 'w');
  const buffer = new Uint8Array(Math.max(1, opts.bufferBytes ?? DEFAULT_BUFFER_BYTES));
  let used = 0;

  const writeAll = (bytes: Uint8Array): void => {
    let done = 0;
    while (done < bytes.length) done += writeSync(fd!, bytes, done, bytes.length - done);
  };
  const flush = (): void => {
    if (fd === undefined || used === 0) return;
    writeAll(buffer.subarray(0, used));
    used = 0;
  };
  const sink = (bytes: Uint8Array): void => {
    if (fd === undefined) throw new Error(`pcap file ${path} is closed`);
    if (used + bytes.length > buffer.length) flush();
    if (bytes.length > buffer.length) {
      writeAll(bytes); // larger than the buffer: no point copying it
      return;
    }
    buffer.set(bytes, used);
    used += bytes.length;
  };
  const close = (): void => {
    if (fd === undefined) return;
    flush();
    closeSync(fd);
    fd = undefined;
  };
  return Object.assign(sink, { path, flush, close });
}
