// Ethernet: the bottom of the stack. Received frames are filtered by
// destination MAC, copied into an arena RX slot, decoded by the hot path and
// handed to ARP or IPv4; the slot is freed as soon as that synchronous handling
// returns (docs/architecture.md section 2). Outgoing frames built in arena chunks leave
// through send(), which always consumes the chunk.
//
// Frames are handled one at a time: the decoded record is a single shared
// place. A device that delivers a frame from inside send() (a synchronous
// loopback, say) gets it deferred until the current frame is done.

import type { HotPath } from '../hotpath/engine.js';
import { OwnerKind, ownerTag } from '../hotpath/engine.js';
import { CHUNK_SIZE, D, ETH_HLEN, Kind, Reason, Slow } from '../hotpath/layout.js';
import type { FastReceiver } from '../layers.js';
import type { NetDevice } from '../netdev.js';
import { macHi, macLo } from '../address.js';
import { Drop, type DropCounters } from '../stats.js';

/** A layer above Ethernet: reads the frame from hot.decoded during the call. */
export interface FrameHandler {
  input(): void;
}

const RX_TAG = ownerTag(OwnerKind.Rx, 0);
/** Frames a device may deliver re-entrantly during the handling of one frame. */
const DEFER_MAX = 16;
/** Views kept for sent slots (a power of two): a burst's worth. */
const TX_VIEWS = 128;
const CHUNK_SHIFT = Math.log2(CHUNK_SIZE);

export class Ethernet {
  /** Our MAC as the encode record's two words. */
  readonly macHi: number;
  readonly macLo: number;
  framesRx = 0;
  framesTx = 0;

  private readonly mac: Uint8Array;
  private arp: FrameHandler | null = null;
  private ipv4: FrameHandler | null = null;
  private fast: FastReceiver | null = null;
  private stopped = false;
  // Frames deferred while another is handled (see defer()).
  private busy = false;
  private readonly deferredSlots = new Int32Array(DEFER_MAX);
  private readonly deferredLens = new Int32Array(DEFER_MAX);
  private deferred = 0;
  private nextDeferred = 0;
  /** Views of sent slots, by chunk number modulo TX_VIEWS (txView()). */
  private readonly txViews: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(TX_VIEWS);
  private txBytes: Uint8Array | null = null;

  constructor(
    private readonly hot: HotPath,
    private readonly device: NetDevice,
    private readonly drops: DropCounters,
  ) {
    this.mac = Uint8Array.from(device.mac.subarray(0, 6));
    this.macHi = macHi(this.mac, 0);
    this.macLo = macLo(this.mac, 0);
  }

  /** The largest frame we build or accept: an IP MTU's worth, within one chunk. */
  get maxFrameLength(): number {
    return Math.min(this.device.mtu + ETH_HLEN, CHUNK_SIZE);
  }

  registerArp(handler: FrameHandler): void {
    this.arp = handler;
  }

  registerIpv4(handler: FrameHandler): void {
    this.ipv4 = handler;
  }

  /** Offer every frame to `receiver`'s engine fast path first (null: decode only). */
  registerFast(receiver: FastReceiver | null): void {
    this.fast = receiver;
  }

  /** The device's receive callback (bound once; the frame view is valid during the call). */
  readonly receive = (frame: Uint8Array): void => {
    const len = frame.length;
    if (!this.accept(frame, 0, len)) return;
    const slot = this.hot.alloc(RX_TAG);
    if (slot === 0) return this.drops.count(Drop.RxArenaFull);
    this.hot.bytes.set(frame, slot);
    if (this.busy) return this.defer(slot, len);
    this.run(slot, len, true);
  };

  /** A frame the device already placed in the arena at [off, off+len), in a
   *  slot the device owns (a shared-memory link): handled where it lies,
   *  without an RX chunk or a copy. The bytes must stay put until this returns. */
  receiveInPlace(off: number, len: number): void {
    // Re-entrant delivery: copy it into an RX chunk and defer, as receive() does.
    if (this.busy) return this.receive(this.hot.bytes.subarray(off, off + len));
    if (!this.accept(this.hot.bytes, off, len)) return;
    this.run(off, len, false);
  }

  /** Count the frame and apply the checks that need no chunk. */
  private accept(bytes: Uint8Array, off: number, len: number): boolean {
    this.framesRx++;
    if (this.stopped) this.drops.count(Drop.Stopped);
    else if (len < ETH_HLEN) this.drops.reason(Reason.FrameTooShort);
    else if (len > CHUNK_SIZE) this.drops.count(Drop.FrameTooLong);
    else if (!this.forUs(bytes, off)) this.drops.count(Drop.NotOurMac);
    else return true;
    return false;
  }

  /** Handle one frame, then any deferred while it was handled. `owned`: the
   *  slot is an RX chunk of ours, freed after handling. */
  private run(slot: number, len: number, owned: boolean): void {
    this.busy = true;
    try {
      if (owned) this.handle(slot, len);
      else this.dispatch(slot, len);
      while (this.nextDeferred < this.deferred) {
        const i = this.nextDeferred++;
        this.handle(this.deferredSlots[i]!, this.deferredLens[i]!);
      }
    } finally {
      // Only reached with frames left if a handler threw: free them, counted.
      while (this.nextDeferred < this.deferred) this.dropDeferred(this.deferredSlots[this.nextDeferred++]!);
      this.nextDeferred = 0;
      this.deferred = 0;
      this.busy = false;
    }
  }

  /** Hand the frame built in `slot` to the device and free the slot. */
  send(slot: number, len: number): boolean {
    const ok = this.device.send(this.txView(slot, len));
    this.hot.free(slot);
    if (ok) this.framesTx++;
    else this.drops.count(Drop.DeviceDrop);
    return ok;
  }

  /** A view of [slot, slot + len) for the device, reused when the same slot
   *  goes out again with the same length. Why: the allocator hands the same
   *  few chunks back burst after burst, so most frames leave without making a
   *  new view (garbage, at one per frame, was a tenth of a bulk sender's
   *  time). The device keeps no view past send() (NetDevice), so reuse is safe. */
  private txView(slot: number, len: number): Uint8Array {
    const bytes = this.hot.bytes;
    // Views of another memory (never, with a fixed arena) are forgotten.
    // Compared by the view of the whole, as `buffer` costs more than a new view.
    if (bytes !== this.txBytes) {
      this.txViews.fill(undefined);
      this.txBytes = bytes;
    }
    const k = (slot >>> CHUNK_SHIFT) & (TX_VIEWS - 1);
    let view = this.txViews[k];
    if (view === undefined || view.byteOffset !== slot || view.length !== len) {
      view = bytes.subarray(slot, slot + len);
      this.txViews[k] = view;
    }
    return view;
  }

  /** After shutdown every received frame is counted and dropped. */
  stop(): void {
    this.stopped = true;
  }

  /** Decode and dispatch the frame in `slot`, then free the slot whatever happens. */
  private handle(slot: number, len: number): void {
    try {
      this.dispatch(slot, len);
    } finally {
      this.hot.free(slot);
    }
  }

  /** A device delivered a frame from inside send() while another frame is being
   *  handled: keep it in its RX slot and handle it right after, so the one
   *  decoded record is never overwritten halfway through a frame. */
  private defer(slot: number, len: number): void {
    if (this.deferred >= DEFER_MAX) return this.dropDeferred(slot);
    this.deferredSlots[this.deferred] = slot;
    this.deferredLens[this.deferred] = len;
    this.deferred++;
  }

  private dropDeferred(slot: number): void {
    this.hot.free(slot);
    this.drops.count(Drop.RxReentrant);
  }

  private dispatch(slot: number, len: number): void {
    const fast = this.fast;
    if (fast !== null) {
      // One engine call decodes the frame and, for an established
      // connection's steady traffic, processes the TCP segment whole.
      const result = this.hot.tcpInput(slot, len, fast.now());
      const verdict = result & 0xff;
      if (verdict === Slow.FAST) return fast.fastInput(result);
      if (verdict !== Slow.NOT_TCP) fast.slowInput(verdict);
    } else {
      this.hot.decode(slot, len);
    }
    const reason = this.hot.decoded[D.REASON]! as Reason;
    if (reason !== Reason.Ok) return this.drops.reason(reason);
    const kind = this.hot.decoded[D.KIND]!;
    if (kind === Kind.Arp) this.arp?.input();
    else if (kind !== Kind.None) this.ipv4?.input();
  }

  /** Unicast to our MAC or broadcast; multicast and other hosts' frames are not ours. */
  private forUs(frame: Uint8Array, off: number): boolean {
    const mac = this.mac;
    if (
      frame[off] === mac[0] &&
      frame[off + 1] === mac[1] &&
      frame[off + 2] === mac[2] &&
      frame[off + 3] === mac[3] &&
      frame[off + 4] === mac[4] &&
      frame[off + 5] === mac[5]
    ) {
      return true;
    }
    return (frame[off]! & frame[off + 1]! & frame[off + 2]! & frame[off + 3]! & frame[off + 4]! & frame[off + 5]!) === 0xff;
  }
}
