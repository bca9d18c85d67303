// The Linux TAP backend of the network device (docs/architecture.md section 6).
//
//   const tap = await openTap('uk0');           // or openTap('uk0', { mac, mtu })
//   tap.setReceiver((frame) => stack.input(frame));
//   tap.send(frame);
//   await tap.close();
//
// The interface, two ways:
// - Created on open. If no interface of that name exists in the caller's
//   network namespace, TUNSETIFF creates one. It lives as long as the fd: it
//   disappears when the device is closed (or the process dies). The caller (or
//   an admin script) then gives the kernel's side an address and brings it up,
//   e.g. `ip addr add 10.0.0.1/24 dev uk0 && ip link set uk0 up`.
// - Pre-created. `ip tuntap add dev uk0 mode tap [user NAME]` makes a
//   persistent interface that survives our close and can be configured in
//   advance; created with `user NAME`, that user can open it without
//   CAP_NET_ADMIN (as long as its MTU already matches, see below).
// Either way a name ending in %d (e.g. 'uk%d') lets the kernel pick a free
// number; `tap.ifname` is the name actually attached. The interface may be
// moved to another namespace after opening (`ip link set dev uk0 netns NS`):
// the fd stays attached.
//
// Opening sets the interface's MTU to the device's (default 1500) so that the
// kernel never hands us a frame larger than the stack expects. Receive
// offloads stay off (no TUNSETOFFLOAD): the kernel segments and checksums
// what it sends us. A TAP link sends with segmentation offload where the
// kernel takes IFF_VNET_HDR (gso.ts): its writer joins the guest's TCP
// segments into super-segments the kernel splits, or takes whole.
//
// Two ways to move frames:
// - openTap: a NetDevice. Receiving happens on a reader thread
//   (tap-reader.ts) that fills a shared ring; this side drains it in
//   batches and calls the receiver with a view into the ring. Sending is a
//   synchronous write(2) on the non-blocking fd.
// - openTapLink: joined to a guest's link, with nothing per frame on this
//   thread: the reader reads into the guest's RX slots, a writer thread
//   writes from its TX slots (tap-reader.ts says how).

import { closeSync, constants as fsConstants, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import koffi from 'koffi';
import { DeviceError, type DeviceErrorCode } from './device-error.js';
import type { NetDevice } from '../../stack/index.js';
import {
  CTL_DROP_BAD_LENGTH,
  CTL_DROP_RING_FULL,
  CTL_ERRNO,
  CTL_HEAD,
  CTL_STATE,
  CTL_STOP,
  CTL_TAIL,
  CTL_WORDS,
  CTL_F64_BYTES_IN,
  CTL_F64_BYTES_OUT,
  CTL_F64_FRAMES_IN,
  CTL_F64_FRAMES_OUT,
  CTL_F64_SUPER_IN,
  CTL_F64_SUPER_SEGMENTS,
  CTL_F64_WRITES,
  CTL_TX_BAD_LENGTH,
  CTL_TX_DETACHED,
  CTL_TX_ERROR,
  CTL_TX_LINK_DOWN,
  CTL_TX_QUEUE_FULL,
  CTL_WRITER_ERRNO,
  CTL_WRITER_STATE,
  MAX_MTU,
  SLOT_SIZE,
  readerStateName,
  ringLayout,
  type LinkThreadData,
  type LinkWords,
  type RxLinkWords,
  type ReaderData,
  type ReaderStateName,
} from './tap-reader.js';

export type { LinkWords, RxLinkWords } from './tap-reader.js';

// ---- Errors -------------------------------------------------------------------

export { DeviceError, type DeviceErrorCode } from './device-error.js';

/** The step of opening that failed, for tapError. */
export type TapStep = 'open' | 'attach' | 'mtu';

/** Turn a system error from one step of opening into a DeviceError.
 *  `err` is an errno (positive, or negative as libuv reports it) or its name
 *  ('EPERM'), as found in a Node error's `code`. */
export function tapError(ifname: string, step: TapStep, err: number | string, mtu?: number): DeviceError {
  const name = errnoName(err);
  const dev = deviceLabel(ifname);
  const fail = (code: DeviceErrorCode, what: string) => new DeviceError(code, dev, what, name);
  const denied = name === 'EPERM' || name === 'EACCES';
  switch (step) {
    case 'open': {
      const what = 'cannot open /dev/net/tun';
      if (denied) return fail('EPERM', `${what}: permission denied (needs CAP_NET_ADMIN)`);
      if (name === 'ENOENT') return fail('ENOTUN', `${what}: no such file (load the tun module, or pass /dev/net/tun into the container)`);
      if (name === 'ENODEV' || name === 'ENXIO') return fail('ENOTUN', `${what}: no tun driver in this kernel (modprobe tun)`);
      return fail('EIO', `${what}: ${name}`);
    }
    case 'attach': {
      const what = 'cannot attach to the interface';
      if (denied) return fail('EPERM', `${what}: permission denied (needs CAP_NET_ADMIN, or a persistent TAP created for this user)`);
      if (name === 'EBUSY') return fail('EBUSY', `${what}: it is already attached to another file descriptor`);
      // The tun driver answers EINVAL when the name belongs to an interface
      // of another kind (a TUN, a veth, lo...). Names are checked before.
      if (name === 'EINVAL') return fail('ENODEV', `${what}: it exists and is not a TAP interface`);
      return fail('EIO', `${what}: ${name}`);
    }
    case 'mtu': {
      const what = `cannot set the interface MTU${mtu === undefined ? '' : ` to ${mtu}`}`;
      if (denied) return fail('EPERM', `${what}: permission denied (needs CAP_NET_ADMIN, or set it beforehand with ip link)`);
      if (name === 'EINVAL') return fail('EINVAL', `${what}: the kernel refused it`);
      return fail('EIO', `${what}: ${name}`);
    }
  }
}

// Linux errno values used below. EBADFD is missing from os.constants.errno.
const E = { EIO: 5, EAGAIN: 11, EBADFD: 77, ENOBUFS: 105 } as const;

function errnoName(err: number | string): string {
  if (typeof err === 'string') return err;
  const n = Math.abs(err);
  for (const [k, v] of Object.entries(osConstants.errno)) if (v === n) return k;
  if (n === E.EBADFD) return 'EBADFD';
  return `errno ${n}`;
}

function deviceLabel(ifname: string): string {
  return /^[\x21-\x7e]+$/.test(ifname) ? `tap:${ifname}` : `tap:${JSON.stringify(ifname)}`;
}

// ---- Options, statistics, the device ------------------------------------------

export interface TapOptions {
  /** Our side's MAC (6 bytes, unicast). Default: a random locally administered one. */
  mac?: Uint8Array;
  /** IP MTU, 68..2000. Default 1500. The interface's MTU is set to match. */
  mtu?: number;
  /** Slots in the receive ring (a power of two, 2..4096). Default 256. */
  ringSlots?: number;
}

export interface TapStats {
  framesIn: number; // delivered to the receiver
  bytesIn: number;
  framesOut: number; // written to the kernel
  bytesOut: number;
  dropped: {
    rx: {
      ringFull: number; // the main side fell behind by more than the ring holds
      badLength: number; // longer than mtu + 18, or shorter than an Ethernet header
      receiverError: number; // the receiver threw on the frame
    };
    tx: {
      badLength: number; // shorter than 14 or longer than mtu + 14 bytes
      queueFull: number; // EAGAIN / ENOBUFS from the kernel
      linkDown: number; // EIO: the interface is down
      detached: number; // EBADFD: the interface is gone (e.g. its namespace was deleted)
      closed: number; // send() after close()
      error: number; // any other write error
    };
  };
  /** The reader thread: starting, running, stopped (closed), detached (the
   *  interface went away), failed (see readerError). */
  reader: ReaderStateName;
  /** Why the reader ended early: an errno name, or what went wrong. */
  readerError?: string;
  /** A TAP link's segmentation offload (gso.ts): on when the kernel took
   *  IFF_VNET_HDR; how many write(2)s carried framesOut, and how many of
   *  them were super-segments. */
  offloads?: { on: boolean; writes: number; superSegments: number; receive: boolean; superSegmentsIn: number };
}

export interface TapDevice extends NetDevice {
  /** The interface attached (a %d in the requested name is resolved). */
  readonly ifname: string;
  /** A snapshot of the counters. */
  stats(): TapStats;
  /** Stop the reader thread (it has ended when this resolves) and close the
   *  fd; an interface created on open disappears. Idempotent. */
  close(): Promise<void>;
}

const IFNAMSIZ = 16;
const TUNSETIFF = 0x400454ca;
const SIOCGIFMTU = 0x8921;
const SIOCSIFMTU = 0x8922;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000; // frames without the 4-byte packet-information prefix
const IFF_VNET_HDR = 0x4000; // a virtio-net header before every frame (offloads, gso.ts)
const TUNSETOFFLOAD = 0x400454d0;
const TUN_F_CSUM = 0x01; // we take partial checksums
const TUN_F_TSO4 = 0x02; // we take TCP/IPv4 super-segments
const EINVAL = 22;
const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const DEFAULT_SLOTS = 256;
// How long the reader's poll(2) sleeps before looking at the stop word again;
// close() takes at most about this long.
const POLL_MS = 50;

/** Open (and, if needed, create) the TAP interface `ifname`. */
export async function openTap(ifname: string, opts: TapOptions = {}): Promise<TapDevice> {
  const slots = opts.ringSlots ?? DEFAULT_SLOTS;
  if (!Number.isInteger(slots) || slots < 2 || slots > 4096 || (slots & (slots - 1)) !== 0) {
    throw new DeviceError('EINVAL', deviceLabel(ifname), `invalid ring size ${slots}: must be a power of two from 2 to 4096`);
  }
  const mac = opts.mac ? Uint8Array.from(opts.mac) : randomMac();
  if (mac.length !== 6 || (mac[0] & 1) !== 0 || mac.every((b) => b === 0)) {
    throw new DeviceError('EINVAL', deviceLabel(ifname), 'invalid MAC: must be 6 bytes, unicast, not all zero');
  }
  return withTap(ifname, opts.mtu, async (fd, name, mtu, dev) => {
    const ring = new SharedArrayBuffer(ringLayout(slots).byteLength);
    const data: ReaderData = { role: 'tap-reader', fd, ring, slots, mtu, pollMs: POLL_MS };
    const worker = await startThread(data, dev);
    return new Tap(name, mac, mtu, fd, ring, slots, worker);
  });
}

/** A TAP interface joined to a guest's link with no hop through the tender's
 *  main thread: a reader thread reads the kernel's frames straight into the
 *  guest's RX slots, a writer thread writes the guest's TX slots to the
 *  kernel (tap-reader.ts). What the tender sees of it is its counters. */
export interface TapLink {
  readonly ifname: string;
  stats(): TapStats;
  /** Stop both threads and close the fd (the interface goes if created on open). */
  close(): Promise<void>;
}

/** Open `ifname` (as openTap does) and join it to the link whose RX and TX
 *  rings `rx` and `tx` describe (host/link/layout.ts linkThreadWords). */
export async function openTapLink(ifname: string, rx: RxLinkWords, tx: LinkWords, opts: { mtu?: number; offloads?: boolean } = {}): Promise<TapLink> {
  const wanted = opts.offloads ?? true;
  return withTap(ifname, opts.mtu, async (fd, name, mtu, dev, vnetHdr) => {
    const ring = new SharedArrayBuffer(CTL_WORDS * 4);
    const threads: Worker[] = [];
    // Receive offloads: partial checksums and TCP super-segments from the
    // kernel, which the reader completes and takes apart (gso.ts).
    const rxOffloads = vnetHdr && libc(dev).ioctl(fd, TUNSETOFFLOAD, 'unsigned long', TUN_F_CSUM | TUN_F_TSO4) >= 0;
    try {
      threads.push(await startThread({ role: 'tap-link-reader', fd, ring, mtu, pollMs: POLL_MS, link: rx, vnetHdr, rxOffloads }, dev));
      threads.push(await startThread({ role: 'tap-link-writer', fd, ring, mtu, pollMs: POLL_MS, link: tx, vnetHdr, rxOffloads }, dev));
    } catch (err) {
      Atomics.store(new Int32Array(ring), CTL_STOP, 1);
      await Promise.all(threads.map((t) => t.terminate()));
      throw err;
    }
    return new TapLinkDevice(name, fd, ring, rx, threads, vnetHdr, rxOffloads);
  }, wanted);
}

/** Check the MTU and name, open /dev/net/tun, attach `ifname`, set its MTU,
 *  then `start` what reads and writes it; the fd is closed if that fails. */
async function withTap<T>(
  ifname: string,
  mtuOpt: number | undefined,
  start: (fd: number, name: string, mtu: number, dev: string, vnetHdr: boolean) => Promise<T>,
  vnetHdr = false,
): Promise<T> {
  checkName(ifname);
  const dev = deviceLabel(ifname);
  const mtu = mtuOpt ?? 1500;
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > MAX_MTU) {
    throw new DeviceError('EINVAL', dev, `invalid MTU ${mtu}: must be an integer from 68 to ${MAX_MTU}`);
  }
  const sys = libc(dev);
  let fd: number;
  try {
    // Non-blocking: the reader thread waits in poll(2) instead, and a write
    // can never stall the event loop.
    fd = openSync('/dev/net/tun', fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
  } catch (err) {
    throw tapError(ifname, 'open', (err as NodeJS.ErrnoException).code ?? 'EIO');
  }
  try {
    // Offloads where the kernel offers them: a kernel without IFF_VNET_HDR
    // refuses the flag (EINVAL), and the interface is attached without it.
    let ifr = { ifr_name: ifname, ifr_flags: IFF_TAP | IFF_NO_PI | (vnetHdr ? IFF_VNET_HDR : 0) };
    let attached = sys.ioctl(fd, TUNSETIFF, sys.ifreqFlags, ifr) >= 0;
    if (!attached && vnetHdr && koffi.errno() === EINVAL) {
      vnetHdr = false;
      ifr = { ifr_name: ifname, ifr_flags: IFF_TAP | IFF_NO_PI };
      attached = sys.ioctl(fd, TUNSETIFF, sys.ifreqFlags, ifr) >= 0;
    }
    if (!attached) throw tapError(ifname, 'attach', koffi.errno());
    // A persistent interface keeps the offloads its last user asked for: a
    // reader without a virtio-net header must get plain, finished frames.
    if (!vnetHdr) sys.ioctl(fd, TUNSETOFFLOAD, 'unsigned long', 0);
    const name = ifr.ifr_name;
    setMtu(sys, name, mtu);
    return await start(fd, name, mtu, dev, vnetHdr);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** The kernel's rules for interface names (dev_valid_name), plus printable
 *  ASCII only, checked here so that users get a clear message. */
function checkName(ifname: string): void {
  const bad = (why: string) => new DeviceError('EINVAL', deviceLabel(ifname), `invalid interface name: ${why}`);
  if (typeof ifname !== 'string' || ifname.length === 0) throw bad('empty');
  const bytes = Buffer.byteLength(ifname, 'utf8');
  if (bytes > IFNAMSIZ - 1) throw bad(`${bytes} bytes long, at most ${IFNAMSIZ - 1} allowed`);
  if (ifname === '.' || ifname === '..') throw bad('"." and ".." are reserved');
  if (/\s/.test(ifname)) throw bad('contains whitespace');
  if (/[/:]/.test(ifname)) throw bad('contains "/" or ":"');
  if (!/^[\x21-\x7e]+$/.test(ifname)) throw bad('only printable ASCII is allowed');
}

function randomMac(): Uint8Array {
  const mac = crypto.getRandomValues(new Uint8Array(6));
  mac[0] = (mac[0] & 0xfc) | 0x02; // unicast, locally administered
  return mac;
}

// ---- libc through koffi -------------------------------------------------------

interface Libc {
  ioctl: koffi.KoffiFunction;
  socket: koffi.KoffiFunction;
  ifreqFlags: koffi.IKoffiCType; // in/out pointer to struct ifreq, flags member
  ifreqMtu: koffi.IKoffiCType; // in/out pointer to struct ifreq, mtu member
}
let cachedLibc: Libc | undefined;

function libc(dev: string): Libc {
  if (cachedLibc) return cachedLibc;
  try {
    const lib = koffi.load('libc.so.6');
    // struct ifreq is 40 bytes on Linux: a 16-byte name, then a 24-byte union
    // of which TUNSETIFF uses `short ifr_flags` and SIOC[GS]IFMTU `int ifr_mtu`.
    // Anonymous structs: koffi's named types are process-wide and this module
    // may be loaded more than once (test runners).
    const flags = koffi.struct({
      ifr_name: koffi.array('char', IFNAMSIZ),
      ifr_flags: 'short',
      _pad: koffi.array('uint8_t', 22),
    });
    const mtu = koffi.struct({
      ifr_name: koffi.array('char', IFNAMSIZ),
      ifr_mtu: 'int',
      _pad: koffi.array('uint8_t', 20),
    });
    if (koffi.sizeof(flags) !== 40 || koffi.sizeof(mtu) !== 40) throw new Error('struct ifreq is not 40 bytes');
    cachedLibc = {
      ioctl: lib.func('int ioctl(int fd, unsigned long request, ...)'),
      socket: lib.func('int socket(int domain, int type, int protocol)'),
      ifreqFlags: koffi.inout(koffi.pointer(flags)),
      ifreqMtu: koffi.inout(koffi.pointer(mtu)),
    };
    return cachedLibc;
  } catch (err) {
    throw new DeviceError('EIO', dev, `cannot call libc through koffi: ${(err as Error).message}`);
  }
}

/** Make the kernel's side of the interface use our MTU, so every frame it
 *  sends fits the stack (and the ring). Only writes it when it differs, so a
 *  pre-created interface with the right MTU needs no privilege here. */
function setMtu(sys: Libc, ifname: string, mtu: number): void {
  const sock = sys.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0) as number;
  if (sock < 0) throw tapError(ifname, 'mtu', koffi.errno(), mtu);
  try {
    const req = { ifr_name: ifname, ifr_mtu: 0 };
    if (sys.ioctl(sock, SIOCGIFMTU, sys.ifreqMtu, req) < 0) throw tapError(ifname, 'mtu', koffi.errno(), mtu);
    if (req.ifr_mtu === mtu) return;
    req.ifr_mtu = mtu;
    if (sys.ioctl(sock, SIOCSIFMTU, sys.ifreqMtu, req) < 0) throw tapError(ifname, 'mtu', koffi.errno(), mtu);
  } finally {
    closeSync(sock);
  }
}

// ---- The reader thread --------------------------------------------------------

// Built (dist/): tap-reader.js sits next to this file and runs as is.
// From sources (vitest runs .ts directly; Node 20 cannot run a .ts worker):
// tap-reader.ts is transpiled once with the TypeScript compiler (a dev
// dependency, present wherever the sources are) and run as an eval worker.
// That is why tap-reader.ts imports nothing but node builtins, koffi and
// READER_SIBLINGS (transpiled with it).
const READER_JS = new URL('./tap-reader.js', import.meta.url);
const READER_TS = new URL('./tap-reader.ts', import.meta.url);
let readerFromSource: Promise<string> | undefined;

async function startThread(data: ReaderData | LinkThreadData, dev: string): Promise<Worker> {
  let worker: Worker;
  if (existsSync(fileURLToPath(READER_JS))) {
    worker = new Worker(READER_JS, { workerData: data });
  } else if (existsSync(fileURLToPath(READER_TS))) {
    readerFromSource ??= transpileReader(fileURLToPath(READER_TS));
    worker = new Worker(await readerFromSource, { eval: true, workerData: data });
  } else {
    throw new DeviceError('EIO', dev, `reader thread script not found next to ${fileURLToPath(import.meta.url)}`);
  }
  // The thread posts 'ready' once koffi is loaded and it is about to poll.
  await new Promise<void>((resolve, reject) => {
    const fail = (why: string) => {
      cleanup();
      void worker.terminate();
      reject(new DeviceError('EIO', dev, `${data.role} thread failed to start: ${why}`));
    };
    const onMessage = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => fail(err.message);
    const onExit = (code: number) => fail(`exited with code ${code}`);
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
  return worker;
}

async function transpileReader(file: string): Promise<string> {
  const ts = (await import('typescript')).default;
  const commonJs = (path: string): string =>
    ts.transpileModule(readFileSync(path, 'utf8'), {
      fileName: path,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    }).outputText;
  // Its own imports: koffi from its real location, and the few sibling
  // modules it uses (READER_SIBLINGS), transpiled the same way.
  const siblings = READER_SIBLINGS.map((name) => {
    const path = fileURLToPath(new URL(name.replace(/\.js$/, '.ts'), READER_TS));
    return `local[${JSON.stringify(name)}] = load(${JSON.stringify(commonJs(path))});\n`;
  }).join('');
  return (
    `const real = require('node:module').createRequire(${JSON.stringify(file)});\n` +
    `const local = {};\n` +
    `const need = (id) => (id in local ? local[id] : real(id));\n` +
    `function load(source) { const m = { exports: {} }; new Function('require', 'module', 'exports', source)(need, m, m.exports); return m.exports; }\n` +
    siblings +
    `load(${JSON.stringify(commonJs(file))});\n`
  );
}

/** Modules of this folder that tap-reader.ts imports (plain functions, no imports of their own). */
const READER_SIBLINGS = ['./gso.js'];

// Atomics.waitAsync is in Node 20 but not in the ES2023 lib typings.
type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): WaitAsyncResult }).waitAsync.bind(Atomics);

// ---- The device ---------------------------------------------------------------

class Tap implements TapDevice {
  private readonly ctl: Int32Array;
  private readonly lengths: Int32Array;
  private readonly dataOffset: number;
  private readonly mask: number;
  // One view per slot, re-made only when the frame length in that slot
  // changes: repeated sizes (full-sized segments, ACKs) allocate nothing.
  private readonly views: (Uint8Array | undefined)[];
  private receiver: ((frame: Uint8Array) => void) | undefined;
  private pumping = false;
  private tail = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly exited: Promise<void>;
  private readerError: string | undefined;
  private warnedReceiver = false;

  private framesIn = 0;
  private bytesIn = 0;
  private framesOut = 0;
  private bytesOut = 0;
  private rxReceiverError = 0;
  private readonly tx = { badLength: 0, queueFull: 0, linkDown: 0, detached: 0, closed: 0, error: 0 };

  constructor(
    readonly ifname: string,
    readonly mac: Uint8Array,
    readonly mtu: number,
    private readonly fd: number,
    private readonly ring: SharedArrayBuffer,
    private readonly slots: number,
    private readonly worker: Worker,
  ) {
    const layout = ringLayout(slots);
    this.ctl = new Int32Array(ring, 0, CTL_WORDS);
    this.lengths = new Int32Array(ring, layout.lengths, slots);
    this.dataOffset = layout.data;
    this.mask = slots - 1;
    this.views = new Array<Uint8Array | undefined>(slots).fill(undefined);
    this.tail = Atomics.load(this.ctl, CTL_TAIL);
    worker.on('error', (err) => {
      this.readerError = err.message;
    });
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
  }

  setReceiver(receive: (frame: Uint8Array) => void): void {
    this.receiver = receive;
    // Frames wait in the ring until there is a receiver.
    if (!this.pumping) {
      this.pumping = true;
      this.pump();
    }
  }

  send(frame: Uint8Array): boolean {
    if (this.closed) {
      this.tx.closed++;
      return false;
    }
    const len = frame.length;
    if (len < 14 || len > this.mtu + 14) {
      this.tx.badLength++;
      return false;
    }
    try {
      writeSync(this.fd, frame, 0, len);
    } catch (err) {
      const errno = Math.abs((err as NodeJS.ErrnoException).errno ?? 0);
      if (errno === E.EAGAIN || errno === E.ENOBUFS) this.tx.queueFull++;
      else if (errno === E.EIO) this.tx.linkDown++; // the tun driver refuses writes while the link is down
      else if (errno === E.EBADFD) this.tx.detached++; // no interface behind the fd any more
      else this.tx.error++;
      return false;
    }
    this.framesOut++;
    this.bytesOut += len;
    return true;
  }

  stats(): TapStats {
    const ctl = this.ctl;
    const errno = Atomics.load(ctl, CTL_ERRNO);
    return {
      framesIn: this.framesIn,
      bytesIn: this.bytesIn,
      framesOut: this.framesOut,
      bytesOut: this.bytesOut,
      dropped: {
        rx: {
          ringFull: Atomics.load(ctl, CTL_DROP_RING_FULL) >>> 0,
          badLength: Atomics.load(ctl, CTL_DROP_BAD_LENGTH) >>> 0,
          receiverError: this.rxReceiverError,
        },
        tx: { ...this.tx },
      },
      reader: this.readerError ? 'failed' : readerStateName(Atomics.load(ctl, CTL_STATE)),
      ...(this.readerError ? { readerError: this.readerError } : errno ? { readerError: errnoName(errno) } : {}),
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    Atomics.store(this.ctl, CTL_STOP, 1);
    // The reader sees STOP within one poll timeout. The fd must outlive the
    // thread: closing it first could let a new file reuse the number under a
    // read in progress.
    if (!(await stoppedInTime(this.worker, this.exited))) this.readerError = 'did not stop in time and was terminated';
    closeSync(this.fd);
    // Release our own pending Atomics.waitAsync, if any.
    Atomics.notify(this.ctl, CTL_HEAD);
  }

  private readonly onWake = (): void => this.pump();

  /** Hand every published frame to the receiver, at most one ring's worth per
   *  turn of the event loop, then wait for the reader's next notify. */
  private pump(): void {
    if (this.closed) return;
    const ctl = this.ctl;
    let tail = this.tail;
    let budget = this.slots;
    for (;;) {
      const head = Atomics.load(ctl, CTL_HEAD);
      if (head === tail) {
        const w = waitAsync(ctl, CTL_HEAD, head);
        if (w.async) {
          void w.value.then(this.onWake);
          return;
        }
        continue; // the reader published between the load and the wait
      }
      if (budget-- === 0) {
        setImmediate(this.onWake); // let timers and I/O run, then go on
        return;
      }
      const slot = tail & this.mask;
      this.deliver(slot, this.lengths[slot]);
      tail = (tail + 1) | 0;
      this.tail = tail;
      Atomics.store(ctl, CTL_TAIL, tail); // the slot is free again
      if (this.closed) return;
    }
  }

  private deliver(slot: number, len: number): void {
    let view = this.views[slot];
    if (view === undefined || view.length !== len) {
      view = new Uint8Array(this.ring, this.dataOffset + slot * SLOT_SIZE, len);
      this.views[slot] = view;
    }
    this.framesIn++;
    this.bytesIn += len;
    try {
      this.receiver!(view);
    } catch (err) {
      // A throwing receiver must not stall the device; count it, say it once.
      this.rxReceiverError++;
      if (!this.warnedReceiver) {
        this.warnedReceiver = true;
        process.emitWarning(`tap:${this.ifname}: the receiver threw (counted in dropped.rx.receiverError): ${String(err)}`);
      }
    }
  }
}

/** Wait for a thread that was asked to STOP; one that does not end within
 *  about twenty poll timeouts is terminated (false). */
async function stoppedInTime(worker: Worker, exited: Promise<void>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), POLL_MS * 20 + 1000);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut) await worker.terminate();
  return !timedOut;
}

/** The TAP side of openTapLink: its threads do the work, this keeps the fd,
 *  reads their counters and stops them. */
class TapLinkDevice implements TapLink {
  private readonly ctl: Int32Array;
  private readonly counts: Float64Array;
  private readonly linkCtl: Int32Array;
  private readonly exited: Promise<void>[];
  private closing: Promise<void> | undefined;
  private threadError: string | undefined;

  constructor(
    readonly ifname: string,
    private readonly fd: number,
    ring: SharedArrayBuffer,
    private readonly rx: RxLinkWords,
    private readonly threads: Worker[],
    private readonly offloadsOn: boolean,
    private readonly rxOffloads: boolean,
  ) {
    this.ctl = new Int32Array(ring, 0, CTL_WORDS);
    this.counts = new Float64Array(ring, 0, CTL_WORDS / 2);
    this.linkCtl = new Int32Array(rx.control);
    this.exited = threads.map((t) => new Promise<void>((resolve) => t.once('exit', () => resolve())));
    for (const t of threads) t.on('error', (err) => (this.threadError ??= err.message));
  }

  stats(): TapStats {
    const ctl = this.ctl;
    const word = (i: number): number => Atomics.load(ctl, i) >>> 0;
    const errno = Atomics.load(ctl, CTL_ERRNO) || Atomics.load(ctl, CTL_WRITER_ERRNO);
    const reader = readerStateName(Atomics.load(ctl, CTL_STATE));
    const writer = readerStateName(Atomics.load(ctl, CTL_WRITER_STATE));
    return {
      framesIn: this.counts[CTL_F64_FRAMES_IN]!,
      bytesIn: this.counts[CTL_F64_BYTES_IN]!,
      framesOut: this.counts[CTL_F64_FRAMES_OUT]!,
      bytesOut: this.counts[CTL_F64_BYTES_OUT]!,
      dropped: {
        rx: {
          ringFull: Atomics.load(this.linkCtl, this.rx.ringFull) >>> 0,
          badLength: Atomics.load(this.linkCtl, this.rx.badLength) >>> 0,
          receiverError: 0,
        },
        tx: {
          badLength: word(CTL_TX_BAD_LENGTH),
          queueFull: word(CTL_TX_QUEUE_FULL),
          linkDown: word(CTL_TX_LINK_DOWN),
          detached: word(CTL_TX_DETACHED),
          closed: 0,
          error: word(CTL_TX_ERROR),
        },
      },
      offloads: { on: this.offloadsOn, writes: this.offloadsOn ? this.counts[CTL_F64_WRITES]! : this.counts[CTL_F64_FRAMES_OUT]!, superSegments: this.counts[CTL_F64_SUPER_SEGMENTS]!, receive: this.rxOffloads, superSegmentsIn: this.counts[CTL_F64_SUPER_IN]! },
      // The worse of the two threads' states: "running" only while both run.
      reader: this.threadError ? 'failed' : reader === 'running' ? writer : reader,
      ...(this.threadError ? { readerError: this.threadError } : errno ? { readerError: errnoName(errno) } : {}),
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    Atomics.store(this.ctl, CTL_STOP, 1);
    const ended = await Promise.all(this.threads.map((t, i) => stoppedInTime(t, this.exited[i]!)));
    if (ended.includes(false)) this.threadError = 'did not stop in time and was terminated';
    closeSync(this.fd);
  }
}
