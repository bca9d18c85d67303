// Two full stacks on the virtual switch: 1 MB each way with matching SHA-256,
// over a clean link and a faulty one (loss, duplication, reordering,
// corruption), with both socket APIs; afterwards both stacks are back to their
// baseline.

import { describe, expect, it } from 'vitest';
import { sha256 } from '@noble/hashes/sha2.js';
import type { Connection } from '../../../stack/tcp/connection.js';
import type { LinkFaults } from '../../../stack/vswitch/vswitch.js';
import { advance, levels, makeStacks, type StackNode } from '../../helpers/stack-pair.js';
import { Simulation } from '../../../stack/sim.js';
import { collected } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;
const SIZE = 1024 * 1024;

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Read a stream to its end. */
async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
    total += value.length;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Streams: write everything (in uneven pieces), then close the writable (FIN). */
async function writeAll(conn: Connection, data: Uint8Array): Promise<void> {
  const writer = conn.writable.getWriter();
  for (let off = 0, step = 1000; off < data.length; off += step, step = (step * 7) % 50_000 + 1) {
    await writer.write(data.subarray(off, Math.min(off + step, data.length)));
  }
  await writer.close();
}

/** Callback API: onData views, write() + onWritable, end(). Resolves with what was received. */
function callbackSide(conn: Connection, data: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const received = new Uint8Array(SIZE * 2);
    let got = 0;
    let sent = 0;
    conn.onData = (view) => {
      received.set(view, got);
      got += view.length;
    };
    conn.onEnd = () => resolve(received.slice(0, got));
    conn.onClose = (info) => {
      if (info.reason !== "closed") reject(new Error(`closed: ${JSON.stringify(info)}`));
    };
    const pushMore = (): void => {
      while (sent < data.length) {
        const n = conn.write(data.subarray(sent, Math.min(sent + 16_384, data.length)));
        sent += n;
        if (n === 0) return; // onWritable continues
      }
      conn.end();
    };
    conn.onWritable = pushMore;
    pushMore();
  });
}

async function transfer(engine: 'wasm' | 'ts', batches: boolean, faults: LinkFaults | undefined, seed = 1): Promise<void> {
  const { sim, nodes } = await makeStacks(engine, 2, {
    sim: new Simulation({ seed }),
    memoryBytes: 4 * 1024 * 1024,
    port: { faults, batches },
    tcp: { msl: 1000 },
  });
  const [a, b] = [nodes[0]!, nodes[1]!];
  await advance(sim, 10_000); // start-up ARP announcements done: the idle baseline
  const baseA = levels(a.stack);
  const baseB = levels(b.stack);
  const up = randomBytes(SIZE, 1);
  const down = randomBytes(SIZE, 2);
  const listener = b.stack.tcp.listen(9000);

  const server = (async () => {
    const conn = await listener.accept();
    const [received] = await Promise.all([callbackSide(conn, down)]);
    return { received, closed: conn.closed };
  })();
  const client = (async () => {
    const conn = await a.stack.tcp.connect(b.ip, 9000);
    const [received] = await Promise.all([readAll(conn.readable), writeAll(conn, up)]);
    return { received, closed: conn.closed };
  })();

  const [s, c] = await sim.complete(Promise.all([server, client]), { maxTime: 600_000 });
  expect(hex(sha256(s.received))).toBe(hex(sha256(up)));
  expect(hex(sha256(c.received))).toBe(hex(sha256(down)));
  expect(await sim.complete(s.closed)).toEqual({ reason: 'closed' });
  expect(await sim.complete(c.closed)).toEqual({ reason: 'closed' });
  listener.close();

  await advance(sim, 130_000); // TIME_WAIT, ARP entries and every timer run out
  for (const [stack, base] of [[a.stack, baseA], [b.stack, baseB]] as const) {
    const t = stack.tcp.stats();
    expect(t.connections).toBe(0);
    expect(t.timeWait).toBe(0);
    expect(t.chunks).toEqual({ send: 0, recv: 0, reassembly: 0 });
    expect(levels(stack)).toEqual(base);
  }
  if (faults) {
    const c1 = a.stack.tcp.stats().counters;
    const c2 = b.stack.tcp.stats().counters;
    expect(c1.retransmittedSegments + c2.retransmittedSegments).toBeGreaterThan(0);
  }
}

/**
 * `count` echo sessions at once (client writes `size` bytes, server echoes them
 * back, both close), then only WeakRefs to the connections remain.
 */
async function echoSessions(sim: Simulation, a: StackNode, b: StackNode, count: number, size: number) {
  const listener = b.stack.tcp.listen(7, { backlog: count });
  listener.onConnection = (conn) => {
    conn.onData = (view) => {
      conn.write(view); // echo: the send buffer is large enough for one session
    };
    conn.onEnd = () => conn.close();
  };
  const refs: WeakRef<Connection>[] = [];
  const sessions = Array.from({ length: count }, async (_, i) => {
    const conn = await a.stack.tcp.connect(b.ip, 7);
    refs.push(new WeakRef(conn));
    const payload = randomBytes(size, i + 10);
    const [echoed] = await Promise.all([readAll(conn.readable), writeAll(conn, payload)]);
    return hex(sha256(echoed)) === hex(sha256(payload)) && (await conn.closed).reason === 'closed';
  });
  const results = await sim.complete(Promise.all(sessions), { maxTime: 600_000 });
  listener.close();
  return { ok: results.every(Boolean), refs };
}

/** Frames one by one, or in batches (NetDevice.setBatchEnd: the stack answers once per batch). */
const DELIVERY = [
  ['frame by frame', false],
  ['in batches', true],
] as const;

describe.each(ENGINES.flatMap((engine) => DELIVERY.map(([how, batches]) => [engine, how, batches] as const)))(
  'TCP between two stacks on the virtual switch (%s, %s)', (engine, _how, batches) => {
  it('1 MB each way on a clean link: SHA-256 matches, both stacks back to baseline', async () => {
    await transfer(engine, batches, undefined);
  });

  it.each([1, 2, 3])('1 MB each way on a faulty link (loss, duplication, reordering, corruption, jitter), seed %i', async (seed) => {
    await transfer(
      engine,
      batches,
      { loss: 0.03, duplicate: 0.02, reorder: 0.03, reorderDelay: 3, corrupt: 0.01, delay: 2, jitter: 2 },
      seed,
    );
  });

  it('200 concurrent echo sessions: all bytes back, then both stacks at baseline and every Connection collected', async () => {
    const { sim, nodes } = await makeStacks(engine, 2, { memoryBytes: 8 * 1024 * 1024, tcp: { msl: 1000 }, port: { batches } });
    const [a, b] = [nodes[0]!, nodes[1]!];
    await advance(sim, 10_000);
    const baseA = levels(a.stack);
    const baseB = levels(b.stack);
    const { ok, refs } = await echoSessions(sim, a, b, 200, 10_000);
    expect(ok).toBe(true);
    await advance(sim, 130_000);
    expect(levels(a.stack)).toEqual(baseA);
    expect(levels(b.stack)).toEqual(baseB);
    expect(a.stack.stats().tcp.connections + b.stack.stats().tcp.connections).toBe(0);
    expect(refs).toHaveLength(200);
    await collected(refs[0]!);
    expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
  });
});
