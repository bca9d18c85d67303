// Joining the secure room (docs/bob-protocol.md §3) against a scripted server: the
// line we write, and the 2-byte status bob's relay answers with, which is
// ASCII text ("00", "01", "02": bob's lib/bob_unix.ml writes and compares
// these strings), with whatever the partner sent already behind it.
import { type AddressInfo, type Socket, createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BobError, ExitCode } from '../../relay/client/errors.js';
import { joinSecureRoom } from '../../relay/client/secure-room.js';
import { Connection, connectTcp } from '../../relay/client/socket.js';

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** A one-shot server: records the first line, writes `reply` (in pieces, to cross read boundaries), then ends if `end`. */
async function scripted(reply: Uint8Array[], end: boolean): Promise<{ port: number; line: Promise<string> }> {
  let gotLine!: (line: string) => void;
  const line = new Promise<string>((res) => (gotLine = res));
  const server = createServer((socket: Socket) => {
    let text = '';
    socket.on('data', async (d: Buffer) => {
      text += d.toString('latin1');
      if (!text.includes('\n')) return;
      gotLine(text);
      for (const piece of reply) {
        socket.write(piece);
        await new Promise((r) => setTimeout(r, 5));
      }
      if (end) socket.end();
    });
    socket.on('error', () => {});
    closers.push(() => socket.destroy());
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  closers.push(() => server.close());
  return { port: (server.address() as AddressInfo).port, line };
}

async function join(reply: Uint8Array[], end = false): Promise<{ line: string; leftover?: Uint8Array; error?: BobError }> {
  const server = await scripted(reply, end);
  const room = new Connection(await connectTcp('127.0.0.1', server.port, 2000));
  closers.push(() => room.destroy());
  const identity = new TextEncoder().encode('127.0.0.1:40001');
  try {
    const leftover = await joinSecureRoom(room, identity);
    return { line: await server.line, leftover };
  } catch (error) {
    return { line: await server.line, error: error as BobError };
  }
}

const ascii = (s: string) => new TextEncoder().encode(s);

describe('secure room status', () => {
  it('writes the partner\'s identity and "\\n", and takes ASCII "00" as paired, keeping the bytes behind it', async () => {
    const result = await join([ascii('0'), Uint8Array.of(0x30, 0x00, 0x05, 0xaa)]);
    expect(result.line).toBe('127.0.0.1:40001\n');
    expect(result.error).toBeUndefined();
    expect([...result.leftover!]).toEqual([0x00, 0x05, 0xaa]);
  });

  it.each([
    ['"01" as a timeout (exit 6)', [ascii('01')], ExitCode.Timeout, /^Timeout/],
    ['"02" as an invalid peer (exit 1)', [ascii('02')], ExitCode.Failure, /^Invalid peer/],
    ['binary 00 00 as an invalid response: bob peers compare text', [Uint8Array.of(0, 0)], ExitCode.Failure, /^Invalid response from relay \(secure room status 00 00\)$/],
  ])('treats %s', async (_, reply, code, message) => {
    const result = await join(reply);
    expect(result.error).toBeInstanceOf(BobError);
    expect(result.error!.code).toBe(code);
    expect(result.error!.message).toMatch(message);
  });

  it('treats EOF before 2 bytes as the relay closing', async () => {
    const result = await join([ascii('0')], true);
    expect(result.error?.code).toBe(ExitCode.Failure);
    expect(result.error?.message).toBe('Connection closed by relay (secure room)');
  });
});
