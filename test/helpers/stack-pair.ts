// Test helpers for the stack: N stacks on one Simulation/VSwitch with a chosen
// engine, a scripted raw peer on the same switch, frame builders written
// independently of the hot path (so tests do not check the engines against
// themselves), and the baseline comparison every scenario ends with.

import { expect } from 'vitest';
import { createEngine } from '../../host/hotpath.js';
import type { EngineName, HotPath } from '../../stack/hotpath/engine.js';
import { D, DECODED_WORDS, OwnerKind, ownerTag } from '../../stack/hotpath/index.js';
import { Simulation } from '../../stack/sim.js';
import type { VSwitchPort, PortOptions } from '../../stack/vswitch/vswitch.js';
import { Stack, type StackLimits } from '../../stack/stack.js';
import type { TcpOptions } from '../../stack/tcp/options.js';
import { parseIpv4 } from '../../stack/address.js';
import { stackLevels } from '../../stack/stats.js';

export const ENGINES: EngineName[] = ['wasm', 'ts'];

/** 2 MiB arenas: about a thousand chunks, plenty for these scenarios. */
export const TEST_MEMORY_BYTES = 2 * 1024 * 1024;

export interface StackNode {
  stack: Stack;
  port: VSwitchPort;
  hot: HotPath;
  /** Dotted address, e.g. '10.0.0.10'. */
  ip: string;
  addr: number;
  mac: Uint8Array;
}

export interface StacksOptions {
  prefix?: number;
  gateway?: string;
  limits?: Partial<StackLimits>;
  tcp?: Partial<TcpOptions>;
  memoryBytes?: number;
  port?: PortOptions;
  sim?: Simulation;
}

/** Node i gets 10.0.0.(10 + i). */
export function nodeIp(i: number): string {
  return `10.0.0.${10 + i}`;
}

export async function makeStacks(
  engine: EngineName,
  count: number,
  opts: StacksOptions = {},
): Promise<{ sim: Simulation; nodes: StackNode[] }> {
  const sim = opts.sim ?? new Simulation();
  const nodes: StackNode[] = [];
  for (let i = 0; i < count; i++) nodes.push(await addStack(sim, engine, nodeIp(i), opts));
  return { sim, nodes };
}

export async function addStack(sim: Simulation, engine: EngineName, ip: string, opts: StacksOptions = {}): Promise<StackNode> {
  const hot = await createEngine(engine, opts.memoryBytes ?? TEST_MEMORY_BYTES);
  const port = sim.switch.attach(opts.port);
  const stack = new Stack({
    device: port,
    hotpath: hot,
    clock: sim.clock,
    ipv4: { address: ip, prefix: opts.prefix ?? 24, gateway: opts.gateway },
    tcp: opts.tcp,
    limits: opts.limits,
  });
  return { stack, port, hot, ip, addr: parseIpv4(ip), mac: Uint8Array.from(port.mac) };
}

/** Let virtual time pass (alarms fire on the way). */
export async function advance(sim: Simulation, ms: number): Promise<void> {
  await sim.complete(sim.sleep(ms));
}

/** A raw port on the switch: records every frame delivered to it, sends what a test builds. */
export interface RawPeer {
  port: VSwitchPort;
  mac: Uint8Array;
  frames: Uint8Array[];
  send(frame: Uint8Array): void;
  /** Frames received so far with this EtherType (0x0806 ARP, 0x0800 IPv4). */
  ofType(ethertype: number): Uint8Array[];
  clear(): void;
}

export function rawPeer(sim: Simulation, mac = Uint8Array.of(0x02, 0xee, 0, 0, 0, 0x01)): RawPeer {
  const port = sim.switch.attach({ mac });
  const frames: Uint8Array[] = [];
  port.setReceiver((frame) => frames.push(frame.slice()));
  return {
    port,
    mac,
    frames,
    send: (frame) => {
      port.send(frame);
    },
    ofType: (ethertype) => frames.filter((f) => ((f[12]! << 8) | f[13]!) === ethertype),
    clear: () => {
      frames.length = 0;
    },
  };
}

// ---- baseline ------------------------------------------------------------------

/** The gauges that must return to baseline, deep-copied. */
export function levels(stack: Stack): unknown {
  return structuredClone(stackLevels(stack.stats()));
}

/** Run long enough for every ARP entry and reassembly to expire, then compare. */
export async function expectBaseline(sim: Simulation, stacks: Stack[], baseline: unknown[]): Promise<void> {
  await advance(sim, 120_000);
  stacks.forEach((stack, i) => {
    expect(levels(stack)).toEqual(baseline[i]);
    expect(stack.hot.badFrees()).toBe(0);
  });
}

/** Nothing in use: no chunk, no timer, no entry, no queue. */
export function expectIdle(stack: Stack): void {
  const s = stack.stats();
  expect(s.arena.chunksInUse - s.arena.tableChunks, 'chunks beyond the fixed tables').toBe(0);
  expect(s.timers.armed).toBe(0);
  expect(s.arp).toEqual({ entries: 0, pending: 0, probing: 0, queued: 0 });
  expect(s.fragments).toEqual({ datagrams: 0, chunks: 0 });
  expect(s.udp.queued).toBe(0);
}

// ---- frame builders (independent of the hot path) -------------------------------

export const BROADCAST_MAC = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

export function u32ToBytes(value: number): number[] {
  return [(value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}

export function ipBytes(ip: string): number[] {
  return u32ToBytes(parseIpv4(ip));
}

/** RFC 1071 checksum over bytes (plus an initial unfolded sum). */
export function inetChecksum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length & 1) sum += bytes[bytes.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

function pseudoSum(src: string, dst: string, proto: number, length: number): number {
  const s = parseIpv4(src);
  const d = parseIpv4(dst);
  return (s >>> 16) + (s & 0xffff) + (d >>> 16) + (d & 0xffff) + proto + length;
}

export function ethernet(dst: Uint8Array, src: Uint8Array, ethertype: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(14 + payload.length);
  frame.set(dst, 0);
  frame.set(src, 6);
  frame[12] = ethertype >>> 8;
  frame[13] = ethertype & 0xff;
  frame.set(payload, 14);
  return frame;
}

export interface ArpFields {
  op: 1 | 2;
  sha: Uint8Array;
  spa: string;
  tha: Uint8Array;
  tpa: string;
}

/** An ARP packet (28 bytes) for IPv4 over Ethernet. */
export function arpPacket(f: ArpFields): Uint8Array {
  return Uint8Array.of(0, 1, 0x08, 0x00, 6, 4, 0, f.op, ...f.sha, ...ipBytes(f.spa), ...f.tha, ...ipBytes(f.tpa));
}

export function arpFrame(dst: Uint8Array, src: Uint8Array, f: ArpFields): Uint8Array {
  return ethernet(dst, src, 0x0806, arpPacket(f));
}

export interface Ipv4Fields {
  src: string;
  dst: string;
  proto: number;
  id?: number;
  /** Raw flags + fragment offset field. */
  frag?: number;
  ttl?: number;
  /** Override the total length field. */
  totalLength?: number;
}

/** An IPv4 header (20 bytes, checksum filled) followed by `payload`. */
export function ipv4Packet(f: Ipv4Fields, payload: Uint8Array): Uint8Array {
  const total = f.totalLength ?? 20 + payload.length;
  const id = f.id ?? 0x1234;
  const frag = f.frag ?? 0;
  const header = Uint8Array.of(
    0x45, 0, total >>> 8, total & 0xff,
    id >>> 8, id & 0xff, frag >>> 8, frag & 0xff,
    f.ttl ?? 64, f.proto, 0, 0,
    ...ipBytes(f.src), ...ipBytes(f.dst),
  );
  const sum = inetChecksum(header);
  header[10] = sum >>> 8;
  header[11] = sum & 0xff;
  const packet = new Uint8Array(20 + payload.length);
  packet.set(header);
  packet.set(payload, 20);
  return packet;
}

/** A UDP header + data with the checksum over the pseudo-header. */
export function udpSegment(src: string, dst: string, sport: number, dport: number, data: Uint8Array): Uint8Array {
  const len = 8 + data.length;
  const seg = new Uint8Array(len);
  seg.set([sport >>> 8, sport & 0xff, dport >>> 8, dport & 0xff, len >>> 8, len & 0xff, 0, 0]);
  seg.set(data, 8);
  let sum = inetChecksum(seg, pseudoSum(src, dst, 17, len));
  if (sum === 0) sum = 0xffff;
  seg[6] = sum >>> 8;
  seg[7] = sum & 0xff;
  return seg;
}

/** An ICMP message: type, code, 4 bytes of "rest", data; checksum filled. */
export function icmpMessage(type: number, code: number, rest: number, data: Uint8Array): Uint8Array {
  const msg = new Uint8Array(8 + data.length);
  msg.set([type, code, 0, 0, ...u32ToBytes(rest)]);
  msg.set(data, 8);
  const sum = inetChecksum(msg);
  msg[2] = sum >>> 8;
  msg[3] = sum & 0xff;
  return msg;
}

export function ipv4Frame(dstMac: Uint8Array, srcMac: Uint8Array, f: Ipv4Fields, payload: Uint8Array): Uint8Array {
  return ethernet(dstMac, srcMac, 0x0800, ipv4Packet(f, payload));
}

export function udpFrame(
  dstMac: Uint8Array,
  srcMac: Uint8Array,
  src: string,
  dst: string,
  sport: number,
  dport: number,
  data: Uint8Array,
): Uint8Array {
  return ipv4Frame(dstMac, srcMac, { src, dst, proto: 17 }, udpSegment(src, dst, sport, dport, data));
}

/** Split an IP payload (a whole transport segment) into fragment frames at 8-byte-aligned cuts. */
export function fragmentFrames(
  dstMac: Uint8Array,
  srcMac: Uint8Array,
  f: Ipv4Fields,
  payload: Uint8Array,
  cuts: number[],
): Uint8Array[] {
  const bounds = [0, ...cuts, payload.length];
  const frames: Uint8Array[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const start = bounds[i]!;
    const end = bounds[i + 1]!;
    const more = i + 2 < bounds.length ? 0x2000 : 0;
    frames.push(ipv4Frame(dstMac, srcMac, { ...f, frag: more | (start / 8) }, payload.subarray(start, end)));
  }
  return frames;
}

/** One fragment frame covering payload[start, end). */
export function fragmentFrame(
  dstMac: Uint8Array,
  srcMac: Uint8Array,
  f: Ipv4Fields,
  payload: Uint8Array,
  start: number,
  end: number,
  more: boolean,
): Uint8Array {
  return ipv4Frame(dstMac, srcMac, { ...f, frag: (more ? 0x2000 : 0) | (start / 8) }, payload.subarray(start, end));
}

export function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 7) & 0xff;
  return out;
}

// ---- decoding frames the stack sent --------------------------------------------

/** Decode `frame` with `hot` (a chunk borrowed and freed) and return the reason
 *  and a copy of the decoded record. */
export function decodeWith(hot: HotPath, frame: Uint8Array): { reason: number; d: Uint32Array; bytes: Uint8Array } {
  const slot = hot.alloc(ownerTag(OwnerKind.App, 1));
  if (slot === 0) throw new Error('decodeWith: arena full');
  try {
    hot.bytes.set(frame, slot);
    const reason = hot.decode(slot, frame.length);
    const d = Uint32Array.from(hot.decoded.subarray(0, DECODED_WORDS));
    // Make offsets relative to the frame so callers can index `frame` directly.
    for (const k of [D.FRAME_OFF, D.ARP_SHA_OFF, D.ARP_THA_OFF, D.IP_OFF, D.L4_OFF, D.PAYLOAD_OFF]) d[k] = d[k]! - slot;
    return { reason, d, bytes: frame };
  } finally {
    hot.free(slot);
  }
}
