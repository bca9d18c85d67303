// User-mode networking (docs/architecture.md section 6), the default network of `uk run`:
// programs on the host's loopback reach the guest without root, as with
// QEMU's `-netdev user,hostfwd=...`.
//
// The tender runs a second, small stack, the gateway, on the other end of the
// guest's link (10.0.2.2 next to the guest's 10.0.2.15 by default). It relays:
// - TCP host forwards: a node:net server on 127.0.0.1:HOSTPORT per rule; each
//   host connection becomes a gateway connection to guest:GUESTPORT, from the
//   host client's own address (the gateway is a transparent proxy: the guest
//   sees 127.0.0.7, not 10.0.2.2, and answers it through its default route,
//   the gateway) and a port of the gateway's (tcp-forward.ts says why). So a
//   guest's per-address limits mean the same here as on TAP.
// - UDP host forwards: a dgram socket per rule; datagrams go to guest:GUESTPORT
//   from one gateway UDP socket per host peer, replies go back to that peer.
// - Guest connections to the gateway address: TCP to gateway:PORT is carried
//   to 127.0.0.1:PORT on the host (refused there -> reset in the guest).
// Nothing else: the guest has no route to other hosts through the gateway.
//
// The gateway runs in the tender's event loop on the clock it is given (a
// RealClock in production); its arena comes from opts.hotpath, created by the
// caller, and is separate from the guest's.

import { type Clock, formatIpv4, parseIpv4, prefixMask, sameSubnet, type HotPath, type NetDevice, Stack, type StackLimits, type StackStats, type TcpOptions } from '../../stack/index.js';
import { UsageError, type HostForward } from './hostfwd.js';
import { Outbound } from './outbound.js';
import type { RelayCounters } from './splice.js';
import { TcpForward } from './tcp-forward.js';
import { UdpForward } from './udp-forward.js';

export { parseHostForwards, parseUserNet, UsageError, type HostForward, type UserNetSpec } from './hostfwd.js';

export const USER_NET_DEFAULTS = {
  guestAddress: '10.0.2.15',
  gatewayAddress: '10.0.2.2',
  prefix: 24,
  connectTimeoutMs: 10_000,
  udpMaxPeers: 256,
  udpIdleMs: 60_000,
} as const;

export interface UserNetOptions {
  /** The tender's end of the guest's link. */
  link: NetDevice;
  /** The gateway stack's engine (its own arena). */
  hotpath: HotPath;
  clock: Clock;
  /** Default 10.0.2.15. */
  guestAddress?: string;
  /** Default 10.0.2.2. */
  gatewayAddress?: string;
  /** Default 24. */
  prefix?: number;
  hostfwd: HostForward[];
  /** Ports the guest's TCP connections to the gateway address may reach on
   *  the host (default none: connections to any other port are reset by the
   *  gateway, counted in its tcp.counters.rstSentClosedPort). */
  guestfwd?: number[];
  /** false: every port of the host's loopback is reachable (QEMU's
   *  restrict=off). Default true: only `guestfwd`'s. */
  restrict?: boolean;
  /** Address guest connections to the gateway are carried to (default 127.0.0.1). */
  hostLoopback?: string;
  /** Give up on the guest's handshake for a forwarded connection after this many ms (default 10 s). */
  connectTimeoutMs?: number;
  /** Host peers tracked per UDP forward (default 256). */
  udpMaxPeers?: number;
  /** A UDP peer idle this long is forgotten, ms (default 60 s). */
  udpIdleMs?: number;
  /** Gateway TCP tunables (tests shorten msl). */
  tcp?: Partial<TcpOptions>;
  limits?: Partial<StackLimits>;
}

export interface ForwardStats {
  proto: 'tcp' | 'udp';
  hostAddress: string;
  hostPort: number;
  guestPort: number;
  /** Relayed connections open now (UDP: peers in the table). */
  active: number;
  /** Relayed connections (UDP: peers) since start. */
  total: number;
  bytesToGuest: number;
  bytesToHost: number;
  /** Resets, refused or timed-out guest connects, host socket errors (UDP: dropped datagrams). */
  errors: number;
  /** TCP only: bytes held in JS between the two sides of the open connections
   *  (socket write queues and chunks the stack has not taken yet). */
  buffered?: number;
  /** UDP only. */
  datagramsToGuest?: number;
  datagramsToHost?: number;
}

export interface UserNetStats {
  forwards: ForwardStats[];
  /** Guest connections to the gateway carried to the host's loopback. */
  outbound: RelayCounters & { refused: number; buffered: number };
  gateway: StackStats;
}

export interface UserNet {
  /** Resolves when every forwarded port listens; rejects (after closing
   *  everything) if one cannot, e.g. "EADDRINUSE: 127.0.0.1:9000 is in use". */
  readonly ready: Promise<void>;
  /** Close the host sockets, reset every relayed connection, shut the gateway down. */
  close(): Promise<void>;
  stats(): UserNetStats;
}

export async function startUserNet(opts: UserNetOptions): Promise<UserNet> {
  return new UserNetwork(opts);
}

class UserNetwork implements UserNet {
  readonly ready: Promise<void>;
  private readonly stack: Stack;
  private readonly tcpForwards: TcpForward[] = [];
  private readonly udpForwards: UdpForward[] = [];
  private readonly outbound: Outbound;
  private closing: Promise<void> | null = null;

  constructor(opts: UserNetOptions) {
    const guestAddress = opts.guestAddress ?? USER_NET_DEFAULTS.guestAddress;
    const gatewayAddress = opts.gatewayAddress ?? USER_NET_DEFAULTS.gatewayAddress;
    const prefix = opts.prefix ?? USER_NET_DEFAULTS.prefix;
    checkAddresses(guestAddress, gatewayAddress, prefix, opts.hostfwd);
    this.stack = new Stack({
      device: opts.link,
      hotpath: opts.hotpath,
      clock: opts.clock,
      ipv4: { address: gatewayAddress, prefix, transparent: true },
      tcp: opts.tcp,
      limits: opts.limits,
    });
    for (const rule of opts.hostfwd) {
      if (rule.proto === 'tcp') {
        const connectTimeoutMs = opts.connectTimeoutMs ?? USER_NET_DEFAULTS.connectTimeoutMs;
        this.tcpForwards.push(new TcpForward(rule, { stack: this.stack, guestAddress, connectTimeoutMs }));
      } else {
        this.udpForwards.push(
          new UdpForward(rule, {
            stack: this.stack,
            clock: opts.clock,
            guestAddress,
            maxPeers: opts.udpMaxPeers ?? USER_NET_DEFAULTS.udpMaxPeers,
            idleMs: opts.udpIdleMs ?? USER_NET_DEFAULTS.udpIdleMs,
          }),
        );
      }
    }
    // Restricted, the gateway listens on the granted ports only: a SYN for
    // any other is answered with a reset by its TCP, and no host socket is tried.
    const tcp = this.stack.tcp;
    const listeners = opts.restrict === false ? [tcp.listenAny()] : (opts.guestfwd ?? []).map((port) => tcp.listen(port));
    this.outbound = new Outbound(listeners, opts.hostLoopback ?? '127.0.0.1');
    this.ready = this.listenAll();
    this.ready.catch(() => {}); // handled by whoever awaits it; never an unhandled rejection
  }

  private async listenAll(): Promise<void> {
    const all = [...this.tcpForwards, ...this.udpForwards].map((f) => f.listen());
    const results = await Promise.allSettled(all);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await this.close();
      throw failed.reason;
    }
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.outbound.close();
    const closing = [...this.tcpForwards, ...this.udpForwards].map((f) => f.close());
    // Everything is reset by now; the stack ends whatever is left (TIME_WAIT, timers).
    this.stack.shutdown();
    await Promise.all(closing);
  }

  stats(): UserNetStats {
    const forwards: ForwardStats[] = [];
    for (const f of this.tcpForwards) forwards.push({ ...ruleOf(f.rule), ...f.counters, buffered: f.buffered() });
    for (const f of this.udpForwards) forwards.push({ ...ruleOf(f.rule), ...f.counters });
    return { forwards, outbound: { ...this.outbound.counters, buffered: this.outbound.buffered() }, gateway: this.stack.stats() };
  }
}

function ruleOf(rule: HostForward): Pick<ForwardStats, 'proto' | 'hostAddress' | 'hostPort' | 'guestPort'> {
  return { proto: rule.proto, hostAddress: rule.hostAddress, hostPort: rule.hostPort, guestPort: rule.guestPort };
}

/** The guest and the gateway share a subnet; a rule naming a guest address names this guest. */
function checkAddresses(guest: string, gateway: string, prefix: number, rules: HostForward[]): void {
  let g: number, gw: number, mask: number;
  try {
    g = parseIpv4(guest);
    gw = parseIpv4(gateway);
    mask = prefixMask(prefix);
  } catch (err) {
    throw new UsageError(`user network: ${(err as Error).message}`);
  }
  if (g === gw) throw new UsageError(`user network: the guest and the gateway cannot both be ${guest}`);
  if (!sameSubnet(g, gw, mask)) {
    throw new UsageError(`user network: gateway ${gateway} is not in the guest's subnet ${guest}/${prefix}`);
  }
  for (const rule of rules) {
    // parseHostForwards checks this too; rules built by hand must not widen the exposure.
    if (!rule.hostAddress.startsWith('127.')) {
      throw new UsageError(`user network: host address ${rule.hostAddress} is not a loopback address (127.0.0.0/8)`);
    }
    if (rule.guestAddress !== undefined && parseIpv4(rule.guestAddress) !== g) {
      throw new UsageError(
        `--net user: hostfwd guest address ${rule.guestAddress} is not the guest's address ${formatIpv4(g)}`,
      );
    }
  }
}
