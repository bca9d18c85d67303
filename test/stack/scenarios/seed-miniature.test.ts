// The seed's scenario (mirage-tcpip issue #499) in miniature: a server stack
// accepts 512 connections at once from 8 client stacks; each client sends a
// file of 16-64 KiB (its own deterministic content) and closes; the server
// checks each file's SHA-256 against the expected one, answers with the digest
// it computed, and closes. The whole run happens TWICE on the same stacks.
//
// On mirage-tcpip the second run died with Out_of_memory: per-connection state
// outlived close. Here, after each run and TIME_WAIT expiry, every stack's
// levels equal the idle baseline exactly (arena chunks by owner kind, control
// blocks, timers, TIME_WAIT, backlog, ARP), no Connection or control block of
// run 1 is still reachable while run 2 is in full swing (the first forced GC
// happens then), and none of run 2's after it.

import { describe, expect, it } from 'vitest';
import { sha256 } from '@noble/hashes/sha2.js';
import { Simulation } from '../../../stack/sim.js';
import type { Connection } from '../../../stack/tcp/connection.js';
import type { Listener } from '../../../stack/tcp/listener.js';
import { addStack, advance, ENGINES, nodeIp, type StackNode } from '../../helpers/stack-pair.js';
import {
  baselines, ByteStream, collect, expectBackToBaseline, hex, KiB, LAN, MiB, sendStream, sha256Hex, streamBytes,
  Watch, whileChecking,
} from '../../helpers/scenario.js';

const CLIENTS = 512;
const CLIENT_STACKS = 8;
const PORT = 9000;
/** Header before each file: client id and file size, u32 big-endian each. */
const HEADER = 8;

/** Client i's file: 16 KiB to 64 KiB, its own content. */
function fileOf(i: number): { seed: number; size: number } {
  return { seed: 1000 + i, size: 16 * KiB + ((i * 7919) % (48 * KiB + 1)) };
}

/** What one run reports: per-client verdicts from both ends. */
interface RunResult {
  serverOk: number;
  clientOk: number;
  failures: string[];
}

/**
 * The server: for each connection, read the header, hash the file, compare
 * with the expected digest, send back the digest it computed, and close.
 */
function serve(listener: Listener, expected: string[], onConn: (conn: Connection) => void, verdicts: boolean[]): void {
  listener.onConnection = (conn) => {
    onConn(conn);
    const header = new Uint8Array(HEADER);
    let have = 0;
    let id = -1;
    let size = 0;
    let got = 0;
    const hash = sha256.create();
    conn.onData = (view) => {
      let off = 0;
      if (have < HEADER) {
        off = Math.min(HEADER - have, view.length);
        header.set(view.subarray(0, off), have);
        have += off;
        if (have === HEADER) {
          const dv = new DataView(header.buffer);
          id = dv.getUint32(0);
          size = dv.getUint32(4);
        }
      }
      if (off < view.length) {
        hash.update(view.subarray(off));
        got += view.length - off;
      }
    };
    conn.onEnd = () => {
      const digest = hash.digest();
      verdicts[id] = id >= 0 && got === size && hex(digest) === expected[id];
      conn.write(digest);
      conn.close();
    };
  };
}

/** One client: header, file, FIN; then the server's digest and its FIN. */
async function client(
  node: StackNode,
  serverIp: string,
  i: number,
  expected: string,
  onConn: (c: Connection) => void,
): Promise<string | null> {
  const conn = await node.stack.tcp.connect(serverIp, PORT);
  onConn(conn);
  const { seed, size } = fileOf(i);
  const header = new Uint8Array(HEADER);
  new DataView(header.buffer).setUint32(0, i);
  new DataView(header.buffer).setUint32(4, size);
  const reply = collect(conn);
  conn.write(header);
  const sent = await sendStream(conn, new ByteStream(seed, size));
  const digest = hex(await reply);
  const closed = await conn.closed;
  if (sent.bytes !== size || sent.sha256 !== expected) return `client ${i}: sent ${sent.bytes} bytes, digest differs`;
  if (digest !== expected) return `client ${i}: server computed ${digest}`;
  if (closed.reason !== 'closed') return `client ${i}: ${JSON.stringify(closed)}`;
  return null;
}

describe.each(ENGINES)('the seed scenario in miniature: 512 uploads, twice, on the same stacks (%s)', (engine) => {
  it(
    'both runs verify every file; after each, stats equal the baseline exactly and run 1 leaves nothing reachable',
    async () => {
      const sim = new Simulation({ seed: 499 });
      const opts = { port: { faults: LAN }, tcp: { msl: 1_000 } };
      const server = await addStack(sim, engine, nodeIp(0), { ...opts, memoryBytes: 16 * MiB });
      const clients: StackNode[] = [];
      for (let k = 0; k < CLIENT_STACKS; k++) {
        clients.push(await addStack(sim, engine, nodeIp(1 + k), { ...opts, memoryBytes: 8 * MiB }));
      }
      const stacks = [server.stack, ...clients.map((c) => c.stack)];
      const expected = Array.from({ length: CLIENTS }, (_, i) => {
        const { seed, size } = fileOf(i);
        return sha256Hex(streamBytes(seed, size));
      });
      await advance(sim, 10_000);
      const idle = baselines(stacks);

      const runs = [new Watch(), new Watch()];
      /** Forced GC halfway through run 2: how much of run 1 is still reachable. */
      let midRun2: Promise<number> | null = null;

      const run = async (r: number): Promise<RunResult> => {
        const watch = runs[r]!;
        const verdicts: boolean[] = [];
        const listener = server.stack.tcp.listen(PORT, { backlog: CLIENTS });
        let accepted = 0;
        serve(listener, expected, (conn) => {
          watch.add(conn, server.stack.tcp);
          // Halfway through run 2, with 256 of its connections open, a forced GC
          // must find nothing of run 1 still reachable.
          if (r === 1 && ++accepted === CLIENTS / 2) midRun2 = runs[0]!.alive();
        }, verdicts);
        const failures = (
          await sim.complete(
            whileChecking(
              sim,
              stacks,
              100,
              Promise.all(
                Array.from({ length: CLIENTS }, (_, i) =>
                  client(clients[i % CLIENT_STACKS]!, server.ip, i, expected[i]!, (c) => watch.add(c, clients[i % CLIENT_STACKS]!.stack.tcp)),
                ),
              ),
            ),
          )
        ).filter((f): f is string => f !== null);
        listener.close();
        await expectBackToBaseline(sim, stacks, idle, `run ${r + 1}`);
        return {
          serverOk: verdicts.filter(Boolean).length,
          clientOk: CLIENTS - failures.length,
          failures,
        };
      };

      const first = await run(0);
      expect(first).toEqual({ serverOk: CLIENTS, clientOk: CLIENTS, failures: [] });
      expect(runs[0]!.watched).toBe(4 * CLIENTS); // both ends: Connection and control block
      // No forced GC here: the first one comes halfway through run 2.

      const second = await run(1);
      expect(second).toEqual({ serverOk: CLIENTS, clientOk: CLIENTS, failures: [] });
      expect(midRun2, 'the halfway check ran').not.toBeNull();
      expect(await midRun2, 'run 1 objects reachable halfway through run 2').toBe(0);
      await runs[1]!.expectCollected('run 2 after quiescence');
      const counters = server.stack.stats().tcp.counters;
      expect(counters.passiveOpens).toBe(2 * CLIENTS);
      expect(counters.closedBy).toEqual({ closed: 2 * CLIENTS });
    },
    300_000,
  );
});
