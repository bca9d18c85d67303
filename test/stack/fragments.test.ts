import { describe, expect, it } from 'vitest';
import { Simulation } from '../../stack/sim.js';
import { createEngine } from '../../host/hotpath.js';
import { D, Reason } from '../../stack/hotpath/index.js';
import { MAX_PAYLOAD } from '../../stack/ip/fragments.js';
import type { UdpDatagram } from '../../stack/udp/udp.js';
import {
  BROADCAST_MAC,
  ENGINES,
  advance,
  arpFrame,
  decodeWith,
  expectBaseline,
  fragmentFrame,
  fragmentFrames,
  ipv4Frame,
  levels,
  makeStacks,
  pattern,
  rawPeer,
  udpSegment,
} from '../helpers/stack-pair.js';

const PEER_IP = '10.0.0.99';
const ZERO_MAC = new Uint8Array(6);

describe.each(ENGINES)('IPv4 fragment reassembly (%s engine)', (engine) => {
  async function setup(limits = {}) {
    const sim = new Simulation();
    const peer = rawPeer(sim);
    const { nodes } = await makeStacks(engine, 1, { sim, limits });
    const node = nodes[0]!;
    await advance(sim, 5_000);
    const baseline = levels(node.stack);
    const sock = node.stack.udp.bind(7000);
    const received: UdpDatagram[] = [];
    sock.onMessage((data, address, port) => received.push({ data: data.slice(), address, port }));
    /** Fragment frames of one UDP datagram carrying `data`, cut at `cuts`. */
    const datagram = (data: Uint8Array, cuts: number[], id = 0x77, dport = 7000) =>
      fragmentFrames(node.mac, peer.mac, { src: PEER_IP, dst: node.ip, proto: 17, id }, udpSegment(PEER_IP, node.ip, 6000, dport, data), cuts);
    const send = async (frames: Uint8Array[]) => {
      for (const f of frames) peer.send(f);
      await advance(sim, 1);
    };
    return { sim, peer, node, stack: node.stack, baseline, sock, received, datagram, send };
  }

  /** Every check ends here: the socket closed, time passed, gauges back at baseline. */
  async function finish(ctx: Awaited<ReturnType<typeof setup>>) {
    ctx.sock.close();
    await expectBaseline(ctx.sim, [ctx.stack], [ctx.baseline]);
    expect(ctx.stack.stats().arena.chunksInUse - ctx.stack.stats().arena.tableChunks, 'chunks beyond the fixed tables').toBe(0);
  }

  it('reassembles fragments that arrive in order', async () => {
    const ctx = await setup();
    const data = pattern(1200);
    await ctx.send(ctx.datagram(data, [400, 800]));
    expect(ctx.received).toHaveLength(1);
    expect(ctx.received[0]!.data).toEqual(data);
    expect(ctx.received[0]!.port).toBe(6000);
    expect(ctx.stack.stats().fragments).toEqual({ datagrams: 0, chunks: 0 });
    await finish(ctx);
  });

  it('reassembles fragments that arrive out of order', async () => {
    const ctx = await setup();
    const data = pattern(1500, 2);
    const [a, b, c, e] = ctx.datagram(data, [256, 512, 1024]) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    await ctx.send([e, b, c]);
    expect(ctx.received).toHaveLength(0);
    expect(ctx.stack.stats().fragments).toEqual({ datagrams: 1, chunks: 1 });
    expect(ctx.stack.stats().arena.byKind.fragments).toBe(1);
    await ctx.send([a]);
    expect(ctx.received.map((r) => r.data)).toEqual([data]);
    await finish(ctx);
  });

  it('keeps several datagrams apart by (src, dst, id, protocol)', async () => {
    const ctx = await setup();
    const one = ctx.datagram(pattern(600, 1), [304], 1);
    const two = ctx.datagram(pattern(600, 2), [304], 2);
    await ctx.send([one[0]!, two[1]!, two[0]!, one[1]!]);
    expect(ctx.received.map((r) => r.data)).toEqual([pattern(600, 2), pattern(600, 1)]);
    await finish(ctx);
  });

  it('drops an exact duplicate fragment and still delivers once', async () => {
    const ctx = await setup();
    const data = pattern(1000);
    const [a, b] = ctx.datagram(data, [504]) as [Uint8Array, Uint8Array];
    await ctx.send([a, a, b, b]);
    expect(ctx.received.map((r) => r.data)).toEqual([data]);
    const drops = ctx.stack.stats().drops;
    expect(drops.fragDuplicate).toBe(1);
    // The late copy of b starts a new reassembly that never completes; it times out.
    await finish(ctx);
    expect(ctx.stack.stats().drops.fragTimeout).toBe(1);
  });

  it('drops the whole datagram on overlapping fragments, and discards the rest of it', async () => {
    const ctx = await setup();
    const data = pattern(1200);
    const segment = udpSegment(PEER_IP, ctx.node.ip, 6000, 7000, data);
    const f = { src: PEER_IP, dst: ctx.node.ip, proto: 17, id: 9 };
    const mac = ctx.node.mac;
    await ctx.send([
      fragmentFrame(mac, ctx.peer.mac, f, segment, 0, 400, true),
      fragmentFrame(mac, ctx.peer.mac, f, segment, 392, 800, true), // overlaps 8 bytes
      fragmentFrame(mac, ctx.peer.mac, f, segment, 800, segment.length, false),
    ]);
    expect(ctx.received).toHaveLength(0);
    const s = ctx.stack.stats();
    expect(s.drops.fragOverlap).toBe(2);
    expect(s.drops.fragDiscarded).toBe(1);
    expect(s.fragments).toEqual({ datagrams: 1, chunks: 0 }); // a chunkless record until it expires
    await finish(ctx);
  });

  it('frees an incomplete datagram when its 30 s run out', async () => {
    const ctx = await setup();
    const frames = ctx.datagram(pattern(1200), [400, 800]);
    await ctx.send([frames[0]!, frames[2]!]);
    expect(ctx.stack.stats().fragments).toEqual({ datagrams: 1, chunks: 1 });
    expect(ctx.stack.stats().timers.byKind.fragmentExpire).toBe(1);
    await advance(ctx.sim, 29_990);
    expect(ctx.stack.stats().fragments.datagrams).toBe(1);
    await advance(ctx.sim, 20);
    const s = ctx.stack.stats();
    expect(s.fragments).toEqual({ datagrams: 0, chunks: 0 });
    expect(s.drops.fragTimeout).toBe(2);
    expect(s.arena.byKind.fragments).toBe(0);
    expect(ctx.received).toHaveLength(0);
    await finish(ctx);
  });

  it('bounds the datagrams in progress, evicting the oldest', async () => {
    const ctx = await setup();
    for (let id = 1; id <= 20; id++) {
      await ctx.send([ctx.datagram(pattern(600, id), [304], id)[0]!]);
      await advance(ctx.sim, 10);
    }
    let s = ctx.stack.stats();
    expect(s.fragments).toEqual({ datagrams: 16, chunks: 16 });
    expect(s.arena.byKind.fragments).toBe(16);
    expect(s.drops.fragEvicted).toBe(4);
    // The newest ones are still there and complete; the evicted first ones do not.
    await ctx.send([ctx.datagram(pattern(600, 20), [304], 20)[1]!, ctx.datagram(pattern(600, 1), [304], 1)[1]!]);
    expect(ctx.received.map((r) => r.data)).toEqual([pattern(600, 20)]);
    s = ctx.stack.stats();
    expect(s.fragments.datagrams).toBe(16); // id 1's second half started a new one
    await finish(ctx);
  });

  it('delivers a datagram that fills one chunk and drops one that would not fit (fragTooBig)', async () => {
    const ctx = await setup();
    const fits = pattern(MAX_PAYLOAD - 8, 5); // UDP header + data = 2028 bytes
    await ctx.send(ctx.datagram(fits, [1200], 30));
    expect(ctx.received.map((r) => r.data.length)).toEqual([MAX_PAYLOAD - 8]);
    expect(ctx.received[0]!.data).toEqual(fits);
    const tooBig = pattern(MAX_PAYLOAD - 7, 6);
    await ctx.send(ctx.datagram(tooBig, [1200], 31));
    expect(ctx.received).toHaveLength(1);
    expect(ctx.stack.stats().drops.fragTooBig).toBe(2);
    // A fragment far beyond the chunk is dropped on arrival too.
    const far = ipv4Frame(ctx.node.mac, ctx.peer.mac, { src: PEER_IP, dst: ctx.node.ip, proto: 17, id: 32, frag: 0x2000 | (4000 / 8) }, pattern(800));
    await ctx.send([far]);
    expect(ctx.stack.stats().drops.fragTooBig).toBe(3);
    await finish(ctx);
  });

  it('drops a datagram whose fragments disagree on its end; a misaligned fragment never gets in', async () => {
    const ctx = await setup();
    const segment = udpSegment(PEER_IP, ctx.node.ip, 6000, 7000, pattern(500)); // 508 bytes
    const f = { src: PEER_IP, dst: ctx.node.ip, proto: 17, id: 40 };
    const frag = (start: number, end: number, more: boolean) =>
      fragmentFrame(ctx.node.mac, ctx.peer.mac, f, segment, start, end, more);
    await ctx.send([
      frag(0, 104, true),
      frag(304, 508, false), // ends the datagram at 508
      frag(200, 304, false), // claims it ends at 304: the datagram is dropped
      frag(104, 304, true), // the rest is discarded
    ]);
    expect(ctx.received).toHaveLength(0);
    let s = ctx.stack.stats();
    expect(s.drops.fragBadLength).toBe(3);
    expect(s.drops.fragDiscarded).toBe(1);
    // A non-final fragment that is not a multiple of 8 bytes is rejected by decode.
    await ctx.send([fragmentFrame(ctx.node.mac, ctx.peer.mac, { ...f, id: 41 }, segment, 0, 100, true)]);
    s = ctx.stack.stats();
    expect(s.drops.ipBadFragment).toBe(1);
    expect(s.fragments.datagrams).toBe(1);
    await finish(ctx);
  });

  it('answers a reassembled datagram for a closed port with one unreachable quoting it whole', async () => {
    const ctx = await setup();
    ctx.peer.send(arpFrame(BROADCAST_MAC, ctx.peer.mac, { op: 1, sha: ctx.peer.mac, spa: PEER_IP, tha: ZERO_MAC, tpa: ctx.node.ip }));
    await advance(ctx.sim, 1);
    ctx.peer.clear();
    await ctx.send(ctx.datagram(pattern(600), [304], 50, 9999));
    expect(ctx.peer.frames).toHaveLength(1);
    const probe = await createEngine(engine, 1 << 20);
    const frame = ctx.peer.frames[0]!;
    const { reason, d } = decodeWith(probe, frame);
    expect(reason).toBe(Reason.Ok);
    expect([d[D.ICMP_TYPE], d[D.ICMP_CODE]]).toEqual([3, 3]);
    // The quoted header describes the whole datagram: total length 628, no fragment bits.
    const quote = frame.subarray(d[D.PAYLOAD_OFF]!);
    expect((quote[2]! << 8) | quote[3]!).toBe(20 + 8 + 600);
    expect((quote[6]! << 8) | quote[7]!).toBe(0);
    await finish(ctx);
  });

  it('only the first fragment of an unknown protocol is ever answered, and never a later one', async () => {
    const ctx = await setup();
    ctx.peer.send(arpFrame(BROADCAST_MAC, ctx.peer.mac, { op: 1, sha: ctx.peer.mac, spa: PEER_IP, tha: ZERO_MAC, tpa: ctx.node.ip }));
    await advance(ctx.sim, 1);
    ctx.peer.clear();
    const payload = pattern(600);
    const f = { src: PEER_IP, dst: ctx.node.ip, proto: 99, id: 60 };
    await ctx.send([fragmentFrame(ctx.node.mac, ctx.peer.mac, f, payload, 304, 600, false)]);
    expect(ctx.peer.frames).toHaveLength(0);
    await ctx.send([fragmentFrame(ctx.node.mac, ctx.peer.mac, f, payload, 0, 304, true)]);
    // Reassembled, then protocol unreachable about the whole datagram.
    expect(ctx.peer.frames).toHaveLength(1);
    expect(ctx.stack.stats().drops.protoUnreachable).toBe(1);
    await finish(ctx);
  });
});
