// Random segments, timer runs and application calls against one connection
// (with or without window scaling, any shift the peer offers, even > 14, and
// with or without SACK, and random SACK blocks, plausible or forged, on any segment):
// TCP never throws, keeps its invariants, and after shutdown holds nothing.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_BLOCKS } from '../../../stack/tcp/sack-scoreboard.js';
import { ACK, add, FIN, PSH, RST, SYN, TcpPeer } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;

type Step =
  | { kind: 'segment'; flags: number; seqOff: number; ackOff: number; len: number; window: number; sack: number[] }
  | { kind: 'advance'; ms: number }
  | { kind: 'write'; len: number }
  | { kind: 'read' }
  | { kind: 'end' }
  | { kind: 'close' }
  | { kind: 'abort' };

const flagSets = [ACK, ACK | PSH, ACK | FIN, FIN, RST, RST | ACK, SYN, SYN | ACK, 0x08, ACK | FIN | PSH];

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('segment' as const),
      flags: fc.constantFrom(...flagSets),
      seqOff: fc.oneof(fc.integer({ min: -3000, max: 70000 }), fc.integer({ min: -5, max: 5 })),
      ackOff: fc.oneof(fc.integer({ min: -70000, max: 70000 }), fc.integer({ min: -2, max: 3000 })),
      len: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1460 })),
      window: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 65535 })),
      // SACK blocks as offsets from our ISS+1: plausible, inverted, old or beyond what we sent.
      sack: fc.array(fc.integer({ min: -5000, max: 80_000 }), { maxLength: 8 }).map((xs) => xs.slice(0, xs.length & ~1)),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 90_000 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('write' as const), len: fc.integer({ min: 1, max: 20_000 }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'read' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'end' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'close' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'abort' as const }) },
);

/** `wscale`: the shift the peer's SYN offers (window scaling then holds), or undefined for none. */
async function run(engine: 'wasm' | 'ts', steps: Step[], wscale: number | undefined, sackOk: boolean): Promise<void> {
  const p = await TcpPeer.create(engine, { tcp: { msl: 1000, rcvBuf: 8192, sndBuf: 8192 } });
  const { conn, theirs, ours } = await p.accept({ wscale, sackOk });
  conn.onData = () => {};
  conn.pause();
  for (const s of steps) {
    switch (s.kind) {
      case 'segment':
        p.inject({
          flags: s.flags, seq: add(theirs, s.seqOff), ack: add(ours, s.ackOff),
          window: s.window, payload: new Uint8Array(s.len), sack: s.sack.map((off) => add(ours, off)),
        });
        break;
      case 'advance':
        p.advance(s.ms);
        break;
      case 'write':
        if (conn.closeInfo === null && conn.writableSpace > 0) conn.write(new Uint8Array(s.len));
        break;
      case 'read':
        conn.resume();
        conn.pause();
        break;
      case 'end':
        conn.end();
        break;
      case 'close':
        conn.close();
        break;
      case 'abort':
        conn.abort();
        break;
    }
    p.drain();
    const st = p.tcp.stats();
    expect(st.connections).toBeLessThanOrEqual(1);
    expect(st.chunks.send).toBeLessThanOrEqual(5); // sndBuf 8 KiB in 2 KiB chunks (+1 partial)
    expect(st.chunks.recv).toBeLessThanOrEqual(5);
    expect(st.chunks.reassembly).toBeLessThanOrEqual(32);
    expect(p.liveTcbs()[0]?.sackBoard?.count ?? 0).toBeLessThanOrEqual(MAX_BLOCKS);
  }
  p.tcp.shutdown();
  p.drain();
  expect(conn.closeInfo).not.toBeNull();
  p.expectNothingHeld();
}

describe.each(ENGINES)('TCP under random input (%s)', (engine) => {
  it('never throws, stays within its bounds, and holds nothing after shutdown', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 60 }),
        fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
        fc.boolean(),
        (steps, wscale, sackOk) => run(engine, steps, wscale === 0xff ? undefined : wscale, sackOk),
      ),
      { numRuns: 150 },
    );
  });
});
