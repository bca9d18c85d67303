// What the relay on our stack queues for a peer that does not read lives in
// the arena (relay/server/stack.ts), charged to that socket as owner kind app,
// and its cap is checked against the chunks held: a receiver that reads
// nothing while senders keep registering (each announced to it with a 04)
// fills an arena queue, never a JS array, and is reset once the chunks pass
// maxQueuedBytes (slowReader). (The relay stops reading a peer it cannot
// write to, so the peer's own packets cannot make it queue more.) The
// stack's pressure signal reaches the relay.

import { describe, expect, it } from 'vitest';
import { encodeFrame } from '../../relay/handshake/packet.js';
import { startStackRelay } from '../../relay/server/stack.js';
import { EMPTY_LEVELS, relayLevels } from '../../relay/server/stats.js';
import type { Connection } from '../../stack/index.js';
import { advance, ENGINES, levels, makeStacks } from '../helpers/stack-pair.js';

const PUB = new Uint8Array(34).fill(7);

describe.each(ENGINES)('the relay on our stack queues in the arena (%s)', (engine) => {
  async function setup(maxQueuedBytes: number, queueArenaShare?: number) {
    // Small TCP buffers (4 KiB each way), so that the relay's own queue is
    // what takes the rest.
    const { sim, nodes } = await makeStacks(engine, 2, { memoryBytes: 8 * 1024 * 1024, tcp: { sndBuf: 4096, rcvBuf: 4096 } });
    const [client, server] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    await advance(sim, 10_000);
    const base = [levels(client.stack), levels(server.stack)];
    const relay = await startStackRelay(server.stack, { limits: { maxQueuedBytes }, queueArenaShare });
    const receiver = await sim.complete(client.stack.tcp.connect(server.ip, 9000));
    receiver.write(encodeFrame({ uid: 0, packet: { name: 'Hello_as_a_client' } }));
    receiver.pause(); // reads nothing from now on: its window closes
    const senders: Connection[] = [];
    /** n more senders register; each is announced to the receiver with a 04 (~110 bytes). */
    const register = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const c = await sim.complete(client.stack.tcp.connect(server.ip, 9000));
        c.onData = () => {};
        c.write(encodeFrame({ uid: 0, packet: { name: 'Hello_as_a_server', public: PUB } }));
        senders.push(c);
      }
      await advance(sim, 100);
    };
    return { sim, client, server, relay, senders, receiver, register, base };
  }

  it('holds what a non-reader is owed in arena chunks of owner kind app, counted', async () => {
    const { server, relay, register } = await setup(1024 * 1024);
    await register(300); // ~17 KB of 04s: TCP's send buffer and the peer's window take 8 KiB, the rest waits
    const q = relay.stats().arenaQueues!;
    expect(q.chunks).toBeGreaterThanOrEqual(4);
    expect(server.stack.stats().arena.byKind.app).toBe(q.chunks);
    expect(q.refused).toBe(0);
    expect(relay.stats().counters.slowReader).toBe(0);
  });

  it('resets the non-reader once its queue holds more than maxQueuedBytes of chunks, and frees them', async () => {
    const { sim, client, server, relay, senders, receiver, register, base } = await setup(4 * 1024);
    let closed = '';
    receiver.onClose = (info) => (closed = info.reason);
    await register(300);
    expect(relay.stats().counters.slowReader).toBe(1);
    expect(closed).toBe('reset');
    const q = relay.stats().arenaQueues!;
    expect(q.chunks).toBe(0);
    expect(server.stack.stats().arena.byKind.app).toBe(0);
    // Everything ends; both stacks and the relay come back to their baseline.
    for (const c of senders) c.close();
    await relay.close();
    await advance(sim, 5 * 60_000);
    expect(relayLevels(relay.stats())).toEqual(EMPTY_LEVELS);
    expect(relay.stats().arenaQueues).toMatchObject({ chunks: 0, refused: 0 });
    expect([levels(client.stack), levels(server.stack)]).toEqual(base);
  });

  it('a queue that cannot get chunks (the relay share of the arena is spent) resets its socket', async () => {
    // A share of the 8 MiB arena (about 4,000 chunks) that holds two chunks.
    const { sim, server, relay, receiver, register } = await setup(64 * 1024 * 1024, 2.5 / 4000);
    expect(relay.stats().arenaQueues!.limit).toBe(2);
    await register(300);
    const q = relay.stats().arenaQueues!;
    expect(q.refused).toBe(1);
    expect(relay.stats().counters.slowReader).toBe(1);
    expect(await sim.complete(receiver.closed)).toMatchObject({ reason: 'reset' });
    expect(q.chunks).toBe(0);
    expect(server.stack.stats().arena.byKind.app).toBe(0);
  });

  it('the stack\'s pressure signal makes the relay shed and refuse', async () => {
    const { sim, client, server, relay } = await setup(1024 * 1024);
    // An idle connection with no Hello: the first to be shed (the receiver is registered).
    const idle = await sim.complete(client.stack.tcp.connect(server.ip, 9000));
    await advance(sim, 10);
    server.stack.onPressure!(true);
    expect(await sim.complete(idle.closed)).toMatchObject({ reason: 'reset' });
    expect(relay.stats().counters.pressureShedUnregistered).toBe(1);
    expect(relay.stats().peers.receivers).toBe(1);
    // While on, a new handshake connection is reset as soon as it is accepted.
    const late = await sim.complete(client.stack.tcp.connect(server.ip, 9000));
    expect(await sim.complete(late.closed)).toMatchObject({ reason: 'reset' });
    expect(relay.stats().counters.pressureRefused).toBe(1);
    // Off again: connections are served.
    server.stack.onPressure!(false);
    const next = await sim.complete(client.stack.tcp.connect(server.ip, 9000));
    await advance(sim, 50);
    expect(relay.stats().sockets.handshake).toBe(2);
    next.abort();
  });
});
