// A transparent stack (the user-mode gateway's): connect() may take a local
// address that is not the interface's; the peer answers that address through
// its gateway, and the segments reach the connection (and, after it, its
// TIME_WAIT record) while segments to other foreign addresses are dropped.

import { describe, expect, it } from 'vitest';
import { createEngine } from '../../../host/hotpath.js';
import { Simulation, Stack, stackLevels } from '../../../stack/index.js';

const MIB = 1024 * 1024;

describe.each(['wasm', 'ts'] as const)('transparent connections (%s)', (engine) => {
  async function setup() {
    const sim = new Simulation();
    const gw = new Stack({
      device: sim.switch.attach(),
      hotpath: await createEngine(engine, 4 * MIB),
      clock: sim.clock,
      ipv4: { address: '10.0.2.2', prefix: 24, transparent: true },
      tcp: { msl: 1000 },
    });
    const guest = new Stack({
      device: sim.switch.attach(),
      hotpath: await createEngine(engine, 4 * MIB),
      clock: sim.clock,
      ipv4: { address: '10.0.2.15', prefix: 24, gateway: '10.0.2.2' },
    });
    await sim.complete(sim.sleep(10_000)); // past the gratuitous ARPs
    return { sim, gw, guest };
  }

  it('the guest sees the given address and port, data flows both ways, and both sides end clean', async () => {
    const { sim, gw, guest } = await setup();
    const seen: string[] = [];
    const listener = guest.tcp.listen(9000);
    const base = { gw: stackLevels(gw.stats()), guest: stackLevels(guest.stats()) };
    listener.onConnection = (c) => {
      seen.push(`${c.remoteAddress}:${c.remotePort}`);
      c.onData = (v) => c.write(v.slice());
      c.onEnd = () => c.close();
    };
    const conn = await sim.complete(gw.tcp.connect('10.0.2.15', 9000, { localAddress: '127.0.0.7', localPort: 41234 }));
    expect(conn.localAddress).toBe('127.0.0.7');
    expect(seen).toEqual(['127.0.0.7:41234']);
    const got: number[] = [];
    conn.onData = (v) => got.push(...v);
    conn.write(Uint8Array.of(1, 2, 3));
    await sim.complete(sim.sleep(100));
    expect(got).toEqual([1, 2, 3]);
    // The echo came back on the engine's fast path: the lookup by the whole
    // 4-tuple, not the interface's address, decides what a transparent stack takes.
    expect(gw.stats().tcp.counters.fastPathSegments).toBeGreaterThan(0);
    expect(gw.stats().tcp.counters.slowPath.notLocal).toBe(0);
    conn.close(); // the gateway closes first: its TIME_WAIT record has the client's address
    await sim.complete(sim.sleep(100));
    expect(gw.stats().tcp.timeWait).toBe(1);
    expect(guest.stats().tcp.connections).toBe(0);
    await sim.complete(sim.sleep(5 * 60_000)); // TIME_WAIT and the ARP entries run out
    expect(stackLevels(gw.stats())).toEqual(base.gw);
    expect(stackLevels(guest.stats())).toEqual(base.guest);
  });

  it('a second client on the same port from another address keeps its port (another 4-tuple); the same tuple again gets another port', async () => {
    const { sim, gw, guest } = await setup();
    const seen: string[] = [];
    guest.tcp.listen(9000).onConnection = (c) => seen.push(`${c.remoteAddress}:${c.remotePort}`);
    await sim.complete(gw.tcp.connect('10.0.2.15', 9000, { localAddress: '127.0.0.7', localPort: 41234 }));
    const second = await sim.complete(gw.tcp.connect('10.0.2.15', 9000, { localAddress: '127.0.0.8', localPort: 41234 }));
    expect([second.localAddress, second.localPort]).toEqual(['127.0.0.8', 41234]);
    // 127.0.0.7:41234 -> 10.0.2.15:9000 is taken: localPort is only a preference here.
    const third = await sim.complete(gw.tcp.connect('10.0.2.15', 9000, { localAddress: '127.0.0.7', localPort: 41234 }));
    expect(third.localAddress).toBe('127.0.0.7');
    expect(third.localPort).not.toBe(41234);
    expect(seen).toEqual(['127.0.0.7:41234', '127.0.0.8:41234', `127.0.0.7:${third.localPort}`]);
  });

  it('segments to a foreign address without a connection are dropped, never answered', async () => {
    const { sim, gw, guest } = await setup();
    guest.tcp.listen(9000).onConnection = () => {};
    await sim.complete(gw.tcp.connect('10.0.2.15', 9000, { localAddress: '127.0.0.7', localPort: 41234 }));
    // The guest connects out to an address the gateway does not hold: no SYN-ACK, no RST.
    const before = gw.stats().tcp.counters;
    const attempt = guest.tcp.connect('127.0.0.99', 80, { timeout: 3000 });
    await expect(sim.complete(attempt)).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    const after = gw.stats().tcp.counters;
    expect(after.dropNotForUs).toBeGreaterThan(before.dropNotForUs);
    expect(after.rstSent).toBe(before.rstSent);
  });

  it('a stack that is not transparent refuses another local address', async () => {
    const { guest } = await setup();
    await expect(guest.tcp.connect('10.0.2.2', 80, { localAddress: '10.0.2.99' })).rejects.toMatchObject({ code: 'EINVAL' });
  });
});
