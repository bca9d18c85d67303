// The in-process network of `startGuest({ net: { kind: 'vswitch', vswitch } })`:
// the guest's link becomes one port of a VSwitch, so tests and benchmarks can
// run several guests (each in its own Worker, under its own budget) and
// ordinary stacks in one process, with the switch's fault injection. Use the
// switch on a RealClock: the guests run in real time.

import type { NetDevice, PortOptions, VSwitch, VSwitchPort } from '../../stack/index.js';
import { bridge } from '../link/bridge.js';

export interface VSwitchBackend {
  readonly port: VSwitchPort;
  /** Stop passing frames (a switch port cannot be removed; it goes quiet). */
  close(): void;
}

export function attachToVSwitch(link: NetDevice, vswitch: VSwitch, opts: PortOptions = {}): VSwitchBackend {
  const port = vswitch.attach({ mtu: link.mtu, ...opts });
  bridge(link, port);
  return {
    port,
    close() {
      port.setReceiver(() => {});
      link.setReceiver(() => {});
    },
  };
}
