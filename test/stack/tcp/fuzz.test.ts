// Random segments, timer runs and application calls against one connection
// (with or without window scaling, any shift the peer offers, even > 14, and
// with or without SACK, and random SACK blocks, plausible or forged, on any segment):
// TCP never throws, keeps its invariants, and after shutdown holds nothing.
// Everything it sends is checked: each frame on the wire bytes (headers,
// lengths, checksums, by reference code), and each segment against RFC 9293's
// rules: no RST in answer to a RST, resets numbered as the reset-generation
// rule says, sequence numbers within what the application wrote (and the
// bytes its own, at their offset), FIN only when asked and right after the
// last byte, ACKs never beyond what the peer sent nor going back, SACK blocks
// only when negotiated and only above the cumulative ACK.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_BLOCKS } from '../../../stack/tcp/sack-scoreboard.js';
import { IPPROTO_TCP } from '../../../stack/hotpath/layout.js';
import { ipNumber, refPseudoSum, refSum } from '../../helpers/frames.js';
import { checkProperty } from '../../helpers/property.js';
import { ACK, add, describeSent, FIN, LOCAL_IP, PSH, REMOTE_IP, REMOTE_PORT, RST, SYN, TcpPeer, type Sent } from '../../helpers/tcp-peer.js';

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
      // Anywhere, near RCV.NXT, or inside the 8 KiB window (out of order: SACK territory).
      seqOff: fc.oneof(fc.integer({ min: -3000, max: 70000 }), fc.integer({ min: -5, max: 5 }), fc.integer({ min: 1, max: 8192 })),
      // Anywhere, near SND.NXT, or exactly the handshake's (acceptable until we have sent more).
      ackOff: fc.oneof(fc.integer({ min: -70000, max: 70000 }), fc.integer({ min: -2, max: 3000 }), fc.constant(0)),
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

/** Byte k of what the application writes: a period that never lines up with chunks or segments. */
const PERIOD = 251;
const PATTERN = Uint8Array.from({ length: 20_000 + PERIOD }, (_, k) => k % PERIOD);
function streamBytes(offset: number, length: number): Uint8Array {
  const at = offset % PERIOD;
  return PATTERN.slice(at, at + length);
}

/**
 * Checks one frame TCP sent, on the wire bytes, with reference code that
 * shares nothing with the engines (test/helpers/frames.ts): Ethernet type
 * IPv4, a 20-byte header with a good checksum and a total length that is the
 * frame's, not fragmented, TCP from LOCAL_IP to REMOTE_IP, a good TCP
 * checksum over the pseudo-header. Returns what is wrong, or null.
 */
function frameProblem(f: Uint8Array): string | null {
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  if (f.length < 14 + 20 + 20) return `frame of ${f.length} bytes is too short for Ethernet, IPv4 and TCP`;
  if (v.getUint16(12) !== 0x0800) return `ethertype 0x${v.getUint16(12).toString(16)}`;
  if (f[14] !== 0x45) return `IPv4 version/IHL byte 0x${f[14]!.toString(16)}`;
  if (v.getUint16(16) !== f.length - 14) return `IPv4 total length ${v.getUint16(16)} in a frame of ${f.length}`;
  if ((v.getUint16(20) & 0x3fff) !== 0) return `fragment field 0x${v.getUint16(20).toString(16)}`;
  if (f[23] !== IPPROTO_TCP) return `IP protocol ${f[23]}`;
  if (refSum(f.subarray(14, 34)) !== 0xffff) return 'bad IPv4 header checksum';
  if (v.getUint32(26) !== ipNumber(LOCAL_IP) || v.getUint32(30) !== ipNumber(REMOTE_IP)) return 'wrong addresses';
  const tcp = f.subarray(34);
  const dataOffset = (tcp[12]! >> 4) * 4;
  if (dataOffset < 20 || dataOffset > tcp.length) return `TCP data offset ${dataOffset} in a segment of ${tcp.length}`;
  if (refSum(tcp, refPseudoSum(LOCAL_IP, REMOTE_IP, IPPROTO_TCP, tcp.length)) !== 0xffff) return 'bad TCP checksum';
  return null;
}

/** The sequence space of one incarnation of the connection, as TCP may use it. */
interface Space {
  /** Our initial sequence number. */
  iss: number;
  /** Bytes the application handed over (0 for an incarnation it never saw). */
  written: number;
  /** Whether the application asked for a FIN (end, close). */
  finAllowed: boolean;
  /** The last ACK we sent in this incarnation (ours never go back). */
  lastAck: number | null;
  /** A passive open that answered an injected SYN after the first one ended. */
  embryonic: boolean;
}

/** What a step injected, if it was a segment. */
interface Injected {
  flags: number;
  seq: number;
  ack: number;
  /** SEG.LEN: payload, plus one each for SYN and FIN. */
  segLen: number;
}

/** Whether [left, right) lies within the payload of the injected segment. */
function dataOf(inj: Injected, left: number, right: number): boolean {
  const start = (inj.flags & SYN) !== 0 ? add(inj.seq, 1) : inj.seq;
  const payload = inj.segLen - ((inj.flags & SYN) !== 0 ? 1 : 0) - ((inj.flags & FIN) !== 0 ? 1 : 0);
  return diff(left, start) >= 0 && diff(add(start, payload), right) >= 0;
}

/** Signed distance from `from` to `to` in sequence space. */
const diff = (to: number, from: number): number => (to - from) | 0;

/**
 * What TCP must never send, per RFC 9293 (and RFC 2018 for SACK), checked on
 * each segment sent during one step. `peer` bounds the peer's sequence space:
 * the lowest and highest sequence numbers any injected segment reached,
 * relative to `theirs`. Returns the problems found.
 */
function segmentProblems(
  sent: Sent[], step: Step, injected: Injected | null, spaceRef: { space: Space }, theirs: number,
  peer: { low: number; high: number }, sackOk: boolean,
): string[] {
  const problems: string[] = [];
  for (const s of sent) {
    const where = `${describeSent(s)} after ${JSON.stringify(step)}`;
    const bad = (what: string) => problems.push(`${what}: ${where}`);
    if (s.sport !== 80 || s.dport !== REMOTE_PORT) bad('wrong ports');
    const rst = (s.flags & RST) !== 0;
    const syn = (s.flags & SYN) !== 0;
    const fin = (s.flags & FIN) !== 0;
    if (rst) {
      // Never a RST in answer to a RST (RFC 9293 3.10.7).
      if (injected && (injected.flags & RST) !== 0) bad('RST in answer to a RST');
      if (syn || fin || s.payload.length > 0) bad('RST with SYN, FIN or data');
      // Reset generation (RFC 9293 3.5.2): <SEQ=SEG.ACK><CTL=RST> for a segment with ACK,
      // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK> for one without; or our own, at SND.NXT.
      const reply = injected !== null && ((injected.flags & ACK) !== 0
        ? s.seq === injected.ack && (s.flags & ACK) === 0
        : s.seq === 0 && (s.flags & ACK) !== 0 && s.ack === add(injected.seq, injected.segLen));
      const space = spaceRef.space;
      const rel = diff(s.seq, add(space.iss, 1));
      const own = rel >= 0 && rel <= space.written + (space.finAllowed ? 1 : 0);
      if (!reply && !own) bad('RST whose sequence number is neither the reset-generation rule\'s nor ours');
      continue;
    }
    if (syn) {
      // Only a passive open of a new incarnation: SYN-ACK to an injected SYN, or its retransmission.
      const fresh = injected !== null && (injected.flags & (SYN | ACK | RST)) === SYN && s.ack === add(injected.seq, 1);
      // A retransmitted SYN-ACK repeats its acknowledgment. One that answers
      // another SYN is a new incarnation even with the same ISS: an in-window
      // SYN sends the embryonic block back to LISTEN (RFC 9293 3.10.7.4),
      // and RFC 6528's ISN repeats within one tick of the (virtual) clock.
      const again = spaceRef.space.embryonic && s.seq === spaceRef.space.iss && (spaceRef.space.lastAck === null || s.ack === spaceRef.space.lastAck);
      if ((s.flags & ACK) === 0 || fin || s.payload.length > 0) bad('SYN that is not a bare SYN-ACK');
      else if (fresh && !again) spaceRef.space = { iss: s.seq, written: 0, finAllowed: false, lastAck: null, embryonic: true };
      else if (!again) bad('SYN-ACK that answers no SYN');
    }
    const space = spaceRef.space;
    // Sequence numbers within what we have to send (RFC 9293 3.3): from ISS
    // (keepalive and window probes use SND.UNA - 1) to what the application wrote, plus the FIN.
    const rel = diff(s.seq, add(space.iss, 1));
    const end = rel + s.payload.length + (syn ? 1 : 0) + (fin ? 1 : 0);
    if (rel < -1 || end > space.written + (space.finAllowed ? 1 : 0)) bad(`sequence space [${rel}, ${end}) beyond the ${space.written} bytes written`);
    if (fin && !space.finAllowed) bad('FIN the application did not ask for');
    if (fin && rel + s.payload.length !== space.written) bad('FIN not right after the last byte written');
    // Retransmitted or not, the bytes are the application's, at their offset.
    if (s.payload.length > 0 && rel >= 0 && !equal(s.payload, streamBytes(rel, s.payload.length))) bad('payload differs from the bytes written at its offset');
    // ACK: never for more than the peer sent, never below what it started at, never going back.
    if ((s.flags & ACK) === 0) bad('segment without ACK in a synchronized connection');
    const ackRel = diff(s.ack, theirs);
    if (ackRel < peer.low || ackRel > peer.high) bad(`ACK ${ackRel} outside what the peer sent [${peer.low}, ${peer.high}]`);
    if (space.lastAck !== null && diff(s.ack, space.lastAck) < 0) bad(`ACK went back from ${diff(space.lastAck, theirs)}`);
    space.lastAck = s.ack;
    // SACK (RFC 2018): only when both SYNs allowed it; blocks are data above the cumulative ACK that the peer sent.
    // The first may be a D-SACK (RFC 2883): at or below the ACK, bytes of the segment just injected.
    if (s.sack.length > 0 && !sackOk) bad('SACK blocks without SACK-permitted');
    for (let i = 0; i < s.sack.length; i += 2) {
      const left = diff(s.sack[i]!, s.ack);
      const right = diff(s.sack[i + 1]!, s.ack);
      if (i === 0 && right <= 0) {
        if (!(right > left && injected !== null && dataOf(injected, s.sack[i]!, s.sack[i + 1]!))) bad(`D-SACK block [${left}, ${right}) relative to the ACK is not data just received`);
        continue;
      }
      if (!(left > 0 && right > left && diff(s.sack[i + 1]!, theirs) <= peer.high)) bad(`SACK block [${left}, ${right}) relative to the ACK`);
    }
  }
  return problems;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** `wscale`: the shift the peer's SYN offers (window scaling then holds), or undefined for none. */
async function run(engine: 'wasm' | 'ts', steps: Step[], wscale: number | undefined, sackOk: boolean): Promise<void> {
  const p = await TcpPeer.create(engine, { tcp: { msl: 1000, rcvBuf: 8192, sndBuf: 8192 } });
  const { conn, theirs, ours } = await p.accept({ wscale, sackOk });
  conn.onData = () => {};
  conn.pause();
  const spaceRef = { space: { iss: add(ours, -1), written: 0, finAllowed: false, lastAck: null, embryonic: false } as Space };
  // The handshake's peer sequence space: its SYN at theirs - 1.
  const peer = { low: -1, high: 0 };
  let raw = p.lower.frames.length;
  p.drain(); // the handshake, checked by accept()
  const checkSent = (step: Step, injected: Injected | null) => {
    const frames = p.lower.frames.slice(raw).map((f) => f.bytes);
    raw = p.lower.frames.length;
    const wire = frames.map(frameProblem).filter((x) => x !== null);
    expect(wire, `frames TCP sent after ${JSON.stringify(step)}`).toEqual([]);
    const sent = p.drain(); // decoded by the engine too, which rejects bad checksums
    expect(sent).toHaveLength(frames.length);
    expect(segmentProblems(sent, step, injected, spaceRef, theirs, peer, sackOk)).toEqual([]);
  };
  for (const s of steps) {
    let injected: Injected | null = null;
    switch (s.kind) {
      case 'segment': {
        injected = {
          flags: s.flags, seq: add(theirs, s.seqOff), ack: add(ours, s.ackOff),
          segLen: s.len + ((s.flags & SYN) !== 0 ? 1 : 0) + ((s.flags & FIN) !== 0 ? 1 : 0),
        };
        peer.low = Math.min(peer.low, s.seqOff);
        peer.high = Math.max(peer.high, s.seqOff + injected.segLen);
        p.inject({
          flags: s.flags, seq: injected.seq, ack: injected.ack,
          window: s.window, payload: new Uint8Array(s.len), sack: s.sack.map((off) => add(ours, off)),
        });
        break;
      }
      case 'advance':
        p.advance(s.ms);
        break;
      case 'write':
        if (conn.closeInfo === null && conn.writableSpace > 0) {
          const space = spaceRef.space;
          if (!space.embryonic) space.written += conn.write(streamBytes(space.written, s.len));
        }
        break;
      case 'read':
        conn.resume();
        conn.pause();
        break;
      case 'end':
      case 'close':
        if (s.kind === 'end') conn.end();
        else conn.close();
        if (!spaceRef.space.embryonic) spaceRef.space.finAllowed = true;
        break;
      case 'abort':
        conn.abort();
        break;
    }
    checkSent(s, injected);
    const st = p.tcp.stats();
    expect(st.connections).toBeLessThanOrEqual(1);
    expect(st.chunks.send).toBeLessThanOrEqual(5); // sndBuf 8 KiB in 2 KiB chunks (+1 partial)
    expect(st.chunks.recv).toBeLessThanOrEqual(5);
    expect(st.chunks.reassembly).toBeLessThanOrEqual(32);
    expect(p.liveTcbs()[0]?.sackBoard.count ?? 0).toBeLessThanOrEqual(MAX_BLOCKS);
  }
  p.tcp.shutdown();
  checkSent({ kind: 'abort' }, null);
  expect(conn.closeInfo).not.toBeNull();
  p.expectNothingHeld();
}

describe.each(ENGINES)('TCP under random input (%s)', (engine) => {
  it('never throws, sends only well-formed segments within RFC 9293\'s rules, stays within its bounds, and holds nothing after shutdown', async () => {
    await checkProperty(
      `stack/tcp/fuzz (${engine})`,
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
