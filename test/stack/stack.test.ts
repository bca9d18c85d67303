import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Simulation } from '../../stack/sim.js';
import { OWNER_KIND_NAMES, OwnerKind, REASON_NAMES, ownerTag } from '../../stack/hotpath/index.js';
import { DROP_NAMES } from '../../stack/stats.js';
import { D, Reason } from '../../stack/hotpath/index.js';
import { Stack } from '../../stack/stack.js';
import type { NetDevice } from '../../stack/netdev.js';
import { createEngine } from '../../host/hotpath.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../../stack/hotpath/layout.js';
import { fixChecksums, ipNumber, refPseudoSum, refSum } from '../helpers/frames.js';
import { checkProperty } from '../helpers/property.js';
import type { Connection } from '../../stack/tcp/connection.js';
import {
  BROADCAST_MAC,
  ENGINES,
  TEST_MEMORY_BYTES,
  advance,
  decodeWith,
  arpFrame,
  ethernet,
  expectBaseline,
  expectIdle,
  fragmentFrames,
  icmpMessage,
  ipv4Frame,
  levels,
  makeStacks,
  pattern,
  rawPeer,
  udpFrame,
  udpSegment,
  type StackNode,
} from '../helpers/stack-pair.js';

const PEER_IP = '10.0.0.99';
const ZERO_MAC = new Uint8Array(6);

/**
 * What is wrong with a frame a stack sent, checked with reference code that
 * shares nothing with the engines (test/helpers/frames.ts): from its MAC; ARP
 * for Ethernet/IPv4 from its address; or IPv4 from its address with a good
 * header checksum, a consistent total length, and a good ICMP, UDP or TCP
 * checksum. null when nothing is.
 */
function sentFrameProblem(f: Uint8Array, node: StackNode): string | null {
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  const hex = Buffer.from(f.subarray(0, 64)).toString('hex');
  const bad = (what: string) => `${what}: ${hex}${f.length > 64 ? '...' : ''}`;
  if (f.length < 14) return bad('shorter than an Ethernet header');
  if (!f.subarray(6, 12).every((b, i) => b === node.mac[i])) return bad('source MAC not ours');
  const ours = ipNumber(node.ip);
  const type = v.getUint16(12);
  if (type === 0x0806) {
    if (f.length < 42) return bad('short ARP');
    if (v.getUint16(14) !== 1 || v.getUint16(16) !== 0x0800 || f[18] !== 6 || f[19] !== 4) return bad('ARP not Ethernet/IPv4');
    if (v.getUint16(20) !== 1 && v.getUint16(20) !== 2) return bad('ARP opcode');
    if (!f.subarray(22, 28).every((b, i) => b === node.mac[i]) || v.getUint32(28) !== ours) return bad('ARP sender not us');
    return null;
  }
  if (type !== 0x0800) return bad(`ethertype 0x${type.toString(16)}`);
  if (f.length < 34 || f[14]! >> 4 !== 4) return bad('not IPv4');
  const hlen = (f[14]! & 15) * 4;
  const total = v.getUint16(16);
  if (hlen < 20 || total < hlen || 14 + total > f.length) return bad('IPv4 lengths');
  if (refSum(f.subarray(14, 14 + hlen)) !== 0xffff) return bad('IPv4 header checksum');
  if (v.getUint32(26) !== ours) return bad('IPv4 source not ours');
  if ((v.getUint16(20) & 0x3fff) !== 0) return null; // a fragment: its L4 checksum spans the others
  const l4 = f.subarray(14 + hlen, 14 + total);
  const dst = v.getUint32(30);
  const proto = f[23]!;
  if (proto === IPPROTO_ICMP) return l4.length >= 8 && refSum(l4) === 0xffff ? null : bad('ICMP checksum');
  if (proto === IPPROTO_UDP) {
    const lv = new DataView(l4.buffer, l4.byteOffset, l4.byteLength);
    if (l4.length < 8 || lv.getUint16(4) !== l4.length) return bad('UDP length');
    if (lv.getUint16(6) === 0) return null; // no checksum (RFC 768)
    return refSum(l4, refPseudoSum(ours, dst, IPPROTO_UDP, l4.length)) === 0xffff ? null : bad('UDP checksum');
  }
  if (proto === IPPROTO_TCP) {
    return l4.length >= 20 && refSum(l4, refPseudoSum(ours, dst, IPPROTO_TCP, l4.length)) === 0xffff ? null : bad('TCP checksum');
  }
  return bad(`IP protocol ${proto}`);
}

describe.each(ENGINES)('Stack (%s engine)', (engine) => {
  async function setup() {
    const sim = new Simulation();
    const peer = rawPeer(sim);
    const { nodes } = await makeStacks(engine, 1, { sim });
    const node = nodes[0]!;
    await advance(sim, 5_000);
    peer.clear();
    return { sim, peer, node, stack: node.stack, baseline: levels(node.stack) };
  }

  it('reports a stable, complete stats() shape', async () => {
    const { node, stack } = await setup();
    const s = stack.stats();
    expect(Object.keys(s).sort()).toEqual(['admission', 'arena', 'arp', 'drops', 'fragments', 'frames', 'icmp', 'tcp', 'timers', 'udp']);
    expect(s.arena.chunksTotal).toBe(node.hot.chunkCount);
    expect(Object.keys(s.arena.byKind)).toEqual(OWNER_KIND_NAMES.slice(1));
    expect(Object.keys(s.drops)).toEqual([...REASON_NAMES.slice(1), ...DROP_NAMES]);
    expect(Object.values(s.drops).every((n) => n === 0)).toBe(true);
    expect(Object.keys(s.timers.byKind).sort()).toEqual(['arpExpire', 'arpRetry', 'fragmentExpire', 'housekeeping', 'pressureRecheck', 'tcp']);
    expectIdle(stack);
  });

  it('counts malformed frames by decode reason and never answers them', async () => {
    const { sim, peer, node, stack, baseline } = await setup();
    const good = udpFrame(node.mac, peer.mac, PEER_IP, node.ip, 1, 7, pattern(20));
    const badIpSum = good.slice();
    badIpSum[14 + 10]! ^= 0xff;
    const badUdpSum = good.slice();
    badUdpSum[14 + 20 + 6]! ^= 0x01;
    const shortTotal = good.slice();
    shortTotal[14 + 3] = 10; // total length below the header
    const ipv6 = ethernet(node.mac, peer.mac, 0x86dd, pattern(60));
    const arpBadOp = arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha: peer.mac, spa: PEER_IP, tha: ZERO_MAC, tpa: node.ip });
    arpBadOp[14 + 7] = 9;
    const icmpBadSum = ipv4Frame(node.mac, peer.mac, { src: PEER_IP, dst: node.ip, proto: 1 }, icmpMessage(8, 0, 1, pattern(8)));
    icmpBadSum[14 + 20 + 2]! ^= 0x10;
    for (const f of [badIpSum, badUdpSum, shortTotal, ipv6, arpBadOp, icmpBadSum]) peer.send(f);
    await advance(sim, 1);
    const d = stack.stats().drops;
    expect(d.ipBadChecksum).toBe(1);
    expect(d.udpBadChecksum).toBe(1);
    expect(d.ipBadTotalLength).toBe(1);
    expect(d.unknownEthertype).toBe(1);
    expect(d.arpBadOp).toBe(1);
    expect(d.icmpBadChecksum).toBe(1);
    expect(peer.frames).toHaveLength(0);
    expect(stack.stats().frames.rx).toBe(6);
    await expectBaseline(sim, [stack], [baseline]);
  });

  it('counts a frame it has no arena chunk for (rxArenaFull) and a send it cannot build (txArenaFull)', async () => {
    const { sim, peer, node, stack, baseline } = await setup();
    const held: number[] = [];
    for (let c = node.hot.alloc(ownerTag(OwnerKind.App, 1)); c !== 0; c = node.hot.alloc(ownerTag(OwnerKind.App, 1))) {
      held.push(c);
    }
    peer.send(udpFrame(node.mac, peer.mac, PEER_IP, node.ip, 1, 7, pattern(20)));
    await advance(sim, 1);
    expect(stack.stats().drops.rxArenaFull).toBe(1);
    const sock = stack.udp.bind(0);
    expect(sock.send(pattern(4), PEER_IP, 9)).toBe(false);
    expect(stack.stats().drops.txArenaFull).toBe(1);
    for (const c of held) node.hot.free(c);
    sock.close();
    await expectBaseline(sim, [stack], [baseline]);
  });

  it('never throws, never leaks, and answers only with well-formed frames, on random and mutated frames (fast-check)', async () => {
    const { sim, peer, node, stack, baseline } = await setup();
    const echo = stack.udp.bind(7);
    echo.onMessage((data, address, port) => {
      echo.send(data, address, port);
    });
    const queued = stack.udp.bind(9); // never read: its queue fills and overflows
    const templates = [
      udpFrame(node.mac, peer.mac, PEER_IP, node.ip, 1000, 7, pattern(40)),
      udpFrame(node.mac, peer.mac, PEER_IP, node.ip, 1000, 9, pattern(40)),
      udpFrame(node.mac, peer.mac, PEER_IP, node.ip, 1000, 4444, pattern(40)),
      ipv4Frame(node.mac, peer.mac, { src: PEER_IP, dst: node.ip, proto: 1 }, icmpMessage(8, 0, 7, pattern(56))),
      ipv4Frame(node.mac, peer.mac, { src: PEER_IP, dst: node.ip, proto: 6 }, pattern(40)),
      arpFrame(BROADCAST_MAC, peer.mac, { op: 1, sha: peer.mac, spa: PEER_IP, tha: ZERO_MAC, tpa: node.ip }),
      ...fragmentFrames(
        node.mac,
        peer.mac,
        { src: PEER_IP, dst: node.ip, proto: 17, id: 5 },
        udpSegment(PEER_IP, node.ip, 1000, 7, pattern(900)),
        [296, 600],
      ),
    ];
    const mutated = fc
      .record({
        template: fc.integer({ min: 0, max: templates.length - 1 }),
        flips: fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { maxLength: 4 }),
        cut: fc.option(fc.nat(), { nil: undefined }),
        // Half the time the checksums are made right again, so a mutation gets
        // past the checksum checks to the ones behind them.
        fix: fc.boolean(),
      })
      .map(({ template, flips, cut, fix }) => {
        const frame = templates[template]!.slice();
        for (const { at, xor } of flips) frame[6 + (at % (frame.length - 6))]! ^= xor;
        const cutFrame = cut === undefined ? frame : frame.subarray(0, 14 + (cut % (frame.length - 13)));
        return fix ? fixChecksums(cutFrame.slice()) : cutFrame;
      });
    // The peer announcing itself first (an intact ARP request) lets answers go
    // out at once; otherwise they wait for ARP, which the peer never answers.
    const announce = templates.find((f) => f[12] === 0x08 && f[13] === 0x06)!;
    const random = fc
      .record({ type: fc.constantFrom(0x0800, 0x0806, 0x86dd, 0x1234), body: fc.uint8Array({ minLength: 0, maxLength: 1500 }) })
      .map(({ type, body }) => ethernet(node.mac, peer.mac, type, body));
    await checkProperty(
      `stack/stack: random and mutated frames (${engine})`,
      fc.asyncProperty(fc.boolean(), fc.array(fc.oneof(mutated, random), { minLength: 1, maxLength: 8 }), async (first, input) => {
        const frames = first ? [announce, ...input] : input;
        peer.clear();
        const before = stack.stats();
        for (const f of frames) peer.send(f);
        await advance(sim, 3);
        const after = stack.stats();
        // Every frame reached the stack and was counted.
        expect(after.frames.rx - before.frames.rx).toBe(frames.length);
        // Nothing it did on its own account failed: no chunk ran out, every
        // answer it built passed its encoder, and the link took every frame.
        for (const drop of ['rxArenaFull', 'txArenaFull', 'txInvalid', 'deviceDrop'] as const) {
          expect(after.drops[drop], drop).toBe(before.drops[drop]);
        }
        // Every chunk still in use belongs to a queue that says so: none of
        // a frame's own (rx, tx) outlived its handling.
        const kinds = after.arena.byKind;
        expect({ rx: kinds.rx, tx: kinds.tx }).toEqual({ rx: 0, tx: 0 });
        expect(after.arena.chunksInUse).toBe(kinds.udpQueue! + kinds.fragments! + kinds.arpQueue! + kinds.table!);
        expect(kinds.table).toBe(after.arena.tableChunks);
        expect(kinds.fragments).toBe(after.fragments.chunks);
        expect(kinds.udpQueue).toBe(after.udp.queued);
        expect(kinds.arpQueue).toBe(after.arp.queued);
        expect(node.hot.badFrees()).toBe(0);
        // Every frame it sent in answer is well formed, from us, checksums good.
        expect(after.frames.tx - before.frames.tx).toBe(peer.frames.length);
        expect(peer.frames.map((f) => sentFrameProblem(f, node)).filter((x) => x !== null)).toEqual([]);
      }),
      { numRuns: 300 },
    );
    queued.close();
    echo.close();
    peer.clear();
    await expectBaseline(sim, [stack], [baseline]);
    expect(stack.stats().frames.rx).toBeGreaterThan(300);
  });

  it('shutdown frees everything it holds: queues, reassemblies, ARP, timers, the alarm', async () => {
    const { sim, peer, node, stack } = await setup();
    // Queued UDP datagrams.
    stack.udp.bind(9);
    for (let i = 0; i < 3; i++) peer.send(udpFrame(node.mac, peer.mac, PEER_IP, node.ip, 1, 9, pattern(30)));
    // A reassembly in progress.
    const frags = fragmentFrames(node.mac, peer.mac, { src: PEER_IP, dst: node.ip, proto: 17, id: 1 }, udpSegment(PEER_IP, node.ip, 1, 9, pattern(900)), [296, 600]);
    peer.send(frags[0]!);
    await advance(sim, 1);
    // A destination being resolved, with frames queued.
    const sock = stack.udp.bind(0);
    sock.send(pattern(10), '10.0.0.50', 1);
    sock.send(pattern(10), '10.0.0.50', 1);
    const pending = sock.recv();
    let s = stack.stats();
    expect(s.udp.queued).toBe(3);
    expect(s.fragments.chunks).toBe(1);
    expect(s.arp.queued).toBe(2);
    expect(s.arena.chunksInUse - s.arena.tableChunks).toBe(6);
    expect(s.timers.armed).toBeGreaterThan(0);

    stack.shutdown();
    expect(await pending).toBeNull();
    s = stack.stats();
    expect(s.arena.chunksInUse - s.arena.tableChunks, 'chunks beyond the fixed tables').toBe(0);
    expect(s.udp).toEqual({ sockets: 0, queued: 0, queuedBytes: 0 });
    expect(s.arp).toEqual({ entries: 0, pending: 0, probing: 0, queued: 0 });
    expect(s.fragments).toEqual({ datagrams: 0, chunks: 0 });
    expect(s.timers.armed).toBe(0);
    expect(node.hot.badFrees()).toBe(0);

    // Afterwards: frames are counted and dropped, sends fail, binds throw.
    peer.send(udpFrame(node.mac, peer.mac, PEER_IP, node.ip, 1, 9, pattern(30)));
    await advance(sim, 1);
    expect(stack.stats().drops.stopped).toBe(1);
    expect(() => stack.udp.bind(0)).toThrow(/shut down/);
    expect(() => sock.send(pattern(1), PEER_IP, 1)).toThrow(/closed/);
    stack.shutdown(); // idempotent
    // No alarm of this stack is left on the clock.
    await advance(sim, 100_000);
    expect(sim.clock.pendingAlarms).toBe(0);
    expect(stack.stats().arena.chunksInUse - stack.stats().arena.tableChunks, 'chunks beyond the fixed tables').toBe(0);
  });

  it('carries TCP between two stacks, and everything returns to baseline after close', async () => {
    const { sim, nodes } = await makeStacks(engine, 2);
    await advance(sim, 5_000);
    const [a, b] = nodes as [StackNode, StackNode];
    const baselines = [levels(a.stack), levels(b.stack)];
    const listener = b.stack.tcp.listen(9000);
    listener.onConnection = (conn) => {
      conn.onData = (bytes) => {
        conn.write(bytes);
      };
      conn.onEnd = () => conn.end();
    };
    const client = await sim.complete(a.stack.tcp.connect(b.ip, 9000));
    const received: number[] = [];
    client.onData = (bytes) => {
      received.push(...bytes);
    };
    const message = pattern(5000, 4);
    expect(client.write(message)).toBe(5000);
    await sim.run(() => received.length === 5000);
    expect(Uint8Array.from(received)).toEqual(message);
    client.end();
    const info = await sim.complete(client.closed);
    expect(info.reason).toBe('closed');
    listener.close();
    // TIME_WAIT (2 MSL) and the ARP entries run out within the settle time.
    await expectBaseline(sim, [a.stack, b.stack], baselines);
    expect(a.stack.stats().tcp.connections).toBe(0);
    expect(b.stack.stats().tcp.connections).toBe(0);
  });

  it('shutdown ends live TCP connections through the release path and frees their chunks', async () => {
    const { sim, nodes } = await makeStacks(engine, 2);
    await advance(sim, 5_000);
    const [a, b] = nodes as [StackNode, StackNode];
    const listener = b.stack.tcp.listen(9000);
    const accepted: Connection[] = [];
    listener.onConnection = (conn) => {
      accepted.push(conn); // never reads: data piles up in its receive buffer
    };
    const clients = await Promise.all([1, 2, 3].map(() => sim.complete(a.stack.tcp.connect(b.ip, 9000))));
    for (const c of clients) c.write(pattern(3000));
    await sim.run(() => b.stack.stats().arena.byKind.tcpRecv! > 0 && accepted.length === 3);
    expect(b.stack.stats().tcp.connections).toBe(3);
    b.stack.shutdown();
    const s = b.stack.stats();
    expect(s.arena.chunksInUse - s.arena.tableChunks, 'chunks beyond the fixed tables').toBe(0);
    expect(s.timers.armed).toBe(0);
    expect(s.tcp.connections).toBe(0);
    const infos = await Promise.all(accepted.map((c) => c.closed));
    expect(infos.map((i) => i.reason)).toEqual(['shutdown', 'shutdown', 'shutdown']);
    // The RSTs sent on shutdown end the client side too.
    await sim.run(() => a.stack.stats().tcp.connections === 0);
    a.stack.shutdown();
    expect(a.stack.stats().arena.chunksInUse - a.stack.stats().arena.tableChunks, 'chunks beyond the fixed tables').toBe(0);
    await advance(sim, 1_000);
    expect(sim.clock.pendingAlarms).toBe(0);
  });

  it('defers a frame the device delivers from inside send(), never mixing two frames', async () => {
    const sim = new Simulation();
    const hot = await createEngine(engine, TEST_MEMORY_BYTES);
    const mac = Uint8Array.of(2, 0, 0, 0, 0, 0x10);
    const peerMac = Uint8Array.of(2, 0, 0, 0, 0, 0x20);
    const echo = (seq: number) =>
      ipv4Frame(mac, peerMac, { src: PEER_IP, dst: '10.0.0.2', proto: 1 }, icmpMessage(8, 0, seq, pattern(32, seq)));
    let receiver: (frame: Uint8Array) => void = () => undefined;
    const sent: Uint8Array[] = [];
    let injected = 0;
    // A device that answers every IPv4 frame we send with a new echo request, synchronously.
    const device: NetDevice = {
      mac,
      mtu: 1500,
      send(frame) {
        sent.push(frame.slice());
        if (frame[12] === 0x08 && frame[13] === 0x00 && injected < 40) receiver(echo(++injected));
        return true;
      },
      setReceiver(fn) {
        receiver = fn;
      },
    };
    const stack = new Stack({ device, hotpath: hot, clock: sim.clock, ipv4: { address: '10.0.0.2', prefix: 24 } });
    receiver(arpFrame(BROADCAST_MAC, peerMac, { op: 1, sha: peerMac, spa: PEER_IP, tha: ZERO_MAC, tpa: '10.0.0.2' }));
    sent.length = 0;
    receiver(echo(0));
    // The first request and 16 deferred ones are answered; the 17th deferral is refused.
    const probe = await createEngine('ts', 1 << 20);
    const replies = sent.map((f) => decodeWith(probe, f));
    expect(replies).toHaveLength(17);
    replies.forEach(({ reason, d }, seq) => {
      expect(reason).toBe(Reason.Ok);
      expect(d[D.ICMP_REST]).toBe(seq);
      expect(sent[seq]!.subarray(d[D.PAYLOAD_OFF]!, d[D.PAYLOAD_OFF]! + d[D.PAYLOAD_LEN]!)).toEqual(pattern(32, seq));
    });
    expect(stack.stats().drops.rxReentrant).toBe(1);
    expect(stack.stats().arena.chunksInUse - stack.stats().arena.tableChunks, 'chunks beyond the fixed tables').toBe(0);
    stack.shutdown();
  });

  it('refuses impossible addresses and limits at construction', async () => {
    const sim = new Simulation();
    const hot = await createEngine(engine, TEST_MEMORY_BYTES);
    const device = sim.switch.attach();
    const make = (address: string, limits = {}) =>
      () => new Stack({ device, hotpath: hot, clock: sim.clock, ipv4: { address, prefix: 24 }, limits });
    expect(make('0.0.0.0')).toThrow(/interface address/);
    expect(make('224.0.0.1')).toThrow(/interface address/);
    expect(make('10.0.0.300')).toThrow(/invalid IPv4/);
    expect(make('10.0.0.2', { fragDatagrams: 0 })).toThrow(/fragDatagrams/);
    expect(make('10.0.0.2', { ttl: 256 })).toThrow(/ttl/);
    expect(make('10.0.0.2', { udpQueueDatagrams: 1.5 })).toThrow(/udpQueueDatagrams/);
    // A connection table larger than the arena: refused with a clear error, nothing kept.
    const tooMany = () => new Stack({ device, hotpath: hot, clock: sim.clock, ipv4: { address: '10.0.0.2', prefix: 24 }, tcp: { maxConnections: 1_000_000 } });
    expect(tooMany).toThrow(/arena: no room .* for a table of/);
    expect(hot.chunksInUse()).toBe(0);
    // The control blocks fit but their TIME_WAIT records do not: the control blocks' region is given back too.
    // (The arena's free chunks are no longer in address order after the first refusal: the error may say so.)
    const noTimeWait = () => new Stack({ device, hotpath: hot, clock: sim.clock, ipv4: { address: '10.0.0.2', prefix: 24 }, tcp: { maxConnections: 64, maxTimeWait: 1 << 20 } });
    expect(noTimeWait).toThrow(/^arena: no (room|run of consecutive chunks)/);
    expect(hot.chunksInUse()).toBe(0);
  });

  it('leaves no alarm on the clock once every timer has run out', async () => {
    const { sim, nodes } = await makeStacks(engine, 2);
    const [a, b] = nodes as [StackNode, StackNode];
    const server = b.stack.udp.bind(7);
    server.onMessage(() => undefined);
    a.stack.udp.bind(0).send(pattern(10), b.ip, 7);
    await advance(sim, 10);
    expect(a.stack.stats().timers.byKind.arpExpire).toBe(1);
    // B's second announcement (t = 2 s) refreshed A's entry: it expires at 62 s.
    await advance(sim, 61_000);
    expect(a.stack.stats().timers.armed).toBe(1);
    await advance(sim, 1_000);
    expect(a.stack.stats().timers.armed).toBe(0);
    expect(b.stack.stats().timers.armed).toBe(0);
    expect(sim.clock.pendingAlarms).toBe(0);
  });
});
