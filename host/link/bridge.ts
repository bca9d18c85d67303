// Join two NetDevices: every frame one receives, the other sends. The
// tender's end of a guest's link is bridged to a TAP device or a vswitch
// port this way. Views are valid during the call only, and send() copies
// (or writes) before returning, so nothing is kept or allocated per frame.

import type { NetDevice } from '../../stack/index.js';

export function bridge(a: NetDevice, b: NetDevice): void {
  a.setReceiver((frame) => {
    b.send(frame);
  });
  b.setReceiver((frame) => {
    a.send(frame);
  });
}
