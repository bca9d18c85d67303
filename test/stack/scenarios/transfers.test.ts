// Bulk transfers between two stacks on the virtual switch, at full scale:
// 1 MiB (both ways at once, stream API on the client, callbacks on the
// server) and 100 MiB (one way, callback API, no copy on receive), over a
// 1 Gbit/s LAN with about 1 ms of round trip, under each fault on its own:
// none, 1 % and 10 % loss, reordering, duplication, corruption, and a 576-byte
// MTU. The data is generated block by block from a seed and hashed on both
// ends (never held whole); the digests must match. Afterwards, once TIME_WAIT
// (msl 1 s), ARP entries and every timer have run out, both stacks' levels are
// exactly what they were before the transfer.
//
// The fault sits on the server's cable, both directions, so every data
// segment and every ACK crosses exactly one faulty hop.

import { describe, expect, it } from 'vitest';
import { Simulation } from '../../../stack/sim.js';
import type { Connection } from '../../../stack/tcp/connection.js';
import type { LinkFaults, VSwitchPort } from '../../../stack/vswitch/vswitch.js';
import { advance, ENGINES, makeStacks } from '../../helpers/stack-pair.js';
import {
  baselines, ByteStream, expectBackToBaseline, expectConsistent, LAN, lanWith, MiB, readStream, receiveStream,
  sendStream, writeStream, type Digest,
} from '../../helpers/scenario.js';
import type { Stack } from '../../../stack/stack.js';

interface Condition {
  name: string;
  faults: LinkFaults;
  /** IP MTU of both ports (and so of both stacks' devices). */
  mtu?: number;
  /** Evidence that the fault really happened, on the faulty port and in the stacks. */
  evidence(port: VSwitchPort, stacks: Stack[]): void;
}

function sumCounters(stacks: Stack[], pick: (s: ReturnType<Stack['stats']>) => number): number {
  return stacks.reduce((sum, st) => sum + pick(st.stats()), 0);
}

const retransmitted = (stacks: Stack[]): number => sumCounters(stacks, (s) => s.tcp.counters.retransmittedSegments);

const CONDITIONS: Condition[] = [
  {
    name: 'a clean link',
    faults: {},
    evidence: (port, stacks) => {
      expect(port.counters.dropped.loss).toBe(0);
      expect(retransmitted(stacks)).toBe(0);
    },
  },
  {
    name: '1% loss each way',
    faults: { loss: 0.01 },
    evidence: (port, stacks) => {
      expect(port.counters.dropped.loss).toBeGreaterThan(0);
      expect(retransmitted(stacks)).toBeGreaterThan(0);
    },
  },
  {
    name: '10% loss each way',
    faults: { loss: 0.1 },
    evidence: (port, stacks) => {
      expect(port.counters.dropped.loss).toBeGreaterThan(0);
      expect(sumCounters(stacks, (s) => s.tcp.counters.retransmitTimeouts)).toBeGreaterThan(0);
    },
  },
  {
    name: 'reordering (5% of frames held back 0.5 ms)',
    faults: { reorder: 0.05, reorderDelay: 0.5 },
    evidence: (port) => {
      expect(port.counters.reordered).toBeGreaterThan(0);
      expect(port.counters.dropped.loss).toBe(0);
    },
  },
  {
    name: 'duplication (5% of frames twice)',
    faults: { duplicate: 0.05 },
    evidence: (port) => {
      expect(port.counters.duplicated).toBeGreaterThan(0);
    },
  },
  {
    name: 'corruption (2% of frames with a damaged byte)',
    faults: { corrupt: 0.02 },
    evidence: (port, stacks) => {
      expect(port.counters.corrupted).toBeGreaterThan(0);
      // Checksums caught the damage: the frames were dropped, then retransmitted.
      const rejected = sumCounters(stacks, (s) => s.drops.ipBadChecksum! + s.drops.tcpBadChecksum!);
      expect(rejected).toBeGreaterThan(0);
      expect(retransmitted(stacks)).toBeGreaterThan(0);
    },
  },
  {
    name: 'a 576-byte MTU (MSS 536)',
    faults: {},
    mtu: 576,
    evidence: (port) => {
      // Every segment was sized to the MTU: the switch refused none as too big.
      expect(port.counters.dropped.mtu).toBe(0);
    },
  },
];

const SIZES = [
  { label: '1 MiB each way at once (streams on the client, callbacks on the server)', bytes: 1 * MiB, bothWays: true },
  { label: '100 MiB one way (callbacks, hashed from the arena views)', bytes: 100 * MiB, bothWays: false },
];

const PORT = 5001;

/** Server: receive (and in both-ways mode send at the same time) with the callback API, then close. */
async function serve(conn: Connection, down: ByteStream | null): Promise<{ up: Digest; down: Digest | null }> {
  const [up, sent] = await Promise.all([receiveStream(conn), down ? sendStream(conn, down) : Promise.resolve(null)]);
  conn.close();
  return { up, down: sent };
}

/** Client: send with the stream API (reading whatever comes back), or with callbacks for the big one-way run. */
async function client(conn: Connection, up: ByteStream, bothWays: boolean): Promise<{ up: Digest; down: Digest }> {
  if (bothWays) {
    const [sent, received] = await Promise.all([writeStream(conn, up), readStream(conn)]);
    return { up: sent, down: received };
  }
  const received = receiveStream(conn);
  const sent = await sendStream(conn, up);
  return { up: sent, down: await received };
}

async function transfer(
  engine: (typeof ENGINES)[number],
  bytes: number,
  bothWays: boolean,
  cond: Condition,
  seed: number,
): Promise<void> {
  // Largest frame the switch delivered: segments must be sized to the MTU.
  let largest = 0;
  const sim = new Simulation({ seed, switch: { tap: { write: (f) => void (largest = Math.max(largest, f.length)) } } });
  const mtu = cond.mtu ?? 1500;
  const { nodes } = await makeStacks(engine, 2, {
    sim,
    memoryBytes: 4 * MiB,
    port: { mtu, faults: LAN },
    tcp: { msl: 1000 },
  });
  const [a, b] = [nodes[0]!, nodes[1]!];
  b.port.setFaults(lanWith(cond.faults));
  await advance(sim, 10_000); // start-up ARP announcements are over: the idle baseline
  const stacks = [a.stack, b.stack];
  const base = baselines(stacks);

  const listener = b.stack.tcp.listen(PORT);
  const mss: number[] = [];
  const serverSide = listener.accept().then((conn) => {
    mss.push(conn.inspect()!.sndMss);
    return serve(conn, bothWays ? new ByteStream(seed * 2 + 1, bytes) : null).then(async (r) => ({
      ...r,
      closed: await conn.closed,
    }));
  });
  const clientSide = a.stack.tcp.connect(b.ip, PORT).then((conn) => {
    mss.push(conn.inspect()!.sndMss);
    return client(conn, new ByteStream(seed * 2, bytes), bothWays).then(async (r) => ({
      ...r,
      closed: await conn.closed,
    }));
  });
  const [s, c] = await sim.complete(Promise.all([serverSide, clientSide]));

  expect(c.up.bytes).toBe(bytes);
  expect(s.up).toEqual(c.up);
  if (bothWays) {
    expect(s.down!.bytes).toBe(bytes);
    expect(c.down).toEqual(s.down);
  } else {
    expect(c.down.bytes).toBe(0);
  }
  expect(s.closed).toEqual({ reason: 'closed' });
  expect(c.closed).toEqual({ reason: 'closed' });
  expect(mss).toEqual([mtu - 40, mtu - 40]);
  expect(largest).toBe(mtu + 14);
  cond.evidence(b.port, stacks);
  listener.close();
  for (const st of stacks) expectConsistent(st.stats());
  await expectBackToBaseline(sim, stacks, base);
}

describe.each(ENGINES)('bulk transfers between two stacks over a 1 Gbit/s LAN (%s)', (engine) => {
  describe.each(SIZES)('$label', ({ bytes, bothWays }) => {
    it.each(CONDITIONS.map((c, i) => [c.name, c, i] as const))(
      'over %s: SHA-256 matches end to end, both stacks back to baseline after TIME_WAIT',
      async (_, cond, i) => {
        await transfer(engine, bytes, bothWays, cond, 100 + i);
      },
      300_000,
    );
  });
});
