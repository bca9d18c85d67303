import { describe, expect, it } from 'vitest';
import { Simulation } from '../../stack/sim.js';
import { createEngine } from '../../host/hotpath.js';
import { Kind, Reason } from '../../stack/hotpath/layout.js';
import { parseIpv4 } from '../../stack/address.js';
import {
  BROADCAST_MAC,
  ENGINES,
  advance,
  arpFrame,
  decodeWith,
  expectBaseline,
  ipBytes,
  levels,
  makeStacks,
  pattern,
  rawPeer,
} from '../helpers/stack-pair.js';

const ZERO_MAC = new Uint8Array(6);
const PEER_IP = '10.0.0.99';

/** The 60-byte ARP frame we expect the stack to send. */
function expectedArp(dst: Uint8Array, src: Uint8Array, op: number, sha: Uint8Array, spa: string, tha: Uint8Array, tpa: string): Uint8Array {
  const frame = new Uint8Array(60);
  frame.set([...dst, ...src, 0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, op, ...sha, ...ipBytes(spa), ...tha, ...ipBytes(tpa)]);
  return frame;
}

describe.each(ENGINES)('ARP (%s engine)', (engine) => {
  async function setup(limits = {}) {
    const sim = new Simulation();
    const peer = rawPeer(sim);
    const { nodes } = await makeStacks(engine, 1, { sim, limits });
    const node = nodes[0]!;
    await advance(sim, 5_000); // both gratuitous announcements are out
    peer.clear();
    return { sim, peer, node, stack: node.stack, baseline: levels(node.stack) };
  }

  it('announces itself with gratuitous ARP at start, twice, 2 s apart', async () => {
    const sim = new Simulation();
    const peer = rawPeer(sim);
    const { nodes } = await makeStacks(engine, 1, { sim });
    const { mac, ip } = nodes[0]!;
    await advance(sim, 1);
    const announcement = expectedArp(BROADCAST_MAC, mac, 1, mac, ip, ZERO_MAC, ip);
    expect(peer.ofType(0x0806)).toEqual([announcement]);
    await advance(sim, 1_998);
    expect(peer.ofType(0x0806)).toHaveLength(1);
    await advance(sim, 2);
    expect(peer.ofType(0x0806)).toEqual([announcement, announcement]);
    await advance(sim, 10_000);
    expect(peer.ofType(0x0806)).toHaveLength(2);
    expect(nodes[0]!.stack.stats().timers.armed).toBe(0);
  });

  it('answers a request for its address byte for byte and learns the sender', async () => {
    const { sim, peer, node, stack, baseline } = await setup();
    peer.send(arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha: peer.mac, spa: PEER_IP, tha: ZERO_MAC, tpa: node.ip }));
    await advance(sim, 1);
    expect(peer.frames).toEqual([expectedArp(peer.mac, node.mac, 2, node.mac, node.ip, peer.mac, PEER_IP)]);
    expect(stack.arp.macOf(parseIpv4(PEER_IP))).toEqual(peer.mac);
    expect(stack.stats().arp).toEqual({ entries: 1, pending: 0, probing: 0, queued: 0 });
    // The reply decodes as a valid ARP reply with the other engine too.
    const probe = await createEngine(engine === 'ts' ? 'wasm' : 'ts', 1 << 20);
    const { reason, d } = decodeWith(probe, peer.frames[0]!);
    expect(reason).toBe(Reason.Ok);
    expect(d[1]).toBe(Kind.Arp);
    await expectBaseline(sim, [stack], [baseline]);
  });

  it('ignores requests for other hosts (counted) and does not learn from them', async () => {
    const { sim, peer, stack } = await setup();
    peer.send(arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha: peer.mac, spa: PEER_IP, tha: ZERO_MAC, tpa: '10.0.0.77' }));
    await advance(sim, 1);
    expect(peer.frames).toHaveLength(0);
    expect(stack.stats().arp.entries).toBe(0);
    expect(stack.stats().drops.arpNotForUs).toBe(1);
  });

  it('refreshes a known sender from any ARP frame (RFC 826 merge)', async () => {
    const { sim, peer, node, stack } = await setup();
    peer.send(arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha: peer.mac, spa: PEER_IP, tha: ZERO_MAC, tpa: node.ip }));
    await advance(sim, 1);
    const moved = Uint8Array.of(0x02, 0xee, 0, 0, 0, 0x42);
    // A gratuitous ARP from the peer with a new MAC, not addressed to us.
    peer.send(arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha: moved, spa: PEER_IP, tha: ZERO_MAC, tpa: PEER_IP }));
    await advance(sim, 1);
    expect(stack.arp.macOf(parseIpv4(PEER_IP))).toEqual(moved);
    expect(stack.stats().drops.arpNotForUs).toBe(0);
  });

  it('expires cache entries after 60 s', async () => {
    const { sim, peer, node, stack, baseline } = await setup();
    peer.send(arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha: peer.mac, spa: PEER_IP, tha: ZERO_MAC, tpa: node.ip }));
    await advance(sim, 1);
    expect(stack.stats().arp.entries).toBe(1);
    expect(stack.stats().timers.byKind.arpExpire).toBe(1);
    await advance(sim, 59_990);
    expect(stack.stats().arp.entries).toBe(1);
    await advance(sim, 20);
    expect(stack.stats().arp.entries).toBe(0);
    expect(levels(stack)).toEqual(baseline);
  });

  it('an entry in use at the end of its lifetime is re-confirmed by unicast while frames keep flowing (RFC 1122 unicast poll)', async () => {
    const { sim, peer, node, stack, baseline } = await setup();
    peer.send(arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha: peer.mac, spa: PEER_IP, tha: ZERO_MAC, tpa: node.ip }));
    await advance(sim, 1);
    peer.clear();
    const sock = stack.udp.bind(4000);
    sock.send(pattern(10), PEER_IP, 5000); // in use during this lifetime
    await advance(sim, 60_000);
    // Lifetime over: a request to the known MAC, not a broadcast, and the entry stays usable.
    expect(peer.ofType(0x0806)).toEqual([expectedArp(peer.mac, node.mac, 1, node.mac, node.ip, ZERO_MAC, PEER_IP)]);
    expect(stack.stats().arp).toEqual({ entries: 1, pending: 0, probing: 1, queued: 0 });
    peer.clear();
    sock.send(pattern(10, 1), PEER_IP, 5000);
    await advance(sim, 1);
    const sent = peer.ofType(0x0800);
    expect(sent).toHaveLength(1); // straight out, not queued
    expect(sent[0]!.subarray(0, 6)).toEqual(peer.mac);
    // The reply confirms it: resolved again, for a new lifetime.
    peer.send(arpFrame(node.mac, peer.mac, { op: 2, sha: peer.mac, spa: PEER_IP, tha: node.mac, tpa: node.ip }));
    await advance(sim, 1);
    expect(stack.stats().arp).toEqual({ entries: 1, pending: 0, probing: 0, queued: 0 });
    expect(stack.stats().timers.byKind).toMatchObject({ arpRetry: 0, arpExpire: 1 });
    // Unused during this lifetime: forgotten at its end, as any unused entry.
    await advance(sim, 60_000);
    expect(stack.stats().arp.entries).toBe(0);
    sock.close();
    expect(levels(stack)).toEqual(baseline);
  });

  it('forgets an entry in use whose neighbour does not confirm it; the next frame resolves by broadcast', async () => {
    const { sim, peer, node, stack, baseline } = await setup();
    peer.send(arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha: peer.mac, spa: PEER_IP, tha: ZERO_MAC, tpa: node.ip }));
    await advance(sim, 1);
    const sock = stack.udp.bind(4000);
    sock.send(pattern(10), PEER_IP, 5000);
    peer.clear();
    await advance(sim, 60_000 + 2_500);
    const unicast = expectedArp(peer.mac, node.mac, 1, node.mac, node.ip, ZERO_MAC, PEER_IP);
    expect(peer.ofType(0x0806)).toEqual([unicast, unicast, unicast]);
    expect(stack.stats().arp.probing).toBe(1);
    await advance(sim, 600);
    expect(stack.stats().arp).toEqual({ entries: 0, pending: 0, probing: 0, queued: 0 });
    peer.clear();
    sock.send(pattern(10), PEER_IP, 5000);
    expect(stack.stats().arp).toEqual({ entries: 1, pending: 1, probing: 0, queued: 1 });
    await advance(sim, 1);
    expect(peer.ofType(0x0806)).toEqual([expectedArp(BROADCAST_MAC, node.mac, 1, node.mac, node.ip, ZERO_MAC, PEER_IP)]);
    sock.close();
    await advance(sim, 5_000); // the resolution gives up, freeing the frame
    expect(stack.stats().drops.arpGiveUp).toBe(1);
    expect(levels(stack)).toEqual(baseline);
  });

  it('queues frames while resolving and flushes them, patched, on the reply', async () => {
    const { sim, peer, node, stack, baseline } = await setup();
    const sock = stack.udp.bind(4000);
    for (let i = 0; i < 3; i++) expect(sock.send(pattern(100, i), PEER_IP, 5000)).toBe(true);
    let s = stack.stats();
    expect(s.arp).toEqual({ entries: 1, pending: 1, probing: 0, queued: 3 });
    expect(s.arena.byKind.arpQueue).toBe(3);
    await advance(sim, 1);
    expect(peer.frames).toEqual([expectedArp(BROADCAST_MAC, node.mac, 1, node.mac, node.ip, ZERO_MAC, PEER_IP)]);
    peer.clear();
    peer.send(arpFrame(node.mac, peer.mac, { op: 2, sha: peer.mac, spa: PEER_IP, tha: node.mac, tpa: node.ip }));
    await advance(sim, 1);
    const udp = peer.ofType(0x0800);
    expect(udp).toHaveLength(3);
    const probe = await createEngine('ts', 1 << 20);
    udp.forEach((frame, i) => {
      expect(frame.subarray(0, 6)).toEqual(peer.mac);
      const { reason, d } = decodeWith(probe, frame);
      expect(reason).toBe(Reason.Ok);
      expect(d[1]).toBe(Kind.Udp);
      expect(frame.subarray(d[48]!, d[48]! + d[49]!)).toEqual(pattern(100, i));
    });
    s = stack.stats();
    expect(s.arp).toEqual({ entries: 1, pending: 0, probing: 0, queued: 0 });
    expect(s.timers.byKind.arpRetry).toBe(0);
    // Resolved now: the next datagram goes straight out.
    sock.send(pattern(10), PEER_IP, 5000);
    expect(stack.stats().arp.queued).toBe(0);
    sock.close();
    await expectBaseline(sim, [stack], [baseline]);
  });

  it('retries 3 times, then gives up and frees the queued frames', async () => {
    const { sim, peer, stack, baseline } = await setup();
    const sock = stack.udp.bind(4000);
    sock.send(pattern(100), PEER_IP, 5000);
    sock.send(pattern(100), PEER_IP, 5000);
    await advance(sim, 2_500);
    expect(peer.ofType(0x0806)).toHaveLength(3);
    expect(stack.stats().arp.queued).toBe(2);
    await advance(sim, 600);
    expect(peer.ofType(0x0806)).toHaveLength(3);
    const s = stack.stats();
    expect(s.arp).toEqual({ entries: 0, pending: 0, probing: 0, queued: 0 });
    expect(s.drops.arpGiveUp).toBe(2);
    expect(s.arena.chunksInUse - s.arena.tableChunks, 'chunks beyond the fixed tables').toBe(0);
    sock.close();
    expect(levels(stack)).toEqual(baseline);
  });

  it('bounds the queue per destination and in total', async () => {
    const { sim, stack, baseline } = await setup({ arpQueuePerEntry: 4, arpQueueTotal: 6 });
    const sock = stack.udp.bind(4000);
    for (let i = 0; i < 6; i++) sock.send(pattern(50), PEER_IP, 5000);
    expect(stack.stats().arp.queued).toBe(4);
    expect(stack.stats().drops.arpQueueFull).toBe(2);
    for (let i = 0; i < 4; i++) sock.send(pattern(50), '10.0.0.98', 5000);
    const s = stack.stats();
    expect(s.arp).toEqual({ entries: 2, pending: 2, probing: 0, queued: 6 });
    expect(s.drops.arpQueueFull).toBe(4);
    expect(s.arena.byKind.arpQueue).toBe(6);
    sock.close();
    await expectBaseline(sim, [stack], [baseline]);
    expect(stack.stats().drops.arpGiveUp).toBe(6);
  });

  it('a full cache evicts the oldest entry unused since its confirmation before one in use', async () => {
    const { sim, peer, node, stack, baseline } = await setup({ arpEntries: 3 });
    const learn = async (i: number): Promise<void> => {
      const sha = Uint8Array.of(0x02, 0xee, 0, 0, 1, i);
      peer.send(arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha, spa: `10.0.0.${100 + i}`, tha: ZERO_MAC, tpa: node.ip }));
      await advance(sim, 1);
    };
    for (let i = 1; i <= 3; i++) await learn(i);
    const sock = stack.udp.bind(4000);
    sock.send(pattern(10), '10.0.0.101', 5000); // the oldest is in use
    await learn(4);
    expect(stack.arp.macOf(parseIpv4('10.0.0.101'))).not.toBeNull();
    expect(stack.arp.macOf(parseIpv4('10.0.0.102'))).toBeNull();
    expect(stack.stats().arp.entries).toBe(3);
    sock.close();
    await expectBaseline(sim, [stack], [baseline]);
  });

  it('bounds the cache, evicting the oldest entry', async () => {
    const { sim, peer, node, stack, baseline } = await setup({ arpEntries: 4 });
    for (let i = 1; i <= 6; i++) {
      const sha = Uint8Array.of(0x02, 0xee, 0, 0, 1, i);
      peer.send(arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha, spa: `10.0.0.${100 + i}`, tha: ZERO_MAC, tpa: node.ip }));
      await advance(sim, 1);
    }
    expect(stack.stats().arp.entries).toBe(4);
    expect(stack.arp.macOf(parseIpv4('10.0.0.101'))).toBeNull();
    expect(stack.arp.macOf(parseIpv4('10.0.0.102'))).toBeNull();
    expect(stack.arp.macOf(parseIpv4('10.0.0.106'))).toEqual(Uint8Array.of(0x02, 0xee, 0, 0, 1, 6));
    expect(stack.stats().timers.byKind.arpExpire).toBe(4);
    await expectBaseline(sim, [stack], [baseline]);
  });

  it('evicting a pending entry frees its queued frames (counted)', async () => {
    const { sim, stack, baseline } = await setup({ arpEntries: 2 });
    const sock = stack.udp.bind(4000);
    sock.send(pattern(20), '10.0.0.91', 1);
    sock.send(pattern(20), '10.0.0.92', 1);
    sock.send(pattern(20), '10.0.0.93', 1);
    const s = stack.stats();
    expect(s.arp).toEqual({ entries: 2, pending: 2, probing: 0, queued: 2 });
    expect(s.drops.arpEvicted).toBe(1);
    sock.close();
    await expectBaseline(sim, [stack], [baseline]);
  });

  it('does not learn from a sender claiming our address or a broadcast MAC', async () => {
    const { sim, peer, node, stack } = await setup();
    peer.send(arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha: peer.mac, spa: node.ip, tha: ZERO_MAC, tpa: node.ip }));
    peer.send(arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha: BROADCAST_MAC, spa: PEER_IP, tha: ZERO_MAC, tpa: node.ip }));
    await advance(sim, 1);
    expect(peer.frames).toHaveLength(0);
    const s = stack.stats();
    expect(s.arp.entries).toBe(0);
    expect(s.drops.arpConflict).toBe(1);
    expect(s.drops.arpBadSender).toBe(1);
  });

  it('answers a probe (sender 0.0.0.0) without learning', async () => {
    const { sim, peer, node, stack } = await setup();
    peer.send(arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha: peer.mac, spa: '0.0.0.0', tha: ZERO_MAC, tpa: node.ip }));
    await advance(sim, 1);
    expect(peer.frames).toEqual([expectedArp(peer.mac, node.mac, 2, node.mac, node.ip, peer.mac, '0.0.0.0')]);
    expect(stack.stats().arp.entries).toBe(0);
  });

  it('two stacks resolve each other and exchange a datagram', async () => {
    const { sim, nodes } = await makeStacks(engine, 2);
    await advance(sim, 5_000);
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const baselines = [levels(a.stack), levels(b.stack)];
    const rx = b.stack.udp.bind(7);
    const got = rx.recv();
    const tx = a.stack.udp.bind(0);
    tx.send(pattern(64), b.ip, 7);
    const datagram = await sim.complete(got);
    expect(datagram?.data).toEqual(pattern(64));
    expect(a.stack.arp.macOf(b.addr)).toEqual(b.mac);
    expect(b.stack.arp.macOf(a.addr)).toEqual(a.mac);
    rx.close();
    tx.close();
    await expectBaseline(sim, [a.stack, b.stack], baselines);
  });
});
