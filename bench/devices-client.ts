// The kernel-side programs of the device benchmark (bench/devices.ts), run as
// child processes, inside a network namespace when the peer is there
// (`ip netns exec NS node dist/bench/devices-client.js ...`):
//
//   push HOST PORT BYTES   send BYTES into a discard service, half-close, and
//                          wait for its FIN (it comes once every byte was read)
//   pull HOST PORT BYTES   read from a chargen service until BYTES have come,
//                          then close (the unread rest makes it a reset)
//   serve ADDRESS DISCARD_PORT CHARGEN_PORT
//                          a plain node:net discard and chargen, the Linux
//                          reference's server; prints {"listening":true} when
//                          both listen, exits when stdin ends
//
// push and pull print one JSON line, {"bytes":N,"ns":T}: the payload moved
// and the wall time from its first byte to its last (the handshake is not
// timed), or {"error":"..."} with exit status 1. A transfer that makes no
// progress for STALL_MS fails rather than hang.

import net from 'node:net';
import { isMain } from './common.js';

/** A transfer without progress for this long fails. */
export const STALL_MS = 60_000;
/** Bytes per write() of push, and per write() of the reference chargen. */
const BLOCK = Buffer.alloc(64 * 1024, 0x61);
/** pull's read buffer, reused for every read (onread: no allocation per read). */
const READ_BUFFER_BYTES = 64 * 1024;

export interface Transfer {
  bytes: number;
  ns: number;
}

/** Fails `reject` when `lastProgress()` is older than STALL_MS; checked every second. */
function stallWatch(lastProgress: () => number, what: () => string, reject: (err: Error) => void): NodeJS.Timeout {
  return setInterval(() => {
    if (Date.now() - lastProgress() > STALL_MS) reject(new Error(`stalled: no progress for ${STALL_MS / 1000} s (${what()})`));
  }, 1000);
}

export function push(host: string, port: number, total: number): Promise<Transfer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    let written = 0;
    let start = 0n;
    let last = Date.now();
    let done = false;
    const watch = stallWatch(() => last, () => `${written} of ${total} bytes handed to the kernel`, (err) => finish(err));
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      clearInterval(watch);
      sock.destroy();
      if (err) reject(err);
      else resolve({ bytes: written, ns: Number(process.hrtime.bigint() - start) });
    };
    // Write until the socket's buffer is full; 'drain' calls again.
    const pump = (): void => {
      last = Date.now();
      while (written < total) {
        const n = Math.min(BLOCK.length, total - written);
        written += n;
        if (!sock.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))) return;
      }
      sock.end();
    };
    sock.once('connect', () => {
      start = process.hrtime.bigint();
      pump();
    });
    sock.on('drain', pump);
    sock.on('data', () => {}); // discard sends nothing; reading lets 'end' come
    // The peer's FIN: discard has read everything before ours.
    sock.once('end', () => finish(written === total ? null : new Error(`the peer closed after ${written} of ${total} bytes`)));
    sock.once('error', finish);
  });
}

export function pull(host: string, port: number, total: number): Promise<Transfer> {
  return new Promise((resolve, reject) => {
    let received = 0;
    let start = 0n;
    let last = Date.now();
    let done = false;
    const watch = stallWatch(() => last, () => `${received} of ${total} bytes received`, (err) => finish(err));
    const finish = (err: Error | null, end = 0n): void => {
      if (done) return;
      done = true;
      clearInterval(watch);
      sock.destroy();
      if (err) reject(err);
      else resolve({ bytes: received, ns: Number(end - start) });
    };
    const sock = net.connect({
      host,
      port,
      onread: {
        buffer: Buffer.alloc(READ_BUFFER_BYTES),
        callback: (n: number) => {
          const now = process.hrtime.bigint();
          if (received === 0) start = now;
          received += n;
          last = Date.now();
          if (received >= total) finish(null, now);
          return !done;
        },
      },
    });
    sock.once('end', () => finish(new Error(`the peer closed after ${received} of ${total} bytes`)));
    sock.once('error', (err) => finish(err));
  });
}

function serveDiscard(sock: net.Socket): void {
  sock.on('data', () => {});
  sock.once('end', () => sock.end());
  sock.on('error', () => sock.destroy());
}

function serveChargen(sock: net.Socket): void {
  let open = true;
  const pump = (): void => {
    while (open && sock.write(BLOCK));
  };
  sock.on('drain', pump);
  sock.on('data', () => {});
  sock.once('close', () => (open = false));
  // The client closes with our bytes unread: a reset, expected.
  sock.on('error', () => sock.destroy());
  pump();
}

function listen(address: string, port: number, serve: (sock: net.Socket) => void): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer(serve);
    server.once('error', reject);
    server.listen(port, address, () => resolve(server));
  });
}

async function serve(address: string, discardPort: number, chargenPort: number): Promise<void> {
  await listen(address, discardPort, serveDiscard);
  await listen(address, chargenPort, serveChargen);
  process.stdout.write(JSON.stringify({ listening: true }) + '\n');
  // The benchmark holds stdin open while it needs the server; its end (or the
  // benchmark's death) ends the server.
  process.stdin.resume();
  process.stdin.once('end', () => process.exit(0));
  process.stdin.once('close', () => process.exit(0));
}

function count(text: string | undefined, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text ?? '') || n <= 0) throw new Error(`devices-client: ${what} ${text}: expected a positive whole number`);
  return n;
}

async function clientMain(argv: string[]): Promise<void> {
  const [mode, host, port, third, fourth] = argv;
  if (mode === 'serve' && host) return serve(host, count(port, 'discard port'), count(third, 'chargen port'));
  if ((mode === 'push' || mode === 'pull') && host && fourth === undefined) {
    const transfer = await (mode === 'push' ? push : pull)(host, count(port, 'port'), count(third, 'bytes'));
    process.stdout.write(JSON.stringify(transfer) + '\n');
    return;
  }
  throw new Error('usage: devices-client.js push|pull HOST PORT BYTES | serve ADDRESS DISCARD_PORT CHARGEN_PORT');
}

if (isMain(import.meta.url)) {
  clientMain(process.argv.slice(2)).catch((err: Error) => {
    process.stdout.write(JSON.stringify({ error: err.message }) + '\n');
    process.exit(1);
  });
}
