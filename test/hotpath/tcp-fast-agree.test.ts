// The two engines' TCP fast paths agree byte for byte: one random sequence of
// segments, bursts, application writes and reads, and clock steps is driven
// through a wasm and a ts engine set up identically, and after every step the
// answers, and the whole memory the engines share with the stack, are equal.
// Segments are drawn around the connection's state (in order, duplicate,
// ahead, beyond the window; ACKs below, at, inside and above the flight;
// every flag, SACK blocks), so both the fast answers and every slow reason
// are exercised.

import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../host/hotpath.js';
import type { HotPath } from '../../stack/hotpath/engine.js';
import { OwnerKind, ownerTag } from '../../stack/hotpath/engine.js';
import {
  BURST_MAX, E, ETH_HLEN, F, IPV4_HLEN, SCRATCH_BASE, Slow, State, T, TCB_WORDS, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST,
  TCP_SYN, TCP_URG, TF,
} from '../../stack/hotpath/layout.js';
import { ChunkQueue } from '../../stack/tcp/buffers.js';
import { ChunkLinks } from '../../stack/tcp/chunk-links.js';
import { keyedHash } from '../../stack/tcp/isn.js';

const MEMORY = 1 << 20;
const LOCAL = 0x0a000001;
const REMOTE = 0x0a000002;
const LOCAL_PORT = 80;
const REMOTE_PORT = 40000;
const CAPACITY = 4;

/** The connection's starting point, drawn per run. */
interface Start {
  /** The connection's record; the table's other records are established
   *  connections from other ports (decoys), all in the hash. */
  index: number;
  /** The hash key: with 4 buckets for 4 tuples, chains of several records are common. */
  secret: number[];
  state: State;
  iss: number;
  irs: number;
  sndShift: number;
  rcvShift: number;
  cwnd: number;
  ssthresh: number;
  sndWnd: number;
  flags: number;
  queued: number;
  inFlight: number;
}

type Step =
  | { kind: 'segment'; flags: number; seqOff: number; ackOff: number; len: number; window: number; sack: number; to: number }
  | { kind: 'forget' }
  | { kind: 'burst'; max: number }
  | { kind: 'write'; len: number }
  | { kind: 'read'; len: number }
  | { kind: 'time'; ms: number };

/** Remote port of record i's connection: the main one's is REMOTE_PORT. */
function remotePortOf(i: number, main: number): number {
  return i === main ? REMOTE_PORT : REMOTE_PORT + 1 + i;
}

/** One engine with a table of CAPACITY records, every one an ESTABLISHED
 *  connection in the hash; the one under test at start.index. */
class Side {
  readonly w: Uint32Array;
  readonly links: ChunkLinks;
  readonly table: number; // word index of record 0
  readonly index: number;
  readonly send: ChunkQueue;
  readonly recv: ChunkQueue;
  now = 1000;

  constructor(readonly hot: HotPath, start: Start) {
    this.w = new Uint32Array(hot.buffer, 0, hot.buffer.byteLength >>> 2);
    this.links = new ChunkLinks(hot);
    const chunk = hot.alloc(ownerTag(OwnerKind.Table, 1));
    this.table = chunk >>> 2;
    this.w.fill(0, this.table, this.table + 512);
    const f = hot.fast;
    f.fill(0);
    f[F.ENABLED] = 1;
    f[F.LOCAL_ADDR] = LOCAL;
    f[F.TABLE_BASE] = this.table;
    f[F.CAPACITY] = CAPACITY;
    f[F.BUCKET_BASE] = this.table + CAPACITY * TCB_WORDS;
    f[F.BUCKET_MASK] = CAPACITY - 1;
    const secret = Uint32Array.from(start.secret);
    f.set(secret, F.SECRET);
    f[F.RCV_BUF] = 65536;
    f[F.MIN_RTO] = 200;
    f[F.MAX_RTO] = 60000;
    f[F.ARENA_RESERVE] = 8;
    this.index = start.index;
    const w = this.w;
    // The decoys first, then the connection under test, each pushed at the
    // head of its bucket's chain (as TcbTable.insert does).
    const order = [...Array(CAPACITY).keys()].filter((i) => i !== start.index).concat(start.index);
    for (const i of order) {
      const r = this.table + i * TCB_WORDS;
      const port = remotePortOf(i, start.index);
      w[r + T.STATE] = i === start.index ? start.state : State.Established;
      w[r + T.LOCAL_ADDR] = LOCAL;
      w[r + T.REMOTE_ADDR] = REMOTE;
      w[r + T.PORTS] = ((LOCAL_PORT << 16) | port) >>> 0;
      w[r + T.MSS] = ((1460 << 16) | 1460) >>> 0;
      w[r + T.RCV_NXT] = start.irs;
      w[r + T.RCV_ADV_RIGHT] = (start.irs + 65535) >>> 0;
      w[r + T.SND_UNA] = start.iss;
      w[r + T.SND_NXT] = start.iss;
      w[r + T.SND_MAX] = start.iss;
      w[r + T.CWND] = 14600;
      const h = keyedHash(secret, (LOCAL ^ Math.imul(REMOTE, 0x9e3779b1)) >>> 0, ((LOCAL_PORT << 16) | port) >>> 0);
      const bucket = f[F.BUCKET_BASE]! + (h & (CAPACITY - 1));
      w[r + T.HASH_NEXT] = w[bucket]!;
      w[bucket] = i + 1;
    }
    const r = this.r;
    w[r + T.FLAGS] = start.flags;
    w[r + T.ISS] = start.iss;
    w[r + T.SND_NXT] = (start.iss + start.inFlight) >>> 0;
    w[r + T.SND_MAX] = (start.iss + start.inFlight) >>> 0;
    w[r + T.SND_WND] = start.sndWnd;
    w[r + T.SND_WL1] = start.irs;
    w[r + T.SND_WL2] = start.iss;
    w[r + T.MAX_SND_WND] = start.sndWnd;
    w[r + T.IRS] = start.irs;
    w[r + T.SHIFTS] = start.sndShift | (start.rcvShift << 8);
    w[r + T.RTO] = 1000;
    w[r + T.CWND] = start.cwnd;
    w[r + T.SSTHRESH] = start.ssthresh;
    w[r + T.RTT_SEQ] = (start.iss + start.inFlight) >>> 0;
    this.send = new ChunkQueue(this.links, ownerTag(OwnerKind.TcpSend, start.index + 1), w, r + T.SEND_HEAD, true);
    this.recv = new ChunkQueue(this.links, ownerTag(OwnerKind.TcpRecv, start.index + 1), w, r + T.RECV_HEAD, false);
    this.write(start.queued, 0);
    // The route words a stack's IPv4 layer fills before a burst.
    const req = hot.request;
    req[E.DST_MAC_HI] = 0x0200;
    req[E.DST_MAC_LO] = 0x00000002;
    req[E.SRC_MAC_HI] = 0x0200;
    req[E.SRC_MAC_LO] = 0x00000001;
    req[E.IP_SRC] = LOCAL;
    req[E.IP_DST] = REMOTE;
    req[E.IP_TTL] = 64;
    req[E.IP_TOS] = 0;
    req[E.IP_ID] = 7;
    req[E.IP_FRAG] = 0x4000;
  }

  get r(): number {
    return this.table + this.index * TCB_WORDS;
  }

  write(len: number, salt: number): number {
    const data = new Uint8Array(len);
    for (let i = 0; i < len; i++) data[i] = (i * 7 + salt) & 0xff;
    return this.send.appendFromArray(data, 0, len);
  }

  /** A segment from the peer, built in an RX chunk; the engine's answer. */
  segment(s: Extract<Step, { kind: 'segment' }>): number {
    const hot = this.hot;
    const w = this.w;
    const target = (this.index + s.to) % CAPACITY; // to = 0: the connection under test
    const r = this.table + target * TCB_WORDS;
    const slot = hot.alloc(ownerTag(OwnerKind.Rx, 0));
    if (slot === 0) return -1;
    const req = hot.request;
    const saved = req.slice();
    req[E.DST_MAC_HI] = 0x0200;
    req[E.DST_MAC_LO] = 0x00000001;
    req[E.SRC_MAC_HI] = 0x0200;
    req[E.SRC_MAC_LO] = 0x00000002;
    req[E.IP_SRC] = REMOTE;
    req[E.IP_DST] = LOCAL;
    req[E.SPORT] = remotePortOf(target, this.index);
    req[E.DPORT] = LOCAL_PORT;
    req[E.TCP_SEQ] = (w[r + T.RCV_NXT]! + s.seqOff) >>> 0;
    req[E.TCP_ACK] = (w[r + T.SND_UNA]! + s.ackOff) >>> 0;
    req[E.TCP_FLAGS] = s.flags;
    req[E.TCP_WINDOW] = s.window;
    req[E.TCP_URG] = 0;
    req[E.OPT_MSS] = 0;
    req[E.OPT_WSCALE] = 0xff;
    req[E.OPT_SACK_OK] = 0;
    req[E.OPT_TS] = 0;
    req[E.OPT_SACK_COUNT] = s.sack;
    for (let i = 0; i < 2 * s.sack; i++) req[E.OPT_SACK + i] = (w[r + T.SND_UNA]! + 100 * (i + 1)) >>> 0;
    const at = slot + ETH_HLEN + IPV4_HLEN + hot.tcpHeaderLen();
    for (let i = 0; i < s.len; i++) hot.bytes[at + i] = (i * 13 + s.seqOff) & 0xff;
    const len = hot.encodeTcp(slot, s.len);
    req.set(saved);
    const answer = hot.tcpInput(slot, len, this.now);
    hot.free(slot);
    return answer;
  }

  /** A burst; the frames' bytes, then their slots freed. */
  burst(max: number): { n: number; frames: string[]; stop: number; bytes: number } {
    const hot = this.hot;
    const n = hot.tcpSendBurst(this.index, max, this.now);
    const frames: string[] = [];
    for (let i = 0; i < n; i++) {
      const slot = hot.fast[F.BURST_SLOTS + i]!;
      const len = hot.fast[F.BURST_LENS + i]!;
      frames.push(Buffer.from(hot.bytes.subarray(slot, slot + len)).toString('hex'));
      hot.free(slot);
    }
    return { n, frames, stop: hot.fast[F.BURST_STOP]!, bytes: hot.fast[F.BURST_BYTES]! };
  }

  run(step: Step): unknown {
    switch (step.kind) {
      case 'segment':
        return this.segment(step);
      case 'burst':
        return this.burst(step.max);
      case 'write':
        return this.write(step.len, step.len);
      case 'read': {
        const k = Math.min(step.len, this.recv.length);
        this.recv.consume(k);
        return k;
      }
      case 'time':
        this.now += step.ms;
        return this.now;
      case 'forget':
        // The cache of the record found last is lost (the stack's table moved
        // on to another connection): the next lookup walks the hash.
        this.hot.fast[F.LAST_FOUND] = 0;
        return 0;
    }
  }

  /** Everything the engines share with the stack (their own static data excluded). */
  shared(): Buffer {
    return Buffer.from(this.hot.bytes.subarray(SCRATCH_BASE));
  }
}

const FLAG_CHOICES = [
  TCP_ACK, TCP_ACK, TCP_ACK, TCP_ACK | TCP_PSH, TCP_ACK | TCP_PSH, TCP_ACK | TCP_FIN, TCP_ACK | TCP_RST, TCP_SYN,
  TCP_ACK | TCP_SYN, TCP_ACK | TCP_URG, TCP_PSH, 0x40 | TCP_ACK,
];

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('segment' as const),
      flags: fc.constantFrom(...FLAG_CHOICES),
      seqOff: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, fc.integer({ min: -3000, max: 70000 })),
      ackOff: fc.oneof(fc.constant(0), fc.integer({ min: -100, max: 40000 }), fc.integer({ min: 0, max: 0xffffffff })),
      len: fc.oneof(fc.constant(0), fc.constant(1460), fc.integer({ min: 0, max: 1460 })),
      window: fc.oneof(fc.constant(65535), fc.integer({ min: 0, max: 65535 })),
      sack: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, fc.integer({ min: 1, max: 3 })),
      to: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, fc.integer({ min: 1, max: CAPACITY - 1 })),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('burst' as const), max: fc.integer({ min: 0, max: BURST_MAX + 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('write' as const), len: fc.integer({ min: 0, max: 9000 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('read' as const), len: fc.integer({ min: 0, max: 70000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('time' as const), ms: fc.double({ min: 0, max: 500, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'forget' as const }) },
);

const start: fc.Arbitrary<Start> = fc.record({
  index: fc.integer({ min: 0, max: CAPACITY - 1 }),
  secret: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 4, maxLength: 4 }),
  state: fc.oneof({ weight: 4, arbitrary: fc.constant(State.Established) },
    fc.constantFrom(State.SynReceived, State.FinWait1, State.FinWait2, State.CloseWait, State.Closing, State.LastAck)),
  iss: fc.integer({ min: 0, max: 0xffffffff }),
  irs: fc.integer({ min: 0, max: 0xffffffff }),
  sndShift: fc.integer({ min: 0, max: 14 }),
  rcvShift: fc.integer({ min: 0, max: 7 }),
  cwnd: fc.integer({ min: 1460, max: 200000 }),
  ssthresh: fc.oneof(fc.constant(0xffffffff), fc.integer({ min: 2920, max: 100000 })),
  sndWnd: fc.integer({ min: 0, max: 1 << 20 }),
  flags: fc.subarray([TF.SACK_OK, TF.NO_DELAY, TF.RTT_TIMING, TF.ACK_NOW, TF.IN_RECOVERY, TF.FIN_QUEUED, TF.READ_CLOSED, TF.TIMESTAMPS, TF.IN_INPUT], { maxLength: 3 })
    .map((bits) => bits.reduce((a, b) => a | b, 0) >>> 0),
  queued: fc.integer({ min: 0, max: 100000 }),
  inFlight: fc.integer({ min: 0, max: 20000 }),
}).map((s) => ({ ...s, inFlight: Math.min(s.inFlight, s.queued) }));

let wasm: HotPath;
let ts: HotPath;

beforeAll(async () => {
  wasm = await createEngine('wasm', MEMORY);
  ts = await createEngine('ts', MEMORY);
});

describe('the TCP fast path in both engines', () => {
  it('agrees on answers, frames and every shared byte over random segment sequences', async () => {
    const fresh = async (): Promise<[HotPath, HotPath]> => [await createEngine('wasm', MEMORY), await createEngine('ts', MEMORY)];
    const answers = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(start, fc.array(step, { minLength: 1, maxLength: 60 }), async (s, steps) => {
        const [we, te] = await fresh();
        const a = new Side(we, s);
        const b = new Side(te, s);
        expect(a.shared().equals(b.shared())).toBe(true);
        for (const st of steps) {
          const ra = a.run(st);
          const rb = b.run(st);
          expect(ra).toEqual(rb);
          if (st.kind === 'segment' && typeof ra === 'number' && ra >= 0) answers.set(ra & 0xff, (answers.get(ra & 0xff) ?? 0) + 1);
          expect(a.shared().equals(b.shared())).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
    // The sequences reached the fast answer and the slow reasons a segment of
    // an ESTABLISHED connection can have (so the agreement covers them all).
    for (const reason of [Slow.FAST, Slow.STATE, Slow.FLAGS, Slow.OPTIONS, Slow.SEQUENCE, Slow.ACK, Slow.RECOVERY, Slow.CLOSING, Slow.BUSY]) {
      expect(answers.get(reason) ?? 0, `reason ${reason}`).toBeGreaterThan(0);
    }
  }, 120_000);

  it('is off until a TCP layer enables it, and then finds only the connections in its table', () => {
    for (const hot of [wasm, ts]) {
      const s = new Side(hot, { index: 2, secret: [1, 2, 3, 4], state: State.Established, iss: 1, irs: 1000, sndShift: 0, rcvShift: 0, cwnd: 14600, ssthresh: 0xffffffff, sndWnd: 65535, flags: 0, queued: 0, inFlight: 0 });
      const seg = { kind: 'segment' as const, flags: TCP_ACK | TCP_PSH, seqOff: 0, ackOff: 0, len: 100, window: 65535, sack: 0, to: 0 };
      hot.fast[F.ENABLED] = 0;
      expect(s.segment(seg)).toBe(Slow.DISABLED);
      hot.fast[F.ENABLED] = 1;
      hot.fast[F.LOCAL_ADDR] = LOCAL + 1;
      expect(s.segment(seg)).toBe(Slow.NOT_LOCAL);
      hot.fast[F.LOCAL_ADDR] = LOCAL;
      s.w[s.r + T.PORTS] = ((LOCAL_PORT << 16) | (REMOTE_PORT - 1)) >>> 0;
      expect(s.segment(seg)).toBe(Slow.NO_CONNECTION);
      s.w[s.r + T.PORTS] = ((LOCAL_PORT << 16) | REMOTE_PORT) >>> 0;
      hot.fast[F.LAST_FOUND] = 0;
      // Found through the hash, then remembered.
      const answer = s.segment(seg);
      expect(answer & 0xff).toBe(Slow.FAST);
      expect(hot.fast[F.LAST_FOUND]).toBe(3);
      expect(hot.fast[F.INDEX]).toBe(2);
      expect(s.recv.length).toBe(100);
      // A bad frame is left to the stack's decode path, which counts it.
      const rx = hot.alloc(ownerTag(OwnerKind.Rx, 0));
      hot.bytes.fill(0xff, rx, rx + 60);
      expect(hot.tcpInput(rx, 60, 0)).toBe(Slow.NOT_TCP);
      hot.free(rx);
      hot.fast.fill(0);
    }
  });
});
