// The network behind a guest's link (docs/architecture.md section 6), chosen by --net:
//   user[:hostfwd=...]  user-mode networking: a gateway stack in the tender
//                       (host/net/user.ts) forwarding 127.0.0.1 ports
//   tap:IFNAME          a Linux TAP interface (host/devices/tap.ts)
//   vswitch             a port of an in-process VSwitch (API only: tests, benchmarks)
//   fd:N                frames over an inherited stream: the guest process of
//                       `--isolate process`, whose network is its parent's

import { CHUNK_SIZE, formatMac, type Clock, type NetDevice, type EngineName, type PortOptions, type VSwitch } from '../stack/index.js';
import type { LinkWords, RxLinkWords } from './devices/tap.js';
import { attachToVSwitch } from './devices/vswitch-backend.js';
import { createEngine } from './hotpath.js';
import { connectionsFitting } from './budget.js';
import { Socket } from 'node:net';
import { bridge } from './link/bridge.js';
import { FrameStream } from './isolate/frame-stream.js';
import { LinkState, linkTables, W_RX_BAD_LENGTH, W_RX_HEAD, W_RX_NOT_READY, W_RX_RING_FULL, W_RX_TAIL, W_STATE, W_TX_HEAD, W_TX_TAIL, type LinkConfig } from './link/layout.js';
import { parseUserNet, startUserNet, UsageError, type HostForward } from './net/user.js';

export type NetSpec =
  | { kind: 'user'; hostfwd: HostForward[]; guestfwd?: number[]; restrict?: boolean }
  | { kind: 'tap'; ifname: string }
  | { kind: 'vswitch'; vswitch: VSwitch; port?: PortOptions }
  /** Frames over a stream on an inherited descriptor (the guest process of
   *  `--isolate process`, whose network is its parent's; frame-stream.ts). */
  | { kind: 'fd'; fd: number };

export interface Backend {
  /** One line for the boot log. */
  readonly description: string;
  /** The backend's own figures (the stats line's `net`). */
  stats(): unknown;
  close(): Promise<void>;
}

export interface BackendContext {
  /** The guest's link as this process sees it: the tender link, or the
   *  stream to a guest process (`--isolate process`). */
  link: NetDevice;
  /** The guest's arena and the link's configuration, when they are in this
   *  process: a backend may serve the guest's rings itself, past the
   *  tender link (a TAP's threads). */
  arena?: SharedArrayBuffer;
  linkConfig?: LinkConfig;
  /** Frames are being captured (--pcap): they must pass through `link`. */
  capturing: boolean;
  /** Segmentation offload on a TAP link where the kernel offers it (default on). */
  offloads?: boolean;
  engine: EngineName;
  clock: Clock;
  /** The guest's arena size: the gateway's arena matches it. */
  arenaBytes: number;
  guest: { address: string; prefix: number; gateway: string | null; mac: Uint8Array };
}

/** Smallest arena of the user-mode gateway. */
const GATEWAY_MIN_ARENA = 16 * 1024 * 1024;
/** The gateway relays each guest connection to a host socket, so the tender's
 *  open-file limit (20,000 on a typical machine) bounds it before its table does. */
const GATEWAY_MAX_CONNECTIONS = 16_384;

/** The gateway's connection table: a quarter of its arena (the rest carries
 *  the relayed bytes), at most GATEWAY_MAX_CONNECTIONS (16M: 16,128). */
export function gatewayConnections(arenaBytes: number): number {
  return Math.min(GATEWAY_MAX_CONNECTIONS, connectionsFitting(Math.floor(arenaBytes / 4)));
}

/** Parse --net: `user`, `user:hostfwd=...`, `tap:IFNAME`. */
export function parseNet(text: string): NetSpec {
  if (text === 'user') return { kind: 'user', hostfwd: [], guestfwd: [], restrict: true };
  if (text.startsWith('user:')) return { kind: 'user', ...parseUserNet(text.slice(5)) };
  if (text === 'tap' || text === 'tap:') throw new UsageError('--net tap: missing interface name (--net tap:IFNAME)');
  if (text.startsWith('tap:')) {
    const ifname = text.slice(4);
    // The TAP driver checks the name too; this gives the mistake a usage error.
    if (ifname.length > 15 || !/^[A-Za-z0-9_.%-]+$/.test(ifname)) {
      throw new UsageError(`--net tap: invalid interface name '${ifname}' (at most 15 letters, digits, '-', '_', '.')`);
    }
    return { kind: 'tap', ifname };
  }
  if (text.startsWith('fd:')) {
    const fd = Number(text.slice(3));
    if (!/^\d+$/.test(text.slice(3)) || fd < 3) throw new UsageError(`--net ${text}: expected fd:N, N an inherited descriptor of 3 or more`);
    return { kind: 'fd', fd };
  }
  throw new UsageError(`--net: unknown network '${text}' (expected user[:hostfwd=...] or tap:IFNAME)`);
}

export async function openBackend(spec: NetSpec, ctx: BackendContext): Promise<Backend> {
  if (spec.kind === 'user') return openUser(spec, ctx);
  if (spec.kind === 'tap') return openTapBackend(spec.ifname, ctx);
  if (spec.kind === 'fd') return openFdBackend(spec.fd, ctx);
  const backend = attachToVSwitch(ctx.link, spec.vswitch, { mac: ctx.guest.mac, ...spec.port });
  return {
    description: `vswitch port ${backend.port.index}, guest ${ctx.guest.address}/${ctx.guest.prefix}`,
    stats: () => backend.port.counters,
    close: async () => backend.close(),
  };
}

async function openUser(spec: Extract<NetSpec, { kind: 'user' }>, ctx: BackendContext): Promise<Backend> {
  const { hostfwd } = spec;
  const restrict = spec.restrict ?? true;
  const guestfwd = spec.guestfwd ?? [];
  const { guest } = ctx;
  if (guest.gateway === null) throw new UsageError('--net user needs a gateway address (--gateway)');
  const arenaBytes = Math.max(GATEWAY_MIN_ARENA, ctx.arenaBytes);
  const hotpath = await createEngine(ctx.engine, arenaBytes);
  const net = await startUserNet({
    tcp: { maxConnections: gatewayConnections(arenaBytes) },
    link: ctx.link,
    hotpath,
    clock: ctx.clock,
    guestAddress: guest.address,
    gatewayAddress: guest.gateway,
    prefix: guest.prefix,
    hostfwd,
    guestfwd,
    restrict,
  });
  await net.ready;
  const rules = hostfwd.map((f) => `${f.proto} ${f.hostAddress}:${f.hostPort} -> guest:${f.guestPort}`);
  return {
    description:
      `user: guest ${guest.address}/${guest.prefix}, gateway ${guest.gateway}` +
      (rules.length > 0 ? `; hostfwd ${rules.join(', ')}` : '; no host forwards') +
      `; guest to host: ${!restrict ? 'every port (restrict=off)' : guestfwd.length > 0 ? `tcp ${guestfwd.join(', ')}` : 'nothing'}`,
    stats: () => net.stats(),
    close: () => net.close(),
  };
}

/** A TAP interface serves the guest's rings with its own threads (no work per
 *  frame on the tender's main thread); with a capture, frames go through the
 *  tender link instead, where the capture sees them. */
async function openTapBackend(ifname: string, ctx: BackendContext): Promise<Backend> {
  // Loaded when used: it loads a native library (koffi).
  const { openTap, openTapLink } = await import('./devices/tap.js');
  let tap;
  if (ctx.capturing || ctx.arena === undefined || ctx.linkConfig === undefined) {
    tap = await openTap(ifname, { mtu: ctx.link.mtu });
    bridge(ctx.link, tap);
  } else {
    const words = linkThreadWords(ctx.arena, ctx.linkConfig);
    tap = await openTapLink(ifname, words.rx, words.tx, { mtu: ctx.link.mtu, offloads: ctx.offloads ?? true });
  }
  const { guest } = ctx;
  return {
    description: `tap:${tap.ifname}: guest ${guest.address}/${guest.prefix} mac ${formatMac(guest.mac)}` +
      (guest.gateway ? `, gateway ${guest.gateway}` : '') + tapPath(ctx, tap.stats().offloads?.on ?? false),
    stats: () => tap.stats(),
    close: () => tap.close(),
  };
}

/** How frames reach the TAP, for the boot line. */
function tapPath(ctx: BackendContext, offloads: boolean): string {
  if (ctx.capturing) return ' (through the tender, for --pcap; no offloads)';
  if (ctx.arena === undefined) return ' (through the tender; no offloads)';
  return offloads ? '; offloads: TCP segmentation (virtio-net header)' : ctx.offloads === false ? '; offloads off' : '; offloads: none (the kernel refused IFF_VNET_HDR)';
}

/** The guest process's end of its link to the tender process: the tender
 *  link bridged to the frame stream on an inherited descriptor. */
function openFdBackend(fd: number, ctx: BackendContext): Backend {
  let stream: FrameStream;
  try {
    stream = new FrameStream(new Socket({ fd, readable: true, writable: true }), ctx.guest.mac, ctx.link.mtu);
  } catch (err) {
    throw new UsageError(`--net fd:${fd}: not a stream this process inherited (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  bridge(ctx.link, stream);
  return {
    description: `fd:${fd}: frames to and from the tender process`,
    stats: () => stream.stats(),
    close: async () => stream.close(),
  };
}

/** The words of the link's two rings that a TAP's threads use (layout.ts). */
export function linkThreadWords(arena: SharedArrayBuffer, config: LinkConfig): { rx: RxLinkWords; tx: LinkWords } {
  const t = linkTables(config.rxSlots, config.txSlots);
  const common = { arena, control: config.control, state: W_STATE, ready: LinkState.Ready, slotBytes: CHUNK_SIZE };
  return {
    rx: { ...common, head: W_RX_HEAD, tail: W_RX_TAIL, lengths: t.rxLen, offsets: t.rxOff, slots: config.rxSlots, ringFull: W_RX_RING_FULL, notReady: W_RX_NOT_READY, badLength: W_RX_BAD_LENGTH },
    tx: { ...common, head: W_TX_HEAD, tail: W_TX_TAIL, lengths: t.txLen, offsets: t.txOff, slots: config.txSlots },
  };
}
