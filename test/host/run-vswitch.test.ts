// The in-process backend: several guests (each a Worker under its own
// budget) and an ordinary stack in this process, joined by one VSwitch on a
// real clock. The stack talks TCP and UDP to both guests.

import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../host/hotpath.js';
import { startGuest, type GuestRun } from '../../host/run.js';
import { Stack } from '../../stack/stack.js';
import { RealClock } from '../../stack/time/real-clock.js';
import type { Connection } from '../../stack/tcp/connection.js';
import { VSwitch } from '../../stack/vswitch/vswitch.js';
import { randomBytes, sha256 } from '../helpers/uk.js';

/** Send everything, half-close, and collect what comes back until the peer's FIN. */
async function exchange(conn: Connection, data: Uint8Array): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const ended = new Promise<void>((resolve) => {
    conn.onData = (view) => parts.push(view.slice());
    conn.onEnd = resolve;
  });
  const writer = conn.writable.getWriter();
  await writer.write(data);
  await writer.close();
  await ended;
  return Buffer.concat(parts);
}

describe('guests on an in-process vswitch', () => {
  const clock = new RealClock();
  const vswitch = new VSwitch(clock);
  const guests: GuestRun[] = [];

  afterAll(async () => {
    for (const g of guests) expect((await g.stop()).code).toBe(0);
  });

  it('two guests and a local stack: TCP echo and discard, UDP echo', async () => {
    const net = { kind: 'vswitch' as const, vswitch };
    guests.push(await startGuest({ app: 'echo', net, ipv4: '10.0.0.11/24', mem: 32 * 1024 * 1024, log: () => {} }));
    guests.push(await startGuest({ app: 'discard', net, ipv4: '10.0.0.12/24', hotpath: 'ts', log: () => {} }));
    const local = new Stack({
      device: vswitch.attach(),
      hotpath: await createEngine('wasm', 8 * 1024 * 1024),
      clock,
      ipv4: { address: '10.0.0.10', prefix: 24 },
    });
    try {
      const data = randomBytes(1024 * 1024, 4);
      const echoed = await exchange(await local.tcp.connect('10.0.0.11', 7), data);
      expect(sha256(echoed)).toBe(sha256(data));
      const discarded = await exchange(await local.tcp.connect('10.0.0.12', 9), data);
      expect(discarded.length).toBe(0);

      const udp = local.udp.bind();
      const reply = udp.recv();
      udp.send(Uint8Array.of(1, 2, 3), '10.0.0.11', 7);
      expect((await reply)?.data).toEqual(Uint8Array.of(1, 2, 3));
      udp.close();

      const [a, b] = await Promise.all(guests.map((g) => g.stats()));
      expect(a!.mem.budget).toBe(32 * 1024 * 1024);
      expect(a!.tcp.counters.bytesIn).toBe(data.length);
      expect(b!.tcp.counters.bytesIn).toBe(data.length);
    } finally {
      local.shutdown();
    }
  });

  it('--mtu 1280: the guest announces MSS 1240, so full segments are 1294-byte frames both ways', async () => {
    const sw = new VSwitch(clock);
    let largest = 0;
    sw.setTap({ write: (frame) => void (largest = Math.max(largest, frame.length)) }, 'sent');
    const guest = await startGuest({ app: 'echo', net: { kind: 'vswitch', vswitch: sw }, ipv4: '10.0.1.11/24', mtu: 1280, log: () => {} });
    guests.push(guest);
    const local = new Stack({ device: sw.attach(), hotpath: await createEngine('wasm', 8 * 1024 * 1024), clock, ipv4: { address: '10.0.1.10', prefix: 24 } });
    try {
      const data = randomBytes(256 * 1024, 5);
      const echoed = await exchange(await local.tcp.connect('10.0.1.11', 7), data);
      expect(sha256(echoed)).toBe(sha256(data));
      expect(largest).toBe(1280 + 14);
    } finally {
      local.shutdown();
    }
    await expect(startGuest({ app: 'echo', net: { kind: 'vswitch', vswitch: sw }, mtu: 2001, log: () => {} })).rejects.toThrow(
      '--mtu 2001: must be a whole number from 576 to 2000',
    );
  });
});
