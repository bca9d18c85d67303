import { describe, expect, it } from 'vitest';
import { formatIpv4 } from '../../stack/address.js';
import type { UdpDatagram } from '../../stack/udp/udp.js';
import { ENGINES, advance, expectBaseline, levels, makeStacks, pattern, type StackNode } from '../helpers/stack-pair.js';

describe.each(ENGINES)('UDP (%s engine)', (engine) => {
  async function pair() {
    const { sim, nodes } = await makeStacks(engine, 2);
    await advance(sim, 5_000);
    const [a, b] = nodes as [StackNode, StackNode];
    return { sim, a, b, baselines: [levels(a.stack), levels(b.stack)] };
  }

  it('two stacks exchange datagrams (iterator on one side, callback on the other)', async () => {
    const { sim, a, b, baselines } = await pair();
    const server = b.stack.udp.bind(7);
    const client = a.stack.udp.bind(0);
    expect(client.port).toBeGreaterThanOrEqual(49152);
    // Echo server: iterate, send each datagram back.
    const served = (async () => {
      let n = 0;
      for await (const { data, address, port } of server) {
        server.send(data, address, port);
        n++;
      }
      return n;
    })();
    const replies: UdpDatagram[] = [];
    client.onMessage((data, address, port) => replies.push({ data: data.slice(), address, port }));
    // The first datagram waits for ARP (at most 4 can wait per destination).
    expect(client.send(pattern(100, 0), b.ip, 7)).toBe(true);
    await sim.run(() => replies.length === 1);
    for (let i = 1; i < 5; i++) expect(client.send(pattern(100 + i, i), b.ip, 7)).toBe(true);
    await sim.run(() => replies.length === 5);
    expect(replies.map((r) => r.data)).toEqual([0, 1, 2, 3, 4].map((i) => pattern(100 + i, i)));
    expect(replies.every((r) => formatIpv4(r.address) === b.ip && r.port === 7)).toBe(true);
    server.close();
    expect(await served).toBe(5);
    client.close();
    await expectBaseline(sim, [a.stack, b.stack], baselines);
  });

  it('carries empty datagrams and the largest one (MTU - 28), and refuses a larger one', async () => {
    const { sim, a, b, baselines } = await pair();
    const server = b.stack.udp.bind(9);
    const client = a.stack.udp.bind(0);
    expect(a.stack.udp.maxPayload()).toBe(1472);
    client.send(new Uint8Array(0), b.ip, 9);
    client.send(pattern(1472), b.ip, 9);
    expect(() => client.send(pattern(1473), b.ip, 9)).toThrow(RangeError);
    const first = await sim.complete(server.recv());
    const second = await sim.complete(server.recv());
    expect(first?.data.length).toBe(0);
    expect(second?.data).toEqual(pattern(1472));
    server.close();
    client.close();
    await expectBaseline(sim, [a.stack, b.stack], baselines);
  });

  it('bounds the receive queue and counts the overflow', async () => {
    const { sim, a, b, baselines } = await pair();
    const server = b.stack.udp.bind(9);
    const client = a.stack.udp.bind(0);
    client.send(pattern(10), b.ip, 9); // resolves ARP first
    await advance(sim, 10);
    for (let i = 0; i < 69; i++) client.send(pattern(200, i), b.ip, 9);
    await advance(sim, 10);
    let s = b.stack.stats();
    expect(server.queued).toBe(64);
    expect(s.udp).toEqual({ sockets: 1, queued: 64, queuedBytes: 10 + 63 * 200 });
    expect(s.arena.byKind.udpQueue).toBe(64);
    expect(s.drops.udpQueueFull).toBe(6);
    // Reading takes the oldest first, in order.
    expect((await server.recv())?.data).toEqual(pattern(10));
    expect((await server.recv())?.data).toEqual(pattern(200, 0));
    server.close();
    s = b.stack.stats();
    expect(s.udp).toEqual({ sockets: 0, queued: 0, queuedBytes: 0 });
    expect(s.arena.chunksInUse - s.arena.tableChunks, 'chunks beyond the fixed tables').toBe(0);
    client.close();
    await expectBaseline(sim, [a.stack, b.stack], baselines);
  });

  it('answers a closed port with ICMP port unreachable, which the sender ignores', async () => {
    const { sim, a, b, baselines } = await pair();
    const client = a.stack.udp.bind(0);
    client.send(pattern(10), b.ip, 4444);
    await advance(sim, 10);
    expect(b.stack.stats().drops.udpNoPort).toBe(1);
    expect(b.stack.stats().icmp.unreachables).toBe(1);
    expect(a.stack.stats().drops.icmpIgnored).toBe(1);
    client.close();
    await expectBaseline(sim, [a.stack, b.stack], baselines);
  });

  it('close frees the queue, ends a pending recv and the iterator, and frees the port', async () => {
    const { sim, a, b, baselines } = await pair();
    const server = b.stack.udp.bind(9);
    const pending = server.recv();
    expect(() => server.recv()).toThrow(/already pending/);
    server.close();
    expect(await pending).toBeNull();
    expect(await server.recv()).toBeNull();
    const seen: UdpDatagram[] = [];
    for await (const d of server) seen.push(d);
    expect(seen).toHaveLength(0);
    expect(() => server.send(pattern(1), a.ip, 1)).toThrow(/closed/);
    server.close(); // idempotent
    // The port is free again, and a queue is freed on close.
    const again = b.stack.udp.bind(9);
    const client = a.stack.udp.bind(0);
    for (let i = 0; i < 3; i++) client.send(pattern(50), b.ip, 9);
    await advance(sim, 10);
    expect(b.stack.stats().arena.byKind.udpQueue).toBe(3);
    again.close();
    expect(b.stack.stats().arena.chunksInUse - b.stack.stats().arena.tableChunks, 'chunks beyond the fixed tables').toBe(0);
    client.close();
    await expectBaseline(sim, [a.stack, b.stack], baselines);
  });

  it('onMessage takes queued datagrams first, then live ones', async () => {
    const { sim, a, b, baselines } = await pair();
    const server = b.stack.udp.bind(9);
    const client = a.stack.udp.bind(0);
    client.send(pattern(5, 1), b.ip, 9);
    client.send(pattern(5, 2), b.ip, 9);
    await advance(sim, 10);
    const got: Uint8Array[] = [];
    server.onMessage((data) => got.push(data.slice()));
    expect(got).toEqual([pattern(5, 1), pattern(5, 2)]);
    expect(b.stack.stats().udp.queued).toBe(0);
    client.send(pattern(5, 3), b.ip, 9);
    await advance(sim, 10);
    expect(got).toHaveLength(3);
    server.close();
    client.close();
    await expectBaseline(sim, [a.stack, b.stack], baselines);
  });

  it('rejects bad ports and double binds; ephemeral ports are distinct', async () => {
    const { a } = await pair();
    const s1 = a.stack.udp.bind(5000);
    expect(() => a.stack.udp.bind(5000)).toThrow(/already bound/);
    expect(() => a.stack.udp.bind(70000)).toThrow(RangeError);
    expect(() => s1.send(pattern(1), '10.0.0.11', 0)).toThrow(RangeError);
    expect(() => s1.send(pattern(1), '10.0.0.300', 1)).toThrow(/invalid IPv4/);
    const ports = new Set(Array.from({ length: 50 }, () => a.stack.udp.bind(0).port));
    expect(ports.size).toBe(50);
    expect(a.stack.stats().udp.sockets).toBe(51);
  });

  it('bounds the socket table', async () => {
    const { sim, nodes } = await makeStacks(engine, 1, { limits: { udpSockets: 3 } });
    await advance(sim, 5_000);
    const udp = nodes[0]!.stack.udp;
    const sockets = [udp.bind(0), udp.bind(0), udp.bind(0)];
    expect(() => udp.bind(0)).toThrow(/table full/);
    sockets[0]!.close();
    expect(udp.bind(0).port).toBeGreaterThan(0);
  });

  it('sends to the broadcast address without ARP, and receives broadcasts', async () => {
    const { sim, nodes } = await makeStacks(engine, 3);
    await advance(sim, 5_000);
    const [a, b, c] = nodes as [StackNode, StackNode, StackNode];
    const got: string[] = [];
    const sb = b.stack.udp.bind(9);
    const sc = c.stack.udp.bind(9);
    sb.onMessage(() => got.push('b'));
    sc.onMessage(() => got.push('c'));
    const client = a.stack.udp.bind(0);
    client.send(pattern(8), '255.255.255.255', 9);
    client.send(pattern(8), '10.0.0.255', 9);
    await advance(sim, 10);
    expect(got.sort()).toEqual(['b', 'b', 'c', 'c']);
    expect(a.stack.stats().arp.entries).toBe(0);
  });
});
