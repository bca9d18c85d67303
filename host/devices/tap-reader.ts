// The TAP device's reader thread (a worker_threads script).
//
// A TAP fd hands out one whole Ethernet frame per read(2). Reading must never
// happen on the guest's event loop, so this thread does it: it waits in
// poll(2) on the non-blocking fd, reads every queued frame straight into the
// next free slot of a SharedArrayBuffer ring, publishes it by advancing HEAD
// and wakes the main thread with Atomics.notify. The main side (tap.ts) hands
// each slot to the receiver and advances TAIL.
//
// The poll has a short timeout so the thread notices the STOP word even when
// no traffic arrives; that bounds how long close() waits for the thread.
//
// This file must stay self-contained (node builtins and koffi only): when the
// sources are run directly (tests), tap.ts transpiles this single file and
// runs it in a worker without a module graph to resolve relative imports.

import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import koffi from 'koffi';

// ---- Ring layout, shared with tap.ts ------------------------------------------

/** Bytes per ring slot: a whole frame (at most mtu + 18 bytes) fits in one. */
export const SLOT_SIZE = 2048;
/** Largest MTU the device accepts: mtu + 14 (Ethernet) + 4 (a VLAN tag) must
 *  stay below SLOT_SIZE, so that a truncated read (the kernel returns exactly
 *  the buffer size for a longer frame) is always recognised as oversize. */
export const MAX_MTU = 2000;

// Int32 control words at the start of the ring.
export const CTL_HEAD = 0; // frames published by the reader (wraps at 2^32)
export const CTL_TAIL = 1; // frames consumed by the main side (wraps at 2^32)
export const CTL_STOP = 2; // main -> reader: non-zero asks the reader to end
export const CTL_STATE = 3; // a ReaderState value
export const CTL_DROP_RING_FULL = 4; // frames read while every slot was taken
export const CTL_DROP_BAD_LENGTH = 5; // longer than mtu + 18 (or truncated), or shorter than 14
export const CTL_ERRNO = 6; // the errno that ended the reader, if any
export const CTL_WORDS = 16; // room to grow; keeps the length table 64-byte aligned

export const ReaderState = {
  starting: 0,
  running: 1,
  stopped: 2, // ended because main set STOP
  detached: 3, // the interface went away under the fd (e.g. its namespace was deleted)
  failed: 4, // an unexpected errno from poll/read; CTL_ERRNO says which
} as const;
export type ReaderStateName = keyof typeof ReaderState;

export function readerStateName(v: number): ReaderStateName {
  for (const k of Object.keys(ReaderState) as ReaderStateName[]) if (ReaderState[k] === v) return k;
  return 'failed';
}

/** Byte offsets inside the ring: [control words][frame lengths][slots]. */
export function ringLayout(slots: number): { lengths: number; data: number; byteLength: number } {
  const lengths = CTL_WORDS * 4;
  const data = (lengths + slots * 4 + 63) & ~63;
  return { lengths, data, byteLength: data + slots * SLOT_SIZE };
}

/** What the main side passes as workerData. */
export interface ReaderData {
  role: 'tap-reader';
  fd: number;
  ring: SharedArrayBuffer;
  slots: number; // a power of two
  mtu: number;
  pollMs: number;
}

// ---- The reader loop ----------------------------------------------------------

// Linux values (x86-64 and arm64 agree on these).
const POLLIN = 0x001;
const POLLERR = 0x008;
const POLLHUP = 0x010;
const POLLNVAL = 0x020;
const EINTR = 4;
const EIO = 5;
const EAGAIN = 11;
const EBADFD = 77;

export function runReader(d: ReaderData, port: { postMessage(v: unknown): void }): void {
  const ctl = new Int32Array(d.ring, 0, CTL_WORDS);
  const layout = ringLayout(d.slots);
  const lengths = new Int32Array(d.ring, layout.lengths, d.slots);
  const mask = d.slots - 1;
  const maxFrame = d.mtu + 18;

  const libc = koffi.load('libc.so.6');
  // void* parameters: koffi passes a typed array's memory itself, so the
  // kernel writes the frame straight into the shared ring, with no copy.
  const poll = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
  const read = libc.func('long read(int fd, void *buf, unsigned long count)');

  // One view per slot, made once: the loop allocates nothing per frame.
  const slotViews: Uint8Array[] = [];
  for (let i = 0; i < d.slots; i++) slotViews.push(new Uint8Array(d.ring, layout.data + i * SLOT_SIZE, SLOT_SIZE));
  // Frames that arrive while the ring is full are read here and discarded, so
  // that the drop shows in the device's counters (left in the kernel, they
  // would be dropped there, as TX drops of the interface, after a delay).
  const scratch = new Uint8Array(SLOT_SIZE);

  // struct pollfd { int fd; short events; short revents; }
  const pfd = new Int32Array(2);
  const pfd16 = new Int16Array(pfd.buffer);
  pfd[0] = d.fd;
  pfd16[2] = POLLIN;

  let head = Atomics.load(ctl, CTL_HEAD);
  let end: number = ReaderState.stopped;

  Atomics.store(ctl, CTL_STATE, ReaderState.running);
  port.postMessage('ready');

  run: while (Atomics.load(ctl, CTL_STOP) === 0) {
    pfd16[3] = 0;
    const r = poll(pfd, 1, d.pollMs) as number;
    if (r < 0) {
      const e = koffi.errno();
      if (e === EINTR) continue;
      Atomics.store(ctl, CTL_ERRNO, e);
      end = ReaderState.failed;
      break;
    }
    if (r === 0) continue;
    if (pfd16[3] & (POLLERR | POLLHUP | POLLNVAL)) {
      // The tun driver reports POLLERR once the interface is gone.
      end = ReaderState.detached;
      break;
    }

    // Read until the kernel's queue is empty; each frame is published at once
    // so the main side can start on it while we read the next.
    while (Atomics.load(ctl, CTL_STOP) === 0) {
      const full = ((head - Atomics.load(ctl, CTL_TAIL)) | 0) >= d.slots;
      const slot = head & mask;
      const n = read(d.fd, full ? scratch : slotViews[slot], SLOT_SIZE) as number;
      if (n < 0) {
        const e = koffi.errno();
        if (e === EAGAIN) break;
        if (e === EINTR) continue;
        Atomics.store(ctl, CTL_ERRNO, e);
        end = e === EBADFD || e === EIO ? ReaderState.detached : ReaderState.failed;
        break run;
      }
      if (full) {
        Atomics.add(ctl, CTL_DROP_RING_FULL, 1);
        continue;
      }
      if (n > maxFrame || n < 14) {
        Atomics.add(ctl, CTL_DROP_BAD_LENGTH, 1);
        continue;
      }
      lengths[slot] = n;
      head = (head + 1) | 0;
      Atomics.store(ctl, CTL_HEAD, head);
      Atomics.notify(ctl, CTL_HEAD);
    }
  }

  Atomics.store(ctl, CTL_STATE, end);
  // Returning lets the thread end: nothing else here keeps it alive.
}

const data = workerData as ReaderData | undefined;
if (!isMainThread && parentPort && data?.role === 'tap-reader') runReader(data, parentPort);
