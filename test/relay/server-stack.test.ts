// The relay on our own TCP stack: relay and clients on two stacks joined by
// the in-process vswitch, on a virtual clock. The clients script bob's
// handshake (docs/bob-protocol.md §2.5) with arbitrary crypto bytes, then move 1 MB
// through the room (§3) to a reader that starts late, so the relay has to
// pause the writer. Afterwards the relay's gauges are empty and both stacks
// are back to their baseline.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HandshakeDecoder } from '../../relay/handshake/decoder.js';
import { encodeFrame, type Frame, type Packet } from '../../relay/handshake/packet.js';
import guestMain, { parseRelayArgs } from '../../relay/server/guest-main.js';
import { startStackRelay } from '../../relay/server/stack.js';
import { EMPTY_LEVELS, relayLevels } from '../../relay/server/stats.js';
import type { Stack } from '../../stack/stack.js';
import type { Connection } from '../../stack/tcp/connection.js';
import { advance, ENGINES, levels, makeStacks } from '../helpers/stack-pair.js';

const PUB = new Uint8Array(34).fill(7);
const X = new Uint8Array(32).fill(0x58);
const Y = new Uint8Array(32).fill(0x59);
const V2 = new Uint8Array(64).fill(2);
const V3 = new Uint8Array(64).fill(3);
const MARKER = Uint8Array.of(0xff, 0xff, 0xff, 0xff);

const ascii = (t: string) => Uint8Array.from(t, (c) => c.charCodeAt(0));
const text = (b: Uint8Array) => String.fromCharCode(...b);

/** A client connection on our stack, read as a byte queue (copies of onData views). */
class Wire {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  ended = false;
  private wake: (() => void) | null = null;
  private readonly decoder = new HandshakeDecoder();
  private frames: Frame[] = [];

  constructor(readonly conn: Connection) {
    conn.onData = (view) => {
      this.chunks.push(view.slice());
      this.buffered += view.length;
      this.notify();
    };
    conn.onEnd = () => {
      this.ended = true;
      this.notify();
    };
  }

  static async connect(stack: Stack, ip: string, port: number): Promise<Wire> {
    return new Wire(await stack.tcp.connect(ip, port));
  }

  get identity(): string {
    return `${this.conn.localAddress}:${this.conn.localPort}`;
  }

  send(packet: Packet, uid = 0): void {
    this.write(encodeFrame({ uid, packet }));
  }

  /** Small writes only: they must fit the send buffer. */
  write(bytes: Uint8Array): void {
    expect(this.conn.write(bytes)).toBe(bytes.length);
  }

  async frame(): Promise<Frame> {
    while (this.frames.length === 0) {
      while (this.buffered === 0) await this.more();
      const { frames, error } = this.decoder.push(this.take());
      expect(error).toBeNull();
      this.frames = frames;
    }
    return this.frames.shift()!;
  }

  async exactly(n: number): Promise<Uint8Array> {
    while (this.buffered < n) await this.more();
    const all = this.take();
    this.chunks = [all.subarray(n)];
    this.buffered = all.length - n;
    return all.subarray(0, n);
  }

  async end(): Promise<Uint8Array> {
    while (!this.ended) await this.more();
    return this.take();
  }

  take(): Uint8Array {
    const out = new Uint8Array(this.buffered);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    this.chunks = [];
    this.buffered = 0;
    return out;
  }

  private more(): Promise<void> {
    if (this.ended) throw new Error('unexpected EOF');
    return new Promise((resolve) => (this.wake = resolve));
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

/** bob's handshake between sender S and receiver C through the relay (§2.5). */
async function handshake(stack: Stack, relayIp: string): Promise<{ sid: string; cid: string }> {
  const S = await Wire.connect(stack, relayIp, 9000);
  S.send({ name: 'Hello_as_a_server', public: PUB });
  expect(await S.frame()).toEqual({ uid: 0, packet: { name: 'Server_identity', identity: ascii(S.identity) } });
  const C = await Wire.connect(stack, relayIp, 9000);
  C.send({ name: 'Hello_as_a_client' });
  expect(await C.frame()).toEqual({ uid: 0, packet: { name: 'Client_identity', identity: ascii(C.identity) } });
  const f04 = await C.frame();
  expect(f04.packet).toEqual({ name: 'New_server', uid: expect.any(Number), public: PUB, identity: ascii(S.identity) });
  const s = (f04.packet as { uid: number }).uid;
  C.send({ name: 'X_and_client_identity', X, identity: ascii(C.identity) }, s);
  const f07 = await S.frame();
  const c = f07.uid;
  S.send({ name: 'Y_and_server_validator', Y, validator: V2 }, c);
  expect(await C.frame()).toEqual({ uid: s, packet: { name: 'Y_and_server_validator', Y, validator: V2 } });
  C.send({ name: 'Client_validator', validator: V3 }, s);
  expect(await S.frame()).toEqual({ uid: c, packet: { name: 'Client_validator', validator: V3 } });
  S.send({ name: 'Agreement' }, c);
  expect(await C.frame()).toEqual({ uid: s, packet: { name: 'Agreement' } });
  C.send({ name: 'Accepted' }, s);
  expect(await S.frame()).toEqual({ uid: c, packet: { name: 'Accepted' } });
  expect(await C.frame()).toEqual({ uid: 0, packet: { name: 'Done' } });
  expect(await S.end()).toHaveLength(0);
  expect(await C.end()).toHaveLength(0);
  S.conn.close();
  C.conn.close();
  await Promise.all([S.conn.closed, C.conn.closed]);
  return { sid: S.identity, cid: C.identity };
}

/** Write everything through the callback API, then FIN. */
function writeAll(conn: Connection, data: Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    let sent = 0;
    const more = (): void => {
      while (sent < data.length) {
        const n = conn.write(data.subarray(sent, sent + 16_384));
        sent += n;
        if (n === 0) return; // onWritable calls again
      }
      conn.end();
      resolve();
    };
    conn.onWritable = more;
    more();
  });
}

function pattern(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe.each(ENGINES)('relay on our TCP stack (%s)', (engine) => {
  it('runs a handshake and a 1 MB room transfer, then relay and stacks are back to baseline', async () => {
    const { sim, nodes } = await makeStacks(engine, 2, { memoryBytes: 4 * 1024 * 1024, tcp: { msl: 1000 } });
    const [relayNode, clientNode] = [nodes[0]!, nodes[1]!];
    await advance(sim, 10_000); // start-up ARP announcements done
    const baseRelay = levels(relayNode.stack);
    const baseClient = levels(clientNode.stack);

    const relay = await startStackRelay(relayNode.stack);
    expect(relay.ports).toEqual({ handshake: 9000, secure: 9001 });
    const { sid, cid } = await sim.complete(handshake(clientNode.stack, relayNode.ip));
    expect(sid.startsWith(`${clientNode.ip}:`)).toBe(true);
    expect(relay.stats().rooms).toEqual({ pending: 1, waiting: 0, piping: 0 });

    const [S, C] = await sim.complete(
      Promise.all([Wire.connect(clientNode.stack, relayNode.ip, 9001), Wire.connect(clientNode.stack, relayNode.ip, 9001)]),
    );
    S.write(ascii(`${cid}\n`));
    C.write(ascii(`${sid}\n`));
    expect(await sim.complete(S.exactly(2))).toEqual(new TextEncoder().encode('00'));
    expect(await sim.complete(C.exactly(2))).toEqual(new TextEncoder().encode('00'));

    // C → S: a short message. S → C: 1 MB, then FIN; C reads only once the
    // relay had to pause S.
    const back = ascii('a few bytes the other way');
    C.write(back);
    C.conn.pause();
    const data = pattern(1024 * 1024);
    const sending = writeAll(S.conn, data);
    await sim.run(() => relay.stats().counters.pipePauses > 0);
    C.conn.resume();
    await sim.complete(sending);
    const received = await sim.complete(C.end());
    expect(received.length).toBe(data.length + 4);
    expect(sha(received.subarray(0, data.length))).toBe(sha(data));
    expect(received.subarray(data.length)).toEqual(MARKER);
    const toS = await sim.complete(S.end());
    expect(toS).toEqual(Uint8Array.from([...back, ...MARKER]));
    S.conn.close();
    C.conn.close();
    await sim.complete(Promise.all([S.conn.closed, C.conn.closed]));

    await advance(sim, 5_000);
    const stats = relay.stats();
    expect(relayLevels(stats)).toEqual(EMPTY_LEVELS);
    expect(stats.counters).toMatchObject({ paired: 1, roomsPiped: 1, pipeEnded: 1, bytesPiped: data.length + back.length });
    expect(stats.counters.pipeResumes).toBeGreaterThan(0);

    await relay.close();
    await advance(sim, 130_000); // TIME_WAIT, ARP entries and every timer run out
    expect(relayLevels(relay.stats())).toEqual(EMPTY_LEVELS);
    expect(levels(relayNode.stack)).toEqual(baseRelay);
    expect(levels(clientNode.stack)).toEqual(baseClient);
  });

  it('answers each handshake packet at once: no Nagle or delayed-ACK stall, no retransmission', async () => {
    // bob's handshake is request/response with the relay sending two frames
    // back to back; with Nagle on the relay's side the second one would wait
    // for the client's delayed ACK, and a delayed ACK as long as the minimum
    // RTO raced retransmissions. On a zero-delay link it takes no virtual time.
    const { sim, nodes } = await makeStacks(engine, 2, { memoryBytes: 4 * 1024 * 1024 });
    const [relayNode, clientNode] = [nodes[0]!, nodes[1]!];
    await advance(sim, 10_000);
    const relay = await startStackRelay(relayNode.stack);
    const start = sim.clock.now();
    await sim.complete(handshake(clientNode.stack, relayNode.ip));
    expect(sim.clock.now() - start).toBeLessThan(relayNode.stack.tcp.opts.delayedAckMs);
    expect(relayNode.stack.tcp.stats().counters.retransmittedSegments).toBe(0);
    expect(clientNode.stack.tcp.stats().counters.retransmittedSegments).toBe(0);
    await relay.close();
  });

  it('close() resets open connections at once', async () => {
    const { sim, nodes } = await makeStacks(engine, 2, { tcp: { msl: 1000 } });
    const [relayNode, clientNode] = [nodes[0]!, nodes[1]!];
    await advance(sim, 10_000);
    const baseRelay = levels(relayNode.stack);
    const baseClient = levels(clientNode.stack);
    const relay = await startStackRelay(relayNode.stack, { timeoutSec: 60 });
    const S = await sim.complete(Wire.connect(clientNode.stack, relayNode.ip, 9000));
    S.send({ name: 'Hello_as_a_server', public: PUB });
    await sim.complete(S.frame());
    const idle = await sim.complete(Wire.connect(clientNode.stack, relayNode.ip, 9001));
    await advance(sim, 100);
    expect(relay.stats().sockets).toEqual({ handshake: 1, secure: 1 });
    await relay.close();
    expect(relayLevels(relay.stats())).toEqual(EMPTY_LEVELS);
    expect(await sim.complete(S.conn.closed)).toMatchObject({ reason: 'reset' });
    expect(await sim.complete(idle.conn.closed)).toMatchObject({ reason: 'reset' });
    await advance(sim, 130_000);
    expect(levels(relayNode.stack)).toEqual(baseRelay);
    expect(levels(clientNode.stack)).toEqual(baseClient);
  });
});

describe('relay guest main', () => {
  it('parses -t, --secure-port, --port, -b and -v, and refuses anything else', () => {
    expect(parseRelayArgs([])).toEqual({ backlog: 1024, verbose: false });
    expect(parseRelayArgs(['-t', '60', '--secure-port', '9101', '--port=9100', '-b', '64', '-v'])).toEqual({
      timeoutSec: 60,
      securePort: 9101,
      port: 9100,
      backlog: 64,
      verbose: true,
    });
    expect(() => parseRelayArgs(['-t'])).toThrow(/needs a value/);
    expect(() => parseRelayArgs(['-t', 'soon'])).toThrow(/not a positive number/);
    expect(() => parseRelayArgs(['--secure-port', '1.5'])).toThrow(/positive integer/);
    expect(() => parseRelayArgs(['--daemonize'])).toThrow(/unknown argument/);
  });

  it('serves on the guest stack until its signal aborts', async () => {
    const { sim, nodes } = await makeStacks('ts', 2, { tcp: { msl: 1000 } });
    const [relayNode, clientNode] = [nodes[0]!, nodes[1]!];
    await advance(sim, 10_000);
    const stop = new AbortController();
    const lines: unknown[][] = [];
    await guestMain({ stack: relayNode.stack, args: ['--secure-port', '9101'], log: (...a) => lines.push(a), signal: stop.signal });
    expect(lines.join('\n')).toMatch(/listening on 9000 .* 9101/);
    const room = await sim.complete(Wire.connect(clientNode.stack, relayNode.ip, 9101));
    room.write(ascii('127.0.0.1:1\n'));
    expect(await sim.complete(room.exactly(2))).toEqual(new TextEncoder().encode('02')); // no such room
    stop.abort();
    await advance(sim, 1);
    expect(relayNode.stack.stats().tcp.listeners).toBe(0);
  });
});
