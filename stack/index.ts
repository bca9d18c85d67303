// Public exports of the stack package (platform-neutral: no node: imports).
// Engines are created by the host (host/hotpath.ts) or by createTsEngine.

export { Stack, STACK_DEFAULTS, type StackOptions, type StackLimits } from './stack.js';
export {
  DROP_NAMES,
  stackLevels,
  type StackLevels,
  type TcpLevels,
  type StackStats,
  type ArenaStats,
  type TimerStats,
} from './stats.js';
export {
  parseIpv4,
  formatIpv4,
  toIpv4,
  parseCidr,
  formatCidr,
  prefixMask,
  sameSubnet,
  subnetBroadcast,
  isMulticast,
  parseMac,
  formatMac,
  IPV4_BROADCAST,
  IPV4_ANY,
  type Ipv4Input,
} from './address.js';
export { Udp, UdpSocket, type UdpDatagram, type UdpMessageHandler, type UdpLimits } from './udp/udp.js';
export { Tcp, type ConnectOptions } from './tcp/tcp.js';
export { Connection } from './tcp/connection.js';
export { Listener, type ListenOptions } from './tcp/listener.js';
export { TcpError } from './tcp/errors.js';
export type { TcpOptions } from './tcp/options.js';
export type { TcpStats, CloseInfo, CloseReason } from './tcp/stats.js';
export type { ArpLimits } from './link/arp.js';
export type { FragmentLimits } from './ip/fragments.js';
export { MAX_PAYLOAD as MAX_REASSEMBLED_PAYLOAD } from './ip/fragments.js';
export type { IcmpLimits } from './ip/icmp.js';
export type { Clock, Alarm } from './clock.js';
export type { NetDevice } from './netdev.js';
export type { HotPath, EngineName } from './hotpath/engine.js';
export { createTsEngine } from './hotpath/ts.js';
export { VirtualClock } from './time/virtual-clock.js';
export { RealClock } from './time/real-clock.js';
export { Simulation } from './sim.js';
export { VSwitch, type VSwitchPort, type LinkFaults, type PortOptions } from './vswitch/vswitch.js';
