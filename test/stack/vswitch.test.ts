// The virtual switch: learning and flooding, asynchronous delivery of copies,
// every fault with a fixed seed (rates checked against binomial tolerances),
// counters, bounds, determinism, the capture tap, and its PRNG.

import { describe, expect, it } from 'vitest';
import { RealClock } from '../../stack/time/real-clock.js';
import { VirtualClock } from '../../stack/time/virtual-clock.js';
import { Prng } from '../../stack/vswitch/prng.js';
import {
  VSwitch,
  type FaultEvent,
  type LinkFaults,
  type VSwitchOptions,
  type VSwitchPort,
} from '../../stack/vswitch/vswitch.js';

const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
const ETHERTYPE_TEST = 0x88b5; // IEEE "local experimental"

/** An Ethernet frame of `length` bytes carrying a 32-bit id after the header. */
function frame(dst: Uint8Array, src: Uint8Array, id: number, length = 64): Uint8Array {
  const f = new Uint8Array(length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = ETHERTYPE_TEST >> 8;
  f[13] = ETHERTYPE_TEST & 0xff;
  new DataView(f.buffer).setUint32(14, id);
  for (let i = 18; i < length; i++) f[i] = (id * 31 + i) & 0xff;
  return f;
}

function idOf(f: Uint8Array): number {
  return new DataView(f.buffer, f.byteOffset, f.byteLength).getUint32(14);
}

interface Received {
  t: number;
  bytes: Uint8Array;
}

/** Records copies of what a port receives (the view is only valid during the call). */
function collect(port: VSwitchPort, clock: { now(): number }): Received[] {
  const got: Received[] = [];
  port.setReceiver((f) => got.push({ t: clock.now(), bytes: f.slice() }));
  return got;
}

function setup(nPorts: number, opts: VSwitchOptions = {}, faults: LinkFaults[] = []) {
  const clock = new VirtualClock();
  const sw = new VSwitch(clock, opts);
  const ports = Array.from({ length: nPorts }, (_, i) => sw.attach({ faults: faults[i] }));
  const inbox = ports.map((p) => collect(p, clock));
  return { clock, sw, ports, inbox };
}

/** Two-sided tolerance for a binomial count: `sigmas` standard deviations. */
function binomialTolerance(n: number, p: number, sigmas = 4.5): number {
  return sigmas * Math.sqrt(n * p * (1 - p));
}

describe('VSwitch forwarding', () => {
  it('floods unknown unicast, then forwards by learned addresses', () => {
    const { clock, ports, inbox } = setup(3);
    const [a, b, c] = ports;
    a.send(frame(b.mac, a.mac, 1));
    clock.advance(0);
    expect(inbox.map((x) => x.length)).toEqual([0, 1, 1]); // b unknown: flooded
    b.send(frame(a.mac, b.mac, 2));
    clock.advance(0);
    expect(inbox.map((x) => x.length)).toEqual([1, 1, 1]); // a was learned
    a.send(frame(b.mac, a.mac, 3));
    clock.advance(0);
    expect(inbox.map((x) => x.length)).toEqual([1, 2, 1]); // b was learned
    expect(idOf(inbox[1][1].bytes)).toBe(3);
    a.send(frame(a.mac, a.mac, 4)); // for its own segment: filtered
    clock.advance(0);
    expect(inbox.map((x) => x.length)).toEqual([1, 2, 1]);
  });

  it('floods broadcast to every other port, never back to the sender', () => {
    const { clock, ports, inbox } = setup(3);
    ports[1].send(frame(BROADCAST, ports[1].mac, 7));
    clock.advance(0);
    expect(inbox.map((x) => x.length)).toEqual([1, 0, 1]);
    expect(inbox[0][0].bytes).toEqual(frame(BROADCAST, ports[1].mac, 7));
    expect(ports[0].counters.framesOut).toBe(1);
    expect(ports[1].counters.framesIn).toBe(1);
    expect(ports[1].counters.bytesIn).toBe(64);
  });

  it('delivers asynchronously, never inside send(), even for instant replies', () => {
    const { clock, ports } = setup(2);
    const [a, b] = ports;
    let inSend = 0;
    let maxDepth = 0;
    let exchanges = 0;
    const reply = (port: VSwitchPort, peer: VSwitchPort) => (f: Uint8Array) => {
      maxDepth = Math.max(maxDepth, inSend);
      if (++exchanges >= 200) return;
      inSend++;
      port.send(frame(peer.mac, port.mac, idOf(f) + 1));
      inSend--;
    };
    a.setReceiver(reply(a, b));
    b.setReceiver(reply(b, a));
    inSend++;
    expect(a.send(frame(b.mac, a.mac, 0))).toBe(true);
    inSend--;
    expect(exchanges).toBe(0);
    clock.advance(0);
    expect(exchanges).toBe(200);
    expect(maxDepth).toBe(0);
    expect(clock.now()).toBe(0);
  });

  it('a port attached with batches ends each turn\'s frames with one batch end, after the last of them; other ports offer none', () => {
    const clock = new VirtualClock();
    const sw = new VSwitch(clock);
    const a = sw.attach();
    const b = sw.attach({ batches: true });
    const log: string[] = [];
    b.setReceiver((f) => log.push(`frame ${idOf(f)}`));
    b.setBatchEnd!(() => log.push('end'));
    expect(a.setBatchEnd).toBeUndefined();
    for (let id = 1; id <= 3; id++) a.send(frame(b.mac, a.mac, id));
    clock.advance(0);
    expect(log).toEqual(['frame 1', 'frame 2', 'frame 3', 'end']);
    // A turn that hands the port nothing ends no batch for it.
    b.send(frame(a.mac, b.mac, 9));
    clock.advance(0);
    expect(log).toHaveLength(4);
    a.send(frame(b.mac, a.mac, 4));
    clock.advance(5);
    expect(log.slice(4)).toEqual(['frame 4', 'end']);
  });

  it('copies frames on send: the sender may reuse its buffer at once', () => {
    const { clock, ports, inbox } = setup(2);
    const f = frame(ports[1].mac, ports[0].mac, 42);
    const original = f.slice();
    ports[0].send(f);
    f.fill(0xee);
    clock.advance(0);
    expect(inbox[1][0].bytes).toEqual(original);
  });

  it('counts frames for a port without a receiver, and runts', () => {
    const clock = new VirtualClock();
    const sw = new VSwitch(clock);
    const a = sw.attach();
    sw.attach(); // no receiver set
    a.send(frame(BROADCAST, a.mac, 1));
    expect(a.send(new Uint8Array(10))).toBe(false);
    clock.advance(0);
    expect(sw.port(1).counters.dropped.noReceiver).toBe(1);
    expect(a.counters.dropped.runt).toBe(1);
    expect(sw.inFlight).toBe(0);
  });

  it('works on the real clock too', async () => {
    const clock = new RealClock();
    const sw = new VSwitch(clock, { seed: 3 });
    const a = sw.attach({ faults: { delay: 2 } });
    const b = sw.attach();
    const got = new Promise<number>((resolve) => b.setReceiver((f) => resolve(idOf(f))));
    const sent = clock.now();
    a.send(frame(b.mac, a.mac, 99));
    expect(await got).toBe(99);
    expect(clock.now() - sent).toBeGreaterThanOrEqual(2);
  });
});

describe('VSwitch faults', () => {
  it('loses frames at the configured rate (binomial tolerance), silently', () => {
    const n = 10_000;
    const p = 0.1;
    const { clock, ports, inbox } = setup(2, { seed: 7 }, [{ loss: p }]);
    const [a, b] = ports;
    let refused = 0;
    for (let i = 0; i < n; i++) if (!a.send(frame(b.mac, a.mac, i))) refused++;
    expect(refused).toBe(0); // loss is silent, as on a wire
    clock.advance(1);
    const lost = n - inbox[1].length;
    expect(Math.abs(lost - n * p)).toBeLessThan(binomialTolerance(n, p));
    expect(a.counters.dropped.loss).toBe(lost);
    expect(a.counters.framesIn).toBe(n);
    expect(b.counters.framesOut).toBe(n - lost);
  });

  it('duplicates frames at the configured rate; the copy follows the original', () => {
    const n = 4000;
    const p = 0.25;
    const { clock, ports, inbox } = setup(2, { seed: 11 }, [{ duplicate: p }]);
    const [a, b] = ports;
    for (let i = 0; i < n; i++) a.send(frame(b.mac, a.mac, i));
    clock.advance(1);
    const ids = inbox[1].map((r) => idOf(r.bytes));
    const extra = ids.length - n;
    expect(a.counters.duplicated).toBe(extra);
    expect(Math.abs(extra - n * p)).toBeLessThan(binomialTolerance(n, p));
    // In order, each id once or twice in a row, the copy byte-identical.
    const problems: string[] = [];
    let next = 0;
    for (let k = 0; k < ids.length; k++) {
      if (ids[k] === next - 1) {
        const same = Buffer.from(inbox[1][k].bytes).equals(inbox[1][k - 1].bytes);
        if (!same) problems.push(`copy of ${ids[k]} differs`);
      } else if (ids[k] !== next++) {
        problems.push(`expected ${next - 1} at ${k}, got ${ids[k]}`);
      }
    }
    expect(problems).toEqual([]);
    expect(next).toBe(n);
  });

  it('reorders by holding frames back; every frame still arrives once', () => {
    const n = 1000;
    const { clock, ports, inbox } = setup(2, { seed: 5 }, [{ reorder: 0.1, reorderDelay: 1 }]);
    const [a, b] = ports;
    for (let i = 0; i < n; i++) {
      a.send(frame(b.mac, a.mac, i));
      clock.advance(0.1);
    }
    // A clean tail overtakes any frame held back at the very end.
    a.setFaults({});
    for (let i = n; i < n + 20; i++) {
      a.send(frame(b.mac, a.mac, i));
      clock.advance(0.1);
    }
    clock.advance(10);
    const ids = inbox[1].map((r) => idOf(r.bytes));
    expect([...ids].sort((x, y) => x - y)).toEqual(Array.from({ length: n + 20 }, (_, i) => i));
    let late = 0;
    let highest = -1;
    for (const id of ids) {
      if (id < highest) late++;
      highest = Math.max(highest, id);
    }
    expect(a.counters.reordered).toBeGreaterThan(50);
    expect(late).toBe(a.counters.reordered);
  });

  it('corrupts exactly the byte it reports, never the Ethernet header', () => {
    const events: FaultEvent[] = [];
    const { clock, ports, inbox } = setup(2, { seed: 9, onFault: (e) => events.push(e) }, [{ corrupt: 1 }]);
    const [a, b] = ports;
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 300; i++) {
      const f = frame(b.mac, a.mac, i, 60 + (i % 100));
      sent.push(f.slice());
      a.send(f);
    }
    clock.advance(0);
    expect(a.counters.corrupted).toBe(300);
    const corruptions = events.filter((e) => e.kind === 'corrupt');
    expect(corruptions).toHaveLength(300);
    inbox[1].forEach((r, i) => {
      const { offset, mask } = corruptions[i];
      expect(offset).toBeGreaterThanOrEqual(14);
      expect(mask).toBeGreaterThan(0);
      const diff = [...r.bytes].flatMap((byte, k) => (byte !== sent[i][k] ? [k] : []));
      expect(diff).toEqual([offset]);
      expect(r.bytes[offset!] ^ sent[i][offset!]).toBe(mask);
    });
  });

  it('corrupts at the configured rate, and IPv4/UDP checksums catch every corrupted frame', () => {
    const n = 3000;
    const p = 0.3;
    const { clock, ports, inbox } = setup(2, { seed: 21 }, [{ corrupt: p }]);
    const [a, b] = ports;
    for (let i = 0; i < n; i++) a.send(udpFrame(b.mac, a.mac, i, 20 + (i % 200)));
    clock.advance(0);
    const bad = inbox[1].filter((r) => !checksumsValid(r.bytes)).length;
    expect(bad).toBe(a.counters.corrupted);
    expect(Math.abs(bad - n * p)).toBeLessThan(binomialTolerance(n, p));
  });

  it('drops packets larger than the MTU of the direction, counted where they drop', () => {
    const clock = new VirtualClock();
    const sw = new VSwitch(clock);
    const a = sw.attach(); // MTU 1500
    const b = sw.attach({ mtu: 1000 });
    const got = collect(b, clock);
    expect(a.send(frame(b.mac, a.mac, 1, 14 + 1000))).toBe(true);
    expect(a.send(frame(b.mac, a.mac, 2, 14 + 1001))).toBe(true); // fits a's cable, not b's
    expect(a.send(frame(b.mac, a.mac, 3, 14 + 1501))).toBe(false); // exceeds a's own MTU
    clock.advance(0);
    expect(got.map((r) => idOf(r.bytes))).toEqual([1]);
    expect(b.counters.dropped.mtu).toBe(1);
    expect(a.counters.dropped.mtu).toBe(1);
    // A narrower link MTU in the faults (a black hole in the path).
    a.setFaults({ mtu: 576 }, 'tx');
    expect(a.send(frame(b.mac, a.mac, 4, 14 + 577))).toBe(false);
    expect(a.send(frame(b.mac, a.mac, 5, 14 + 576))).toBe(true);
    clock.advance(0);
    expect(got.map((r) => idOf(r.bytes))).toEqual([1, 5]);
    expect(a.counters.dropped.mtu).toBe(2);
  });

  it('serializes at the configured bandwidth, after the fixed delay is added', () => {
    // 8 Mbit/s: a 1000-byte frame takes exactly 1 ms on the wire.
    const { clock, ports, inbox } = setup(2, {}, [{ bandwidth: 8_000_000, delay: 2 }]);
    const [a, b] = ports;
    for (let i = 0; i < 5; i++) a.send(frame(b.mac, a.mac, i, 1000));
    clock.advance(100);
    expect(inbox[1].map((r) => r.t)).toEqual([3, 4, 5, 6, 7]);
    // An idle line starts at once.
    a.send(frame(b.mac, a.mac, 9, 500));
    clock.advance(100);
    expect(inbox[1][5].t).toBe(100 + 0.5 + 2);
  });

  it('tail-drops beyond the queue bound and accepts again as the queue drains', () => {
    const { clock, ports, inbox } = setup(2, {}, [{ bandwidth: 8_000_000, queueBytes: 3000 }]);
    const [a, b] = ports;
    const accepted = Array.from({ length: 5 }, (_, i) => a.send(frame(b.mac, a.mac, i, 1000)));
    expect(accepted).toEqual([true, true, true, false, false]);
    expect(a.counters.dropped.queueFull).toBe(2);
    clock.advance(1); // the first frame is on the wire and out
    expect(a.send(frame(b.mac, a.mac, 5, 1000))).toBe(true);
    expect(a.send(frame(b.mac, a.mac, 6, 1000))).toBe(false);
    clock.advance(100);
    expect(inbox[1].map((r) => [idOf(r.bytes), r.t])).toEqual([
      [0, 1],
      [1, 2],
      [2, 3],
      [5, 4],
    ]);
    expect(a.counters.dropped.queueFull).toBe(3);
  });

  it('applies delay and jitter within bounds, per direction', () => {
    const clock = new VirtualClock();
    const sw = new VSwitch(clock, { seed: 4 });
    const a = sw.attach({ txFaults: { delay: 10, jitter: 5 }, rxFaults: { delay: 1 } });
    const b = sw.attach({ faults: { delay: 3 } });
    const atB = collect(b, clock);
    const atA = collect(a, clock);
    for (let i = 0; i < 200; i++) a.send(frame(b.mac, a.mac, i));
    clock.advance(100);
    for (const r of atB) {
      expect(r.t).toBeGreaterThanOrEqual(13);
      expect(r.t).toBeLessThan(18);
    }
    expect(new Set(atB.map((r) => r.t)).size).toBeGreaterThan(100);
    const start = clock.now();
    b.send(frame(a.mac, b.mac, 1000));
    clock.advance(100);
    expect(atA[0].t - start).toBe(3 + 1);
  });

  it('bounds the bytes a port may hold in the switch', () => {
    const clock = new VirtualClock();
    const sw = new VSwitch(clock);
    const a = sw.attach({ faults: { delay: 10 }, maxQueuedBytes: 5000 });
    const b = sw.attach();
    const got = collect(b, clock);
    const accepted = Array.from({ length: 8 }, (_, i) => a.send(frame(b.mac, a.mac, i, 1000)));
    expect(accepted).toEqual([true, true, true, true, true, false, false, false]);
    expect(a.heldBytes).toBe(5000);
    expect(a.counters.dropped.queueFull).toBe(3);
    clock.advance(20);
    expect(got).toHaveLength(5);
    expect(a.heldBytes).toBe(0);
    expect(a.send(frame(b.mac, a.mac, 9, 1000))).toBe(true);
  });

  it('changes faults at run time: cutting and restoring a link mid-stream', () => {
    const { clock, ports, inbox } = setup(2);
    const [a, b] = ports;
    const sendSome = (from: number) => {
      for (let i = from; i < from + 5; i++) {
        a.send(frame(b.mac, a.mac, i));
        clock.advance(1);
      }
    };
    sendSome(0);
    a.setFaults({ loss: 1 });
    expect(a.getFaults('tx')).toEqual({ loss: 1 });
    sendSome(5);
    a.setFaults({});
    sendSome(10);
    expect(inbox[1].map((r) => idOf(r.bytes))).toEqual([0, 1, 2, 3, 4, 10, 11, 12, 13, 14]);
    expect(a.counters.dropped.loss).toBe(5);
    expect(() => a.setFaults({ loss: 1.5 })).toThrow(RangeError);
    expect(() => a.setFaults({ delay: -1 })).toThrow(RangeError);
  });

  it('is deterministic: the same seed gives the same deliveries, another seed does not', () => {
    const run = (seed: number) => {
      const faults: LinkFaults = {
        loss: 0.05,
        duplicate: 0.05,
        reorder: 0.05,
        corrupt: 0.05,
        delay: 1,
        jitter: 2,
        bandwidth: 50_000_000,
        queueBytes: 20_000,
      };
      const { clock, ports, inbox } = setup(3, { seed }, [faults, faults, {}]);
      for (let i = 0; i < 600; i++) {
        const from = ports[i % 3];
        const to = ports[(i + 1) % 3];
        from.send(frame(i % 7 === 0 ? BROADCAST : to.mac, from.mac, i, 60 + ((i * 37) % 1400)));
        if (i % 10 === 0) clock.advance(0.3);
      }
      clock.advance(1000);
      return inbox.map((list) => list.map((r) => `${r.t}:${Buffer.from(r.bytes).toString('hex')}`));
    };
    const first = run(1234);
    expect(run(1234)).toEqual(first);
    expect(run(1235)).not.toEqual(first);
  });

  it('records every delivered (or every sent) frame in a tap, with wall time', () => {
    const records: { len: number; wall: number }[] = [];
    const tap = { write: (f: Uint8Array, wall: number) => records.push({ len: f.length, wall }) };
    const { clock, sw, ports } = setup(3, { tap }, [{ delay: 5 }]);
    ports[0].send(frame(BROADCAST, ports[0].mac, 1, 100));
    clock.advance(10);
    expect(records).toEqual([
      { len: 100, wall: clock.wallNow() - 5 },
      { len: 100, wall: clock.wallNow() - 5 },
    ]);
    records.length = 0;
    sw.setTap(tap, 'sent');
    ports[0].send(frame(BROADCAST, ports[0].mac, 2, 80));
    expect(records).toEqual([{ len: 80, wall: clock.wallNow() }]);
    sw.setTap(undefined);
    ports[0].send(frame(BROADCAST, ports[0].mac, 3, 80));
    clock.advance(10);
    expect(records).toHaveLength(1);
  });
});

describe('Prng', () => {
  it('repeats a sequence for a seed and differs across seeds', () => {
    const take = (seed: number) => {
      const r = new Prng(seed);
      return Array.from({ length: 8 }, () => r.next());
    };
    expect(take(42)).toEqual(take(42));
    expect(take(42)).not.toEqual(take(43));
    expect(take(0).some((x) => x !== 0)).toBe(true);
  });

  it('draws floats in [0, 1) and integers in [0, n), roughly uniformly', () => {
    const r = new Prng(1);
    const buckets = new Array(10).fill(0);
    let sum = 0;
    const n = 100_000;
    let outOfRange = 0;
    for (let i = 0; i < n; i++) {
      const x = r.float();
      if (!(x >= 0 && x < 1)) outOfRange++;
      sum += x;
      const k = r.int(10);
      if (!(Number.isInteger(k) && k >= 0 && k < 10)) outOfRange++;
      buckets[k]++;
    }
    expect(outOfRange).toBe(0);
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.01);
    for (const count of buckets) expect(Math.abs(count - n / 10)).toBeLessThan(binomialTolerance(n, 0.1));
  });
});

// ---- IPv4/UDP frames with correct checksums --------------------------------------

function onesComplementSum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  for (let i = start; i < end; i += 2) sum += (bytes[i] << 8) | (i + 1 < end ? bytes[i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** Ethernet + IPv4 (10.0.0.1 -> 10.0.0.2) + UDP 4000 -> 5000 with `payload` bytes. */
function udpFrame(dst: Uint8Array, src: Uint8Array, id: number, payload: number): Uint8Array {
  const f = new Uint8Array(14 + 20 + 8 + payload);
  const v = new DataView(f.buffer);
  f.set(dst, 0);
  f.set(src, 6);
  v.setUint16(12, 0x0800);
  v.setUint8(14, 0x45);
  v.setUint16(16, 20 + 8 + payload);
  v.setUint16(18, id & 0xffff);
  v.setUint8(22, 64);
  v.setUint8(23, 17);
  v.setUint32(26, 0x0a000001);
  v.setUint32(30, 0x0a000002);
  v.setUint16(24, ~onesComplementSum(f, 14, 34) & 0xffff);
  v.setUint16(34, 4000);
  v.setUint16(36, 5000);
  v.setUint16(38, 8 + payload);
  for (let i = 0; i < payload; i++) f[42 + i] = (id + i * 7) & 0xff;
  const pseudo = onesComplementSum(f, 26, 34, 17 + 8 + payload);
  v.setUint16(40, ~onesComplementSum(f, 34, f.length, pseudo) & 0xffff || 0xffff);
  return f;
}

function checksumsValid(f: Uint8Array): boolean {
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  if (v.getUint16(12) !== 0x0800 || onesComplementSum(f, 14, 34) !== 0xffff) return false;
  const udpLength = v.getUint16(38);
  if (v.getUint16(16) !== 20 + udpLength || 34 + udpLength > f.length) return false;
  const pseudo = onesComplementSum(f, 26, 34, 17 + udpLength);
  return onesComplementSum(f, 34, 34 + udpLength, pseudo) === 0xffff;
}
