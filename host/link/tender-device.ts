// The tender's end of the link (layout.ts): a NetDevice for the backend (a
// TAP pump, the user-mode gateway's stack, a vswitch port). send() writes a
// frame straight into the guest's next RX slot in its arena; frames the guest
// sends are handed to the receiver as views of their TX slots, several per
// wake-up, with one cached view per slot (no allocation per frame).
//
// Before the guest has described its rings, frames towards it are dropped
// and counted (the gateway's first ARP, say); TCP and ARP retry.

import { type NetDevice, CHUNK_SIZE } from '../../stack/index.js';
import {
  Doorbell,
  LinkState,
  readLinkCounters,
  waitAsync,
  W_RX_BAD_LENGTH,
  W_RX_HEAD,
  W_RX_NOT_READY,
  W_RX_RING_FULL,
  W_RX_TAIL,
  W_STATE,
  W_TX_HEAD,
  W_TX_TAIL,
  type LinkConfig,
  type LinkCounters,
} from './layout.js';
import { LinkEnd } from './link-end.js';

/** A capture point for both directions (a PcapWriter fits). */
export interface FrameCapture {
  write(frame: Uint8Array, wallMs: number): void;
}

export interface TenderLinkOptions {
  /** The MAC this end plays (the gateway's, or the backend's). */
  mac: Uint8Array;
  capture?: FrameCapture;
}

export interface TenderLinkStats extends LinkCounters {
  /** Frames (and bytes) written into the guest's RX ring. */
  toGuest: { frames: number; bytes: number };
  /** Frames (and bytes) taken from the guest's TX ring. */
  fromGuest: { frames: number; bytes: number };
  /** Frames the backend's receiver threw on. */
  receiverErrors: number;
}

export class TenderLink extends LinkEnd implements NetDevice {
  readonly mac: Uint8Array;
  readonly mtu: number;

  private readonly bytes: Uint8Array;
  private readonly maxFrame: number;
  private readonly rxDoorbell: Doorbell;
  private readonly capture: FrameCapture | undefined;
  private readonly views: (Uint8Array | undefined)[];
  private receiver: ((frame: Uint8Array) => void) | null = null;
  private batchEnd: (() => void) | null = null;
  private rxHead: number;
  private txTail: number;
  private ready = false;
  private closed = false;
  private running = false;
  private readonly toGuest = { frames: 0, bytes: 0 };
  private readonly fromGuest = { frames: 0, bytes: 0 };
  private receiverErrors = 0;

  constructor(
    arena: SharedArrayBuffer,
    config: LinkConfig,
    opts: TenderLinkOptions,
  ) {
    super(config);
    this.mac = Uint8Array.from(opts.mac);
    this.mtu = config.mtu;
    this.capture = opts.capture;
    this.bytes = new Uint8Array(arena);
    // A VLAN tag may come on top of mtu + 14; a slot is one arena chunk.
    this.maxFrame = Math.min(CHUNK_SIZE, config.mtu + 18);
    this.views = new Array<Uint8Array | undefined>(config.txSlots).fill(undefined);
    this.rxDoorbell = new Doorbell(this.ctl, W_RX_HEAD);
    this.rxHead = Atomics.load(this.ctl, W_RX_HEAD);
    this.txTail = Atomics.load(this.ctl, W_TX_TAIL);
  }

  /** A frame towards the guest: copied into its next RX slot. */
  send(frame: Uint8Array): boolean {
    const ctl = this.ctl;
    if (this.closed) return false;
    if (!this.isReady()) {
      Atomics.add(ctl, W_RX_NOT_READY, 1);
      return false;
    }
    const len = frame.length;
    if (len < 14 || len > this.maxFrame) {
      Atomics.add(ctl, W_RX_BAD_LENGTH, 1);
      return false;
    }
    const head = this.rxHead;
    if (((head - Atomics.load(ctl, W_RX_TAIL)) | 0) > this.rxMask) {
      Atomics.add(ctl, W_RX_RING_FULL, 1);
      return false;
    }
    const i = head & this.rxMask;
    this.bytes.set(frame, this.rxOff[i]!);
    this.rxLen[i] = len;
    this.rxHead = (head + 1) | 0;
    Atomics.store(ctl, W_RX_HEAD, this.rxHead);
    this.rxDoorbell.ring();
    this.toGuest.frames++;
    this.toGuest.bytes += len;
    this.capture?.write(frame, wallClock());
    return true;
  }

  /** Frames from the guest; the view is valid during the call only. */
  setReceiver(receive: (frame: Uint8Array) => void): void {
    this.receiver = receive;
    if (!this.running) {
      this.running = true;
      void this.run();
    }
  }

  /** The frames one pass of the TX ring hands over are a batch (NetDevice.setBatchEnd):
   *  the gateway's stack answers them once per connection. */
  setBatchEnd(end: () => void): void {
    this.batchEnd = end;
  }

  stats(): TenderLinkStats {
    return {
      ...readLinkCounters(this.ctl),
      toGuest: { ...this.toGuest },
      fromGuest: { ...this.fromGuest },
      receiverErrors: this.receiverErrors,
    };
  }

  /** Stop delivering; later sends fail. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.notify(this.ctl, W_TX_HEAD); // wake our own wait
    Atomics.notify(this.ctl, W_STATE);
  }

  private isReady(): boolean {
    if (!this.ready) this.ready = Atomics.load(this.ctl, W_STATE) === LinkState.Ready;
    return this.ready;
  }

  /** Drain the TX ring, a ring's worth per turn of the event loop, then wait. */
  private async run(): Promise<void> {
    const ctl = this.ctl;
    while (!this.isReady() && !this.closed) {
      const w = waitAsync(ctl, W_STATE, LinkState.Booting);
      if (w.async) await w.value;
    }
    const batch = this.txMask + 1;
    while (!this.closed) {
      let n = 0;
      let head = Atomics.load(ctl, W_TX_HEAD);
      while (this.txTail !== head && n < batch && !this.closed) {
        this.deliver(this.txTail & this.txMask);
        this.txTail = (this.txTail + 1) | 0;
        Atomics.store(ctl, W_TX_TAIL, this.txTail);
        n++;
        if (this.txTail === head) head = Atomics.load(ctl, W_TX_HEAD);
      }
      if (n > 0) this.endBatch();
      if (this.closed) break;
      if (n >= batch) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      const w = waitAsync(ctl, W_TX_HEAD, head);
      if (w.async) await w.value;
    }
  }

  private endBatch(): void {
    try {
      this.batchEnd?.();
    } catch (err) {
      // As a throwing receiver: counted, said once; the link goes on.
      if (this.receiverErrors++ === 0) process.emitWarning(`link: the backend's batch end threw: ${String(err)}`);
    }
  }

  private deliver(i: number): void {
    const off = this.txOff[i]!;
    const len = this.txLen[i]!;
    let view = this.views[i];
    if (view === undefined || view.length !== len || view.byteOffset !== off) {
      view = new Uint8Array(this.bytes.buffer, off, len);
      this.views[i] = view;
    }
    this.fromGuest.frames++;
    this.fromGuest.bytes += len;
    this.capture?.write(view, wallClock());
    try {
      this.receiver?.(view);
    } catch (err) {
      // A throwing backend must not stall the link: count it, say it once.
      if (this.receiverErrors++ === 0) process.emitWarning(`link: the backend's receiver threw: ${String(err)}`);
    }
  }
}

/** Wall-clock ms with sub-ms precision, for capture timestamps. */
function wallClock(): number {
  return performance.timeOrigin + performance.now();
}
