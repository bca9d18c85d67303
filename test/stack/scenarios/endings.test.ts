// Every way a connection ends, 10,000 times: three stacks and a silent host on
// a 1 Gbit/s LAN, and stack A opens 1,000 connections down each of ten paths,
// at most 50 at a time per path, all paths at once:
//
//   path                       A (the client)               its peer
//   client closes first        TIME_WAIT, then gone          LAST_ACK -> closed
//   server closes first        LAST_ACK -> closed            TIME_WAIT, then gone
//   simultaneous close         CLOSING -> TIME_WAIT          CLOSING -> TIME_WAIT
//   peer resets mid-transfer   reset                         abort() (RST)
//   abort mid-transfer         abort() (RST)                 reset
//   peer vanishes mid-transfer retransmission give-up        retransmission give-up (link cut)
//   peer never sends its FIN   FIN_WAIT_2 timeout (RST)      reset in CLOSE_WAIT
//   SYN to a closed port       connect() rejects ECONNREFUSED
//   host that never answers    connect() rejects ETIMEDOUT
//   address nobody has         connect() rejects ETIMEDOUT (ARP never resolves)
//
// Each connection's ending is checked on both sides, the TCP counters must
// add up to exactly these endings, and afterwards (TIME_WAIT, ARP entries and
// every timer run out) every stack's stats() levels equal their baseline
// exactly, and WeakRefs to a sample of the Connection objects and their
// control blocks, on both sides, are cleared by a forced GC.

import { describe, expect, it } from 'vitest';
import { Simulation } from '../../../stack/sim.js';
import type { Connection } from '../../../stack/tcp/connection.js';
import type { Listener } from '../../../stack/tcp/listener.js';
import type { CloseInfo } from '../../../stack/tcp/stats.js';
import { formatIpv4 } from '../../../stack/address.js';
import { addStack, advance, arpFrame, ENGINES, nodeIp, type StackNode } from '../../helpers/stack-pair.js';
import {
  baselines, ByteStream, expectBackToBaseline, expectConsistent, KiB, LAN, MiB, pool, receiveStream, sendStream,
  Watch, newestTcb, whileChecking,
} from '../../helpers/scenario.js';

const PER_PATH = 1_000;
const CONCURRENCY = 50;
/** Every SAMPLE-th connection of each path is watched for collection. */
const SAMPLE = 20;

const MSL = 1_000;
/** Long enough that only a peer that really never sends its FIN trips it,
 *  not a FIN retransmitted a few times on a congested link. */
const FIN_WAIT_2_TIMEOUT = 30_000;
const CONNECT_TIMEOUT = 2_500;
/** B probes a silent peer after this long (only on the never-FIN path).
 *  Longer than A's FIN_WAIT_2 timeout: a probe that reached A first would
 *  count as hearing from B and restart A's wait (the wait is measured from
 *  the last segment heard, as in BSD). */
const KEEPALIVE_IDLE = 45_000;

/** B's listening ports, one per behaviour; CLOSED_PORT has no listener. */
const P = {
  clientFirst: 1001,
  serverFirst: 1002,
  simultaneous: 1003,
  serverAborts: 1004,
  clientAborts: 1005,
  neverFin: 1006,
} as const;
const CLOSED_PORT = 1007;
/** C's port for the connections whose peer vanishes. */
const VANISH_PORT = 2001;

const REQUEST = 4 * KiB;
const RESPONSE = 2 * KiB;
const GREETING = 8 * KiB;
/** A bulk upload or download, interrupted long before it ends. */
const BULK = 256 * KiB;
/** Received before an abort or a cut: the transfer is well under way. */
const UNDER_WAY = 16 * KiB;
/** Each way, on a connection whose peer vanishes: sent before the cut... */
const BEFORE_CUT = 32 * KiB;
/** ...and written after it, so that both sides hold unacknowledged data. */
const AFTER_CUT = 4 * KiB;

function fmt(info: CloseInfo): string {
  return info.detail ? `${info.reason}/${info.detail}` : info.reason;
}

function errorCode(err: unknown): string {
  return (err as { code?: string }).code ?? String(err);
}

/** The other side of a connection, handed over by key (listen port : client port). */
class Rendezvous<T> {
  private readonly slots = new Map<string, { value?: T; wait?: (v: T) => void }>();

  give(key: string, value: T): void {
    const slot = this.slots.get(key);
    if (slot?.wait) {
      this.slots.delete(key);
      slot.wait(value);
    } else {
      this.slots.set(key, { value });
    }
  }

  take(key: string): Promise<T> {
    const slot = this.slots.get(key);
    if (slot && 'value' in slot) {
      this.slots.delete(key);
      return Promise.resolve(slot.value as T);
    }
    return new Promise((resolve) => this.slots.set(key, { wait: resolve }));
  }

  get size(): number {
    return this.slots.size;
  }
}

/** A byte count: `reached` resolves once add() has brought it to `n`. */
function threshold(n: number): { add(k: number): void; reached: Promise<void>; total(): number } {
  let got = 0;
  let done!: () => void;
  const reached = new Promise<void>((r) => (done = r));
  return {
    add(k) {
      got += k;
      if (got >= n) done();
    },
    reached,
    total: () => got,
  };
}

const quiet = (p: Promise<unknown>): void => void p.catch(() => {});

/** A raw port that answers ARP for `ip` and swallows everything else (a host that never answers TCP). */
function silentHost(sim: Simulation, ip: string): void {
  const mac = Uint8Array.of(0x02, 0x5e, 0, 0, 0, 0x0d);
  const port = sim.switch.attach({ mac, faults: LAN });
  const target = ip.split('.').map(Number);
  port.setReceiver((f) => {
    const isArpRequest = f.length >= 42 && f[12] === 0x08 && f[13] === 0x06 && f[20] === 0 && f[21] === 1;
    if (!isArpRequest || target.some((b, i) => f[38 + i] !== b)) return;
    const sha = f.slice(22, 28);
    const spa = formatIpv4(((f[28]! << 24) | (f[29]! << 16) | (f[30]! << 8) | f[31]!) >>> 0);
    port.send(arpFrame(sha, mac, { op: 2, sha: mac, spa: ip, tha: sha, tpa: spa }));
  });
}

describe.each(ENGINES)('every way a connection ends, 10,000 times (%s)', (engine) => {
  it(
    'after 1,000 connections down each of 10 paths, stats equal the baseline exactly and sampled connections are collected',
    async () => {
      const sim = new Simulation({ seed: 7 });
      const opts = { port: { faults: LAN }, tcp: { msl: MSL, finWait2Timeout: FIN_WAIT_2_TIMEOUT } };
      const a = await addStack(sim, engine, nodeIp(0), { ...opts, memoryBytes: 24 * MiB });
      const b = await addStack(sim, engine, nodeIp(1), {
        ...opts,
        tcp: { ...opts.tcp, keepaliveIdle: KEEPALIVE_IDLE },
        memoryBytes: 16 * MiB,
      });
      const c = await addStack(sim, engine, nodeIp(2), { ...opts, memoryBytes: 8 * MiB });
      const silentIp = nodeIp(3);
      silentHost(sim, silentIp);
      const nobodyIp = '10.0.0.99';
      const stacks = [a.stack, b.stack, c.stack];
      await advance(sim, 10_000);
      const idle = baselines(stacks);

      const watch = new Watch();
      const server = serveB(b, watch);
      const vanishing = serveC(c);
      await advance(sim, 1);
      const listening = baselines(stacks);

      const paths = endingPaths(a, b, c, server, vanishing, watch, silentIp, nobodyIp);
      const outcomes = await sim.complete(
        whileChecking(
          sim,
          stacks,
          1000,
          Promise.all(paths.map(async (path) => [path.name, tally(await path.run())] as const)),
        ),
        // Virtual time: the twenty link cuts each wait out a full retransmission
        // back-off (minutes); the other paths finish within the first ones.
        { maxTime: 4 * 3_600_000 },
      );

      // Each path ended every one of its connections the one expected way, on both sides.
      expect(Object.fromEntries(outcomes)).toEqual(
        Object.fromEntries(paths.map((path) => [path.name, { [path.expected]: PER_PATH }])),
      );
      expect(server.pending.size + vanishing.pending.size).toBe(0);

      // TCP counted exactly these endings.
      const closedBy = stacks.map((s) => s.stats().tcp.counters.closedBy);
      expect(closedBy[0]).toEqual({
        closed: 3 * PER_PATH, // client first, server first, simultaneous
        reset: PER_PATH, // the peer reset it
        aborted: PER_PATH, // abort()
        timeout: 4 * PER_PATH, // retransmission give-up, FIN_WAIT_2, two kinds of connect timeout
        refused: PER_PATH, // closed port
      });
      expect(closedBy[1]).toEqual({ closed: 3 * PER_PATH, aborted: PER_PATH, reset: 2 * PER_PATH });
      expect(closedBy[2]).toEqual({ timeout: PER_PATH });
      const [ca, cb, cc] = stacks.map((s) => s.stats().tcp.counters);
      expect([ca!.timeWaitEntered, cb!.timeWaitEntered]).toEqual([2 * PER_PATH, 2 * PER_PATH]);
      expect([ca!.giveUpRetransmit, cc!.giveUpRetransmit]).toEqual([PER_PATH, PER_PATH]);
      expect(ca!.finWait2Timeouts).toBe(PER_PATH);
      expect(ca!.giveUpConnectTimeout).toBe(2 * PER_PATH);
      expect(cb!.rstSentClosedPort).toBeGreaterThanOrEqual(PER_PATH);
      for (const s of stacks) expectConsistent(s.stats());

      // Quiescence: everything back to the idle server's levels, then to the bare stacks'.
      await expectBackToBaseline(sim, stacks, listening, 'listeners open');
      server.close();
      vanishing.close();
      await expectBackToBaseline(sim, stacks, idle, 'listeners closed');
      expect(watch.refs.length).toBeGreaterThanOrEqual((10 * PER_PATH) / SAMPLE);
      await watch.expectCollected('sampled connections and control blocks');
    },
    600_000,
  );
});

/** Count identical outcome strings. */
function tally(list: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of list) out[s] = (out[s] ?? 0) + 1;
  return out;
}

// ---- B: one listener per behaviour ---------------------------------------------------

interface Server {
  /** What B's side of each connection reported, by "listenPort:clientPort". */
  pending: Rendezvous<Promise<string> | Connection>;
  close(): void;
}

function serveB(b: StackNode, watch: Watch): Server {
  const pending = new Rendezvous<Promise<string> | Connection>();
  const listeners: Listener[] = [];
  let accepted = 0;
  for (const port of Object.values(P)) {
    const listener = b.stack.tcp.listen(port);
    listeners.push(listener);
    listener.onConnection = (conn) => {
      if (++accepted % SAMPLE === 0) watch.add(conn);
      const key = `${port}:${conn.remotePort}`;
      if (port === P.simultaneous) {
        // A closes both ends in one go once the request is in.
        const got = threshold(REQUEST);
        conn.onData = (v) => got.add(v.length);
        void got.reached.then(() => pending.give(key, conn));
        return;
      }
      pending.give(key, behave(port, conn));
    };
  }
  return {
    pending,
    close: () => listeners.forEach((l) => l.close()),
  };
}

/** B's side of one connection; resolves with what B saw. */
async function behave(port: number, conn: Connection): Promise<string> {
  switch (port) {
    case P.clientFirst: {
      // Read the request to its end (A's FIN), answer, then our FIN: LAST_ACK.
      const req = await receiveStream(conn);
      quiet(sendStream(conn, new ByteStream(2, RESPONSE)));
      return `B ${fmt(await conn.closed)} got ${req.bytes}`;
    }
    case P.serverFirst: {
      // Once the request is in, answer and close first: TIME_WAIT here.
      const got = threshold(REQUEST);
      conn.onData = (v) => got.add(v.length);
      await got.reached;
      conn.write(new ByteStream(2, RESPONSE).peek(RESPONSE));
      conn.close();
      return `B ${fmt(await conn.closed)} got ${got.total()}`;
    }
    case P.serverAborts: {
      // Stream a download, and abort from inside onData once the upload is under way.
      quiet(sendStream(conn, new ByteStream(3, BULK)));
      let got = 0;
      conn.onData = (v) => {
        got += v.length;
        if (got >= UNDER_WAY) conn.abort();
      };
      return `B ${fmt(await conn.closed)}`;
    }
    case P.clientAborts: {
      conn.write(new ByteStream(4, GREETING).peek(GREETING));
      quiet(receiveStream(conn));
      return `B ${fmt(await conn.closed)}`;
    }
    case P.neverFin: {
      // Read everything, see the FIN, and never close: A's FIN_WAIT_2 must time
      // out and reset us. Keepalive covers the case where that RST is lost
      // (it is sent once): a probe then draws a RST from A all the same.
      conn.setKeepAlive(true);
      let got = 0;
      conn.onData = (v) => void (got += v.length);
      return `B ${fmt(await conn.closed)} got ${got}`;
    }
    default:
      throw new Error(`no behaviour for port ${port}`);
  }
}

// ---- C: the peer that vanishes ---------------------------------------------------------

interface Vanishing {
  pending: Rendezvous<{ conn: Connection; progressed: Promise<void> }>;
  close(): void;
}

function serveC(c: StackNode): Vanishing {
  const pending = new Rendezvous<{ conn: Connection; progressed: Promise<void> }>();
  const listener = c.stack.tcp.listen(VANISH_PORT);
  listener.onConnection = (conn) => {
    const got = threshold(UNDER_WAY);
    conn.onData = (v) => got.add(v.length);
    pending.give(`${VANISH_PORT}:${conn.remotePort}`, { conn, progressed: got.reached });
  };
  return { pending, close: () => listener.close() };
}

// ---- A: the ten paths ---------------------------------------------------------------------

interface Path {
  name: string;
  expected: string;
  run(): Promise<string[]>;
}

function endingPaths(
  a: StackNode,
  b: StackNode,
  c: StackNode,
  server: Server,
  vanishing: Vanishing,
  watch: Watch,
  silentIp: string,
  nobodyIp: string,
): Path[] {
  const tcp = a.stack.tcp;
  let opened = 0;
  /** Connect to B and maybe watch the connection and its control block. */
  const open = async (port: number): Promise<{ conn: Connection; peer: Promise<Promise<string> | Connection> }> => {
    const conn = await tcp.connect(b.ip, port);
    if (++opened % SAMPLE === 0) watch.add(conn, tcp);
    return { conn, peer: server.pending.take(`${port}:${conn.localPort}`) };
  };
  const each = (task: () => Promise<string>): (() => Promise<string[]>) => () =>
    pool(PER_PATH, CONCURRENCY, () => task());
  /** connect() that must fail; the control block and Connection it made are watched. */
  const failing = async (ip: string, port: number, timeout?: number): Promise<string> => {
    const attempt = tcp.connect(ip, port, timeout === undefined ? {} : { timeout });
    if (++opened % SAMPLE === 0) {
      const tcb = newestTcb(a.stack);
      watch.add(tcb?.conn ?? null, tcp, tcb?.pointedHandle);
    }
    return attempt.then(
      () => 'A connected?!',
      (err: unknown) => `A ${errorCode(err)}`,
    );
  };

  return [
    {
      name: 'client closes first',
      expected: 'A closed got 2048 | B closed got 4096',
      run: each(async () => {
        const { conn, peer } = await open(P.clientFirst);
        const [, res] = await Promise.all([sendStream(conn, new ByteStream(1, REQUEST)), receiveStream(conn)]);
        return `A ${fmt(await conn.closed)} got ${res.bytes} | ${await (await peer)}`;
      }),
    },
    {
      name: 'server closes first',
      expected: 'A closed got 2048 | B closed got 4096',
      run: each(async () => {
        const { conn, peer } = await open(P.serverFirst);
        conn.write(new ByteStream(1, REQUEST).peek(REQUEST));
        const res = await receiveStream(conn);
        conn.close();
        return `A ${fmt(await conn.closed)} got ${res.bytes} | ${await (await peer)}`;
      }),
    },
    {
      name: 'simultaneous close',
      expected: 'A closed | B closed',
      run: each(async () => {
        const { conn, peer } = await open(P.simultaneous);
        conn.write(new ByteStream(1, REQUEST).peek(REQUEST));
        const other = (await peer) as Connection;
        // Both FINs leave before either arrives.
        other.close();
        conn.close();
        const [mine, theirs] = await Promise.all([conn.closed, other.closed]);
        return `A ${fmt(mine)} | B ${fmt(theirs)}`;
      }),
    },
    {
      name: 'peer resets mid-transfer',
      expected: 'A reset | B aborted',
      run: each(async () => {
        const { conn, peer } = await open(P.serverAborts);
        quiet(receiveStream(conn));
        quiet(sendStream(conn, new ByteStream(1, BULK)));
        return `A ${fmt(await conn.closed)} | ${await (await peer)}`;
      }),
    },
    {
      name: 'abort mid-transfer',
      expected: 'A aborted | B reset',
      run: each(async () => {
        const { conn, peer } = await open(P.clientAborts);
        quiet(sendStream(conn, new ByteStream(1, BULK)));
        // Abort from inside onData once B's greeting is in and the upload is under way.
        let got = 0;
        conn.onData = (v) => {
          got += v.length;
          if (got >= GREETING) conn.abort();
        };
        return `A ${fmt(await conn.closed)} | ${await (await peer)}`;
      }),
    },
    {
      name: 'peer vanishes mid-transfer',
      expected: 'A timeout/retransmit | C timeout/retransmit',
      run: async () => {
        const out: string[] = [];
        for (let done = 0; done < PER_PATH; done += CONCURRENCY) {
          out.push(...(await vanishBatch(a, c, vanishing, watch, Math.min(CONCURRENCY, PER_PATH - done))));
        }
        return out;
      },
    },
    {
      name: 'peer never sends its FIN',
      expected: 'A timeout/finWait2 | B reset got 4096',
      run: each(async () => {
        const { conn, peer } = await open(P.neverFin);
        conn.write(new ByteStream(1, REQUEST).peek(REQUEST));
        conn.close();
        return `A ${fmt(await conn.closed)} | ${await (await peer)}`;
      }),
    },
    {
      name: 'SYN to a closed port',
      expected: 'A ECONNREFUSED',
      run: each(() => failing(b.ip, CLOSED_PORT)),
    },
    {
      name: 'host that never answers',
      expected: 'A ETIMEDOUT',
      run: each(() => failing(silentIp, 80, CONNECT_TIMEOUT)),
    },
    {
      name: 'address nobody has',
      expected: 'A ETIMEDOUT',
      run: each(() => failing(nobodyIp, 80, CONNECT_TIMEOUT)),
    },
  ];
}

/**
 * `n` connections from A to C with data flowing both ways; once every one is
 * under way in both directions, C's cable is cut (every frame lost, both
 * ways) and both applications write a little more, so that each side holds
 * unacknowledged data however far the transfer had got; the cable stays cut
 * until both sides of every connection have given up retransmitting, then
 * it is mended for the next batch.
 */
async function vanishBatch(
  a: StackNode,
  c: StackNode,
  vanishing: Vanishing,
  watch: Watch,
  n: number,
): Promise<string[]> {
  const pairs = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const conn = await a.stack.tcp.connect(c.ip, VANISH_PORT);
      if (i % SAMPLE === 0) watch.add(conn);
      const got = threshold(UNDER_WAY);
      conn.onData = (v) => got.add(v.length);
      const peer = await vanishing.pending.take(`${VANISH_PORT}:${conn.localPort}`);
      if (i % SAMPLE === 0) watch.add(peer.conn);
      // Bounded streams both ways, not ended: the application goes on writing.
      quiet(sendStream(conn, new ByteStream(6, BEFORE_CUT), false));
      quiet(sendStream(peer.conn, new ByteStream(5, BEFORE_CUT), false));
      await Promise.all([got.reached, peer.progressed]);
      return [conn, peer.conn];
    }),
  );
  c.port.setFaults({ ...LAN, loss: 1 });
  const ends = pairs.map((pair) =>
    pair.map((conn) => {
      conn.write(new ByteStream(7, AFTER_CUT).peek(AFTER_CUT));
      return conn.closed;
    }),
  );
  pairs.length = 0; // only the closed promises stay
  const outcomes = await Promise.all(
    ends.map(async ([mine, theirs]) => `A ${fmt(await mine!)} | C ${fmt(await theirs!)}`),
  );
  c.port.setFaults(LAN);
  return outcomes;
}
