// User-mode networking: host sockets on 127.0.0.1 relayed by the gateway stack
// to a guest stack. The "guest" is a second Stack in this process, joined to
// the gateway by a VSwitch; both run on a RealClock because the host sockets
// are real. Traffic stays on 127.0.0.1 and inside the switch.

import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine } from '../../host/hotpath.js';
import { parseHostForwards, parseUserNet, startUserNet, UsageError, type HostForward, type UserNet } from '../../host/net/user.js';
import type { EngineName } from '../../stack/hotpath/engine.js';
import { CHUNK_SIZE } from '../../stack/hotpath/layout.js';
import { Stack } from '../../stack/stack.js';
import { stackLevels, type StackStats } from '../../stack/stats.js';
import type { Connection } from '../../stack/tcp/connection.js';
import { RealClock } from '../../stack/time/real-clock.js';
import { VSwitch } from '../../stack/vswitch/vswitch.js';
import { freePort } from '../helpers/uk.js';

const ENGINES: EngineName[] = ['wasm', 'ts'];
const GUEST = '10.0.2.15';
const GATEWAY = '10.0.2.2';
/** TIME_WAIT lasts 2 * msl = 200 ms. */
const TCP = { msl: 100 };
/** ARP entries outlive every test and no announcement timer runs, so levels compare exactly. */
const LIMITS = { arpTtlMs: 600_000, arpAnnouncements: 0 };
const MEMORY_BYTES = 8 * 1024 * 1024;
/** Default send and receive buffers (64 KiB, 65535 advertised) in chunks, plus one for alignment. */
const WINDOW_CHUNKS = Math.ceil(65536 / CHUNK_SIZE) + 1;

const ECHO = 7;
const DISCARD_DIGEST = 9; // reads to the end, then answers "<count> <sha256>" and closes
const CHARGEN = 19;

// ---- helpers ----------------------------------------------------------------------

/** Poll until cond() holds; bounded in time. */
async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wait until a counter stops moving for `quietMs` (a stalled transfer); bounded. */
async function waitStalled(read: () => number, quietMs: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let last = read();
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > deadline) throw new Error(`transfer did not stall within ${ms} ms`);
    await sleep(20);
    const now = read();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
}

/** A port nothing listens on now (bound on port 0, then released). */
/**
 * Send one datagram from a socket connected to 127.0.0.1:`port`; the answer:
 * the datagram that comes back, or the error code the socket reports (a
 * closed port: ICMP port unreachable, ECONNREFUSED). Bounded in time.
 */
async function udpAnswer(port: number, data: Uint8Array = Uint8Array.of(1, 2, 3)): Promise<Uint8Array | string> {
  const sock = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.connect(port, '127.0.0.1', () => resolve());
    });
    return await new Promise<Uint8Array | string>((resolve) => {
      const timer = setTimeout(() => resolve('no answer within 5 s'), 5_000);
      const done = (answer: Uint8Array | string) => {
        clearTimeout(timer);
        resolve(answer);
      };
      sock.once('message', (msg: Buffer) => done(new Uint8Array(msg)));
      sock.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
      sock.send(data);
    });
  } finally {
    try {
      sock.close();
    } catch {
      // already closed by its error
    }
  }
}

async function hostConnect(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  await once(socket, 'connect');
  return socket;
}

/** Write all of `data` with backpressure, then half-close. */
async function writeAll(socket: Socket, data: Uint8Array, slice = 65536): Promise<void> {
  for (let off = 0; off < data.length; off += slice) {
    if (!socket.write(data.subarray(off, off + slice))) await once(socket, 'drain');
  }
  socket.end();
}

/** Everything the socket receives until its FIN: count and sha256. */
function readAll(socket: Socket): Promise<{ count: number; sha: string; text: string }> {
  const hash = createHash('sha256');
  let count = 0;
  let head = '';
  socket.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    count += chunk.length;
    if (head.length < 200) head += chunk.toString('latin1');
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('end', () => resolve({ count, sha: hash.digest('hex'), text: head }));
  });
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

// ---- guest applications (callback API) -------------------------------------------

/** Echo with backpressure: a short write keeps the rest and pauses reading. */
function echo(conn: Connection): void {
  let pending: Uint8Array | null = null;
  let ended = false;
  conn.onData = (view) => {
    const n = conn.write(view);
    if (n < view.length) {
      pending = view.slice(n); // the view dies with the call
      conn.pause();
    }
  };
  conn.onWritable = () => {
    if (!pending) return;
    const n = conn.write(pending);
    pending = n < pending.length ? pending.subarray(n) : null;
    if (pending) return;
    if (ended) conn.end();
    else conn.resume();
  };
  conn.onEnd = () => {
    ended = true;
    if (!pending) conn.end();
  };
}

/** Byte k of the chargen stream is k % 251 (a period that never lines up with chunks). */
const PERIOD = 251;
const PATTERN = Uint8Array.from({ length: 65536 + PERIOD }, (_, i) => i % PERIOD);

function chargenSlice(offset: number, length: number): Uint8Array {
  const at = offset % PERIOD;
  return PATTERN.subarray(at, at + length);
}

/** Sends `total` pattern bytes as fast as the send buffer allows, then FIN. */
function chargen(conn: Connection, total: number): void {
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      const want = Math.min(65536, total - sent);
      const n = conn.write(chargenSlice(sent, want));
      sent += n;
      if (n < want) return; // onWritable calls again
    }
    conn.end();
  };
  conn.onWritable = pump;
  conn.onData = () => {};
  pump();
}

/** Reads to the end (optionally starting paused), then answers "<count> <sha256>" and closes. */
function digest(conn: Connection, paused: boolean, seen: Connection[]): void {
  const hash = createHash('sha256');
  let count = 0;
  seen.push(conn);
  if (paused) conn.pause();
  conn.onData = (view) => {
    hash.update(view);
    count += view.length;
  };
  conn.onEnd = () => {
    conn.write(new TextEncoder().encode(`${count} ${hash.digest('hex')}`));
    conn.end();
  };
}

// ---- the network under test ----------------------------------------------------------

interface Rig {
  guest: Stack;
  net: UserNet;
  hostfwd: HostForward[];
  /** Host port of the forward to this guest port. */
  hostPort(guestPort: number, proto?: 'tcp' | 'udp'): number;
  /** Guest connections accepted by the digest server. */
  digestConns: Connection[];
  gatewayStats(): StackStats;
  levels(): unknown;
}

const rigs: Rig[] = [];
const clients: (Socket | Server | UdpSocket)[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) {
    if ('destroy' in c) c.destroy();
    else c.close();
  }
  for (const rig of rigs.splice(0)) {
    await rig.net.close();
    rig.guest.shutdown();
  }
});

interface RigOptions {
  chargenBytes?: number;
  digestPaused?: boolean;
  udpIdleMs?: number;
  guestfwd?: number[];
  restrict?: boolean;
}

async function startRig(
  engine: EngineName,
  rules: { proto: 'tcp' | 'udp'; guestPort: number }[],
  opts: RigOptions = {},
): Promise<Rig> {
  const hostfwd: HostForward[] = [];
  for (const r of rules) {
    hostfwd.push({ proto: r.proto, hostAddress: '127.0.0.1', hostPort: await freePort(r.proto), guestPort: r.guestPort });
  }
  const clock = new RealClock();
  const sw = new VSwitch(clock);
  const guest = new Stack({
    device: sw.attach(),
    hotpath: await createEngine(engine, MEMORY_BYTES),
    clock,
    ipv4: { address: GUEST, prefix: 24, gateway: GATEWAY },
    tcp: TCP,
    limits: LIMITS,
  });
  const digestConns: Connection[] = [];
  guest.tcp.listen(ECHO).onConnection = echo;
  guest.tcp.listen(CHARGEN).onConnection = (conn) => chargen(conn, opts.chargenBytes ?? 1 << 20);
  guest.tcp.listen(DISCARD_DIGEST).onConnection = (conn) => digest(conn, opts.digestPaused ?? false, digestConns);
  const udpEcho = guest.udp.bind(ECHO);
  udpEcho.onMessage((data, address, port) => udpEcho.send(data, address, port));

  const net = await startUserNet({
    link: sw.attach(),
    hotpath: await createEngine(engine, MEMORY_BYTES),
    clock,
    guestAddress: GUEST,
    gatewayAddress: GATEWAY,
    prefix: 24,
    hostfwd,
    tcp: TCP,
    limits: LIMITS,
    udpIdleMs: opts.udpIdleMs,
    guestfwd: opts.guestfwd,
    restrict: opts.restrict,
  });
  const rig: Rig = {
    guest,
    net,
    hostfwd,
    digestConns,
    hostPort: (guestPort, proto = 'tcp') => hostfwd.find((f) => f.guestPort === guestPort && f.proto === proto)!.hostPort,
    gatewayStats: () => net.stats().gateway,
    levels: () => structuredClone([stackLevels(guest.stats()), stackLevels(net.stats().gateway)]),
  };
  rigs.push(rig);
  await net.ready;
  return rig;
}

/** One echo round trip through the forward (warms ARP up on both stacks). */
async function echoOnce(rig: Rig, data: Uint8Array): Promise<void> {
  const socket = await hostConnect(rig.hostPort(ECHO));
  clients.push(socket);
  const reading = readAll(socket);
  await writeAll(socket, data);
  const got = await reading;
  expect(got.count).toBe(data.length);
  expect(got.sha).toBe(sha256(data));
  if (!socket.closed) await once(socket, 'close');
}

/** Levels once every connection has ended and TIME_WAIT has run out. */
async function expectBaseline(rig: Rig, baseline: unknown): Promise<void> {
  const same = (): boolean => JSON.stringify(rig.levels()) === JSON.stringify(baseline);
  await waitFor(same, 5_000, 'both stacks back at their baseline').catch(() => undefined);
  expect(rig.levels()).toEqual(baseline);
}

/** Warm up (ARP on both sides), let TIME_WAIT pass, and take the baseline. */
async function warmBaseline(rig: Rig): Promise<unknown> {
  await echoOnce(rig, Uint8Array.of(1, 2, 3));
  await waitFor(() => rig.guest.stats().tcp.timeWait + rig.gatewayStats().tcp.timeWait === 0, 2_000, 'TIME_WAIT');
  return rig.levels();
}

// ---- parsing ----------------------------------------------------------------------------

describe('parseHostForwards', () => {
  it('reads QEMU hostfwd rules, with defaults for the optional parts', () => {
    expect(parseHostForwards('')).toEqual([]);
    expect(parseHostForwards('hostfwd=tcp:127.0.0.1:9000-:9000,hostfwd=tcp:127.0.0.1:9001-:9001')).toEqual([
      { proto: 'tcp', hostAddress: '127.0.0.1', hostPort: 9000, guestPort: 9000 },
      { proto: 'tcp', hostAddress: '127.0.0.1', hostPort: 9001, guestPort: 9001 },
    ]);
    expect(parseHostForwards('hostfwd=udp::5353-:53')).toEqual([
      { proto: 'udp', hostAddress: '127.0.0.1', hostPort: 5353, guestPort: 53 },
    ]);
    expect(parseHostForwards('hostfwd=:127.0.0.2:8080-10.0.2.15:80')).toEqual([
      { proto: 'tcp', hostAddress: '127.0.0.2', hostPort: 8080, guestPort: 80, guestAddress: '10.0.2.15' },
    ]);
    // The same host port for TCP and UDP is two different sockets.
    expect(parseHostForwards('hostfwd=tcp::7-:7,hostfwd=udp::7-:7')).toHaveLength(2);
  });

  const malformed: [string, RegExp][] = [
    ['hostfwd=sctp:127.0.0.1:9000-:9000', /unknown protocol 'sctp'/],
    ['hostfwd=tcp:0.0.0.0:9000-:9000', /host address 0\.0\.0\.0 .* is not a loopback address \(127\.0\.0\.0\/8\): .*listens on loopback only/],
    ['hostfwd=tcp:192.168.1.2:9000-:9000', /192\.168\.1\.2 .* not a loopback address/],
    ['hostfwd=tcp:127.1:9000-:9000', /invalid host address '127\.1'/],
    ['hostfwd=tcp:127.0.0.1:9000-10.0.2:9000', /invalid guest address '10\.0\.2'/],
    ['hostfwd=tcp:127.0.0.1:0-:9000', /invalid host port '0' .*\(1-65535\)/],
    ['hostfwd=tcp:127.0.0.1:65536-:9000', /invalid host port '65536'/],
    ['hostfwd=tcp:127.0.0.1:abc-:9000', /invalid host port 'abc'/],
    ['hostfwd=tcp:127.0.0.1:9000-:', /invalid guest port ''/],
    ['hostfwd=tcp:127.0.0.1:9000-:-1', /malformed|invalid guest port/],
    ['hostfwd=tcp:127.0.0.1:9000:9000', /no '-' between host and guest/],
    ['hostfwd=tcp:127.0.0.1-:9000', /'hostfwd=tcp:127\.0\.0\.1-:9000' is malformed/],
    ['hostfwd=tcp:127.0.0.1:9000-:9000,hostfwd=tcp:127.0.0.1:9000-:9001', /duplicate forward of tcp:127\.0\.0\.1:9000/],
    ['hostfwd=tcp::9000-:9000,hostfwd=tcp:127.0.0.1:9000-:9001', /duplicate forward/],
    ['guestfwd=tcp:10.0.2.100:80-cmd:x', /unknown option 'guestfwd=/],
    ['hostfwd=tcp::9000-:9000,', /empty item/],
  ];
  it.each(malformed)('rejects %s', (spec, message) => {
    let caught: unknown;
    try {
      parseHostForwards(spec);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).message).not.toContain('\n');
  });

  it('parseUserNet: nothing on the host is reachable unless granted, a port at a time or all (restrict=off)', () => {
    expect(parseUserNet('')).toEqual({ hostfwd: [], guestfwd: [], restrict: true });
    expect(parseUserNet('hostfwd=tcp::9000-:9000,guestfwd=tcp:5432,guestfwd=:8080')).toEqual({
      hostfwd: [{ proto: 'tcp', hostAddress: '127.0.0.1', hostPort: 9000, guestPort: 9000 }],
      guestfwd: [5432, 8080],
      restrict: true,
    });
    expect(parseUserNet('restrict=off').restrict).toBe(false);
    expect(parseUserNet('restrict=no,restrict=on').restrict).toBe(true);
    const rejects = (spec: string, message: RegExp): void => {
      expect(() => parseUserNet(spec)).toThrow(UsageError);
      expect(() => parseUserNet(spec)).toThrow(message);
    };
    // QEMU's guestfwd runs a command or a chardev: not here.
    rejects('guestfwd=tcp:10.0.2.100:80-cmd:x', /'guestfwd=tcp:10\.0\.2\.100:80-cmd:x' is malformed \(expected guestfwd=tcp:PORT/);
    rejects('guestfwd=udp:53', /is malformed/);
    rejects('guestfwd=tcp:0', /a port 1-65535/);
    rejects('guestfwd=tcp:80,guestfwd=tcp:80', /duplicate guestfwd=tcp:80/);
    rejects('restrict=maybe', /restrict=on or restrict=off/);
    rejects('hostfwd=tcp::9000-:9000,bogus=1', /unknown option 'bogus=1' \(expected hostfwd=.*, guestfwd=tcp:PORT or restrict=on\|off\)/);
  });

  it('startUserNet refuses a rule naming another guest address', async () => {
    const clock = new RealClock();
    const sw = new VSwitch(clock);
    const start = startUserNet({
      link: sw.attach(),
      hotpath: await createEngine('ts', MEMORY_BYTES),
      clock,
      guestAddress: GUEST,
      gatewayAddress: GATEWAY,
      prefix: 24,
      hostfwd: parseHostForwards('hostfwd=tcp::9000-10.0.2.16:9000'),
    });
    await expect(start).rejects.toThrow(UsageError);
    await expect(start).rejects.toThrow(/10\.0\.2\.16 is not the guest's address 10\.0\.2\.15/);
  });
});

// ---- relaying -------------------------------------------------------------------------------

describe.each(ENGINES)('user networking, %s engines', (engine) => {
  it('relays 50 MB through a TCP forward to a guest echo server intact', { timeout: 120_000 }, async () => {
    const rig = await startRig(engine, [{ proto: 'tcp', guestPort: ECHO }]);
    const data = randomBytes(50 * 1024 * 1024);
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    await echoOnce(rig, data);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    // A figure to read, not a bound: the switch on a RealClock delivers on host timers.
    console.log(
      `[user-net ${engine}] 50 MB echoed in ${(ms / 1000).toFixed(2)} s, ` +
        `${((cpu.user + cpu.system) / 1e6).toFixed(2)} s CPU for both stacks and the relay`,
    );
    // The host socket closes as the gateway's last ACK is still on its way.
    await waitFor(() => rig.net.stats().forwards[0]!.active === 0, 5_000, 'the pair to end');
    const fwd = rig.net.stats().forwards[0]!;
    expect(fwd).toMatchObject({ active: 0, total: 1, errors: 0, bytesToGuest: data.length, bytesToHost: data.length });
  });

  it('opens, echoes and closes 1,000 connections and returns to the baseline', { timeout: 120_000 }, async () => {
    const rig = await startRig(engine, [{ proto: 'tcp', guestPort: ECHO }]);
    const baseline = await warmBaseline(rig);
    const port = rig.hostPort(ECHO);
    const one = async (i: number): Promise<void> => {
      const data = randomBytes(100 + (i % 7) * 300);
      const socket = await hostConnect(port);
      const reading = readAll(socket);
      await writeAll(socket, data);
      const got = await reading;
      expect(got.sha).toBe(sha256(data));
      if (!socket.closed) await once(socket, 'close');
    };
    const PARALLEL = 16;
    let next = 0;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < 1000) await one(next++);
      }),
    );
    await waitFor(() => rig.net.stats().forwards[0]!.active === 0, 5_000, 'the pairs to end');
    const fwd = rig.net.stats().forwards[0]!;
    expect(fwd).toMatchObject({ active: 0, total: 1001, errors: 0 });
    await expectBaseline(rig, baseline);
  });

  it('resets the host client when the guest port refuses', async () => {
    const rig = await startRig(engine, [{ proto: 'tcp', guestPort: 5555 }]);
    const socket = await hostConnect(rig.hostPort(5555));
    clients.push(socket);
    const outcome = await new Promise<string>((resolve) => {
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      socket.once('end', () => resolve('end'));
    });
    expect(outcome).toBe('ECONNRESET');
    await waitFor(() => rig.net.stats().forwards[0]!.active === 0, 5_000, 'the attempt to end');
    expect(rig.net.stats().forwards[0]).toMatchObject({ total: 1, errors: 1 });
  });

  it('bounds memory while the host client does not read, then delivers everything', { timeout: 60_000 }, async () => {
    const total = 16 * 1024 * 1024;
    const rig = await startRig(engine, [{ proto: 'tcp', guestPort: CHARGEN }], { chargenBytes: total });
    const socket = await hostConnect(rig.hostPort(CHARGEN));
    clients.push(socket);
    socket.pause(); // not reading: the host kernel's buffers fill, then ours must stop
    const fwd = (): { bytesToHost: number; buffered?: number } => rig.net.stats().forwards[0]!;
    await waitStalled(() => fwd().bytesToHost, 300, 20_000);
    expect(fwd().bytesToHost).toBeLessThan(total);
    const gw = rig.gatewayStats();
    const guest = rig.guest.stats();
    // The gateway stopped reading: its receive buffer holds at most a window,
    // and the guest's chargen is held back by its send buffer.
    expect(gw.tcp.chunks.recv).toBeLessThanOrEqual(WINDOW_CHUNKS);
    expect(gw.tcp.chunks.send).toBe(0);
    expect(guest.tcp.chunks.send).toBeLessThanOrEqual(WINDOW_CHUNKS);
    expect(gw.arena.chunksInUse - gw.arena.tableChunks).toBeLessThanOrEqual(WINDOW_CHUNKS + 4);
    // In JS: the socket's write queue stays near its high-water mark (plus one arena run).
    expect(fwd().buffered).toBeLessThanOrEqual(socket.writableHighWaterMark + CHUNK_SIZE);

    let offset = 0;
    let mismatches = 0;
    socket.on('data', (chunk: Buffer) => {
      if (!chunk.equals(chargenSlice(offset, chunk.length))) mismatches++;
      offset += chunk.length;
    });
    socket.resume();
    await once(socket, 'end');
    expect(offset).toBe(total);
    expect(mismatches).toBe(0);
  });

  it('bounds memory while the guest does not read, then delivers everything', { timeout: 60_000 }, async () => {
    const rig = await startRig(engine, [{ proto: 'tcp', guestPort: DISCARD_DIGEST }], { digestPaused: true });
    const data = randomBytes(8 * 1024 * 1024);
    const socket = await hostConnect(rig.hostPort(DISCARD_DIGEST));
    clients.push(socket);
    const reading = readAll(socket);
    const writing = writeAll(socket, data);
    const fwd = (): { bytesToGuest: number; buffered?: number } => rig.net.stats().forwards[0]!;
    await waitStalled(() => fwd().bytesToGuest, 300, 20_000);
    expect(fwd().bytesToGuest).toBeLessThan(data.length);
    expect(rig.guest.stats().tcp.chunks.recv).toBeLessThanOrEqual(WINDOW_CHUNKS);
    expect(rig.gatewayStats().tcp.chunks.send).toBeLessThanOrEqual(WINDOW_CHUNKS);
    // The host socket is paused: JS holds at most the one chunk the stack did not take.
    expect(fwd().buffered).toBeLessThanOrEqual(65536);

    rig.digestConns[0]!.resume();
    await writing;
    const got = await reading;
    expect(got.text).toBe(`${data.length} ${sha256(data)}`);
  });

  it('carries a half-close both ways: the guest answers after the host FIN', async () => {
    const rig = await startRig(engine, [{ proto: 'tcp', guestPort: DISCARD_DIGEST }, { proto: 'tcp', guestPort: ECHO }]);
    const baseline = await warmBaseline(rig);
    const data = randomBytes(300_000);
    const socket = await hostConnect(rig.hostPort(DISCARD_DIGEST));
    clients.push(socket);
    const reading = readAll(socket);
    await writeAll(socket, data); // ends our write side; reading continues
    const got = await reading;
    expect(got.text).toBe(`${data.length} ${sha256(data)}`);
    if (!socket.closed) await once(socket, 'close');
    await waitFor(() => rig.net.stats().forwards[0]!.active === 0, 5_000, 'the pair to end');
    expect(rig.net.stats().forwards[0]).toMatchObject({ active: 0, errors: 0 });
    await expectBaseline(rig, baseline);
  });

  it('a host client reset mid-transfer resets the guest side and releases everything', async () => {
    const rig = await startRig(engine, [{ proto: 'tcp', guestPort: DISCARD_DIGEST }, { proto: 'tcp', guestPort: ECHO }]);
    const baseline = await warmBaseline(rig);
    // Less than the guest's window: the gateway keeps reading the host socket,
    // so it sees the RST as ECONNRESET and resets the guest side.
    const socket = await hostConnect(rig.hostPort(DISCARD_DIGEST));
    clients.push(socket);
    socket.on('error', () => {});
    socket.write(randomBytes(32 * 1024));
    await waitFor(() => rig.digestConns.length === 1 && rig.guest.stats().tcp.counters.bytesIn >= 32 * 1024, 10_000, 'guest receiving');
    socket.resetAndDestroy();
    expect((await rig.digestConns[0]!.closed).reason).toBe('reset');
    await waitFor(() => rig.net.stats().forwards[0]!.active === 0, 5_000, 'the pair to end');
    expect(rig.net.stats().forwards[0]!.errors).toBe(1);
    await expectBaseline(rig, baseline);
  });

  it('a host client reset while the gateway is held back still ends the guest side', async () => {
    const rig = await startRig(engine, [{ proto: 'tcp', guestPort: DISCARD_DIGEST }, { proto: 'tcp', guestPort: ECHO }], {
      digestPaused: true,
    });
    const baseline = await warmBaseline(rig);
    const socket = await hostConnect(rig.hostPort(DISCARD_DIGEST));
    clients.push(socket);
    socket.on('error', () => {});
    socket.write(randomBytes(1024 * 1024));
    await waitStalled(() => rig.net.stats().forwards[0]!.bytesToGuest, 200, 10_000);
    socket.resetAndDestroy();
    await sleep(50);
    rig.digestConns[0]!.resume();
    // Linux reports a RST on a socket whose unread bytes it then discards as
    // an EOF when reading resumes; the guest sees a reset or an end, and
    // either way the pair is released.
    expect(['reset', 'closed']).toContain((await rig.digestConns[0]!.closed).reason);
    await waitFor(() => rig.net.stats().forwards[0]!.active === 0, 5_000, 'the pair to end');
    await expectBaseline(rig, baseline);
  });

  /** A host echo server on 127.0.0.1; its port and how many connections it took. */
  async function hostEcho(): Promise<{ port: number; accepted: () => number }> {
    let accepted = 0;
    const server = createServer({ allowHalfOpen: true }, (s) => {
      accepted++;
      s.on('error', () => {}); // a guest that resets its end (abort()) is no failure here
      s.pipe(s);
    });
    clients.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { port: (server.address() as { port: number }).port, accepted: () => accepted };
  }

  it('carries guest connections to the gateway address on a granted port (guestfwd) to the host loopback', async () => {
    const { port } = await hostEcho();
    const rig = await startRig(engine, [], { guestfwd: [port] });

    const conn = await rig.guest.tcp.connect(GATEWAY, port, { timeout: 5_000 });
    const data = randomBytes(256 * 1024);
    const hash = createHash('sha256');
    let count = 0;
    conn.onData = (view) => {
      hash.update(view);
      count += view.length;
    };
    const ended = new Promise<void>((resolve) => {
      conn.onEnd = resolve;
    });
    await conn.writable.getWriter().write(data).then(() => conn.end());
    await ended;
    expect(count).toBe(data.length);
    expect(hash.digest('hex')).toBe(sha256(data));
    expect((await conn.closed).reason).toBe('closed');
    await waitFor(() => rig.net.stats().outbound.active === 0, 5_000, 'the outbound pair to end');
    expect(rig.net.stats().outbound).toMatchObject({ total: 1, errors: 0, refused: 0, bytesToHost: data.length });
  });

  it('by default the guest reaches no host port: the gateway resets the connection (counted) and tries no host connect', async () => {
    const host = await hostEcho();
    const rig = await startRig(engine, []);
    const before = rig.gatewayStats().tcp.counters.rstSentClosedPort;
    const outcome = await rig.guest.tcp.connect(GATEWAY, host.port, { timeout: 5_000 }).then(
      () => 'connected',
      (err: { code?: string }) => err.code,
    );
    expect(outcome).toBe('ECONNREFUSED');
    expect(rig.gatewayStats().tcp.counters.rstSentClosedPort - before).toBe(1);
    expect(rig.net.stats().outbound).toMatchObject({ total: 0, refused: 0 });
    expect(host.accepted()).toBe(0);
    // A granted port on another rig is no grant for this one's other ports.
    const granted = await startRig(engine, [], { guestfwd: [host.port + 1 > 65535 ? 1 : host.port + 1] });
    await expect(granted.guest.tcp.connect(GATEWAY, host.port, { timeout: 5_000 })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(host.accepted()).toBe(0);
  });

  it('restrict=off: every host loopback port is reachable through the gateway address', async () => {
    const host = await hostEcho();
    const rig = await startRig(engine, [], { restrict: false });
    const conn = await rig.guest.tcp.connect(GATEWAY, host.port, { timeout: 5_000 });
    const echoed = new Promise<number>((resolve) => {
      conn.onData = (view) => resolve(view[0]!);
    });
    expect(conn.write(Uint8Array.of(42))).toBe(1);
    expect(await echoed).toBe(42);
    conn.abort();
    expect(host.accepted()).toBe(1);
  });

  it('resets a guest connection to a granted gateway port closed on the host', async () => {
    const closed = await freePort();
    const rig = await startRig(engine, [], { guestfwd: [closed] });
    // The gateway accepts first, then learns the host port is closed: the
    // guest's connection is reset (or, if the RST wins the race, refused).
    const outcome = await rig.guest.tcp.connect(GATEWAY, closed, { timeout: 5_000 }).then(
      async (conn) => (await conn.closed).reason,
      (err: { code?: string }) => err.code,
    );
    expect(['reset', 'ECONNREFUSED']).toContain(outcome);
    expect(rig.net.stats().outbound).toMatchObject({ active: 0, total: 1, refused: 1 });
  });

  it('relays UDP datagrams per host peer and forgets idle peers', async () => {
    const rig = await startRig(engine, [{ proto: 'udp', guestPort: ECHO }], { udpIdleMs: 300 });
    const baseUdp = rig.gatewayStats().udp.sockets;
    const port = rig.hostPort(ECHO, 'udp');
    const peers = [createSocket('udp4'), createSocket('udp4')];
    clients.push(...peers);
    for (const p of peers) await new Promise<void>((resolve) => p.bind(0, '127.0.0.1', resolve));
    const sizes = [1, 100, 1000, 1472];
    for (const p of peers) {
      for (const size of sizes) {
        const data = randomBytes(size);
        const reply = once(p, 'message') as Promise<[Buffer]>;
        p.send(data, port, '127.0.0.1');
        const [msg] = await Promise.race([reply, sleep(5_000).then(() => [Buffer.alloc(0)] as [Buffer])]);
        expect(msg.equals(data)).toBe(true);
      }
    }
    // Too large for the guest link (MTU 1500 - 28): dropped and counted.
    peers[0]!.send(randomBytes(1473), port, '127.0.0.1');
    await waitFor(() => rig.net.stats().forwards[0]!.errors === 1, 2_000, 'the oversize drop');
    const fwd = rig.net.stats().forwards[0]!;
    const bytes = 2 * sizes.reduce((a, b) => a + b, 0);
    expect(fwd).toMatchObject({ proto: 'udp', active: 2, total: 2, bytesToGuest: bytes, bytesToHost: bytes });
    expect(rig.gatewayStats().udp.sockets).toBe(baseUdp + 2);
    await waitFor(() => rig.net.stats().forwards[0]!.active === 0, 3_000, 'idle peers to expire');
    expect(rig.gatewayStats().udp.sockets).toBe(baseUdp);
  });
});

// ---- errors and close ---------------------------------------------------------------------

describe('user networking: errors and close', () => {
  it('rejects ready with a clear error when a host port is in use, closing the rest', async () => {
    const busy = createServer();
    clients.push(busy);
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const busyPort = (busy.address() as { port: number }).port;
    const freeOne = await freePort();
    const clock = new RealClock();
    const sw = new VSwitch(clock);
    const net = await startUserNet({
      link: sw.attach(),
      hotpath: await createEngine('wasm', MEMORY_BYTES),
      clock,
      guestAddress: GUEST,
      gatewayAddress: GATEWAY,
      prefix: 24,
      hostfwd: [
        { proto: 'tcp', hostAddress: '127.0.0.1', hostPort: freeOne, guestPort: 1 },
        { proto: 'tcp', hostAddress: '127.0.0.1', hostPort: busyPort, guestPort: 2 },
      ],
    });
    await expect(net.ready).rejects.toThrow(`EADDRINUSE: 127.0.0.1:${busyPort} is in use`);
    // The forward that did start is closed again.
    const probe = connect({ host: '127.0.0.1', port: freeOne });
    const [err] = (await once(probe, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
    await net.close();
  });

  it('close() before ready leaves nothing listening', async () => {
    const port = await freePort();
    const clock = new RealClock();
    const net = await startUserNet({
      link: new VSwitch(clock).attach(),
      hotpath: await createEngine('ts', MEMORY_BYTES),
      clock,
      guestAddress: GUEST,
      gatewayAddress: GATEWAY,
      prefix: 24,
      hostfwd: [
        { proto: 'tcp', hostAddress: '127.0.0.1', hostPort: port, guestPort: 1 },
        { proto: 'udp', hostAddress: '127.0.0.1', hostPort: port, guestPort: 1 },
      ],
    });
    await net.close();
    await net.ready.catch(() => undefined); // either outcome; what matters is what is left
    const probe = connect({ host: '127.0.0.1', port });
    const [err] = (await once(probe, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
    // The UDP forward too: a datagram to its port is answered by the kernel's
    // port unreachable, which a connected socket reports as ECONNREFUSED.
    expect(await udpAnswer(port)).toBe('ECONNREFUSED');
  });

  it('close() resets open pairs and leaves no socket or server behind', async () => {
    const handles = (): number =>
      process.getActiveResourcesInfo().filter((r) => /^(TCPServerWrap|TCPSocketWrap|UDPWrap)$/.test(r)).length;
    const before = handles();
    const rig = await startRig('wasm', [{ proto: 'tcp', guestPort: ECHO }, { proto: 'udp', guestPort: ECHO }]);
    // A UDP pair too: a datagram through the forward, echoed by the guest.
    const udpPort = rig.hostPort(ECHO, 'udp');
    const datagram = new Uint8Array(randomBytes(200));
    expect(await udpAnswer(udpPort, datagram)).toEqual(datagram);
    expect(rig.net.stats().forwards.find((f) => f.proto === 'udp')).toMatchObject({ active: 1, total: 1 });
    const socket = await hostConnect(rig.hostPort(ECHO));
    socket.on('error', () => {});
    socket.write('hello');
    await new Promise((resolve) => socket.once('data', resolve));
    const closedHost = new Promise((resolve) => socket.once('close', resolve));
    await rig.net.close();
    await closedHost;
    rig.guest.shutdown();
    rigs.splice(rigs.indexOf(rig), 1);
    // At most as many as before (sockets of earlier tests may still have been closing then).
    await waitFor(() => handles() <= before, 2_000, 'host handles to close');
    expect(rig.gatewayStats().arena.chunksInUse - rig.gatewayStats().arena.tableChunks, 'chunks beyond the fixed tables').toBe(0);
    expect(rig.gatewayStats().timers.armed).toBe(0);
    // Nothing answers on the UDP forward's port any more.
    expect(await udpAnswer(udpPort)).toBe('ECONNREFUSED');
  });
});
