import { describe, expect, it } from 'vitest';
import { Simulation } from '../../stack/sim.js';
import { createEngine } from '../../host/hotpath.js';
import { D, Kind, OwnerKind, Reason, ownerTag } from '../../stack/hotpath/index.js';
import {
  BROADCAST_MAC,
  ENGINES,
  advance,
  arpFrame,
  decodeWith,
  expectBaseline,
  icmpMessage,
  ipv4Frame,
  ipv4Packet,
  levels,
  makeStacks,
  pattern,
  rawPeer,
  udpFrame,
  udpSegment,
} from '../helpers/stack-pair.js';

const PEER_IP = '10.0.0.99';
const ZERO_MAC = new Uint8Array(6);

describe.each(ENGINES)('ICMP (%s engine)', (engine) => {
  /** A stack that already knows the raw peer's MAC (the peer ARPed it). */
  async function setup(limits = {}) {
    const sim = new Simulation();
    const peer = rawPeer(sim);
    const { nodes } = await makeStacks(engine, 1, { sim, limits });
    const node = nodes[0]!;
    await advance(sim, 5_000);
    const baseline = levels(node.stack);
    peer.send(arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha: peer.mac, spa: PEER_IP, tha: ZERO_MAC, tpa: node.ip }));
    await advance(sim, 1);
    peer.clear();
    const probe = await createEngine(engine, 1 << 20);
    return { sim, peer, node, stack: node.stack, baseline, probe };
  }

  it('answers an echo request with a byte-checked echo reply', async () => {
    const { sim, peer, node, stack, baseline, probe } = await setup();
    const data = pattern(56, 3);
    const request = icmpMessage(8, 0, (0x1234 << 16) | 7, data);
    peer.send(ipv4Frame(node.mac, peer.mac, { src: PEER_IP, dst: node.ip, proto: 1, id: 0x4242 }, request));
    await advance(sim, 1);
    expect(peer.frames).toHaveLength(1);
    const frame = peer.frames[0]!;
    const { reason, d } = decodeWith(probe, frame);
    expect(reason).toBe(Reason.Ok);
    expect(d[D.KIND]).toBe(Kind.Icmp);
    expect(frame.subarray(0, 6)).toEqual(peer.mac);
    expect(frame.subarray(6, 12)).toEqual(node.mac);
    expect(d[D.IP_SRC]).toBe(node.addr);
    expect(d[D.IP_TTL]).toBe(64);
    expect(d[D.ICMP_TYPE]).toBe(0);
    expect(d[D.ICMP_CODE]).toBe(0);
    expect(d[D.ICMP_REST]).toBe(((0x1234 << 16) | 7) >>> 0);
    expect(d[D.PAYLOAD_LEN]).toBe(56);
    expect(frame.subarray(d[D.PAYLOAD_OFF]!, d[D.PAYLOAD_OFF]! + 56)).toEqual(data);
    // The ICMP message is the request with type 0 and the checksum adjusted: compare whole.
    const expected = icmpMessage(0, 0, (0x1234 << 16) | 7, data);
    expect(frame.subarray(34, 34 + expected.length)).toEqual(expected);
    expect(stack.stats().icmp.echoReplies).toBe(1);
    await expectBaseline(sim, [stack], [baseline]);
  });

  it('does not answer an echo request sent to a broadcast address', async () => {
    const { sim, peer, stack } = await setup();
    const request = icmpMessage(8, 0, 1, pattern(8));
    peer.send(ipv4Frame(BROADCAST_MAC, peer.mac, { src: PEER_IP, dst: '255.255.255.255', proto: 1 }, request));
    peer.send(ipv4Frame(BROADCAST_MAC, peer.mac, { src: PEER_IP, dst: '10.0.0.255', proto: 1 }, request));
    await advance(sim, 1);
    expect(peer.frames).toHaveLength(0);
    expect(stack.stats().drops.icmpIgnored).toBe(2);
  });

  it('answers echo requests with an empty payload and with the largest that fits', async () => {
    const { sim, peer, node, probe } = await setup();
    for (const size of [0, 1472]) {
      peer.send(ipv4Frame(node.mac, peer.mac, { src: PEER_IP, dst: node.ip, proto: 1 }, icmpMessage(8, 0, size, pattern(size))));
    }
    await advance(sim, 1);
    expect(peer.frames.map((f) => decodeWith(probe, f).d[D.PAYLOAD_LEN])).toEqual([0, 1472]);
  });

  it('sends port unreachable quoting the datagram, rate-limited by a token bucket', async () => {
    const { sim, peer, node, stack, baseline, probe } = await setup();
    const offending = udpFrame(node.mac, peer.mac, PEER_IP, node.ip, 5555, 9999, pattern(20));
    for (let i = 0; i < 30; i++) peer.send(offending);
    await advance(sim, 1);
    expect(peer.frames).toHaveLength(10);
    let s = stack.stats();
    expect(s.icmp.unreachables).toBe(10);
    expect(s.drops.icmpRateLimited).toBe(20);
    expect(s.drops.udpNoPort).toBe(30);
    const { reason, d } = decodeWith(probe, peer.frames[0]!);
    expect(reason).toBe(Reason.Ok);
    expect([d[D.ICMP_TYPE], d[D.ICMP_CODE]]).toEqual([3, 3]);
    // The quote: the offending IPv4 header and all of its (short) payload.
    const quoted = offending.subarray(14);
    expect(peer.frames[0]!.subarray(d[D.PAYLOAD_OFF]!, d[D.PAYLOAD_OFF]! + d[D.PAYLOAD_LEN]!)).toEqual(quoted);
    // Refill: 10 per second.
    peer.clear();
    await advance(sim, 500);
    for (let i = 0; i < 30; i++) peer.send(offending);
    await advance(sim, 1);
    expect(peer.frames).toHaveLength(5);
    peer.clear();
    await advance(sim, 5_000);
    for (let i = 0; i < 30; i++) peer.send(offending);
    await advance(sim, 1);
    expect(peer.frames).toHaveLength(10); // the burst is capped
    s = stack.stats();
    expect(s.icmp.unreachables).toBe(25);
    await expectBaseline(sim, [stack], [baseline]);
  });

  it('sends protocol unreachable for an IP protocol without a handler', async () => {
    const { sim, peer, node, stack, probe } = await setup();
    peer.send(ipv4Frame(node.mac, peer.mac, { src: PEER_IP, dst: node.ip, proto: 99 }, pattern(30)));
    await advance(sim, 1);
    expect(peer.frames).toHaveLength(1);
    const { d } = decodeWith(probe, peer.frames[0]!);
    expect([d[D.ICMP_TYPE], d[D.ICMP_CODE]]).toEqual([3, 2]);
    expect(stack.stats().drops.protoUnreachable).toBe(1);
  });

  it('never sends an error about an ICMP error, a broadcast or a non-initial fragment', async () => {
    const { sim, peer, node, stack } = await setup();
    // An ICMP error arriving is ignored (no reply of any kind).
    const quoted = ipv4Packet({ src: node.ip, dst: PEER_IP, proto: 17 }, udpSegment(node.ip, PEER_IP, 1, 2, pattern(4)));
    peer.send(ipv4Frame(node.mac, peer.mac, { src: PEER_IP, dst: node.ip, proto: 1 }, icmpMessage(3, 3, 0, quoted)));
    // A UDP broadcast to a closed port.
    peer.send(udpFrame(BROADCAST_MAC, peer.mac, PEER_IP, '255.255.255.255', 1, 9999, pattern(4)));
    peer.send(udpFrame(BROADCAST_MAC, peer.mac, PEER_IP, '10.0.0.255', 1, 9999, pattern(4)));
    // A second fragment of a datagram with an unknown protocol: never reassembled, never answered.
    peer.send(ipv4Frame(node.mac, peer.mac, { src: PEER_IP, dst: node.ip, proto: 99, frag: 1 }, pattern(16)));
    await advance(sim, 1);
    expect(peer.frames).toHaveLength(0);
    const s = stack.stats();
    expect(s.icmp.unreachables).toBe(0);
    expect(s.drops.icmpIgnored).toBe(1);
    expect(s.drops.udpNoPort).toBe(2);

    // The rule itself, on an ICMP error described by its caller: asking for an
    // unreachable about it sends nothing and spends no token.
    const hot = node.hot;
    const frame = ipv4Frame(node.mac, peer.mac, { src: PEER_IP, dst: node.ip, proto: 1 }, icmpMessage(11, 0, 0, quoted));
    const slot = hot.alloc(ownerTag(OwnerKind.App, 1));
    hot.bytes.set(frame, slot);
    expect(hot.decode(slot, frame.length)).toBe(Reason.Ok);
    const d = hot.decoded;
    stack.ipv4.sendUnreachable(2, d[D.IP_OFF]!, d[D.IP_HLEN]! + d[D.L4_LEN]!, d[D.IP_SRC]!, d[D.IP_DST]!, d[D.IP_FRAG]!);
    hot.free(slot);
    await advance(sim, 1);
    expect(peer.frames).toHaveLength(0);
    expect(stack.stats().drops.icmpRateLimited).toBe(0);
  });

  describe('errors about what we sent', () => {
    /** The node connects to the raw peer; its SYN's IPv4 packet, as the peer got it. */
    async function connecting() {
      const env = await setup();
      const outcome = env.stack.tcp.connect(PEER_IP, 80).then(
        () => 'connected',
        (e: unknown) => e,
      );
      await advance(env.sim, 1);
      const syn = env.peer.ofType(0x0800)[0]!;
      env.peer.clear();
      return { ...env, outcome, packet: syn.subarray(14) };
    }
    const errorFrame = (node: { mac: Uint8Array; ip: string }, peerMac: Uint8Array, type: number, code: number, quote: Uint8Array) =>
      ipv4Frame(node.mac, peerMac, { src: PEER_IP, dst: node.ip, proto: 1 }, icmpMessage(type, code, 0, quote));

    it('port unreachable quoting our SYN (its IPv4 header and 8 bytes) reaches TCP: the connect fails', async () => {
      const { sim, peer, node, stack, outcome, packet } = await connecting();
      peer.send(errorFrame(node, peer.mac, 3, 3, packet.subarray(0, 28)));
      await advance(sim, 1);
      expect(String(await outcome)).toMatch(/ECONNREFUSED/);
      expect(stack.stats().icmp.errorsIn).toBe(1);
      expect(stack.stats().tcp.counters.icmpHardErrors).toBe(1);
      expect(stack.stats().tcp.connections).toBe(0);
    });

    it('ignores, counted, an error whose quote is cut short, is not IPv4, or is not from our address', async () => {
      const { sim, peer, node, stack, outcome, packet } = await connecting();
      const notOurs = packet.slice(0, 28);
      notOurs[15] ^= 1; // the quoted source
      const notV4 = packet.slice(0, 28);
      notV4[0] = 0x65;
      for (const quote of [packet.subarray(0, 27), notOurs, notV4]) peer.send(errorFrame(node, peer.mac, 3, 3, quote));
      await advance(sim, 1);
      expect(stack.stats().icmp.errorsIn).toBe(0);
      expect(stack.stats().drops.icmpIgnored).toBe(3);
      expect(stack.stats().tcp.counters.icmpHardErrors).toBe(0);
      // The connect is still under way: its SYN is retransmitted.
      await advance(sim, 1100);
      expect(peer.ofType(0x0800).length).toBeGreaterThan(0);
      void outcome;
    });
  });
});
