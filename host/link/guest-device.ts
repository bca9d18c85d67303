// The guest's end of the link (layout.ts): the solo5-like device the guest
// sees (docs/architecture.md section 6), and the NetDevice its stack uses.
//
//   info()            MAC and MTU
//   read()            the next received frame: its arena offset (length in
//                     readLength), 0 when none; the slot goes back to the
//                     tender on the next read() or release()
//   write(off, len)   send the frame at [off, off+len) of the arena
//   yield(deadline)   wait until a frame arrives or the monotonic deadline
//                     passes; resolves true when frames are waiting
//   clock             monotonic and wall time (RealClock)
//
// run() drives the stack: it drains every waiting frame into
// stack.receiveInPlace (no copy: the tender already wrote it in the arena),
// then yields; after a ring's worth of frames it lets one macrotask turn pass
// so the guest's timers and application code are never starved.

import { OwnerKind, ownerTag, type HotPath, type NetDevice, RealClock } from '../../stack/index.js';
import {
  Doorbell,
  LinkState,
  waitAsync,
  W_RX_HEAD,
  W_RX_TAIL,
  W_STATE,
  W_TX_BAD_LENGTH,
  W_TX_HEAD,
  W_TX_RING_FULL,
  W_TX_TAIL,
  type LinkConfig,
} from './layout.js';
import { LinkEnd } from './link-end.js';

/** Owner ids of the two rings' chunks (owner kind Device). */
export const RX_RING_OWNER = ownerTag(OwnerKind.Device, 1);
export const TX_RING_OWNER = ownerTag(OwnerKind.Device, 2);

export type InPlaceReceiver = (off: number, len: number) => void;

export class GuestDevice extends LinkEnd implements NetDevice {
  readonly mac: Uint8Array;
  readonly mtu: number;
  readonly clock = new RealClock();
  /** Length of the frame the last read() returned. */
  readLength = 0;
  framesIn = 0;
  framesOut = 0;

  private readonly bytes: Uint8Array;
  private readonly txDoorbell: Doorbell;
  private rxTail: number;
  private txHead: number;
  private holding = false;
  private stopped = false;
  private receiver: ((frame: Uint8Array) => void) | null = null;
  private inPlace: InPlaceReceiver | null = null;
  private batchEnd: (() => void) | null = null;
  /** One view per RX slot for view receivers, re-made only when the length changes. */
  private readonly views: (Uint8Array | undefined)[];

  /** Allocates both rings in the arena and tells the tender where they are. */
  constructor(
    private readonly hot: HotPath,
    config: LinkConfig,
  ) {
    super(config);
    this.mac = Uint8Array.from(config.mac);
    this.mtu = config.mtu;
    this.bytes = hot.bytes;
    this.views = new Array<Uint8Array | undefined>(config.rxSlots).fill(undefined);
    this.txDoorbell = new Doorbell(this.ctl, W_TX_HEAD);
    this.allocRing(this.rxOff, RX_RING_OWNER);
    this.allocRing(this.txOff, TX_RING_OWNER);
    this.rxTail = Atomics.load(this.ctl, W_RX_TAIL);
    this.txHead = Atomics.load(this.ctl, W_TX_HEAD);
    Atomics.store(this.ctl, W_STATE, LinkState.Ready);
    Atomics.notify(this.ctl, W_STATE);
  }

  private allocRing(offsets: Int32Array, owner: number): void {
    for (let i = 0; i < offsets.length; i++) {
      const off = this.hot.alloc(owner);
      if (off === 0) throw new Error(`link: the arena cannot hold the device rings (${offsets.length} slots)`);
      offsets[i] = off;
    }
  }

  // ---- the solo5-like API ------------------------------------------------------

  info(): { mac: Uint8Array; mtu: number } {
    return { mac: this.mac, mtu: this.mtu };
  }

  read(): number {
    this.release();
    const tail = this.rxTail;
    if (tail === Atomics.load(this.ctl, W_RX_HEAD)) return 0;
    const i = tail & this.rxMask;
    this.holding = true;
    this.readLength = this.rxLen[i]!;
    return this.rxOff[i]!;
  }

  /** Hand the slot of the last read() back to the tender. */
  release(): void {
    if (!this.holding) return;
    this.holding = false;
    this.rxTail = (this.rxTail + 1) | 0;
    Atomics.store(this.ctl, W_RX_TAIL, this.rxTail);
  }

  write(off: number, len: number): boolean {
    const i = this.reserve(len);
    if (i < 0) return false;
    this.bytes.copyWithin(this.txOff[i]!, off, off + len);
    this.publish(i, len);
    return true;
  }

  async yield(deadline: number): Promise<boolean> {
    const head = Atomics.load(this.ctl, W_RX_HEAD);
    if (head !== this.rxTail || this.stopped) return head !== this.rxTail;
    const timeout = deadline === Infinity ? undefined : Math.max(0, deadline - this.clock.now());
    const w = waitAsync(this.ctl, W_RX_HEAD, head, timeout);
    if (w.async) await w.value;
    return Atomics.load(this.ctl, W_RX_HEAD) !== this.rxTail;
  }

  // ---- NetDevice ------------------------------------------------------------------

  send(frame: Uint8Array): boolean {
    // The stack builds frames in its arena: copy within it, no view needed.
    if (frame.buffer === this.bytes.buffer) return this.write(frame.byteOffset, frame.length);
    const i = this.reserve(frame.length);
    if (i < 0) return false;
    this.bytes.set(frame, this.txOff[i]!);
    this.publish(i, frame.length);
    return true;
  }

  setReceiver(receive: (frame: Uint8Array) => void): void {
    this.receiver = receive;
  }

  /** The frames one pass of run() drains are a batch (NetDevice.setBatchEnd). */
  setBatchEnd(end: () => void): void {
    this.batchEnd = end;
  }

  /** Deliver frames as arena offsets instead of views (stack.receiveInPlace). */
  setInPlaceReceiver(receive: InPlaceReceiver | null): void {
    this.inPlace = receive;
  }

  /** Deliver frames until stop(). */
  async run(): Promise<void> {
    const batch = this.rxMask + 1;
    while (!this.stopped) {
      let n = 0;
      for (let off = this.read(); off !== 0; off = n < batch ? this.read() : 0) {
        this.deliver(off, this.readLength);
        n++;
      }
      this.release();
      if (n > 0) this.batchEnd?.();
      if (this.stopped) break;
      // A full batch: let timers and application code run before the next.
      if (n >= batch) await new Promise<void>((resolve) => setImmediate(resolve));
      else await this.yield(Infinity);
    }
  }

  /** End run(); later sends fail. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    Atomics.store(this.ctl, W_STATE, LinkState.Stopped);
    Atomics.notify(this.ctl, W_RX_HEAD); // wake our own yield()
    Atomics.notify(this.ctl, W_STATE);
  }

  // ---- internals ------------------------------------------------------------------

  /** The TX slot for a frame of `len` bytes, or -1 (counted) when it cannot go. */
  private reserve(len: number): number {
    if (this.stopped) return -1;
    if (len < 14 || len > this.mtu + 14) {
      Atomics.add(this.ctl, W_TX_BAD_LENGTH, 1);
      return -1;
    }
    const head = this.txHead;
    if (((head - Atomics.load(this.ctl, W_TX_TAIL)) | 0) > this.txMask) {
      Atomics.add(this.ctl, W_TX_RING_FULL, 1);
      return -1;
    }
    return head & this.txMask;
  }

  private publish(i: number, len: number): void {
    this.txLen[i] = len;
    this.txHead = (this.txHead + 1) | 0;
    Atomics.store(this.ctl, W_TX_HEAD, this.txHead);
    this.framesOut++;
    this.txDoorbell.ring();
  }

  private deliver(off: number, len: number): void {
    this.framesIn++;
    if (this.inPlace) return this.inPlace(off, len);
    if (!this.receiver) return;
    const i = this.rxTail & this.rxMask;
    let view = this.views[i];
    if (view === undefined || view.length !== len || view.byteOffset !== off) {
      view = new Uint8Array(this.bytes.buffer, off, len);
      this.views[i] = view;
    }
    this.receiver(view);
  }
}
