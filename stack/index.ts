// The public API of `uk-runtime` (the package's main entry): the
// platform-neutral stack, with no node: imports (stack/tsconfig.json builds
// this folder without Node's types, so one would fail the build). It runs
// wherever JavaScript runs; on Node, `uk-runtime/node` adds the loaders that
// read build/hotpath.wasm from disk and the tender.
//
// Two tiers:
// - applications: Stack and its sockets, Simulation, clocks, the switch;
// - device and engine authors: the hot-path engines' factories, the arena's
//   chunk and owner constants, the pcap writer. The tender (host/) is built on
//   exactly this tier: code outside stack/ imports stack/ only through here.

export { Stack, STACK_DEFAULTS, type StackOptions, type StackLimits } from './stack.js';
export {
  Admission,
  ADMISSION_DEFAULTS,
  type AdmissionOptions,
  type AdmissionStats,
  type HeapProbe,
} from './admission.js';
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
export { Tcp, type ConnectOptions, TCB_BYTES, tcbTableBytes } from './tcp/tcp.js';
export { Connection } from './tcp/connection.js';
export { Listener, type ListenOptions, type HandleCallbacks } from './tcp/listener.js';
export { TcpError } from './tcp/errors.js';
export type { TcpOptions } from './tcp/options.js';
export type { TcpStats, CloseInfo, CloseReason } from './tcp/stats.js';
export type { ArpLimits } from './link/arp.js';
export type { FragmentLimits } from './ip/fragments.js';
export { MAX_PAYLOAD as MAX_REASSEMBLED_PAYLOAD } from './ip/fragments.js';
export type { IcmpLimits } from './ip/icmp.js';
export type { Clock, Alarm } from './clock.js';
export { TimerQueue, TimerIds } from './time/timers.js';
export { OwnedTimers, type TimerHolder } from './time/owned-timers.js';
export type { TimerKind, TimerOwner } from './layers.js';
export { PcapWriter, type PcapOptions, type PcapSink } from './pcap.js';
export { ChunkQueue } from './tcp/buffers.js';
export type { NetDevice } from './netdev.js';

// ---- Engines and the arena (device and engine authors) ----------------------
export { type HotPath, type EngineName, OwnerKind, OWNER_KIND_NAMES, ownerTag, ownerKindOf } from './hotpath/engine.js';
export { CHUNK_SIZE, PAGE_SIZE, ARENA_META_BASE, ARENA_META_BYTES_PER_CHUNK } from './hotpath/layout.js';
export { createTsEngine, createTsEngineOver } from './hotpath/ts.js';
export {
  instantiateWasmEngine,
  createWasmEngineSync,
  createWasmEngineOnMemory,
  memoryPages,
  MAX_MEMORY_PAGES,
} from './hotpath/wasm.js';
export { VirtualClock } from './time/virtual-clock.js';
export { RealClock } from './time/real-clock.js';
export { Simulation } from './sim.js';
export { VSwitch, type VSwitchPort, type LinkFaults, type PortOptions } from './vswitch/vswitch.js';
