// A guest's link across a process boundary (`--isolate process`): Ethernet
// frames over a byte stream (the socketpair Node makes for a child's extra
// stdio), each behind its length as two bytes, big-endian. A NetDevice at
// both ends: the parent bridges it to the network backend, the child to the
// guest's link (host/link/bridge.ts).
//
// Frames sent in one turn leave in one write (the stack sends a burst per
// batch); frames that arrive in one read are one batch (setBatchEnd). A link
// is lossy: when the peer does not keep up and MAX_QUEUED bytes wait in the
// socket, further frames are dropped and counted, as a full ring would. A
// length that is 0 or more than the link's largest frame means the stream
// is corrupt: it is counted and the link closes (nothing after it can be
// trusted to start on a frame).

import type { Duplex } from 'node:stream';
import type { NetDevice } from '../../stack/index.js';
import type { FrameCapture } from '../link/tender-device.js';

/** Bytes waiting in the socket beyond which frames are dropped. */
const MAX_QUEUED = 1 << 20;
const LENGTH_BYTES = 2;
const EMPTY = Buffer.alloc(0);

export interface FrameStreamStats {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Frames dropped because MAX_QUEUED bytes were waiting. */
  dropsQueueFull: number;
  /** Frames dropped because they were larger than the link's frames. */
  dropsTooLong: number;
  /** A corrupt length arrived (the link was closed). */
  corrupt: number;
}

export class FrameStream implements NetDevice {
  readonly mac: Uint8Array;
  private receiver: ((frame: Uint8Array) => void) | null = null;
  private batchEnd: (() => void) | null = null;
  /** Frames of this turn, each behind its length, written in one go. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushQueued = false;
  /** A frame (or its length) split across reads. */
  private partial: Buffer = EMPTY;
  private closed = false;
  private readonly counters: FrameStreamStats = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, dropsQueueFull: 0, dropsTooLong: 0, corrupt: 0 };

  private readonly maxFrame: number;

  /** `capture` sees every frame, both ways (--pcap). */
  constructor(
    private readonly socket: Duplex,
    mac: Uint8Array,
    readonly mtu: number,
    private readonly capture?: FrameCapture,
  ) {
    // The link's largest Ethernet frame: a VLAN tag may come on top of mtu + 14.
    this.maxFrame = mtu + 18;
    this.mac = Uint8Array.from(mac);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
  }

  setReceiver(receive: (frame: Uint8Array) => void): void {
    this.receiver = receive;
  }

  setBatchEnd(end: () => void): void {
    this.batchEnd = end;
  }

  send(frame: Uint8Array): boolean {
    if (this.closed) return false;
    if (frame.length > this.maxFrame) {
      this.counters.dropsTooLong++;
      return false;
    }
    // What waits counts whether it is still this turn's or already the socket's.
    if (this.socket.writableLength + this.pendingBytes > MAX_QUEUED) {
      this.counters.dropsQueueFull++;
      return false;
    }
    this.capture?.write(frame, Date.now());
    const out = Buffer.allocUnsafe(LENGTH_BYTES + frame.length);
    out.writeUInt16BE(frame.length, 0);
    out.set(frame, LENGTH_BYTES);
    this.pending.push(out);
    this.pendingBytes += out.length;
    this.counters.framesOut++;
    this.counters.bytesOut += frame.length;
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
    return true;
  }

  stats(): FrameStreamStats {
    return { ...this.counters };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.socket.destroy();
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.closed || this.pending.length === 0) return;
    const out = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.socket.write(out);
  }

  private onData(chunk: Buffer): void {
    const data = this.partial.length > 0 ? Buffer.concat([this.partial, chunk]) : chunk;
    let at = 0;
    let delivered = 0;
    while (data.length - at >= LENGTH_BYTES) {
      const length = data.readUInt16BE(at);
      if (length === 0 || length > this.maxFrame) {
        this.counters.corrupt++;
        this.close();
        return;
      }
      if (data.length - at - LENGTH_BYTES < length) break;
      const frame = data.subarray(at + LENGTH_BYTES, at + LENGTH_BYTES + length);
      at += LENGTH_BYTES + length;
      this.counters.framesIn++;
      this.counters.bytesIn += length;
      delivered++;
      this.capture?.write(frame, Date.now());
      this.receiver?.(frame);
    }
    // Copied: the socket may reuse its chunk (usually nothing is left over).
    this.partial = at === data.length ? EMPTY : Buffer.from(data.subarray(at));
    if (delivered > 0) this.batchEnd?.();
  }
}
