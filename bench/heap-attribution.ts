// What a relay guest's heap grows by across stress runs, object kind by kind:
// boots `relay` in-process under --mem 40M on the JIT tiers asked for, runs
// one warm-up stress run, takes a V8 heap snapshot of the guest's isolate,
// runs N more, takes another, and prints the kinds (snapshot node type and
// name) whose total size changed most. This is how the main job's verdict
// rule was chosen: what grows with the optimizing compiler is the program
// (code, its metadata and type feedback), not state connections left behind.
//
//   npm run build && node dist/bench/heap-attribution.js [--jit optimizing|baseline] [--runs 10] [--pairs 256]

import { parseArgs } from 'node:util';
import { freePort } from './common.js';
import { applyJitMode, type JitMode } from '../host/jit.js';
import { startGuest } from '../host/run.js';
import { silentLogger } from '../relay/client/log.js';
import { runStress } from '../relay/stress/run.js';
import { STRESS_PBKDF2_COUNT } from '../relay/stress/stress.js';

interface Kind {
  count: number;
  bytes: number;
}

/** Sum self sizes by "type/name" (names of closures and strings folded). */
function aggregate(snapshot: string): Map<string, Kind> {
  const s = JSON.parse(snapshot) as {
    snapshot: { meta: { node_fields: string[]; node_types: (string[] | string)[] } };
    nodes: number[];
    strings: string[];
  };
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0] as string[];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const out = new Map<string, Kind>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + typeAt]!]!;
    let name = s.strings[s.nodes[i + nameAt]!]!;
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '';
    if (type === 'closure') name = '';
    if (name.length > 60) name = name.slice(0, 60) + '...';
    const key = `${type}/${name}`;
    const k = out.get(key) ?? { count: 0, bytes: 0 };
    k.count++;
    k.bytes += s.nodes[i + sizeAt]!;
    out.set(key, k);
  }
  return out;
}

async function read(stream: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(parts).toString('utf8');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { jit: { type: 'string', default: 'optimizing' }, runs: { type: 'string', default: '10' }, pairs: { type: 'string', default: '256' } },
  });
  const jit = values.jit as JitMode;
  applyJitMode(jit);
  const [handshake, secure] = [await freePort(), await freePort()];
  const guest = await startGuest({
    app: 'relay',
    mem: 40 * 1024 * 1024,
    net: {
      kind: 'user',
      hostfwd: [
        { proto: 'tcp', hostAddress: '127.0.0.1', hostPort: handshake, guestPort: 9000 },
        { proto: 'tcp', hostAddress: '127.0.0.1', hostPort: secure, guestPort: 9001 },
      ],
    },
    log: () => {},
  });
  const run = () =>
    runStress({
      relay: { host: '127.0.0.1', port: handshake, securePort: secure },
      pairs: Number(values.pairs),
      size: 16 * 1024,
      concurrency: 16,
      pbkdf2Count: STRESS_PBKDF2_COUNT,
      clientTimeoutMs: 60_000,
      log: silentLogger,
    });
  try {
    await run();
    await new Promise((r) => setTimeout(r, 2000)); // closing connections settle
    const before = aggregate(await read(await guest.heapSnapshot()));
    for (let i = 0; i < Number(values.runs); i++) await run();
    await new Promise((r) => setTimeout(r, 2000));
    const after = aggregate(await read(await guest.heapSnapshot()));
    const keys = new Set([...before.keys(), ...after.keys()]);
    const rows = [...keys].map((key) => {
      const a = before.get(key) ?? { count: 0, bytes: 0 };
      const b = after.get(key) ?? { count: 0, bytes: 0 };
      return { key, bytes: b.bytes - a.bytes, count: b.count - a.count };
    });
    rows.sort((x, y) => Math.abs(y.bytes) - Math.abs(x.bytes));
    const total = (m: Map<string, Kind>) => [...m.values()].reduce((s, k) => s + k.bytes, 0);
    console.log(`--jit ${jit}: heap snapshot total ${total(before)} B after the warm-up, ${total(after)} B after ${values.runs} more runs`);
    console.log('change (B)  objects  kind (snapshot type/name)');
    for (const r of rows.slice(0, 30)) console.log(`${String(r.bytes).padStart(10)}  ${String(r.count).padStart(7)}  ${r.key}`);
  } finally {
    await guest.stop();
  }
}

await main();
