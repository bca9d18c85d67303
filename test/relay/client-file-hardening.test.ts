// A receiver against a hostile PACK stream (docs/bob-protocol.md §6, §7): file
// names with control or bidi characters and names no file system takes are
// refused before any file byte is written; the name and the declared size
// are offered to the user before anything touches the disk; a size limit
// refuses larger declared sizes and bounds what a lying stream inflates to.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BobError, ExitCode, type FileOffer, type RelayEndpoint, bufferSource, receive, send } from '../../relay/client/index.js';
import { type FileAnnouncement, PackDecoder, type PackResult } from '../../relay/pack/decoder.js';
import { MAX_NAME_BYTES, escapeUnsafe } from '../../relay/pack/format.js';
import { startHostRelay } from '../../relay/server/host.js';
import { craftedSender as craftedSenderAt, handmadePack } from '../helpers/bob-peers.js';

const utf8 = (s: string) => new TextEncoder().encode(s);

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Each sink call the decoder makes, in order. */
async function decodeAll(pieces: Uint8Array[], maxFileBytes?: number) {
  const calls: Array<{ name?: string; file?: FileAnnouncement; data?: number }> = [];
  const decoder = new PackDecoder({
    maxFileBytes,
    onName: (name) => void calls.push({ name }),
    onFile: (file) => void calls.push({ file }),
    onData: (chunk) => void calls.push({ data: chunk.length }),
  });
  let result: PackResult = { status: 'incomplete' };
  for (const piece of pieces) {
    result = await decoder.push(piece);
    if (result.status !== 'incomplete') break;
  }
  const written = calls.reduce((n, c) => n + (c.data ?? 0), 0);
  return { result, calls, written };
}

describe('PACK decoder: names and sizes', () => {
  const content = utf8('data');
  const zlibContent = new Uint8Array(deflateSync(content));

  it.each([
    ['ESC (a terminal escape)', 'evil\x1b[2J.txt', 'U+001B'],
    ['a newline (a forged log line)', 'a\nbob: [INFO] all good', 'U+000A'],
    ['a carriage return', 'a\rb', 'U+000D'],
    ['DEL', 'a\x7fb', 'U+007F'],
    ['C1 NEL', 'a\u0085b', 'U+0085'],
    ['C1 CSI', 'a\u009b2Jb', 'U+009B'],
    ['bidi override RLO', 'invoice\u202Etxt.exe', 'U+202E'],
    ['bidi embedding LRE', 'a\u202Ab', 'U+202A'],
    ['bidi isolate FSI', 'a\u2068b', 'U+2068'],
    ['bidi isolate PDI', 'a\u2069b', 'U+2069'],
  ])('refuses a name with %s, quoting it escaped, before any file event', async (_, name, character) => {
    const { result, calls } = await decodeAll(handmadePack(utf8(name), content.length, zlibContent));
    expect(result.status).toBe('invalid');
    const reason = result.status === 'invalid' ? result.reason : '';
    expect(reason).toBe(`file name "${escapeUnsafe(name)}" contains the control character ${character}`);
    expect(reason).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(calls).toEqual([]);
  });

  it('keeps other non-ASCII names', async () => {
    for (const name of ['résumé.pdf', '日本語.txt', 'emoji-🎉.png', 'a\u200Db']) {
      const { result } = await decodeAll(handmadePack(utf8(name), content.length, zlibContent));
      expect(result).toEqual({ status: 'complete', name, size: content.length });
    }
  });

  it(`refuses a name longer than ${MAX_NAME_BYTES} bytes at its object header, and takes one of exactly ${MAX_NAME_BYTES}`, async () => {
    expect(MAX_NAME_BYTES).toBe(255);
    const longest = 'é'.repeat(127) + 'a'; // 255 bytes of UTF-8
    const tooLong = 'é'.repeat(128); // 256
    expect((await decodeAll(handmadePack(utf8(longest), content.length, zlibContent))).result.status).toBe('complete');
    // Only the header: the decoder refuses before it has seen the name's bytes.
    const pieces = handmadePack(utf8(tooLong), content.length, zlibContent);
    const { result, calls } = await decodeAll([concat(pieces.slice(0, 2))]);
    expect(result).toEqual({ status: 'invalid', reason: 'file name of 256 bytes exceeds 255' });
    expect(calls).toEqual([]);
  });

  it('announces the name, then the declared size, before the first byte', async () => {
    const { result, calls } = await decodeAll(handmadePack(utf8('a.txt'), content.length, zlibContent));
    expect(result.status).toBe('complete');
    expect(calls.slice(0, 3)).toEqual([{ name: 'a.txt' }, { file: { name: 'a.txt', size: 4 } }, { data: 4 }]);
  });

  it('refuses a declared size above maxFileBytes before inflating anything, marked as too large', async () => {
    const { result, calls } = await decodeAll(handmadePack(utf8('big.bin'), 4097, new Uint8Array(deflateSync(Buffer.alloc(4097)))), 4096);
    expect(result).toEqual({ status: 'invalid', reason: '"big.bin" (4097 bytes) exceeds the limit of 4096 bytes', tooLarge: true });
    expect(calls).toEqual([{ name: 'big.bin' }]);
  });

  it('stops a stream that lies about its size: 64 MiB of zeros declared as 4 KiB inflate to no more than 4 KiB', async () => {
    const bomb = new Uint8Array(deflateSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 })); // ≈ 64 KiB
    const { result, written } = await decodeAll(handmadePack(utf8('bomb.bin'), 4096, bomb), 4096);
    expect(result.status === 'invalid' && result.reason).toBe('file data: inflates to more than the declared 4096 bytes');
    expect(written).toBeLessThanOrEqual(4096);
  });
});

describe('a receiver against crafted streams on a real relay', () => {
  let relay: Awaited<ReturnType<typeof startHostRelay>>;
  let endpoint: RelayEndpoint;
  let dir: string;

  beforeEach(async () => {
    relay = await startHostRelay({ address: '127.0.0.1', port: 0, securePort: 0, log: () => {} });
    endpoint = { host: '127.0.0.1', port: relay.ports.handshake, securePort: relay.ports.secure };
    dir = await mkdtemp(join(tmpdir(), 'bob-file-hardening-'));
  });

  afterEach(async () => {
    await relay?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function failure(promise: Promise<unknown>): Promise<BobError> {
    const error = await promise.then(
      () => new Error('expected a BobError'),
      (e: unknown) => e,
    );
    if (error instanceof BobError) return error;
    throw error;
  }

  const craftedSender = (password: string, pack: Uint8Array[]) => craftedSenderAt(endpoint, password, pack);

  /** Receives with every hook recording; the outcome is the BobError. */
  async function receiveFailing(password: string, options: { maxFileBytes?: number; refuse?: boolean } = {}) {
    const offers: FileOffer[] = [];
    let progress = 0;
    const error = await failure(
      receive({
        relay: endpoint,
        password,
        directory: dir,
        timeoutMs: 10_000,
        maxFileBytes: options.maxFileBytes,
        acceptFile: async (offer) => {
          offers.push(offer);
          return !options.refuse;
        },
        onProgress: () => progress++,
      }),
    );
    return { error, offers, progress };
  }

  it('refuses a name with a terminal escape: the message is escaped, nothing is asked or written', async () => {
    const name = 'evil\x1b]0;pwned\x07.txt';
    const pack = handmadePack(utf8(name), 100_000, new Uint8Array(deflateSync(randomBytes(100_000))));
    const [{ error, offers, progress }] = await Promise.all([receiveFailing('esc'), craftedSender('esc', pack)]);
    expect(error.code).toBe(ExitCode.Failure);
    expect(error.message).toBe('Invalid file stream: file name "evil\\x1b]0;pwned\\x07.txt" contains the control character U+001B');
    expect(offers).toEqual([]);
    expect(progress).toBe(0);
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses a 256-byte name before any of the file is written', async () => {
    const pack = handmadePack(utf8('n'.repeat(256)), 1_000_000, new Uint8Array(deflateSync(randomBytes(1_000_000), { level: 0 })));
    const [{ error, offers, progress }] = await Promise.all([receiveFailing('long'), craftedSender('long', pack)]);
    expect({ code: error.code, message: error.message }).toEqual({ code: ExitCode.Failure, message: 'Invalid file stream: file name of 256 bytes exceeds 255' });
    expect(offers).toEqual([]);
    expect(progress).toBe(0);
    expect(await readdir(dir)).toEqual([]);
  });

  it('offers the name and declared size before writing anything; a refusal is exit 5 and leaves nothing', async () => {
    const data = new Uint8Array(randomBytes(3000));
    const seenAtOffer: string[][] = [];
    const offers: FileOffer[] = [];
    const sender = send({ relay: endpoint, password: 'offer', file: bufferSource('report.txt', data), pbkdf2Count: 16, timeoutMs: 10_000 }).catch(() => {});
    const error = await failure(
      receive({
        relay: endpoint,
        password: 'offer',
        directory: dir,
        timeoutMs: 10_000,
        acceptFile: async (offer) => {
          offers.push(offer);
          seenAtOffer.push(await readdir(dir));
          return false;
        },
      }),
    );
    await sender;
    expect(offers).toHaveLength(1);
    expect(offers[0]).toMatchObject({ name: 'report.txt', size: 3000 });
    expect(offers[0].peer).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(seenAtOffer).toEqual([[]]);
    expect({ code: error.code, message: error.message }).toEqual({ code: ExitCode.Refused, message: 'Refused: "report.txt" (3000 bytes) was not accepted' });
    expect(await readdir(dir)).toEqual([]);
  });

  it('an accepted offer is saved as usual', async () => {
    const data = new Uint8Array(randomBytes(3000));
    const [, received] = await Promise.all([
      send({ relay: endpoint, password: 'yes', file: bufferSource('report.txt', data), pbkdf2Count: 16, timeoutMs: 10_000 }),
      receive({ relay: endpoint, password: 'yes', directory: dir, timeoutMs: 10_000, acceptFile: async () => true }),
    ]);
    expect(received.path).toBe(join(dir, 'report.txt'));
    expect(new Uint8Array(await readFile(received.path))).toEqual(data);
  });

  it('refuses a file above maxFileBytes (exit 5) without asking or writing, and takes one at the limit', async () => {
    const data = new Uint8Array(randomBytes(3000));
    const sendIt = (password: string) =>
      send({ relay: endpoint, password, file: bufferSource('f.bin', data), pbkdf2Count: 16, timeoutMs: 10_000 }).catch(() => {});
    const [{ error, offers, progress }] = await Promise.all([receiveFailing('max', { maxFileBytes: 2999 }), sendIt('max')]);
    expect({ code: error.code, message: error.message }).toEqual({
      code: ExitCode.Refused,
      message: 'Refused: "f.bin" (3000 bytes) exceeds the limit of 2999 bytes',
    });
    expect(offers).toEqual([]);
    expect(progress).toBe(0);
    expect(await readdir(dir)).toEqual([]);
    const [, atLimit] = await Promise.all([sendIt('limit'), receive({ relay: endpoint, password: 'limit', directory: dir, maxFileBytes: 3000, timeoutMs: 10_000 })]);
    expect(atLimit.size).toBe(3000);
  });

  it('a stream that lies about its size writes no more than the limit, and leaves nothing', async () => {
    const bomb = new Uint8Array(deflateSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 }));
    const written: number[] = [];
    const [error] = await Promise.all([
      failure(receive({ relay: endpoint, password: 'bomb', directory: dir, maxFileBytes: 4096, timeoutMs: 10_000, onProgress: (n) => written.push(n) })),
      craftedSender('bomb', handmadePack(utf8('bomb.bin'), 4096, bomb)),
    ]);
    expect({ code: error.code, message: error.message }).toEqual({
      code: ExitCode.Failure,
      message: 'Invalid file stream: file data: inflates to more than the declared 4096 bytes',
    });
    expect(Math.max(0, ...written)).toBeLessThanOrEqual(4096);
    expect(await readdir(dir)).toEqual([]);
  });
});
