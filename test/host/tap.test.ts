// The TAP device against the real Linux kernel, inside namespaces the tests
// create (test/helpers/netns.ts): the kernel is 10.77.0.1 there, we play
// 10.77.0.2 with frames built by hand below, independent of the stack.
// Argument checks and the errno mapping run everywhere; the rest needs root,
// /dev/net/tun and namespaces, and is skipped, saying why, without them (a
// failure in CI: test/helpers/capabilities.ts).

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DeviceError, openTap, tapError, type TapDevice } from '../../host/devices/tap.js';
import { KERNEL, requires } from '../helpers/capabilities.js';
import { createNetns, destroyAllNetns, type Netns } from '../helpers/netns.js';

// ---- Hand-built frames --------------------------------------------------------

const ETH_IPV4 = 0x0800;
const ETH_ARP = 0x0806;
const BROADCAST = new Uint8Array(6).fill(0xff);

function ip4(s: string): Uint8Array {
  return Uint8Array.from(s.split('.').map(Number));
}

function macText(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** RFC 1071 Internet checksum over b[off, off + len). */
function checksum(b: Uint8Array, off: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) s += (b[off + i] << 8) | (i + 1 < len ? b[off + i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 8;
  b[off + 1] = v & 0xff;
}

function get16(b: Uint8Array, off: number): number {
  return (b[off] << 8) | b[off + 1];
}

function ethernet(dst: Uint8Array, src: Uint8Array, type: number, payloadLen: number): Uint8Array {
  const f = new Uint8Array(14 + payloadLen);
  f.set(dst, 0);
  f.set(src, 6);
  put16(f, 12, type);
  return f;
}

/** An ARP frame (op 1 request, 2 reply) for IPv4 over Ethernet. */
function arpFrame(op: 1 | 2, dst: Uint8Array, sha: Uint8Array, spa: Uint8Array, tha: Uint8Array, tpa: Uint8Array): Uint8Array {
  const f = ethernet(dst, sha, ETH_ARP, 28);
  put16(f, 14, 1); // hardware: Ethernet
  put16(f, 16, ETH_IPV4);
  f[18] = 6;
  f[19] = 4;
  put16(f, 20, op);
  f.set(sha, 22);
  f.set(spa, 28);
  f.set(tha, 32);
  f.set(tpa, 38);
  return f;
}

/** An IPv4 ICMP echo (type 8 request, 0 reply) with `data` as payload. */
function icmpEchoFrame(
  type: 0 | 8,
  dstMac: Uint8Array,
  srcMac: Uint8Array,
  src: Uint8Array,
  dst: Uint8Array,
  id: number,
  seq: number,
  data: Uint8Array,
): Uint8Array {
  const ipLen = 20 + 8 + data.length;
  const f = ethernet(dstMac, srcMac, ETH_IPV4, ipLen);
  const ip = 14;
  f[ip] = 0x45;
  put16(f, ip + 2, ipLen);
  put16(f, ip + 4, seq & 0xffff); // identification
  put16(f, ip + 6, 0x4000); // don't fragment
  f[ip + 8] = 64;
  f[ip + 9] = 1; // ICMP
  f.set(src, ip + 12);
  f.set(dst, ip + 16);
  put16(f, ip + 10, checksum(f, ip, 20));
  const icmp = ip + 20;
  f[icmp] = type;
  put16(f, icmp + 4, id);
  put16(f, icmp + 6, seq);
  f.set(data, icmp + 8);
  put16(f, icmp + 2, checksum(f, icmp, 8 + data.length));
  return f;
}

// ---- Our side of the wire: answer ARP and pings for one address ---------------

interface Peer {
  arpRequests: number; // ARP requests for our address
  arpReplies: number; // ARP replies addressed to us
  echoRequests: number; // pings we answered
  kernelMac?: Uint8Array;
  /** Called for every echo reply addressed to us. */
  onEchoReply?: (id: number, seq: number) => void;
}

function playPeer(tap: TapDevice, ourIp: Uint8Array): Peer {
  const peer: Peer = { arpRequests: 0, arpReplies: 0, echoRequests: 0 };
  tap.setReceiver((f) => {
    // The view is only valid during this call: everything kept is copied.
    const type = get16(f, 12);
    if (type === ETH_ARP && f.length >= 42) {
      const op = get16(f, 20);
      if (op === 1 && same(f.subarray(38, 42), ourIp)) {
        peer.arpRequests++;
        const sha = f.slice(22, 28);
        tap.send(arpFrame(2, sha, tap.mac, ourIp, sha, f.slice(28, 32)));
      } else if (op === 2 && same(f.subarray(32, 38), tap.mac)) {
        peer.arpReplies++;
        peer.kernelMac = f.slice(22, 28);
      }
      return;
    }
    if (type !== ETH_IPV4 || f[23] !== 1 || !same(f.subarray(30, 34), ourIp)) return;
    const ihl = (f[14] & 0x0f) * 4;
    const icmp = 14 + ihl;
    const totalLen = get16(f, 16);
    if (checksum(f, 14, ihl) !== 0 || checksum(f, icmp, totalLen - ihl) !== 0) return;
    const id = get16(f, icmp + 4);
    const seq = get16(f, icmp + 6);
    if (f[icmp] === 8) {
      peer.echoRequests++;
      const data = f.slice(icmp + 8, 14 + totalLen);
      tap.send(icmpEchoFrame(0, f.slice(6, 12), tap.mac, ourIp, f.slice(26, 30), id, seq, data));
    } else if (f[icmp] === 0) {
      peer.onEchoReply?.(id, seq);
    }
  });
  return peer;
}

/** Kernel-side counters of the TAP interface inside the namespace. */
function kernelCounters(ns: Netns): { rxPackets: number; txPackets: number } {
  const [link] = JSON.parse(ns.execSync(`ip -j -s link show dev ${ns.tapName}`)) as {
    stats64: { rx: { packets: number }; tx: { packets: number } };
  }[];
  return { rxPackets: link.stats64.rx.packets, txPackets: link.stats64.tx.packets };
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function rejection(p: Promise<unknown>): Promise<DeviceError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DeviceError);
    return err as DeviceError;
  }
  throw new Error('expected a DeviceError');
}

// ---- Everywhere: argument checks and errno mapping ----------------------------

describe('tapError maps errno values to DeviceError', () => {
  it('EPERM while opening /dev/net/tun', () => {
    const e = tapError('uk0', 'open', 1);
    expect(e).toBeInstanceOf(DeviceError);
    expect(e.code).toBe('EPERM');
    expect(e.errno).toBe('EPERM');
    expect(e.message).toBe('tap:uk0: cannot open /dev/net/tun: permission denied (needs CAP_NET_ADMIN)');
    expect(tapError('uk0', 'open', 'EACCES').code).toBe('EPERM');
    expect(tapError('uk0', 'open', -13).code).toBe('EPERM'); // libuv's negative form
  });

  it('ENOENT while opening: no tun device', () => {
    const e = tapError('uk0', 'open', 2);
    expect(e.code).toBe('ENOTUN');
    expect(e.message).toMatch(/^tap:uk0: cannot open \/dev\/net\/tun: no such file/);
    expect(tapError('uk0', 'open', 'ENODEV').code).toBe('ENOTUN');
  });

  it('EBUSY while attaching: the interface is in use', () => {
    const e = tapError('uk0', 'attach', 16);
    expect(e.code).toBe('EBUSY');
    expect(e.message).toBe('tap:uk0: cannot attach to the interface: it is already attached to another file descriptor');
  });

  it('EINVAL while attaching: the name belongs to another kind of interface', () => {
    const e = tapError('eth0', 'attach', 22);
    expect(e.code).toBe('ENODEV');
    expect(e.message).toBe('tap:eth0: cannot attach to the interface: it exists and is not a TAP interface');
  });

  it('EPERM while attaching, EINVAL and EPERM while setting the MTU, anything else', () => {
    expect(tapError('uk0', 'attach', 1).code).toBe('EPERM');
    expect(tapError('uk0', 'mtu', 22, 1400).message).toBe('tap:uk0: cannot set the interface MTU to 1400: the kernel refused it');
    expect(tapError('uk0', 'mtu', 'EPERM', 1400).code).toBe('EPERM');
    const other = tapError('uk0', 'attach', 12);
    expect(other.code).toBe('EIO');
    expect(other.message).toBe('tap:uk0: cannot attach to the interface: ENOMEM');
  });

  it('every message is one line', () => {
    for (const step of ['open', 'attach', 'mtu'] as const) {
      for (const errno of [1, 2, 13, 16, 19, 22, 77, 999]) expect(tapError('uk0', step, errno).message).not.toMatch(/\n/);
    }
  });
});

describe('openTap rejects bad arguments before touching the system', () => {
  it.each([
    ['', /empty/],
    ['a'.repeat(16), /16 bytes long, at most 15/],
    ['ééééééééé', /18 bytes long/], // 9 characters, 18 bytes in UTF-8
    ['uk 0', /whitespace/],
    ['uk/0', /"\/" or ":"/],
    ['uk:0', /"\/" or ":"/],
    ['..', /reserved/],
    ['uk\u00010', /printable ASCII/],
  ])('interface name %j', async (name, why) => {
    const e = await rejection(openTap(name));
    expect(e.code).toBe('EINVAL');
    expect(e.message).toMatch(why);
    expect(e.message).toMatch(/^tap:.+?: invalid interface name: /);
    expect(e.message).not.toMatch(/\n/);
  });

  it('MTU, MAC and ring size', async () => {
    expect((await rejection(openTap('uk0', { mtu: 9000 }))).message).toBe(
      'tap:uk0: invalid MTU 9000: must be an integer from 68 to 2000',
    );
    expect((await rejection(openTap('uk0', { mtu: 67 }))).code).toBe('EINVAL');
    expect((await rejection(openTap('uk0', { mac: new Uint8Array(5) }))).code).toBe('EINVAL');
    expect((await rejection(openTap('uk0', { mac: Uint8Array.of(1, 0, 0, 0, 0, 1) }))).message).toMatch(/unicast/);
    expect((await rejection(openTap('uk0', { ringSlots: 100 }))).message).toMatch(/power of two/);
  });
});

// ---- With root and /dev/net/tun: the real kernel ------------------------------

requires(...KERNEL).describe('TAP device against the Linux kernel', () => {
  const OUR_IP = ip4('10.77.0.2');
  const KERNEL_IP = ip4('10.77.0.1');
  const taps: TapDevice[] = [];
  const spaces: Netns[] = [];

  async function setup(label: string, opts: Parameters<typeof openTap>[1] = {}): Promise<{ ns: Netns; tap: TapDevice }> {
    const ns = createNetns(label);
    spaces.push(ns);
    const tap = await openTap(ns.tapName, opts);
    taps.push(tap);
    ns.adoptTap();
    return { ns, tap };
  }

  afterEach(async () => {
    await Promise.all(taps.splice(0).map((t) => t.close()));
    for (const ns of spaces.splice(0)) ns.destroy();
  });

  afterAll(() => {
    destroyAllNetns();
  });

  it('opens with a locally administered MAC and the default MTU', async () => {
    const { tap, ns } = await setup('basic');
    expect(tap.mac.length).toBe(6);
    expect(tap.mac[0] & 0x03).toBe(0x02); // unicast, locally administered
    expect(tap.mtu).toBe(1500);
    expect(tap.ifname).toBe(ns.tapName);
    await until('the reader thread', () => tap.stats().reader === 'running');
  });

  it('answers the kernel: ARP request arrives, ping -c 3 succeeds, the kernel learns our MAC', async () => {
    const { ns, tap } = await setup('ping');
    const peer = playPeer(tap, OUR_IP);
    const r = await ns.exec(`ping -c 3 -W 1 -i 0.2 ${ns.peerIp}`);
    expect(r.stdout).toMatch(/3 packets transmitted, 3 received/);
    expect(r.code).toBe(0);
    expect(peer.arpRequests).toBeGreaterThanOrEqual(1);
    expect(peer.echoRequests).toBe(3);
    const neigh = ns.execSync(`ip neigh show ${ns.peerIp} dev ${ns.tapName}`);
    expect(neigh).toContain(macText(tap.mac));
  });

  it('frames we send reach the kernel (its RX counter, its ARP replies)', async () => {
    const { ns, tap } = await setup('send');
    const peer = playPeer(tap, OUR_IP);
    const before = kernelCounters(ns);
    const sentBefore = tap.stats().framesOut;
    const N = 25;
    for (let i = 0; i < N; i++) {
      expect(tap.send(arpFrame(1, BROADCAST, tap.mac, OUR_IP, new Uint8Array(6), KERNEL_IP))).toBe(true);
    }
    await until('ARP replies', () => peer.arpReplies === N);
    const sent = tap.stats().framesOut - sentBefore;
    expect(sent).toBe(N);
    expect(kernelCounters(ns).rxPackets - before.rxPackets).toBe(sent);
    const kernelMac = ns.execSync(`cat /sys/class/net/${ns.tapName}/address`).trim();
    expect(macText(peer.kernelMac!)).toBe(kernelMac);
    // The kernel learned us from our requests.
    expect(ns.execSync(`ip neigh show ${ns.peerIp} dev ${ns.tapName}`)).toContain(macText(tap.mac));
  });

  it('10,000 echo requests to the kernel, 10,000 replies through the ring, none lost', async () => {
    const { tap } = await setup('flood');
    const peer = playPeer(tap, OUR_IP);
    const TOTAL = 10_000;
    const WINDOW = 64; // below the kernel's 1000-frame TAP queue: no loss by design
    const id = 0x4b55;
    const data = new Uint8Array(56).map((_, i) => i);
    let kernelMac: Uint8Array | undefined;
    let next = 0;
    let replies = 0;
    const seen = new Uint8Array(TOTAL);
    const sendEcho = (seq: number) =>
      tap.send(icmpEchoFrame(8, kernelMac!, tap.mac, OUR_IP, KERNEL_IP, id, seq, data));

    // Learn the kernel's MAC first (and let it learn ours), so no request
    // waits in its neighbour queue.
    tap.send(arpFrame(1, BROADCAST, tap.mac, OUR_IP, new Uint8Array(6), KERNEL_IP));
    await until('the kernel ARP reply', () => peer.kernelMac !== undefined);
    kernelMac = peer.kernelMac;

    const done = new Promise<void>((resolve) => {
      peer.onEchoReply = (replyId, seq) => {
        if (replyId !== id || seq >= TOTAL || seen[seq]) return;
        seen[seq] = 1;
        replies++;
        if (next < TOTAL) expect(sendEcho(next++)).toBe(true);
        if (replies === TOTAL) resolve();
      };
    });
    while (next < WINDOW) expect(sendEcho(next++)).toBe(true);

    // A lost frame would stall the window: fail with the numbers, not a timeout.
    let last = -1;
    const stalled = new Promise<never>((_, reject) => {
      const t = setInterval(() => {
        if (replies === last) reject(new Error(`stalled at ${replies} replies: ${JSON.stringify(tap.stats())}`));
        last = replies;
      }, 2000);
      void done.finally(() => clearInterval(t));
    });
    await Promise.race([done, stalled]);

    const s = tap.stats();
    expect(replies).toBe(TOTAL);
    expect(s.dropped.rx.ringFull).toBe(0);
    expect(s.dropped.rx.badLength).toBe(0);
    expect(s.framesIn).toBeGreaterThanOrEqual(TOTAL + 1);
    expect(s.framesOut).toBeGreaterThanOrEqual(TOTAL + 1);
    expect(Object.values(s.dropped.tx).every((n) => n === 0)).toBe(true);
  });

  it('counts frames as dropped when the ring is full', async () => {
    const { ns, tap } = await setup('full', { ringSlots: 4 });
    let replies = 0;
    const peer = playPeer(tap, OUR_IP);
    peer.onEchoReply = () => replies++;
    tap.send(arpFrame(1, BROADCAST, tap.mac, OUR_IP, new Uint8Array(6), KERNEL_IP));
    await until('the kernel ARP reply', () => peer.kernelMac !== undefined);
    // A permanent entry: no ARP traffic of the kernel's own while we stall.
    ns.execSync(`ip neigh replace ${ns.peerIp} lladdr ${macText(tap.mac)} dev ${ns.tapName} nud permanent`);
    const before = tap.stats();

    for (let seq = 0; seq < 16; seq++) {
      tap.send(icmpEchoFrame(8, peer.kernelMac!, tap.mac, OUR_IP, KERNEL_IP, 7, seq, new Uint8Array(8)));
    }
    // Keep the event loop from draining while the 16 replies come in: the
    // reader fills the 4 slots and must drop the other 12.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    await until('4 replies', () => replies === 4);
    await new Promise((r) => setTimeout(r, 100));

    const s = tap.stats();
    expect(replies).toBe(4);
    expect(s.dropped.rx.ringFull - before.dropped.rx.ringFull).toBe(12);
    expect(s.framesIn - before.framesIn).toBe(4);
  });

  it('sets the kernel side MTU; drops frames that do not fit, both ways', async () => {
    const { ns, tap } = await setup('mtu', { mtu: 1400 });
    expect(tap.mtu).toBe(1400);
    expect(ns.execSync(`cat /sys/class/net/${ns.tapName}/mtu`).trim()).toBe('1400');

    const big = new Uint8Array(1400 + 14 + 1);
    expect(tap.send(big)).toBe(false);
    expect(tap.send(new Uint8Array(13))).toBe(false);
    expect(tap.stats().dropped.tx.badLength).toBe(2);

    // Raise the kernel's MTU behind our back: its larger frames are dropped
    // by the reader, counted, and never reach the receiver.
    let received = 0;
    tap.setReceiver(() => received++);
    ns.execSync(`ip link set dev ${ns.tapName} mtu 1800`);
    ns.execSync(`ip neigh replace ${ns.peerIp} lladdr ${macText(tap.mac)} dev ${ns.tapName} nud permanent`);
    await ns.exec(`ping -c 1 -W 0.3 -s 1700 ${ns.peerIp}`);
    await until('the oversize drop', () => tap.stats().dropped.rx.badLength === 1);
    expect(received).toBe(0);
  });

  it('close() ends the reader thread and removes the interface; a second open/close cycle works', async () => {
    const ns = createNetns('close');
    spaces.push(ns);
    for (let cycle = 0; cycle < 2; cycle++) {
      const tap = await openTap(ns.tapName);
      ns.adoptTap();
      playPeer(tap, OUR_IP);
      const r = await ns.exec(`ping -c 1 -W 1 ${ns.peerIp}`);
      expect(r.code).toBe(0);

      await tap.close();
      expect(tap.stats().reader).toBe('stopped');
      expect(tap.send(new Uint8Array(60))).toBe(false);
      expect(tap.stats().dropped.tx.closed).toBe(1);
      await tap.close(); // idempotent
      // Created on open, the interface went away with the fd.
      expect((await ns.exec(`ip link show dev ${ns.tapName}`)).code).not.toBe(0);
    }
  });

  it('survives its namespace being deleted under it', async () => {
    const { ns, tap } = await setup('gone');
    playPeer(tap, OUR_IP);
    ns.destroy();
    await until('the reader to notice', () => tap.stats().reader === 'detached');
    expect(tap.send(new Uint8Array(60))).toBe(false);
    expect(tap.stats().dropped.tx.detached).toBe(1);
    await tap.close();
    expect(tap.stats().reader).toBe('detached');
  });

  it('attaches to a pre-created interface; EBUSY when it is taken; ENODEV for a non-TAP name', async () => {
    const ns = createNetns('pre', { tap: 'precreate' });
    spaces.push(ns);
    const tap = await openTap(ns.tapName);
    taps.push(tap);

    const busy = await rejection(openTap(ns.tapName));
    expect(busy.code).toBe('EBUSY');
    expect(busy.message).toBe(`tap:${ns.tapName}: cannot attach to the interface: it is already attached to another file descriptor`);
    const notTap = await rejection(openTap('lo'));
    expect(notTap.code).toBe('ENODEV');

    ns.adoptTap();
    playPeer(tap, OUR_IP);
    expect((await ns.exec(`ping -c 1 -W 1 ${ns.peerIp}`)).code).toBe(0);
    await tap.close();
    // Persistent: it outlives the fd (destroy() removes it with the namespace).
    expect((await ns.exec(`ip link show dev ${ns.tapName}`)).code).toBe(0);
  });

  it('harness: a TAP made inside the namespace is configured there and invisible outside', async () => {
    const ns = createNetns('inside', { tap: 'inside' });
    spaces.push(ns);
    expect(ns.execSync(`ip -o addr show dev ${ns.tapName}`)).toContain(`${ns.kernelIp}/${ns.prefix}`);
    expect((await ns.exec(`ip link show dev ${ns.tapName}`)).code).toBe(0);
    // From the root namespace the name is free: opening would make a new one.
    const tap = await openTap(ns.tapName);
    taps.push(tap);
    expect((await ns.exec(`ip -o link show dev ${ns.tapName}`)).stdout).toMatch(/NO-CARRIER/);
  });

  it('resolves a %d name to the interface the kernel picked', async () => {
    const tap = await openTap('uktpick%d');
    taps.push(tap);
    expect(tap.ifname).toMatch(/^uktpick\d+$/);
    // Never adopted: it stays down in the root namespace and goes with close().
  });
});
