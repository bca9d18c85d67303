// 100,000 random and mutated frames thrown at a stack while four of its
// connections are busy transferring data (two uploads to it, two downloads
// from it, as client and as server): random bytes; captured live frames with
// bytes flipped, fields overwritten, truncated or extended, their checksums
// repaired half of the time so that they reach TCP; TCP segments with random
// flags, sequence and acknowledgement numbers aimed at the live connections'
// 4-tuples; oversized and malformed TCP and IP options; IPv4 fragments
// (overlapping, duplicated, missing, too big); ARP, ICMP, UDP and unknown
// protocols. Nothing may throw, the stats invariants must hold throughout,
// and every live transfer must finish intact (SHA-256 on both ends).
//
// What a blind attacker could legitimately do is kept out, so that "intact"
// is the right expectation (RFC 5961 is what the stack implements; the
// aiming below makes the rare lucky guess impossible instead of unlikely):
// - A segment on a live 4-tuple never carries an acceptable ACK: an ACK field
//   is moved at least 1 MiB beyond SND.MAX, or below SND.UNA - MAX.SND.WND by
//   as much. So injected bytes can never be taken as data.
// - A RST on a live 4-tuple never has SEQ = RCV.NXT: in-window RSTs (which
//   must draw a challenge ACK) go only to the connections where the stack
//   only sends, whose RCV.NXT cannot move; on the connections where it
//   receives, RSTs land at least 1 MiB outside the window.
// - No frame carries a live host's MAC as its source (the switch would learn
//   it on the attacker's port) and no ARP frame claims the live peer's
//   address: those are layer-2 attacks, not TCP matters.
// The test then demands exactly zero resets on the stack under attack.

import { describe, expect, it } from 'vitest';
import { sha256 } from '@noble/hashes/sha2.js';
import { Prng } from '../../../stack/vswitch/prng.js';
import { Simulation } from '../../../stack/sim.js';
import type { Connection } from '../../../stack/tcp/connection.js';
import { parseIpv4 } from '../../../stack/address.js';
import {
  addStack, advance, ENGINES, ethernet, inetChecksum, ipv4Packet, nodeIp, u32ToBytes,
} from '../../helpers/stack-pair.js';
import {
  baselines, ByteStream, expectBackToBaseline, expectConsistent, hex, KiB, LAN, MiB, receiveStream, type Digest,
} from '../../helpers/scenario.js';

const FRAMES = 100_000;
/** Frames per burst, one burst every BURST_GAP ms of virtual time. */
const BURST = 50;
const BURST_GAP = 0.1;
const CHECK_EVERY = 1_000;
const FAR = 1 << 20;

const ATTACKER_MAC = Uint8Array.of(0x02, 0xee, 0, 0, 0, 0x01);
const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;

// ---- the live connections ---------------------------------------------------------------

/** One live connection as the stack under attack (A) sees it. */
interface Live {
  conn: Connection;
  /** A receives the data (its RCV.NXT moves) rather than sends it. */
  receiving: boolean;
}

/**
 * Write a never-ending stream until stop() is called, then end(). Resolves
 * with what was written. The transfer is thus live for as long as the attack.
 */
function streamUntilStopped(conn: Connection, seed: number): { written: Promise<Digest>; stop(): void } {
  const src = new ByteStream(seed, Number.MAX_SAFE_INTEGER);
  const hash = sha256.create();
  let sent = 0;
  let stopped = false;
  let done = false;
  let resolve!: (d: Digest) => void;
  let reject!: (e: Error) => void;
  const written = new Promise<Digest>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const push = (): void => {
    if (done) return;
    while (!stopped) {
      const view = src.peek(16 * KiB);
      const n = conn.write(view);
      hash.update(view.subarray(0, n));
      src.advance(n);
      sent += n;
      if (n < view.length) return; // onWritable calls again
    }
    done = true;
    conn.end();
    resolve({ bytes: sent, sha256: hex(hash.digest()) });
  };
  conn.onWritable = push;
  void conn.closed.then((info) => {
    if (!done) reject(new Error(`sender ended early: ${JSON.stringify(info)}`));
  });
  push();
  return {
    written,
    stop: () => {
      stopped = true;
      push();
    },
  };
}

// ---- frame building (independent of the stack's encoders) --------------------------------

function randomBytes(rng: Prng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.next() & 0xff;
  return out;
}

function pick<T>(rng: Prng, items: readonly T[]): T {
  return items[rng.int(items.length)]!;
}

/** Sum of the IPv4 pseudo-header for a transport segment of `length` bytes. */
function pseudoSum(src: number, dst: number, proto: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + length;
}

interface TcpFields {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  urg?: number;
  options?: Uint8Array;
  payload?: Uint8Array;
}

/** A TCP segment (header, options padded to 4 bytes, payload) with a correct checksum. */
function tcpSegment(f: TcpFields): Uint8Array {
  const opts = f.options ?? new Uint8Array(0);
  const hlen = 20 + Math.ceil(opts.length / 4) * 4;
  const payload = f.payload ?? new Uint8Array(0);
  const seg = new Uint8Array(hlen + payload.length);
  seg.set([f.sport >>> 8, f.sport & 0xff, f.dport >>> 8, f.dport & 0xff, ...u32ToBytes(f.seq), ...u32ToBytes(f.ack)]);
  seg[12] = (hlen / 4) << 4;
  seg[13] = f.flags & 0xff;
  seg[14] = f.window >>> 8;
  seg[15] = f.window & 0xff;
  seg[18] = (f.urg ?? 0) >>> 8;
  seg[19] = (f.urg ?? 0) & 0xff;
  seg.set(opts, 20);
  seg.set(payload, hlen);
  const sum = inetChecksum(seg, pseudoSum(f.src, f.dst, 6, seg.length));
  seg[16] = sum >>> 8;
  seg[17] = sum & 0xff;
  return seg;
}

function dotted(ip: number): string {
  return [ip >>> 24, (ip >>> 16) & 0xff, (ip >>> 8) & 0xff, ip & 0xff].join('.');
}

// ---- reading a frame the way the decoder does -----------------------------------------------

/** Where the IPv4 and TCP parts of a frame lie, if it reaches TCP as one unfragmented datagram. */
interface Parsed {
  ip: number;
  ihl: number;
  total: number;
  src: number;
  dst: number;
  proto: number;
  fragment: boolean;
  /** Offset of the TCP header, or -1 when not a TCP segment that decodes. */
  tcp: number;
}

function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

function put32(b: Uint8Array, o: number, v: number): void {
  b.set(u32ToBytes(v >>> 0), o);
}

/** The IPv4 header fields as the decoder reads them (same offsets, same length rules). */
function parse(f: Uint8Array): Parsed | null {
  if (f.length < 34 || u16(f, 12) !== 0x0800) return null;
  const ip = 14;
  const ihl = (f[ip]! & 15) * 4;
  const total = u16(f, ip + 2);
  if (f[ip]! >>> 4 !== 4 || ihl < 20 || total < ihl || ip + total > f.length) return null;
  const fragment = (u16(f, ip + 6) & 0x3fff) !== 0;
  const proto = f[ip + 9]!;
  const tcp = proto === 6 && !fragment && total - ihl >= 20 ? ip + ihl : -1;
  return { ip, ihl, total, src: u32(f, ip + 12), dst: u32(f, ip + 16), proto, fragment, tcp };
}

function repairIpChecksum(f: Uint8Array, p: Parsed): void {
  put16(f, p.ip + 10, 0);
  put16(f, p.ip + 10, inetChecksum(f.subarray(p.ip, p.ip + p.ihl)));
}

/** The correct TCP checksum of the segment in f (checksum field taken as zero). */
function tcpChecksum(f: Uint8Array, p: Parsed): number {
  const seg = f.slice(p.tcp, p.ip + p.total);
  seg[16] = 0;
  seg[17] = 0;
  return inetChecksum(seg, pseudoSum(p.src, p.dst, 6, seg.length));
}

// ---- the attacker ----------------------------------------------------------------------------

interface Target {
  aMac: Uint8Array;
  bMac: Uint8Array;
  a: number;
  b: number;
  live: Live[];
  /** Ports A listens on. */
  listening: number[];
}

class Attacker {
  readonly rng: Prng;
  /** Recent frames B sent to A (copies), material for mutation. */
  private readonly captured: Uint8Array[] = [];
  private capturedAt = 0;
  private ipId = 0x8000;
  readonly made: Record<string, number> = {};

  constructor(
    seed: number,
    private readonly t: Target,
  ) {
    this.rng = new Prng(seed);
  }

  /** Tap: keep every 8th IPv4 frame from B to A, in a ring of 64. */
  capture(frame: Uint8Array): void {
    if (frame.length < 34 || u16(frame, 12) !== 0x0800) return;
    if (!sameMac(frame, 0, this.t.aMac) || !sameMac(frame, 6, this.t.bMac)) return;
    if ((this.capturedAt++ & 7) === 0) this.captured[(this.capturedAt >>> 3) & 63] = frame.slice();
  }

  /** The next frame to throw. */
  frame(): Uint8Array {
    const r = this.rng.float();
    const kind =
      r < 0.15 ? 'random bytes'
      : r < 0.45 ? 'mutated frame'
      : r < 0.7 ? 'segment on a live 4-tuple'
      : r < 0.8 ? 'segment to another port'
      : r < 0.88 ? 'fragments'
      : r < 0.94 ? 'arp'
      : 'icmp, udp, other protocols';
    this.made[kind] = (this.made[kind] ?? 0) + 1;
    switch (kind) {
      case 'random bytes':
        return this.randomFrame();
      case 'mutated frame':
        return this.mutated();
      case 'segment on a live 4-tuple':
        return this.liveSegment();
      case 'segment to another port':
        return this.strangerSegment();
      case 'fragments':
        return this.fragment();
      case 'arp':
        return this.arp();
      default:
        return this.otherIp();
    }
  }

  // ---- generators ----

  private randomFrame(): Uint8Array {
    const rng = this.rng;
    const size = pick(rng, [0, 1, 13, 14, 20, 42, 60, 64, 200, 576, 1514, 1600, 2100, 3000]) + rng.int(8);
    const f = randomBytes(rng, size);
    const dst = rng.float() < 0.8 ? this.t.aMac : rng.float() < 0.5 ? BROADCAST : randomBytes(rng, 6);
    if (f.length >= 6) f.set(dst.subarray(0, 6));
    // Mostly a type the stack parses further.
    if (f.length >= 14 && rng.float() < 0.7) put16(f, 12, pick(rng, [0x0800, 0x0806, 0x86dd, 0x8100]));
    return this.safe(f, false);
  }

  private mutated(): Uint8Array {
    const rng = this.rng;
    const captured = this.captured.filter(Boolean);
    let f = captured.length > 0 && rng.float() < 0.7 ? pick(rng, captured).slice() : this.validFrame();
    switch (rng.int(5)) {
      case 0: // flip bits in 1..8 bytes after the destination MAC
        for (let n = 1 + rng.int(8); n > 0; n--) f[6 + rng.int(f.length - 6)]! ^= 1 + rng.int(255);
        break;
      case 1:
      case 2: { // overwrite one header field with a random or boundary value
        const [off, size] = pick(rng, HEADER_FIELDS);
        if (off + size <= f.length) {
          const v = pick(rng, [0, 1, 0xff, 0xffff, 0xffffffff, rng.next(), rng.next() & 0x0f, rng.next() & 0xf0]);
          if (size === 1) f[off] = v & 0xff;
          else if (size === 2) put16(f, off, v & 0xffff);
          else put32(f, off, v);
        }
        break;
      }
      case 3: // truncated
        f = f.slice(0, rng.int(f.length + 1));
        break;
      default: { // extended with random bytes
        const longer = new Uint8Array(f.length + 1 + rng.int(64));
        longer.set(f);
        longer.set(randomBytes(rng, longer.length - f.length), f.length);
        f = longer;
      }
    }
    return this.safe(f, rng.float() < 0.5);
  }

  /** A well-formed frame of some kind to mutate when nothing is captured yet. */
  private validFrame(): Uint8Array {
    return pick(this.rng, [() => this.liveSegment(), () => this.strangerSegment(), () => this.otherIp()])();
  }

  private liveSegment(): Uint8Array {
    const rng = this.rng;
    const live = pick(rng, this.t.live);
    const tcb = live.conn.inspect();
    if (!tcb) return this.strangerSegment();
    const flags = rng.float() < 0.5 ? pick(rng, COMMON_FLAGS) : rng.next() & 0xff;
    const near = rng.float() < 0.7;
    const seq = near ? (tcb.rcvNxt + rng.int(140_000) - 70_000) >>> 0 : rng.next();
    const seg = tcpSegment({
      src: this.t.b,
      dst: this.t.a,
      sport: tcb.remotePort,
      dport: tcb.localPort,
      seq,
      ack: rng.next(),
      flags,
      window: pick(rng, [0, 1, 536, 65535, rng.next() & 0xffff]),
      urg: rng.float() < 0.1 ? rng.next() & 0xffff : 0,
      options: this.tcpOptions(),
      payload: randomBytes(rng, pick(rng, [0, 0, 1, 100, 536, 1460, rng.int(1460)])),
    });
    return this.safe(this.ipFrame(this.t.b, this.t.a, 6, seg), true);
  }

  /** To a port of A with no live connection: listening ports (SYN floods), closed ports, TIME_WAIT. */
  private strangerSegment(): Uint8Array {
    const rng = this.rng;
    const src = rng.float() < 0.5 ? this.t.b : rng.float() < 0.5 ? spoofedNeighbour(rng) : rng.next();
    const dport = rng.float() < 0.5 ? pick(rng, this.t.listening) : rng.int(65536);
    const seg = tcpSegment({
      src,
      dst: this.t.a,
      sport: 1024 + rng.int(60000),
      dport,
      seq: rng.next(),
      ack: rng.next(),
      flags: rng.float() < 0.5 ? TCP_SYN : pick(rng, COMMON_FLAGS),
      window: rng.next() & 0xffff,
      options: this.tcpOptions(),
      payload: randomBytes(rng, rng.float() < 0.7 ? 0 : rng.int(1460)),
    });
    return this.safe(this.ipFrame(src, this.t.a, 6, seg), true);
  }

  /** A datagram cut into fragments, one fragment per call, some missing, overlapping or repeated. */
  private pendingFragments: Uint8Array[] = [];
  private fragment(): Uint8Array {
    const rng = this.rng;
    if (this.pendingFragments.length === 0) {
      const proto = pick(rng, [6, 6, 17, 1]);
      const src = rng.float() < 0.6 ? this.t.b : rng.next() & 0x7fffffff;
      let body: Uint8Array;
      if (proto === 6) {
        // Often on a live 4-tuple (aimed like any other segment there).
        const live = pick(rng, this.t.live);
        const tcb = live.conn.inspect();
        const onLive = tcb !== null && src === this.t.b && rng.float() < 0.7;
        const flags = pick(rng, COMMON_FLAGS);
        const [seq, ack] = onLive
          ? this.aim(live, flags, (tcb.rcvNxt + rng.int(4000)) >>> 0, rng.next())
          : [rng.next(), rng.next()];
        body = tcpSegment({
          src,
          dst: this.t.a,
          sport: onLive ? tcb.remotePort : rng.int(65536),
          dport: onLive ? tcb.localPort : rng.int(65536),
          seq,
          ack,
          flags,
          window: 1000,
          payload: randomBytes(rng, 8 + rng.int(3000)),
        });
      } else {
        body = randomBytes(rng, 8 + rng.int(3000));
      }
      const id = this.ipId++ & 0xffff;
      const cuts: number[] = [];
      for (let at = 8 * (1 + rng.int(100)); at < body.length; at += 8 * (1 + rng.int(150))) cuts.push(at);
      const bounds = [0, ...cuts, body.length];
      const frags: Uint8Array[] = [];
      for (let i = 0; i + 1 < bounds.length; i++) {
        const start = bounds[i]!;
        // Sometimes an overlap: start a little earlier than the previous cut.
        const from = i > 0 && rng.float() < 0.1 ? start - 8 : start;
        const more = i + 2 < bounds.length ? 0x2000 : 0;
        const ipHeaderFields = { src: dotted(src), dst: dotted(this.t.a), proto, id, frag: more | (from / 8) };
        const packet = ipv4Packet(ipHeaderFields, body.subarray(from, bounds[i + 1]!));
        frags.push(ethernet(this.t.aMac, ATTACKER_MAC, 0x0800, packet));
      }
      // Shuffle; drop one now and then; repeat one now and then.
      for (let i = frags.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [frags[i], frags[j]] = [frags[j]!, frags[i]!];
      }
      if (frags.length > 1 && rng.float() < 0.2) frags.pop();
      if (rng.float() < 0.2) frags.push(frags[0]!);
      this.pendingFragments = frags;
    }
    return this.safe(this.pendingFragments.pop()!, true, true);
  }

  private arp(): Uint8Array {
    const rng = this.rng;
    let spa = rng.float() < 0.9 ? spoofedNeighbour(rng) : 0; // 0.0.0.0: an RFC 5227 probe
    // Someone claims A's address: a conflict A counts. Sent to A alone: B
    // would take it as news about A (layer-2 spoofing again).
    const conflict = rng.float() < 0.05;
    if (conflict) spa = this.t.a;
    const tpa = rng.float() < 0.6 ? this.t.a : rng.next();
    const sha = rng.float() < 0.9 ? randomBytes(rng, 6).map((b, i) => (i === 0 ? b & 0xfe : b)) : BROADCAST;
    const packet = Uint8Array.of(
      0, rng.float() < 0.9 ? 1 : rng.int(4), 0x08, 0x00, rng.float() < 0.95 ? 6 : rng.int(16), 4,
      0, pick(rng, [1, 2, 1, 2, 3, 0]), ...sha, ...u32ToBytes(spa), ...randomBytes(rng, 6), ...u32ToBytes(tpa),
    );
    const f = ethernet(!conflict && rng.float() < 0.5 ? BROADCAST : this.t.aMac, ATTACKER_MAC, 0x0806, packet);
    return this.safe(f, false);
  }

  private otherIp(): Uint8Array {
    const rng = this.rng;
    const src = rng.float() < 0.5 ? this.t.b : rng.next() & 0x7fffffff;
    const proto = pick(rng, [1, 1, 17, 17, 2, 47, 50, 132, rng.int(256)]);
    let body = randomBytes(rng, pick(rng, [0, 4, 8, 28, 100, 1472, rng.int(1480)]));
    if (proto === 1 && body.length >= 8) {
      body[0] = pick(rng, [8, 8, 0, 3, 5, 11, rng.int(256)]); // mostly echo requests
      put16(body, 2, 0);
      if (rng.float() < 0.8) put16(body, 2, inetChecksum(body));
    } else if (proto === 17 && body.length >= 8) {
      put16(body, 4, rng.float() < 0.8 ? body.length : rng.next() & 0xffff);
      put16(body, 6, 0);
      if (rng.float() < 0.5) put16(body, 6, inetChecksum(body, pseudoSum(src, this.t.a, 17, body.length)) || 0xffff);
    }
    if (rng.float() < 0.1) body = body.subarray(0, Math.max(0, body.length - 3));
    return this.safe(this.ipFrame(src, this.t.a, proto, body), true);
  }

  /** TCP options: usually none or valid ones; often malformed, oversized or unknown. */
  private tcpOptions(): Uint8Array {
    const rng = this.rng;
    switch (rng.int(8)) {
      case 0:
      case 1:
        return new Uint8Array(0);
      case 2: // valid MSS, window scale, SACK-permitted, timestamps
        return Uint8Array.of(
          2, 4, rng.int(256), rng.int(256), 1, 3, 3, rng.int(20), 4, 2, 8, 10, ...randomBytes(rng, 8),
        );
      case 3: // the whole 40 bytes of option space, random
        return randomBytes(rng, 40);
      case 4: // a length that runs past the header
        return Uint8Array.of(pick(rng, [2, 3, 5, 8, 30]), 40, ...randomBytes(rng, 6));
      case 5: // lengths 0 and 1 (never valid for a kind that has a length)
        return Uint8Array.of(pick(rng, [2, 3, 4, 5, 8, 99]), rng.int(2), 1, 1);
      case 6: // wrong fixed lengths
        return Uint8Array.of(2, 3, 0, 1, 3, 4, 7, 0, 8, 6, 0, 0, 0, 0);
      default: // SACK blocks, NOP runs, early end of list
        return Uint8Array.of(1, 1, 5, 2 + 8 * rng.int(5), ...randomBytes(rng, 32), 0, 9).subarray(0, 40);
    }
  }

  private ipFrame(src: number, dst: number, proto: number, body: Uint8Array): Uint8Array {
    const rng = this.rng;
    const fields = { src: dotted(src), dst: dotted(dst), proto, id: rng.next() & 0x7fff, ttl: rng.int(256) };
    let packet = ipv4Packet(fields, body);
    if (rng.float() < 0.1) {
      // IP options: valid or not, up to the 40 bytes the header allows.
      const opts = rng.float() < 0.5 ? Uint8Array.of(1, 1, 7, 7, 4, 0, 0, 0) : randomBytes(rng, 4 * (1 + rng.int(10)));
      const withOpts = new Uint8Array(packet.length + opts.length);
      withOpts.set(packet.subarray(0, 20));
      withOpts.set(opts, 20);
      withOpts.set(body, 20 + opts.length);
      withOpts[0] = 0x40 | ((20 + opts.length) / 4);
      put16(withOpts, 2, withOpts.length);
      put16(withOpts, 10, 0);
      put16(withOpts, 10, inetChecksum(withOpts.subarray(0, 20 + opts.length)));
      packet = withOpts;
    }
    return ethernet(this.t.aMac, ATTACKER_MAC, 0x0800, packet);
  }

  // ---- aiming ----

  /** Sequence and acknowledgement numbers for a segment on a live 4-tuple:
   *  an ACK field never acceptable, a RST never at RCV.NXT. */
  private aim(live: Live, flags: number, seq: number, ack: number): [number, number] {
    const tcb = live.conn.inspect();
    if (!tcb) return [seq, ack];
    const rng = this.rng;
    if ((flags & TCP_ACK) !== 0) {
      ack = rng.float() < 0.5
        ? tcb.sndMax + FAR + rng.int(1 << 30)
        : tcb.sndUna - tcb.maxSndWnd - FAR - rng.int(1 << 30);
    }
    if ((flags & TCP_RST) !== 0) {
      seq = live.receiving
        ? tcb.rcvNxt + (rng.float() < 0.5 ? 1 : -1) * (FAR + rng.int(1 << 30))
        : tcb.rcvNxt + 1 + rng.int(70_000);
    }
    return [seq >>> 0, ack >>> 0];
  }

  /**
   * Make the frame harmless to the live transfers in the ways a real blind
   * attacker almost never manages (see the header comment), then, if asked,
   * repair its checksums so that it reaches TCP. A frame on a live 4-tuple
   * that is not repaired gets a TCP checksum that is certainly wrong.
   */
  private safe(f: Uint8Array, repair: boolean, ownFragment = false): Uint8Array {
    const t = this.t;
    const rng = this.rng;
    // Never a live host's source MAC: the switch would learn it on our port
    // and hand us that host's traffic (an L2 attack, not a TCP one).
    if (f.length >= 12 && (sameMac(f, 6, t.aMac) || sameMac(f, 6, t.bMac))) f.set(ATTACKER_MAC, 6);
    // ARP: never a claim on the live peer's address.
    if (f.length >= 42 && u16(f, 12) === 0x0806 && u32(f, 28) === t.b) put32(f, 28, t.b ^ 0x80);
    const p = parse(f);
    if (!p) return f;
    // A fragment from the peer could only reassemble with our own (aimed)
    // fragments; a mutated one takes another source address.
    if (p.fragment && p.src === t.b && !ownFragment) {
      put32(f, p.ip + 12, t.b ^ 0x100);
      p.src = t.b ^ 0x100;
    }
    let onLive = false;
    if (p.tcp >= 0 && p.src === t.b && p.dst === t.a) {
      const live = t.live.find((l) => l.conn.localPort === u16(f, p.tcp + 2) && l.conn.remotePort === u16(f, p.tcp));
      const tcb = live?.conn.inspect();
      if (live && tcb) {
        onLive = true;
        const [seq, ack] = this.aim(live, f[p.tcp + 13]!, u32(f, p.tcp + 4), u32(f, p.tcp + 8));
        put32(f, p.tcp + 4, seq);
        put32(f, p.tcp + 8, ack);
      }
    }
    if (repair) {
      repairIpChecksum(f, p);
      if (p.tcp >= 0) put16(f, p.tcp + 16, tcpChecksum(f, p));
    } else if (onLive) {
      put16(f, p.tcp + 16, tcpChecksum(f, p) ^ 1);
    }
    return f;
  }
}

/** Offsets of header fields in an untagged Ethernet + IPv4 (no options) + TCP frame, and their sizes. */
const HEADER_FIELDS: readonly (readonly [number, number])[] = [
  [12, 2], // EtherType
  [14, 1], [15, 1], [16, 2], [18, 2], [20, 2], [22, 1], [23, 1], [24, 2], [26, 4], [30, 4], // IPv4
  [34, 2], [36, 2], [38, 4], [42, 4], [46, 1], [47, 1], [48, 2], [50, 2], [52, 2], // TCP
];

const COMMON_FLAGS = [
  TCP_ACK, TCP_ACK | 0x08, TCP_ACK | TCP_FIN, TCP_RST, TCP_RST | TCP_ACK, TCP_SYN, TCP_SYN | TCP_ACK, TCP_FIN, 0,
  TCP_SYN | TCP_FIN, TCP_SYN | TCP_RST, 0x20 | TCP_ACK, 0xff,
];

/**
 * A spoofed on-link source: one of 64 addresses, so that A's ARP cache (256
 * entries) never has to evict the live peer. Evicting an entry in use is
 * allowed, but each eviction stalls the live transfers for a round of
 * resolution; that is ARP's business, and this test is about TCP.
 */
function spoofedNeighbour(rng: Prng): number {
  return (parseIpv4('10.0.0.100') + rng.int(64)) >>> 0;
}

function sameMac(frame: Uint8Array, off: number, mac: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (frame[off + i] !== mac[i]) return false;
  return true;
}

// ---- the test ------------------------------------------------------------------------------

describe.each(ENGINES)('100,000 random and mutated frames at a stack with live transfers (%s)', (engine) => {
  it(
    'nothing throws, the stats invariants hold throughout, no live connection is reset, and every transfer ends intact',
    async () => {
      let attacker: Attacker | null = null;
      const sim = new Simulation({
        seed: 4242,
        switch: { tap: { write: (f) => attacker?.capture(f) }, tapMode: 'sent' },
      });
      // A's cable has no line rate: the attack does not congest the live transfers
      // away; B's cable is the 1 Gbit/s LAN. A's cable passes frames up to 4000
      // bytes so that oversized frames reach the stack.
      const a = await addStack(sim, engine, nodeIp(0), {
        memoryBytes: 8 * MiB,
        port: { faults: { delay: 0.25, mtu: 4000 } },
        tcp: { msl: 1_000 },
      });
      const b = await addStack(sim, engine, nodeIp(1), {
        memoryBytes: 8 * MiB,
        port: { faults: LAN },
        tcp: { msl: 1_000 },
      });
      const attackPort = sim.switch.attach({ mac: ATTACKER_MAC, mtu: 4000 });
      attackPort.setReceiver(() => {});
      await advance(sim, 10_000);
      const stacks = [a.stack, b.stack];
      const idle = baselines(stacks);

      // Four live connections: B uploads to A (A as server and as client), A uploads to B (likewise).
      const lists = [
        ...[7000, 7002].map((p) => a.stack.tcp.listen(p)),
        ...[7001, 7003].map((p) => b.stack.tcp.listen(p)),
      ];
      const [toA, fromA, toB, fromB] = lists.map((l) => l.accept());
      const [up1, down2] = await sim.complete(Promise.all([7000, 7002].map((p) => b.stack.tcp.connect(a.ip, p))));
      const [up2, down1] = await sim.complete(Promise.all([7001, 7003].map((p) => a.stack.tcp.connect(b.ip, p))));
      const [aUp1, aDown2, bUp2, bDown1] = await sim.complete(Promise.all([toA!, fromA!, toB!, fromB!]));
      // Pairs of (sender, receiver); A's side of each is the Live entry.
      const pairs = [
        { sender: up1, receiver: aUp1!, live: { conn: aUp1!, receiving: true } },
        { sender: bUp2!, receiver: up2, live: { conn: up2, receiving: true } },
        { sender: aDown2!, receiver: down2, live: { conn: aDown2!, receiving: false } },
        { sender: down1, receiver: bDown1!, live: { conn: down1, receiving: false } },
      ];
      const live = pairs.map((p) => p.live);
      attacker = new Attacker(99, {
        aMac: a.mac,
        bMac: b.mac,
        a: a.addr,
        b: b.addr,
        live,
        listening: [7000, 7002],
      });
      const transfers = pairs.map((p, i) => {
        const sender = streamUntilStopped(p.sender, 10 + i);
        const received = receiveStream(p.receiver).then(async (d) => {
          p.receiver.close(); // receiver closes after the sender's FIN
          return d;
        });
        return { sender, received };
      });

      // The attack, in bursts, with the invariants checked as it goes.
      const attack = async (): Promise<{ stillLive: number }> => {
        for (let sent = 0; sent < FRAMES; ) {
          await sim.sleep(BURST_GAP);
          for (let k = 0; k < BURST && sent < FRAMES; k++, sent++) {
            attackPort.send(attacker!.frame());
            if (sent % CHECK_EVERY !== 0) continue;
            stacks.forEach((s, i) => expectConsistent(s.stats(), `frame ${sent} stack ${i}`));
          }
        }
        // Every transfer was still running when the last frame went.
        return { stillLive: live.filter((l) => l.conn.inspect() !== null).length };
      };
      const { stillLive } = await sim.complete(attack());
      expect(stillLive).toBe(live.length);
      expect(attackPort.counters.framesIn).toBe(FRAMES);
      transfers.forEach((t) => t.sender.stop());
      const results = await sim.complete(
        Promise.all(transfers.map(async (t) => ({ sent: await t.sender.written, received: await t.received }))),
      );
      const closed = await sim.complete(Promise.all(pairs.flatMap((p) => [p.sender.closed, p.receiver.closed])));

      for (const r of results) {
        expect(r.sent.bytes).toBeGreaterThan(512 * KiB);
        expect(r.received).toEqual(r.sent);
      }
      expect(closed.every((c) => c.reason === 'closed'), JSON.stringify(closed)).toBe(true);

      // The attack reached every layer.
      const s = a.stack.stats();
      const c = s.tcp.counters;
      // A's side of the four live connections ended normally; every other ending
      // belongs to connections the attack itself opened (SYNs to listening ports).
      expect(c.closedBy.closed).toBe(4);
      const tcpCounters = [
        'challengeForRst', 'challengeForSyn', 'challengeForAck', 'dropAckUnsent', 'dropAckTooOld',
        'dropNotAcceptable', 'dropNoAck', 'rstSentClosedPort', 'passiveOpens',
      ] as const;
      for (const n of tcpCounters) expect(c[n], n).toBeGreaterThan(0);
      const dropReasons = [
        'tcpBadChecksum', 'ipBadChecksum', 'tcpBadOption', 'tcpBadDataOffset', 'tcpBadFlags', 'ipBadIhl',
        'ipBadTotalLength', 'ipBadOptions', 'unknownEthertype', 'ipTooShort', 'frameTooLong', 'arpUnsupported',
        'arpConflict', 'fragOverlap', 'fragTooBig', 'udpNoPort',
      ];
      for (const n of dropReasons) expect(s.drops[n], n).toBeGreaterThan(0);
      expect(Object.keys(attacker.made).length).toBe(7);

      lists.forEach((l) => l.close());
      await expectBackToBaseline(sim, stacks, idle, 'after the attack');
    },
    300_000,
  );
});
