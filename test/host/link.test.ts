// The shared-memory link between tender and guest, with both ends in this
// thread: frames cross through arena slots both ways, the guest's stack reads
// received frames where they lie (no RX chunk), full rings and early or
// malformed frames are dropped and counted, never blocking.

import { describe, expect, it } from 'vitest';
import { createSharedArena } from '../../host/hotpath-shared.js';
import { GuestDevice } from '../../host/link/guest-device.js';
import { createLinkConfig } from '../../host/link/layout.js';
import { TenderLink } from '../../host/link/tender-device.js';
import { createTsEngineOver, createWasmEngineOnMemory, OwnerKind, ownerTag, type HotPath } from '../../stack/hotpath/index.js';
import { createEngine } from '../../host/hotpath.js';
import { Stack } from '../../stack/stack.js';
import { RealClock } from '../../stack/time/real-clock.js';
import type { Connection } from '../../stack/tcp/connection.js';

const GUEST_MAC = Uint8Array.of(0x02, 0x75, 0x6b, 0, 0, 1);
const TENDER_MAC = Uint8Array.of(0x52, 0x55, 0x0a, 0, 2, 2);

async function guestEngine(engine: 'wasm' | 'ts', pages = 64): Promise<{ hot: HotPath; buffer: SharedArrayBuffer }> {
  const arena = await createSharedArena(engine, pages);
  const hot =
    engine === 'wasm'
      ? createWasmEngineOnMemory(arena.module!, arena.memory as WebAssembly.Memory)
      : createTsEngineOver(arena.buffer);
  return { hot, buffer: arena.buffer };
}

function frame(len: number, seed: number): Uint8Array {
  const f = new Uint8Array(len);
  for (let i = 0; i < len; i++) f[i] = (i * 7 + seed) & 0xff;
  return f;
}

describe('the link', () => {
  it('drops (and counts) frames sent before the guest described its rings', async () => {
    const { hot, buffer } = await guestEngine('ts');
    const config = createLinkConfig(GUEST_MAC);
    const tender = new TenderLink(buffer, config, { mac: TENDER_MAC });
    expect(tender.send(frame(60, 1))).toBe(false);
    expect(tender.stats().rxNotReady).toBe(1);
    const guest = new GuestDevice(hot, config);
    expect(hot.chunksByKind(OwnerKind.Device)).toBe(config.rxSlots + config.txSlots);
    expect(tender.send(frame(60, 2))).toBe(true);
    const off = guest.read();
    expect(off).toBeGreaterThan(0);
    expect(hot.bytes.subarray(off, off + guest.readLength)).toEqual(frame(60, 2));
    guest.release();
    expect(guest.read()).toBe(0);
    tender.close();
    guest.stop();
  });

  it('counts full rings and bad lengths both ways, and recovers when slots come back', async () => {
    const { hot, buffer } = await guestEngine('ts');
    const config = createLinkConfig(GUEST_MAC, 1500, 2, 2);
    const guest = new GuestDevice(hot, config);
    const tender = new TenderLink(buffer, config, { mac: TENDER_MAC });
    // Towards the guest: nobody drains, so the third frame finds no slot.
    expect([tender.send(frame(100, 1)), tender.send(frame(200, 2)), tender.send(frame(300, 3))]).toEqual([true, true, false]);
    expect(tender.send(frame(13, 4))).toBe(false);
    expect(tender.send(frame(1600, 5))).toBe(false);
    expect(tender.stats()).toMatchObject({ rxRingFull: 1, rxBadLength: 2, toGuest: { frames: 2, bytes: 300 } });
    expect(guest.read()).not.toBe(0);
    expect(guest.readLength).toBe(100);
    guest.release();
    expect(tender.send(frame(300, 3))).toBe(true);
    // From the guest: the tender has no receiver yet, so nothing drains.
    expect([guest.send(frame(64, 1)), guest.send(frame(64, 2)), guest.send(frame(64, 3))]).toEqual([true, true, false]);
    expect(guest.send(frame(1515, 4))).toBe(false);
    expect(tender.stats()).toMatchObject({ txRingFull: 1, txBadLength: 1 });
    // A receiver starts the tender's pump: both waiting frames arrive, in order.
    const got: Uint8Array[] = [];
    tender.setReceiver((f) => got.push(f.slice()));
    await until(() => got.length === 2);
    expect(got).toEqual([frame(64, 1), frame(64, 2)]);
    expect(guest.send(frame(64, 3))).toBe(true);
    await until(() => got.length === 3);
    tender.close();
    guest.stop();
  });

  it('the tender hands the frames of one pass over the TX ring to its receiver, then ends the batch once', async () => {
    const { hot, buffer } = await guestEngine('ts');
    const config = createLinkConfig(GUEST_MAC);
    const guest = new GuestDevice(hot, config);
    const tender = new TenderLink(buffer, config, { mac: TENDER_MAC });
    const log: string[] = [];
    tender.setBatchEnd(() => log.push('end'));
    tender.setReceiver((f) => log.push(`frame ${f.length}`));
    for (const len of [60, 61, 62]) expect(guest.send(frame(len, len))).toBe(true);
    for (let i = 0; i < 100 && log.length < 4; i++) await new Promise((r) => setTimeout(r, 5));
    expect(log).toEqual(['frame 60', 'frame 61', 'frame 62', 'end']);
    tender.close();
    guest.stop();
  });

  it.each(['wasm', 'ts'] as const)('carries TCP between a guest stack (%s, in place) and a tender stack: 1 MB echoed intact', async (engine) => {
    const { hot, buffer } = await guestEngine(engine, 128);
    const config = createLinkConfig(GUEST_MAC);
    const guestDev = new GuestDevice(hot, config);
    const tenderDev = new TenderLink(buffer, config, { mac: TENDER_MAC });
    const clock = new RealClock();
    const guest = new Stack({ device: guestDev, hotpath: hot, clock, ipv4: { address: '10.0.2.15', prefix: 24 } });
    guestDev.setInPlaceReceiver((off, len) => guest.receiveInPlace(off, len));
    void guestDev.run();
    const outside = new Stack({
      device: tenderDev,
      hotpath: await createEngine(engine, 4 * 1024 * 1024),
      clock,
      ipv4: { address: '10.0.2.2', prefix: 24 },
    });

    // The guest takes everything in (views of its arena), then sends it back and closes.
    let maxRxChunks = 0;
    guest.tcp.listen(7).onConnection = (conn: Connection) => {
      void collect(conn, () => {
        maxRxChunks = Math.max(maxRxChunks, hot.chunksByKind(OwnerKind.Rx));
      }).then(async (bytes) => {
        const writer = conn.writable.getWriter();
        await writer.write(bytes);
        await writer.close();
      });
    };
    const conn = await outside.tcp.connect('10.0.2.15', 7);
    const data = frame(1024 * 1024, 9);
    const echoed = collect(conn);
    const writer = conn.writable.getWriter();
    await writer.write(data);
    await writer.close();
    const received = await echoed;
    const got = received.length;
    expect(got).toBe(data.length);
    expect(Buffer.compare(received, data)).toBe(0); // (toEqual on a megabyte is slow)
    expect(maxRxChunks).toBe(0); // every frame was read in its device slot
    const s = guest.stats();
    expect(s.drops.rxArenaFull).toBe(0);
    expect(s.frames.rx).toBe(guestDev.framesIn);
    expect(tenderDev.stats()).toMatchObject({ rxRingFull: 0, txRingFull: 0, rxNotReady: 0, receiverErrors: 0 });
    guest.shutdown();
    outside.shutdown();
    guestDev.stop();
    tenderDev.close();
  });
});

describe('Stack.receiveInPlace', () => {
  it('applies the same checks and counters as receive(), without taking an RX chunk', async () => {
    const { hot } = await guestEngine('ts');
    const sent: Uint8Array[] = [];
    const device = { mac: GUEST_MAC, mtu: 1500, send: (f: Uint8Array) => sent.push(f.slice()) > 0, setReceiver: () => {} };
    const stack = new Stack({ device, hotpath: hot, clock: new RealClock(), ipv4: { address: '10.0.2.15', prefix: 24 } });
    sent.length = 0; // the gratuitous ARP announcement
    const tag = ownerTag(OwnerKind.Device, 1);
    const slot = hot.alloc(tag); // a device-owned slot, as the link's
    const inUse = hot.chunksInUse();
    const place = (bytes: Uint8Array) => {
      hot.bytes.set(bytes, slot);
      stack.receiveInPlace(slot, bytes.length);
    };
    // An ARP request for our address, broadcast: answered.
    const arp = Uint8Array.of(
      ...[255, 255, 255, 255, 255, 255], ...TENDER_MAC, 0x08, 0x06,
      0, 1, 8, 0, 6, 4, 0, 1, ...TENDER_MAC, 10, 0, 2, 2, 0, 0, 0, 0, 0, 0, 10, 0, 2, 15,
    );
    place(arp);
    expect(sent).toHaveLength(1);
    expect(hot.chunksInUse()).toBe(inUse); // no RX chunk taken, the slot left alone
    expect(hot.ownerOf(slot)).toBe(tag);
    place(arp.subarray(0, 10));
    const other = arp.slice();
    other.set([2, 0, 0, 0, 0, 9], 0);
    place(other);
    stack.shutdown();
    place(arp);
    const s = stack.stats();
    expect(s.frames.rx).toBe(4);
    expect(s.drops).toMatchObject({ frameTooShort: 1, notOurMac: 1, stopped: 1 });
    hot.free(slot);
  });
});

/** Everything the connection receives until the peer's FIN (callback API). */
function collect(conn: Connection, onChunk?: () => void): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  return new Promise((resolve) => {
    conn.onData = (view) => {
      onChunk?.();
      parts.push(view.slice());
    };
    conn.onEnd = () => {
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let off = 0;
      for (const p of parts) {
        out.set(p, off);
        off += p.length;
      }
      resolve(out);
    };
  });
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 2));
  }
}
