// Hostile bob peers for tests, built from the clients' own parts: a fake
// sender that registers with any public packet and computes nothing, and a
// sender that streams any bytes as its PACK once a receiver has accepted.
import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { deflateSync } from 'node:zlib';
import type { RelayEndpoint } from '../../relay/client/endpoint.js';
import { runHandshake } from '../../relay/client/handshake-driver.js';
import { silentLogger } from '../../relay/client/log.js';
import { joinSecureRoom } from '../../relay/client/secure-room.js';
import { SenderHandshake } from '../../relay/client/sender-handshake.js';
import { Connection, connectTcp } from '../../relay/client/socket.js';
import { HandshakeDecoder } from '../../relay/handshake/decoder.js';
import { type Frame, encodeFrame } from '../../relay/handshake/packet.js';
import { objectHeader, packHeader } from '../../relay/pack/format.js';
import { RecordWriter, senderToReceiver } from '../../relay/records.js';
import { BOB_CIPHERS, encodePublic } from '../../relay/spoke/public.js';
import { serverInit } from '../../relay/spoke/spake2ee.js';

/** A public packet with any u64 PBKDF2 count, even one encodePublic refuses. */
export function publicWithCount(count: bigint): Uint8Array {
  const bytes = encodePublic({ count: 16, ciphers: BOB_CIPHERS, salt: new Uint8Array(randomBytes(16)) });
  new DataView(bytes.buffer).setBigUint64(4, count);
  return bytes;
}

export interface FakeSender {
  readonly socket: Socket;
  /** Every packet the relay delivered to it so far. */
  readonly frames: Frame[];
}

/** A registered sender that never computes anything (a 40-byte Hello); resolves once the relay answered 02. */
export async function fakeSender(handshakePort: number, count: bigint): Promise<FakeSender> {
  const socket = await connectTcp('127.0.0.1', handshakePort, 5000);
  const decoder = new HandshakeDecoder();
  const frames: Frame[] = [];
  socket.on('data', (chunk: Buffer) => frames.push(...decoder.push(new Uint8Array(chunk)).frames));
  socket.write(encodeFrame({ uid: 0, packet: { name: 'Hello_as_a_server', public: publicWithCount(count) } }));
  await until(() => frames.some((f) => f.packet.name === 'Server_identity'));
  return { socket, frames };
}

/** A single-file PACK with a free hand: any name bytes, any declared size, any zlib stream as the blob. */
export function handmadePack(name: Uint8Array, declared: number, zlibBlob: Uint8Array): Uint8Array[] {
  const body = [packHeader(), objectHeader(4, name.length), new Uint8Array(deflateSync(name)), objectHeader(3, declared), zlibBlob];
  return [...body, new Uint8Array(createHash('sha1').update(Buffer.concat(body)).digest())];
}

/**
 * A sender that pairs like ours (count 16), then writes `segments` in
 * records of at most 2047 bytes, waits for `hold` if given (a stalled
 * sender), and reads until the relay closes. What it meets is not checked:
 * the receiver is what tests look at.
 */
export async function craftedSender(endpoint: RelayEndpoint, password: string, segments: Uint8Array[], hold?: Promise<unknown>): Promise<void> {
  const init = serverInit(password, { count: 16 });
  const machine = new SenderHandshake({ publicBytes: init.public, secret: init.secret });
  const conn = new Connection(await connectTcp(endpoint.host, endpoint.port, 5000));
  const paired = await runHandshake(conn, machine, { log: silentLogger });
  conn.end();
  const room = new Connection(await connectTcp(endpoint.host, endpoint.securePort, 5000));
  try {
    await joinSecureRoom(room, paired.peerIdentity);
    const { subkey, cipher } = senderToReceiver(paired.keys);
    const writer = new RecordWriter(subkey, cipher);
    for (const segment of segments) {
      for (let at = 0; at < segment.length; at += 2047) await room.write(writer.seal(segment.subarray(at, at + 2047)));
    }
    await hold;
    while ((await room.read()) !== null);
  } catch {
    // The receiver dropped the stream.
  } finally {
    room.destroy();
  }
}

export async function until(condition: () => boolean | Promise<boolean>, pollMs = 5): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, pollMs));
}
