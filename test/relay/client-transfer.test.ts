// End to end through the real relay on host sockets (127.0.0.1, ephemeral
// ports): the library calls behind `bob send` and `bob recv`.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BobError, ExitCode, type RelayEndpoint, bufferSource, fileSource, receive, send } from '../../relay/client/index.js';
import { runHandshake } from '../../relay/client/handshake-driver.js';
import { joinSecureRoom } from '../../relay/client/secure-room.js';
import { freePort } from '../helpers/uk.js';
import { SenderHandshake } from '../../relay/client/sender-handshake.js';
import { Connection, connectTcp } from '../../relay/client/socket.js';
import { silentLogger } from '../../relay/client/log.js';
import { encodePack } from '../../relay/pack/encoder.js';
import { RecordWriter, senderToReceiver } from '../../relay/records.js';
import { startHostRelay } from '../../relay/server/host.js';
import { serverInit } from '../../relay/spoke/spake2ee.js';

const FAST = 16; // bob's PBKDF2 count: these tests are about the protocol, not the KDF

let relay: Awaited<ReturnType<typeof startHostRelay>>;
let endpoint: RelayEndpoint;
let dir: string;

// A fresh relay per test: a client left waiting by one test must not meet the next one's.
beforeEach(async () => {
  relay = await startHostRelay({ address: '127.0.0.1', port: 0, securePort: 0, log: () => {} });
  endpoint = { host: '127.0.0.1', port: relay.ports.handshake, securePort: relay.ports.secure };
  dir = await mkdtemp(join(tmpdir(), 'bob-client-'));
});

afterEach(async () => {
  await relay?.close();
  await rm(dir, { recursive: true, force: true });
});

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function failure(promise: Promise<unknown>): Promise<BobError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BobError) return error;
    throw error;
  }
  throw new Error('expected a BobError');
}

async function transfer(data: Uint8Array, name: string, count = FAST) {
  const source = join(dir, name);
  await writeFile(source, data);
  const out = join(dir, 'out');
  const sawDestinationEarly: boolean[] = [];
  const password = `pw-${randomBytes(6).toString('hex')}`;
  const [sent, received] = await Promise.all([
    send({ relay: endpoint, password, file: await fileSource(source), pbkdf2Count: count, timeoutMs: 20_000 }),
    receive({
      relay: endpoint,
      password,
      output: out,
      timeoutMs: 20_000,
      // The destination must not exist while the bytes arrive: only a verified file is published.
      onProgress: () => sawDestinationEarly.push(existsSync(out)),
    }),
  ]);
  return { sent, received, out, sawDestinationEarly };
}

describe('bob send / recv through the host relay', () => {
  it('transfers an empty file', async () => {
    const { sent, received, out } = await transfer(new Uint8Array(0), 'empty.bin');
    expect(sent.size).toBe(0);
    expect(received).toMatchObject({ name: 'empty.bin', size: 0, path: out });
    expect((await readFile(out)).length).toBe(0);
  });

  it('transfers a 1-byte file with the default PBKDF2 count', async () => {
    const { received, out } = await transfer(Uint8Array.of(0x2a), 'one.bin', undefined);
    expect(received.size).toBe(1);
    expect([...(await readFile(out))]).toEqual([0x2a]);
  });

  it('transfers a 20 MB file intact, publishing it only after the trailer verifies', async () => {
    const data = new Uint8Array(randomBytes(20 * 1024 * 1024));
    const { received, out, sawDestinationEarly } = await transfer(data, 'big.bin');
    expect(received.size).toBe(data.length);
    expect(sha256(await readFile(out))).toBe(sha256(data));
    expect(sawDestinationEarly.length).toBeGreaterThan(10);
    expect(sawDestinationEarly.every((seen) => !seen)).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(['big.bin', 'out']); // no temporary file left
  });

  it('names the file after the sender without -o, and picks another name when that one exists', async () => {
    const password = 'naming';
    const data = Uint8Array.of(1, 2, 3);
    const recv = () => receive({ relay: endpoint, password, directory: dir, timeoutMs: 20_000 });
    const snd = () => send({ relay: endpoint, password, file: bufferSource('note.txt', data), pbkdf2Count: FAST, timeoutMs: 20_000 });
    const [, first] = await Promise.all([snd(), recv()]);
    expect(first.path).toBe(join(dir, 'note.txt'));
    const [, second] = await Promise.all([snd(), recv()]);
    expect(second.path).toMatch(/\/bob-[a-z0-9]{6}$/);
    expect([...(await readFile(second.path))]).toEqual([1, 2, 3]);
  });

  it('fails cleanly on a wrong password: the receiver gives up with exit 3, the sender at its --timeout', async () => {
    const [sender, receiver] = await Promise.all([
      failure(send({ relay: endpoint, password: 'right', file: bufferSource('f', Uint8Array.of(1)), pbkdf2Count: FAST, timeoutMs: 1500 })),
      failure(receive({ relay: endpoint, password: 'wrong', output: join(dir, 'out'), failFast: true, timeoutMs: 10_000 })),
    ]);
    expect(receiver.code).toBe(ExitCode.WrongPassword);
    expect(receiver.message).toMatch(/^Wrong password: the sender 127\.0\.0\.1:\d+ uses another one$/);
    expect(sender.code).toBe(ExitCode.WrongPassword);
    expect(sender.message).toMatch(/^Wrong password: 1 receiver used another one, and none with ours came within 1\.5 s$/);
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('reports a refusal: the receiver refuses (exit 5 at its timeout), the sender is never accepted (exit 5)', async () => {
    const asked: string[] = [];
    const [sender, receiver] = await Promise.all([
      failure(send({ relay: endpoint, password: 'pw', file: bufferSource('f', Uint8Array.of(1)), pbkdf2Count: FAST, timeoutMs: 1500 })),
      failure(
        receive({
          relay: endpoint,
          password: 'pw',
          output: join(dir, 'out'),
          timeoutMs: 1500,
          confirm: async (identity) => {
            asked.push(identity);
            return false;
          },
        }),
      ),
    ]);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(receiver.code).toBe(ExitCode.Refused);
    expect(sender.code).toBe(ExitCode.Refused);
    expect(sender.message).toMatch(/^Not accepted/);
  });

  it('lets a receiver that sees two senders (one with a wrong password) pick the right one', async () => {
    const right = new Uint8Array(randomBytes(1000));
    const wrongSender = failure(
      send({ relay: endpoint, password: 'not-it', file: bufferSource('wrong', Uint8Array.of(9)), pbkdf2Count: FAST, timeoutMs: 3000 }),
    );
    await new Promise((r) => setTimeout(r, 200)); // both senders registered before the receiver comes
    const rightSender = send({ relay: endpoint, password: 'it', file: bufferSource('right', right), pbkdf2Count: FAST, timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 200));
    const received = await receive({ relay: endpoint, password: 'it', output: join(dir, 'out'), timeoutMs: 10_000 });
    expect(received.name).toBe('right');
    expect(sha256(await readFile(join(dir, 'out')))).toBe(sha256(right));
    await rightSender;
    expect((await wrongSender).code).toBe(ExitCode.WrongPassword);
  });

  it('never overwrites: a destination that appears during the transfer is exit 7, and nothing is left behind', async () => {
    const out = join(dir, 'out');
    const [, receiver] = await Promise.all([
      send({ relay: endpoint, password: 'race', file: bufferSource('f', Uint8Array.of(1, 2)), pbkdf2Count: FAST, timeoutMs: 10_000 }),
      failure(
        receive({
          relay: endpoint,
          password: 'race',
          output: out,
          timeoutMs: 10_000,
          onFile: () => writeFileSync(out, 'already here'),
        }),
      ),
    ]);
    expect(receiver.code).toBe(ExitCode.OutputExists);
    expect(receiver.message).toBe(`Output file exists: ${out}`);
    expect(await readFile(out, 'utf8')).toBe('already here');
    expect(await readdir(dir)).toEqual(['out']);
  });

  it('rejects a file whose SHA-1 trailer is wrong, and writes nothing', async () => {
    const password = 'tampered';
    const badSender = tamperedSender(password);
    const receiver = failure(receive({ relay: endpoint, password, output: join(dir, 'out'), timeoutMs: 10_000 }));
    const [error] = await Promise.all([receiver, badSender]);
    expect(error.code).toBe(ExitCode.Failure);
    expect(error.message).toBe('Corrupted file (unexpected hash)');
    expect(await readdir(dir)).toEqual([]);
  });

  it('stops a waiting client when its AbortSignal fires', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const error = await failure(receive({ relay: endpoint, password: 'x', output: join(dir, 'o'), signal: controller.signal }));
    expect({ code: error.code, message: error.message }).toEqual({ code: ExitCode.Failure, message: 'Aborted' });
  });

  it('exits 4 when the relay is unreachable and 6 when nobody comes before --timeout', async () => {
    const closedPort = await freePort();
    const unreachable = await failure(
      receive({ relay: { host: '127.0.0.1', port: closedPort, securePort: closedPort }, password: 'x', output: join(dir, 'o') }),
    );
    expect(unreachable.code).toBe(ExitCode.RelayUnreachable);
    expect(unreachable.message).toBe(`Connection failed: 127.0.0.1:${closedPort}: ECONNREFUSED`);
    const alone = await failure(receive({ relay: endpoint, password: 'nobody', output: join(dir, 'o'), timeoutMs: 300 }));
    expect(alone.code).toBe(ExitCode.Timeout);
    expect(alone.message).toBe('Timeout: no sender came within 0.3 s');
  });
});

/** A sender built from the client's parts that flips one bit of the PACK trailer. */
async function tamperedSender(password: string): Promise<void> {
  const init = serverInit(password, { count: FAST });
  const machine = new SenderHandshake({ publicBytes: init.public, secret: init.secret });
  const conn = new Connection(await connectTcp('127.0.0.1', endpoint.port, 5000));
  const paired = await runHandshake(conn, machine, { log: silentLogger });
  conn.end();
  const room = new Connection(await connectTcp('127.0.0.1', endpoint.securePort, 5000));
  await joinSecureRoom(room, paired.peerIdentity);
  const { subkey, cipher } = senderToReceiver(paired.keys);
  const writer = new RecordWriter(subkey, cipher);
  const segments: Uint8Array[] = [];
  for await (const segment of encodePack({ name: 'f', size: 3, data: [Uint8Array.of(1, 2, 3)] })) segments.push(segment);
  segments[segments.length - 1][19] ^= 1;
  for (const segment of segments) await room.write(writer.seal(segment));
  while ((await room.read().catch(() => null)) !== null);
  room.destroy();
}
