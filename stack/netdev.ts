// The stack's view of its network device (docs/architecture.md section 6): frames out,
// frames in. The device moves bytes; the stack owns every buffer it keeps.

export interface NetDevice {
  /** The interface's MAC address (6 bytes). */
  readonly mac: Uint8Array;
  /** IP MTU in bytes (1500 on Ethernet); Ethernet frames are at most mtu + 14. */
  readonly mtu: number;
  /** Send one Ethernet frame. The view is only valid during the call: the device
   *  copies it (or writes it to the wire) before returning. Returns false when the
   *  device dropped it (queue full, link down); the caller counts that. */
  send(frame: Uint8Array): boolean;
  /** Register the receive side. The device calls it once per frame; the view is
   *  only valid during the call (the stack copies it into an arena RX slot). */
  setReceiver(receive: (frame: Uint8Array) => void): void;
  /** Optional, for a device that delivers frames in batches (a ring drained
   *  in one turn): it calls `end` after the last frame of every batch, in the
   *  same turn, before anything else runs. The stack then finishes what its
   *  frames caused once per connection (one ACK for the batch, one wake-up
   *  of the application, one burst of what the ACKs let go) instead of once
   *  per frame. A device that offers it must call `end` after every batch. */
  setBatchEnd?(end: () => void): void;
}
