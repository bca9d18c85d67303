// The relay on host sockets (127.0.0.1, ephemeral ports), driven by raw
// node:net clients that script bob's packets (docs/bob-protocol.md §2.5, §3): a
// full handshake with arbitrary crypto bytes, then 20 MB through the room to
// a slow reader, intact, with the relay's backpressure at work.

import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HandshakeDecoder } from '../../relay/handshake/decoder.js';
import { encodeFrame, type Frame, type Packet } from '../../relay/handshake/packet.js';
import { hostIdentity, startHostRelay } from '../../relay/server/host.js';
import type { RelayServer } from '../../relay/server/server.js';
import { EMPTY_LEVELS, relayLevels } from '../../relay/server/stats.js';

const PUB = new Uint8Array(34).fill(7);
const X = new Uint8Array(32).fill(0x58);
const Y = new Uint8Array(32).fill(0x59);
const V2 = new Uint8Array(64).fill(2);
const V3 = new Uint8Array(64).fill(3);

/** A client socket read as a byte queue. */
class Wire {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private wake: (() => void) | null = null;
  private readonly decoder = new HandshakeDecoder();
  private frames: Frame[] = [];
  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.notify();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };

  private constructor(readonly socket: net.Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', () => {}); // resets show up as 'end'/'close' where they matter
  }

  static async connect(port: number): Promise<Wire> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    return new Wire(socket);
  }

  send(packet: Packet, uid = 0): void {
    this.socket.write(encodeFrame({ uid, packet }));
  }

  async frame(): Promise<Frame> {
    while (this.frames.length === 0) {
      const { frames, error } = this.decoder.push(await this.some());
      expect(error).toBeNull();
      this.frames = frames;
    }
    return this.frames.shift()!;
  }

  async exactly(n: number): Promise<Uint8Array> {
    while (this.buffered < n) await this.more();
    const all = Buffer.concat(this.chunks.splice(0));
    this.chunks.push(all.subarray(n));
    this.buffered -= n;
    return new Uint8Array(all.subarray(0, n));
  }

  /** Wait for EOF; returns whatever came before it. */
  async end(): Promise<Uint8Array> {
    while (!this.ended) await this.more();
    return this.take();
  }

  /** Stop queueing; returns what was queued. */
  detach(): Uint8Array {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    return this.take();
  }

  private take(): Uint8Array {
    const all = Buffer.concat(this.chunks.splice(0));
    this.buffered = 0;
    return new Uint8Array(all);
  }

  private async some(): Promise<Uint8Array> {
    while (this.buffered === 0) await this.more();
    return this.take();
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

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');
const ascii = (t: string) => new Uint8Array(Buffer.from(t, 'latin1'));

/** bob's handshake between sender S and receiver C (§2.5); returns their identities. */
async function handshake(port: number): Promise<{ sid: string; cid: string }> {
  const S = await Wire.connect(port);
  S.send({ name: 'Hello_as_a_server', public: PUB });
  const f02 = await S.frame();
  expect(f02.packet.name).toBe('Server_identity');
  const sid = text((f02.packet as { identity: Uint8Array }).identity);
  expect(sid).toBe(hostIdentity(S.socket.localAddress!, S.socket.localPort!));

  const C = await Wire.connect(port);
  C.send({ name: 'Hello_as_a_client' });
  const f03 = await C.frame();
  const cid = text((f03.packet as { identity: Uint8Array }).identity);
  const f04 = await C.frame();
  expect(f04).toEqual({ uid: 0, packet: { name: 'New_server', uid: expect.any(Number), public: PUB, identity: ascii(sid) } });
  const s = (f04.packet as { uid: number }).uid;

  C.send({ name: 'X_and_client_identity', X, identity: ascii(cid) }, s);
  const f07 = await S.frame();
  const c = f07.uid;
  expect(f07.packet).toEqual({ name: 'X_and_client_identity', X, identity: ascii(cid) });
  S.send({ name: 'Y_and_server_validator', Y, validator: V2 }, c);
  expect(await C.frame()).toEqual({ uid: s, packet: { name: 'Y_and_server_validator', Y, validator: V2 } });
  C.send({ name: 'Client_validator', validator: V3 }, s);
  expect(await S.frame()).toEqual({ uid: c, packet: { name: 'Client_validator', validator: V3 } });
  S.send({ name: 'Agreement' }, c);
  expect(await C.frame()).toEqual({ uid: s, packet: { name: 'Agreement' } });
  C.send({ name: 'Accepted' }, s);
  expect(await S.frame()).toEqual({ uid: c, packet: { name: 'Accepted' } });
  expect(await C.frame()).toEqual({ uid: 0, packet: { name: 'Done' } });
  // The relay closes both after 0a / 0e (§2.3).
  expect(await S.end()).toHaveLength(0);
  expect(await C.end()).toHaveLength(0);
  S.socket.end();
  C.socket.end();
  return { sid, cid };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
}

async function writeAll(socket: net.Socket, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length; off += 65536) {
    if (!socket.write(data.subarray(off, off + 65536))) await once(socket, 'drain');
  }
}

let relay: RelayServer | null = null;

afterEach(async () => {
  await relay?.close();
  relay = null;
});

describe('relay on host sockets', () => {
  it('runs a handshake, then pipes 20 MB to a slow reader intact, with backpressure', async () => {
    relay = await startHostRelay({ address: '127.0.0.1', port: 0, securePort: 0 });
    const server = relay;
    const { sid, cid } = await handshake(server.ports.handshake);

    const S = await Wire.connect(server.ports.secure);
    const C = await Wire.connect(server.ports.secure);
    S.socket.write(`${cid}\n`);
    C.socket.write(`${sid}\n`);
    expect(await S.exactly(2)).toEqual(new TextEncoder().encode('00'));
    expect(await C.exactly(2)).toEqual(new TextEncoder().encode('00'));
    expect(server.stats().rooms).toEqual({ pending: 0, waiting: 0, piping: 1 });

    // C → S: a short message; S → C: 20 MB, then S's EOF.
    const back = randomBytes(3000);
    C.socket.write(back);
    const SIZE = 20 * 1024 * 1024;
    const data = randomBytes(SIZE);

    // C reads nothing until the relay had to pause S, then reads slowly.
    C.socket.pause();
    const leftover = C.detach();
    const hash = createHash('sha256');
    let got = 0;
    const tail: Buffer[] = [];
    const eat = (chunk: Uint8Array): void => {
      const body = Math.max(0, Math.min(chunk.length, SIZE - got));
      hash.update(chunk.subarray(0, body));
      tail.push(Buffer.from(chunk.subarray(body)));
      got += chunk.length;
    };
    eat(leftover);
    const cDone = new Promise<void>((resolve) => C.socket.once('end', () => resolve()));
    C.socket.on('data', (chunk: Buffer) => {
      eat(chunk);
      C.socket.pause();
      setImmediate(() => C.socket.resume());
    });

    const sending = writeAll(S.socket, data).then(() => S.socket.end());
    await until(() => server.stats().counters.pipePauses > 0);
    C.socket.resume();
    await sending;
    await cDone;

    expect(got).toBe(SIZE + 4);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    expect(Buffer.concat(tail)).toEqual(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    const toS = await S.end();
    expect(Buffer.from(toS)).toEqual(Buffer.concat([back, Buffer.from([0xff, 0xff, 0xff, 0xff])]));
    C.socket.end();

    await until(() => server.stats().sockets.secure === 0);
    const stats = server.stats();
    expect(relayLevels(stats)).toEqual(EMPTY_LEVELS);
    expect(stats.counters).toMatchObject({ paired: 1, roomsPiped: 1, pipeEnded: 1, bytesPiped: SIZE + back.length });
    expect(stats.counters.pipeResumes).toBeGreaterThan(0);
  });

  it('close() leaves no sockets and no timers, and stops listening', async () => {
    relay = await startHostRelay({ address: '127.0.0.1', port: 0, securePort: 0 });
    const server = relay;
    const waiting = await Wire.connect(server.ports.handshake);
    waiting.send({ name: 'Hello_as_a_server', public: PUB });
    await waiting.frame();
    const idle = await Wire.connect(server.ports.secure);
    await until(() => server.stats().sockets.secure === 1);
    expect(server.stats().timers).toBe(2);

    await server.close();
    expect(relayLevels(server.stats())).toEqual(EMPTY_LEVELS);
    waiting.socket.destroy();
    idle.socket.destroy();
    const refused = net.connect({ host: '127.0.0.1', port: server.ports.handshake });
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
  });
});
