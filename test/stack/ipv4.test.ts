import { describe, expect, it } from 'vitest';
import { Simulation } from '../../stack/sim.js';
import { createEngine } from '../../host/hotpath.js';
import { D, Kind, Reason } from '../../stack/hotpath/index.js';
import { Stack } from '../../stack/stack.js';
import { parseIpv4 } from '../../stack/address.js';
import {
  BROADCAST_MAC,
  ENGINES,
  TEST_MEMORY_BYTES,
  advance,
  arpFrame,
  decodeWith,
  expectBaseline,
  levels,
  makeStacks,
  pattern,
  rawPeer,
  udpFrame,
} from '../helpers/stack-pair.js';

const PEER_IP = '10.0.0.99';
const ZERO_MAC = new Uint8Array(6);

describe('parseIpv4', () => {
  it('reads dotted quads, leading zeros included', () => {
    expect(parseIpv4('10.0.0.2')).toBe(0x0a000002);
    expect(parseIpv4('255.255.255.255')).toBe(0xffffffff);
    expect(parseIpv4('0.0.0.0')).toBe(0);
    expect(parseIpv4('001.002.003.004')).toBe(0x01020304);
  });

  it('throws on anything else: missing or extra parts, empty parts, octets over 255 or of four digits, signs, spaces, letters', () => {
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', '1.2.3.4.', '.1.2.3', 'a.b.c.d', '1.2.3.1000',
      '1.2.3.-4', ' 1.2.3.4', '1.2.3.4 ', '1234.1.1.1', '1.2.3.4x', '+1.2.3.4']) {
      expect(() => parseIpv4(bad), bad).toThrow(/invalid IPv4 address/);
    }
  });
});

describe.each(ENGINES)('IPv4 (%s engine)', (engine) => {
  async function setup(opts: { gateway?: string; limits?: object } = {}) {
    const sim = new Simulation();
    const peer = rawPeer(sim);
    const { nodes } = await makeStacks(engine, 1, { sim, ...opts });
    const node = nodes[0]!;
    await advance(sim, 5_000);
    peer.clear();
    const probe = await createEngine(engine, 1 << 20);
    return { sim, peer, node, stack: node.stack, baseline: levels(node.stack), probe };
  }

  it('fills the IPv4 header: our source, TTL 64, no DF on UDP, an incrementing ID', async () => {
    const { sim, peer, node, stack, probe, baseline } = await setup();
    peer.send(arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha: peer.mac, spa: PEER_IP, tha: ZERO_MAC, tpa: node.ip }));
    await advance(sim, 1);
    peer.clear();
    const sock = stack.udp.bind(1234);
    sock.send(pattern(10), PEER_IP, 80);
    sock.send(pattern(10), PEER_IP, 80);
    await advance(sim, 1);
    const [first, second] = peer.frames.map((f) => decodeWith(probe, f));
    for (const { reason, d } of [first!, second!]) {
      expect(reason).toBe(Reason.Ok);
      expect(d[D.KIND]).toBe(Kind.Udp);
      expect(d[D.IP_SRC]).toBe(node.addr);
      expect(d[D.IP_DST]).toBe(parseIpv4(PEER_IP));
      expect(d[D.IP_TTL]).toBe(64);
      expect(d[D.IP_TOS]).toBe(0);
      expect(d[D.IP_FRAG]).toBe(0);
      expect([d[D.SPORT], d[D.DPORT]]).toEqual([1234, 80]);
    }
    expect(second!.d[D.IP_ID]).toBe((first!.d[D.IP_ID]! + 1) & 0xffff);
    sock.close();
    await expectBaseline(sim, [stack], [baseline]);
  });

  it('uses the configured TTL', async () => {
    const { sim, peer, node, stack, probe } = await setup({ limits: { ttl: 7 } });
    peer.send(arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha: peer.mac, spa: PEER_IP, tha: ZERO_MAC, tpa: node.ip }));
    await advance(sim, 1);
    peer.clear();
    stack.udp.bind(1).send(pattern(1), PEER_IP, 2);
    await advance(sim, 1);
    expect(decodeWith(probe, peer.frames[0]!).d[D.IP_TTL]).toBe(7);
  });

  it('sends off-link destinations through the gateway, resolving the gateway', async () => {
    const { sim, peer, node, stack, probe, baseline } = await setup({ gateway: '10.0.0.1' });
    const sock = stack.udp.bind(1234);
    expect(sock.send(pattern(32), '192.168.1.5', 53)).toBe(true);
    await advance(sim, 1);
    const [request] = peer.ofType(0x0806);
    expect(request!.subarray(38, 42)).toEqual(Uint8Array.of(10, 0, 0, 1)); // who has the gateway?
    peer.clear();
    peer.send(arpFrame(node.mac, peer.mac, { op: 2, sha: peer.mac, spa: '10.0.0.1', tha: node.mac, tpa: node.ip }));
    await advance(sim, 1);
    const [frame] = peer.ofType(0x0800);
    expect(frame!.subarray(0, 6)).toEqual(peer.mac);
    const { reason, d } = decodeWith(probe, frame!);
    expect(reason).toBe(Reason.Ok);
    expect(d[D.IP_DST]).toBe(parseIpv4('192.168.1.5'));
    sock.close();
    await expectBaseline(sim, [stack], [baseline]);
  });

  it('without a gateway, off-link sends fail (noRoute); sending to itself fails (loopback)', async () => {
    const { sim, peer, node, stack, baseline } = await setup();
    const sock = stack.udp.bind(1234);
    expect(sock.send(pattern(32), '192.168.1.5', 53)).toBe(false);
    expect(sock.send(pattern(32), '0.0.0.0', 53)).toBe(false);
    expect(sock.send(pattern(32), node.ip, 53)).toBe(false);
    await advance(sim, 1);
    expect(peer.frames).toHaveLength(0);
    const s = stack.stats();
    expect(s.drops.noRoute).toBe(2);
    expect(s.drops.loopback).toBe(1);
    expect(s.arena.chunksInUse - s.arena.tableChunks, 'chunks beyond the fixed tables').toBe(0);
    sock.close();
    await expectBaseline(sim, [stack], [baseline]);
  });

  it('rejects a gateway outside the subnet', async () => {
    const sim = new Simulation();
    const hot = await createEngine(engine, TEST_MEMORY_BYTES);
    const device = sim.switch.attach();
    const make = () =>
      new Stack({ device, hotpath: hot, clock: sim.clock, ipv4: { address: '10.0.0.2', prefix: 24, gateway: '10.1.0.1' } });
    expect(make).toThrow(/gateway/);
  });

  it('drops datagrams for other addresses and frames for other MACs (counted)', async () => {
    const { sim, peer, node, stack } = await setup();
    // Our MAC, someone else's IP.
    peer.send(udpFrame(node.mac, peer.mac, PEER_IP, '10.0.0.77', 1, 2, pattern(4)));
    // Multicast IP to the broadcast MAC.
    peer.send(udpFrame(BROADCAST_MAC, peer.mac, PEER_IP, '224.0.0.1', 1, 2, pattern(4)));
    // Another host's MAC (flooded by the switch, which has not learned it) and a multicast MAC.
    peer.send(udpFrame(Uint8Array.of(2, 0xaa, 0, 0, 0, 1), peer.mac, PEER_IP, node.ip, 1, 2, pattern(4)));
    peer.send(udpFrame(Uint8Array.of(1, 0, 0x5e, 0, 0, 1), peer.mac, PEER_IP, node.ip, 1, 2, pattern(4)));
    await advance(sim, 1);
    const s = stack.stats();
    expect(s.drops.notOurAddress).toBe(2);
    expect(s.drops.notOurMac).toBe(2);
    expect(peer.frames).toHaveLength(0);
  });

  it('accepts datagrams sent to the subnet broadcast and to 255.255.255.255', async () => {
    const { sim, peer, stack } = await setup();
    const got: number[] = [];
    const sock = stack.udp.bind(5);
    sock.onMessage((data) => got.push(data.length));
    peer.send(udpFrame(BROADCAST_MAC, peer.mac, PEER_IP, '10.0.0.255', 1, 5, pattern(3)));
    peer.send(udpFrame(BROADCAST_MAC, peer.mac, PEER_IP, '255.255.255.255', 1, 5, pattern(4)));
    await advance(sim, 1);
    expect(got).toEqual([3, 4]);
    sock.close();
  });
});
