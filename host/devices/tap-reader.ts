// The TAP device's threads (a worker_threads script, one role per thread).
//
// A TAP fd hands out one whole Ethernet frame per read(2). Reading must never
// happen on the guest's event loop, so a reader thread does it: it waits in
// poll(2) on the non-blocking fd and reads every queued frame straight into
// the next free slot of a ring, publishing each by advancing the ring's HEAD
// and waking the consumer with Atomics.notify (once per burst, and every
// NOTIFY_EVERY frames within a long one). The ring is one of two:
// - its own SharedArrayBuffer ring (role 'tap-reader'): the main side
//   (tap.ts) hands each slot to a receiver and advances TAIL;
// - a guest's RX ring, in the guest's arena (role 'tap-link-reader'): the
//   guest's stack handles the frame where the kernel wrote it, and nothing
//   runs on the tender's main thread per frame. Its mirror, the writer
//   (role 'tap-link-writer'), waits on the guest's TX ring and write(2)s each
//   frame from its TX slot. The link's word indexes come in workerData
//   (host/link/layout.ts is the one source of them).
//
// Polls and waits have a short timeout so the threads notice the STOP word
// even when no traffic arrives; that bounds how long close() waits for them.
//
// This file must stay self-contained (node builtins and koffi only): when the
// sources are run directly (tests), tap.ts transpiles this single file and
// runs it in a worker without a module graph to resolve relative imports.

import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import koffi from 'koffi';
import { completeChecksum, gsoSizeOf, SegmentJoiner, splitSegments, SUPER_FRAME_BYTES, vnetKind, VNET_HDR_LEN } from './gso.js';

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
// Link mode (the threads count what the main side counts otherwise):
export const CTL_TX_QUEUE_FULL = 7; // EAGAIN / ENOBUFS from the kernel
export const CTL_TX_LINK_DOWN = 8; // EIO: the interface is down
export const CTL_TX_DETACHED = 9; // EBADFD: the interface is gone
export const CTL_TX_ERROR = 10; // any other write error
export const CTL_TX_BAD_LENGTH = 11; // a TX slot's length outside 14..mtu + 14
export const CTL_WRITER_STATE = 12; // a ReaderState value, for the writer
export const CTL_WRITER_ERRNO = 13;
/** Float64 counters from this index of the ring viewed as a Float64Array
 *  (bytes 64..95, past the Int32 words above): frames and bytes each way. */
export const CTL_F64_FRAMES_IN = 8;
export const CTL_F64_BYTES_IN = 9;
export const CTL_F64_FRAMES_OUT = 10;
export const CTL_F64_BYTES_OUT = 11;
/** With offloads: write(2) calls made, and the super-segments among them. */
export const CTL_F64_WRITES = 12;
export const CTL_F64_SUPER_SEGMENTS = 13;
/** With receive offloads: the kernel's super-segments taken apart. */
export const CTL_F64_SUPER_IN = 14;
export const CTL_WORDS = 32; // room to grow; keeps the length table 64-byte aligned

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

/** A guest's link as the link threads see it: its arena, its control block
 *  and the word indexes of what they use there (host/link/layout.ts). */
export interface LinkWords {
  arena: SharedArrayBuffer;
  control: SharedArrayBuffer;
  state: number; // LinkState word
  ready: number; // its value once the guest described its rings
  head: number; // the ring's HEAD word (RX: ours to advance; TX: the guest's)
  tail: number; // its TAIL word
  lengths: number; // first word of its length table
  offsets: number; // first word of its offset table
  slots: number; // a power of two
  slotBytes: number; // bytes of one slot (an arena chunk)
}

/** The RX ring's words, with the link counters the reader adds to when it
 *  drops a frame (as the tender's own path does). */
export interface RxLinkWords extends LinkWords {
  ringFull: number;
  notReady: number;
  badLength: number;
}

/** workerData of the link threads: the TAP ring is theirs for STOP, states and counters. */
interface LinkThreadCommon {
  fd: number;
  ring: SharedArrayBuffer;
  mtu: number;
  pollMs: number;
  /** The fd was attached with IFF_VNET_HDR: every frame has a virtio-net
   *  header in front (gso.ts), and the writer joins TCP segments. */
  vnetHdr: boolean;
  /** TUNSETOFFLOAD took TUN_F_CSUM | TUN_F_TSO4: the kernel may send partial
   *  checksums and TCP super-segments, which the reader completes and splits. */
  rxOffloads: boolean;
}
export interface LinkReaderData extends LinkThreadCommon {
  role: 'tap-link-reader';
  link: RxLinkWords;
}
export interface LinkWriterData extends LinkThreadCommon {
  role: 'tap-link-writer';
  link: LinkWords;
}
export type LinkThreadData = LinkReaderData | LinkWriterData;

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
const ENOBUFS = 105;

/** What a poller's wait() answers besides a ReaderState that ends the reader. */
const READY = -1; // frames are waiting
const AGAIN = -2; // a timeout or EINTR: look at STOP and wait again

/** poll(2) on the TAP fd for input, pollMs at a time: READY, AGAIN, or the
 *  ReaderState that ends the reader (CTL_ERRNO set when it failed). */
function fdPoller(fd: number, pollMs: number, poll: koffi.KoffiFunction, ctl: Int32Array): () => number {
  // struct pollfd { int fd; short events; short revents; }
  const pfd = new Int32Array(2);
  const pfd16 = new Int16Array(pfd.buffer);
  pfd[0] = fd;
  pfd16[2] = POLLIN;
  return () => {
    pfd16[3] = 0;
    const r = poll(pfd, 1, pollMs) as number;
    if (r < 0) {
      const e = koffi.errno();
      if (e === EINTR) return AGAIN;
      Atomics.store(ctl, CTL_ERRNO, e);
      return ReaderState.failed;
    }
    if (r === 0) return AGAIN;
    // The tun driver reports POLLERR once the interface is gone.
    if (pfd16[3] & (POLLERR | POLLHUP | POLLNVAL)) return ReaderState.detached;
    return READY;
  };
}

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

  const wait = fdPoller(d.fd, d.pollMs, poll, ctl);
  let head = Atomics.load(ctl, CTL_HEAD);
  let end: number = ReaderState.stopped;

  Atomics.store(ctl, CTL_STATE, ReaderState.running);
  port.postMessage('ready');

  run: while (Atomics.load(ctl, CTL_STOP) === 0) {
    const w = wait();
    if (w === AGAIN) continue;
    if (w !== READY) {
      end = w;
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

// ---- Link mode: the guest's rings ----------------------------------------------

/** Frames a reader publishes before it wakes the consumer within one burst. */
const NOTIFY_EVERY = 32;

/** The kernel's frames straight into the guest's RX slots (see the top). */
export function runLinkReader(d: LinkReaderData, port: { postMessage(v: unknown): void }): void {
  const ctl = new Int32Array(d.ring, 0, CTL_WORDS);
  const counts = new Float64Array(d.ring, 0, CTL_WORDS / 2);
  const link = d.link;
  const lctl = new Int32Array(link.control);
  const mask = link.slots - 1;
  // A VLAN tag may come on top of mtu + 14, within one slot.
  const maxFrame = Math.min(link.slotBytes, d.mtu + 18);

  const libc = koffi.load('libc.so.6');
  const poll = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
  const read = libc.func('long read(int fd, void *buf, unsigned long count)');
  const scratch = new Uint8Array(SLOT_SIZE);
  // readv(2)'s two pieces with offloads: the virtio-net header, then the slot.
  const header = new Uint8Array(VNET_HDR_LEN);
  // With receive offloads the kernel may send up to 64 KB at once: what does
  // not fit the slot lands in `overflow`, and the whole is taken apart.
  const overflow = new Uint8Array(d.rxOffloads ? SUPER_FRAME_BYTES : 0);
  const whole = new Uint8Array(d.rxOffloads ? SUPER_FRAME_BYTES : 0);
  const iov: { base: Uint8Array; len: number }[] = [
    { base: header, len: VNET_HDR_LEN },
    { base: scratch, len: 0 },
    { base: overflow, len: overflow.length },
  ];
  // splitSegments' two callbacks, made once: the next free slot, and publishing into it.
  let free = 0;
  let made = 0;
  let freeViews: Uint8Array[] = [];
  const nextFree = (i: number): Uint8Array | null => (i < free ? freeViews[head & mask]! : null);
  const publishMade = (_i: number, length: number): void => {
    made++;
    publish(length);
  };
  /** A super-segment read into `first` (and overflow): its frames into the
   *  free slots from HEAD on, as many as there are (the rest dropped, counted). */
  const takeApart = (views: Uint8Array[], first: Uint8Array, n: number): void => {
    const inFirst = Math.min(n, first.length);
    whole.set(first.subarray(0, inFirst));
    if (n > inFirst) whole.set(overflow.subarray(0, n - inFirst), inFirst);
    free = mask + 1 - ((head - Atomics.load(lctl, link.tail)) | 0);
    made = 0;
    freeViews = views;
    const frames = splitSegments(whole, n, gsoSizeOf(header), nextFree, publishMade);
    if (frames < 0) {
      Atomics.add(lctl, link.badLength, 1);
      return;
    }
    if (made < frames) Atomics.add(lctl, link.ringFull, frames - made);
    counts[CTL_F64_SUPER_IN]! += 1;
  };
  const iovec = koffi.struct({ base: 'void *', len: 'size_t' });
  const readv = libc.func('readv', 'long', ['int', koffi.pointer(iovec), 'int']);
  // The slots' views, made once the guest has written their offsets.
  let slotViews: Uint8Array[] | null = null;
  const viewsOnceReady = (): Uint8Array[] | null => {
    if (slotViews === null && Atomics.load(lctl, link.state) === link.ready) {
      slotViews = [];
      for (let i = 0; i < link.slots; i++) slotViews.push(new Uint8Array(link.arena, lctl[link.offsets + i]!, link.slotBytes));
    }
    return slotViews;
  };

  const wait = fdPoller(d.fd, d.pollMs, poll, ctl);
  let head = Atomics.load(lctl, link.head);
  let end: number = ReaderState.stopped;
  let unannounced = 0;
  /** Hand the frame in the slot at HEAD to the guest (woken every NOTIFY_EVERY). */
  const publish = (length: number): void => {
    lctl[link.lengths + (head & mask)] = length;
    head = (head + 1) | 0;
    Atomics.store(lctl, link.head, head);
    counts[CTL_F64_FRAMES_IN]! += 1;
    counts[CTL_F64_BYTES_IN]! += length;
    if (++unannounced === NOTIFY_EVERY) {
      Atomics.notify(lctl, link.head);
      unannounced = 0;
    }
  };
  Atomics.store(ctl, CTL_STATE, ReaderState.running);
  port.postMessage('ready');

  run: while (Atomics.load(ctl, CTL_STOP) === 0) {
    const w = wait();
    if (w === AGAIN) continue;
    if (w !== READY) {
      end = w;
      break;
    }
    unannounced = 0;
    while (Atomics.load(ctl, CTL_STOP) === 0) {
      const views = viewsOnceReady();
      const full = ((head - Atomics.load(lctl, link.tail)) | 0) > mask;
      const slot = head & mask;
      const into = views === null || full ? scratch : views[slot]!;
      // Behind a virtio-net header: the header to its own buffer, the frame
      // straight into its slot (and a super-segment's rest after it).
      let n: number;
      if (d.vnetHdr) {
        iov[1]!.base = into;
        iov[1]!.len = into.length;
        n = readv(d.fd, iov, d.rxOffloads ? 3 : 2) as number;
      } else {
        n = read(d.fd, into, into.length) as number;
      }
      if (n < 0) {
        const e = koffi.errno();
        if (e === EAGAIN) break;
        if (e === EINTR) continue;
        Atomics.store(ctl, CTL_ERRNO, e);
        end = e === EBADFD || e === EIO ? ReaderState.detached : ReaderState.failed;
        break run;
      }
      const kind = d.vnetHdr ? vnetKind(header) : 'plain';
      if (d.vnetHdr) n -= VNET_HDR_LEN;
      // Read and dropped, counted where the tender's own path counts them.
      if (views === null) Atomics.add(lctl, link.notReady, 1);
      else if (full) Atomics.add(lctl, link.ringFull, 1);
      if (views === null || full) continue;
      if (kind === 'tcp4' && d.rxOffloads) {
        takeApart(views, into, n);
        continue;
      }
      const ok = n <= maxFrame && n >= 14 && kind !== 'unknown' && kind !== 'tcp4' && (kind !== 'partial' || completeChecksum(into, n, header));
      if (!ok) {
        Atomics.add(lctl, link.badLength, 1);
        continue;
      }
      publish(n);
    }
    if (unannounced > 0) Atomics.notify(lctl, link.head);
  }
  Atomics.notify(lctl, link.head);
  Atomics.store(ctl, CTL_STATE, end);
}

/** The guest's TX slots straight to the kernel: one write(2) per frame, on
 *  this thread, with the slot handed back once written. */
export function runLinkWriter(d: LinkWriterData, port: { postMessage(v: unknown): void }): void {
  const ctl = new Int32Array(d.ring, 0, CTL_WORDS);
  const counts = new Float64Array(d.ring, 0, CTL_WORDS / 2);
  const link = d.link;
  const lctl = new Int32Array(link.control);
  const mask = link.slots - 1;
  const libc = koffi.load('libc.so.6');
  const write = libc.func('long write(int fd, void *buf, unsigned long count)');
  let slotViews: Uint8Array[] | null = null;
  let tail = Atomics.load(lctl, link.tail);
  let end: number = ReaderState.stopped;
  // With offloads: the run of waiting segments that leaves as one write (gso.ts).
  const joiner = new SegmentJoiner(
    (i) => slotViews![(tail + i) & mask]!,
    (i) => lctl[link.lengths + ((tail + i) & mask)]!,
    d.mtu + 14,
  );
  Atomics.store(ctl, CTL_WRITER_STATE, ReaderState.running);
  port.postMessage('ready');

  run: while (Atomics.load(ctl, CTL_STOP) === 0) {
    if (slotViews === null) {
      if (Atomics.load(lctl, link.state) !== link.ready) {
        Atomics.wait(lctl, link.state, Atomics.load(lctl, link.state), d.pollMs);
        continue;
      }
      slotViews = [];
      for (let i = 0; i < link.slots; i++) slotViews.push(new Uint8Array(link.arena, lctl[link.offsets + i]!, link.slotBytes));
    }
    const head = Atomics.load(lctl, link.head);
    if (head === tail) {
      Atomics.wait(lctl, link.head, head, d.pollMs);
      continue;
    }
    while (tail !== head) {
      const slot = tail & mask;
      const len = lctl[link.lengths + slot]!;
      let taken = 1;
      let bytes = len;
      let n: number;
      if (len < 14 || len > d.mtu + 14 || len > link.slotBytes) {
        Atomics.add(ctl, CTL_TX_BAD_LENGTH, 1);
        n = 0;
      } else if (!d.vnetHdr) {
        n = write(d.fd, slotViews[slot]!, len) as number;
      } else {
        joiner.build((head - tail) | 0);
        taken = joiner.frames;
        bytes = joiner.bytes;
        n = write(d.fd, joiner.out, joiner.writeBytes) as number;
        counts[CTL_F64_WRITES]! += 1;
        if (taken > 1) counts[CTL_F64_SUPER_SEGMENTS]! += 1;
      }
      if (n < 0) {
        const e = koffi.errno();
        if (e === EAGAIN || e === ENOBUFS) Atomics.add(ctl, CTL_TX_QUEUE_FULL, taken);
        else if (e === EIO) Atomics.add(ctl, CTL_TX_LINK_DOWN, taken); // the tun driver refuses writes while the link is down
        else if (e === EBADFD) {
          Atomics.add(ctl, CTL_TX_DETACHED, taken);
          Atomics.store(ctl, CTL_WRITER_ERRNO, e);
          end = ReaderState.detached;
          break run;
        } else Atomics.add(ctl, CTL_TX_ERROR, taken);
      } else if (n > 0) {
        counts[CTL_F64_FRAMES_OUT]! += taken;
        counts[CTL_F64_BYTES_OUT]! += bytes;
      }
      tail = (tail + taken) | 0;
      Atomics.store(lctl, link.tail, tail); // the slots are the guest's again
    }
  }
  Atomics.store(ctl, CTL_WRITER_STATE, end);
}

const data = workerData as ReaderData | LinkThreadData | undefined;
if (!isMainThread && parentPort && data) {
  if (data.role === 'tap-reader') runReader(data, parentPort);
  else if (data.role === 'tap-link-reader') runLinkReader(data, parentPort);
  else if (data.role === 'tap-link-writer') runLinkWriter(data, parentPort);
}
