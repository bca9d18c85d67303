// The shared-memory link between the tender and its guest (docs/architecture.md section 6).
//
// Frames live in the guest's arena: at boot the guest allocates two rings of
// arena chunks (owner kind Device), RX (tender -> guest) and TX (guest ->
// tender), and writes their offsets into a small control block. Both threads
// see the arena (it is shared memory), so the tender writes a received frame
// straight into an RX slot and the guest's stack reads it where it lies; the
// guest copies an outgoing frame into a TX slot and the tender hands that
// slot's bytes to the backend. No frame is allocated or posted as a message.
//
// Each ring is single-producer, single-consumer: slot i of the ring is the
// i-th chunk; the producer fills slot head % n, stores its length, advances
// HEAD; the consumer handles slot tail % n and advances TAIL, which hands the
// slot back. Counters wrap at 2^32 (Int32 arithmetic), so head - tail is the
// number of frames waiting. The producer wakes the consumer with
// Atomics.notify on HEAD once per batch (at the end of the current task), and
// the consumer waits with Atomics.waitAsync, so both event loops stay free.
//
// Control block (Int32 words in a SharedArrayBuffer the tender creates):
//   0 RX_HEAD   1 RX_TAIL   2 TX_HEAD   3 TX_TAIL
//   4 STATE     (LinkState: the guest sets Ready once the offsets are written)
//   5..11       drop counters (see the W_ names)
//   16..        rxLen[rx], rxOff[rx], txLen[tx], txOff[tx]

export const W_RX_HEAD = 0;
export const W_RX_TAIL = 1;
export const W_TX_HEAD = 2;
export const W_TX_TAIL = 3;
export const W_STATE = 4;
/** Frames the tender dropped: every RX slot was taken (the guest fell behind). */
export const W_RX_RING_FULL = 5;
/** Frames the tender dropped: the guest had not described its rings yet. */
export const W_RX_NOT_READY = 6;
/** Frames the tender dropped: longer than a slot or than mtu + 18. */
export const W_RX_BAD_LENGTH = 7;
/** Frames the guest dropped: every TX slot was taken (the tender fell behind). */
export const W_TX_RING_FULL = 8;
/** Frames the guest dropped: longer than mtu + 14. */
export const W_TX_BAD_LENGTH = 9;
const HEADER_WORDS = 16;

export const LinkState = { Booting: 0, Ready: 1, Stopped: 2 } as const;

/** Default ring sizes: 256 slots each way (512 KiB of arena apiece). */
export const DEFAULT_RING_SLOTS = 256;

/** Word indexes of the four per-slot tables. */
export interface LinkTables {
  rxSlots: number;
  txSlots: number;
  rxLen: number;
  rxOff: number;
  txLen: number;
  txOff: number;
  words: number;
}

export function linkTables(rxSlots: number, txSlots: number): LinkTables {
  const rxLen = HEADER_WORDS;
  const rxOff = rxLen + rxSlots;
  const txLen = rxOff + rxSlots;
  const txOff = txLen + txSlots;
  return { rxSlots, txSlots, rxLen, rxOff, txLen, txOff, words: txOff + txSlots };
}

/** What both ends agree on; the tender passes it to the guest at boot. */
export interface LinkConfig {
  /** The control block (see above). */
  control: SharedArrayBuffer;
  rxSlots: number;
  txSlots: number;
  /** The guest's MAC (6 bytes). */
  mac: Uint8Array;
  /** IP MTU of the link. */
  mtu: number;
}

/** A control block for rings of these sizes (powers of two, 2..4096). */
export function createLinkConfig(mac: Uint8Array, mtu = 1500, rxSlots = DEFAULT_RING_SLOTS, txSlots = DEFAULT_RING_SLOTS): LinkConfig {
  for (const n of [rxSlots, txSlots]) {
    if (!Number.isInteger(n) || n < 2 || n > 4096 || (n & (n - 1)) !== 0) {
      throw new RangeError(`link: ring size ${n} must be a power of two from 2 to 4096`);
    }
  }
  const control = new SharedArrayBuffer(linkTables(rxSlots, txSlots).words * 4);
  return { control, rxSlots, txSlots, mac: Uint8Array.from(mac), mtu };
}

/** Counters of the link, read by either side. */
export interface LinkCounters {
  rxRingFull: number;
  rxNotReady: number;
  rxBadLength: number;
  txRingFull: number;
  txBadLength: number;
}

export function readLinkCounters(ctl: Int32Array): LinkCounters {
  return {
    rxRingFull: Atomics.load(ctl, W_RX_RING_FULL) >>> 0,
    rxNotReady: Atomics.load(ctl, W_RX_NOT_READY) >>> 0,
    rxBadLength: Atomics.load(ctl, W_RX_BAD_LENGTH) >>> 0,
    txRingFull: Atomics.load(ctl, W_TX_RING_FULL) >>> 0,
    txBadLength: Atomics.load(ctl, W_TX_BAD_LENGTH) >>> 0,
  };
}

// Atomics.waitAsync is in Node 20 but not in the ES2023 lib typings.
type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };

export const waitAsync = (
  Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, timeout?: number): WaitAsyncResult }
).waitAsync.bind(Atomics);

/** Wakes the other side once per batch: the first publish in a task queues a
 *  microtask that notifies, so a burst of frames costs one notify. */
export class Doorbell {
  private queued = false;

  constructor(
    private readonly ctl: Int32Array,
    private readonly word: number,
  ) {}

  ring(): void {
    if (this.queued) return;
    this.queued = true;
    queueMicrotask(this.notify);
  }

  private readonly notify = (): void => {
    this.queued = false;
    Atomics.notify(this.ctl, this.word);
  };
}
