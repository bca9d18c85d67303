// The link across the process boundary (host/isolate/frame-stream.ts): frames
// arrive whole and in order however the bytes are split, one read is one
// batch, too-long frames are dropped and counted, a corrupt length closes the
// link (counted), and a peer that does not read makes frames drop, counted,
// with bounded memory.

import { Duplex, PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FrameStream } from '../../host/isolate/frame-stream.js';

const MAC = Uint8Array.of(2, 0, 0, 0, 0, 1);

/** Two ends of an in-memory byte stream. */
function pair(): [Duplex, Duplex] {
  const ab = new PassThrough();
  const ba = new PassThrough();
  // Destroying one end (a corrupt length) aborts the other's halves: as a socket's peer would see a reset.
  const ends: [Duplex, Duplex] = [Duplex.from({ readable: ba, writable: ab }), Duplex.from({ readable: ab, writable: ba })];
  for (const s of [ab, ba, ...ends]) s.on('error', () => {});
  return ends;
}

const tick = () => new Promise((r) => setTimeout(r, 10));

function frame(n: number, fill: number): Uint8Array {
  return new Uint8Array(n).fill(fill);
}

describe('FrameStream', () => {
  it('carries frames whole and in order, a turn\'s frames in one write and one batch', async () => {
    const [a, b] = pair();
    const left = new FrameStream(a, MAC, 1500);
    const right = new FrameStream(b, MAC, 1500);
    const got: number[][] = [];
    let batches = 0;
    right.setReceiver((f) => got.push([f.length, f[0]!]));
    right.setBatchEnd(() => batches++);
    for (let i = 1; i <= 5; i++) expect(left.send(frame(60 * i, i))).toBe(true);
    await tick();
    expect(got).toEqual([[60, 1], [120, 2], [180, 3], [240, 4], [300, 5]]);
    expect(batches).toBe(1);
    expect(left.stats()).toMatchObject({ framesOut: 5, bytesOut: 900 });
    expect(right.stats()).toMatchObject({ framesIn: 5, bytesIn: 900 });
  });

  it('reassembles frames split anywhere across reads, the length too', async () => {
    const [a, b] = pair();
    const right = new FrameStream(b, MAC, 1500);
    const got: number[] = [];
    right.setReceiver((f) => got.push(f.length));
    const bytes = Buffer.concat([Buffer.from([0, 3, 9, 9, 9]), Buffer.from([0x05, 0xdc]), Buffer.alloc(1500, 7)]);
    for (let i = 0; i < bytes.length; i += 3) {
      a.write(bytes.subarray(i, i + 3));
      await new Promise((r) => setImmediate(r));
    }
    await tick();
    expect(got).toEqual([3, 1500]);
  });

  it('drops a frame longer than the link takes, counted, and sends the rest', async () => {
    const [a, b] = pair();
    const left = new FrameStream(a, MAC, 1500);
    const right = new FrameStream(b, MAC, 1500);
    const got: number[] = [];
    right.setReceiver((f) => got.push(f.length));
    expect(left.send(frame(1519, 1))).toBe(false);
    expect(left.send(frame(1518, 1))).toBe(true);
    await tick();
    expect(got).toEqual([1518]);
    expect(left.stats().dropsTooLong).toBe(1);
  });

  it('closes on a corrupt length (0, or beyond the largest frame), counted, delivering nothing after it', async () => {
    for (const bad of [[0, 0], [0xff, 0xff]]) {
      const [a, b] = pair();
      const right = new FrameStream(b, MAC, 1500);
      const got: number[] = [];
      right.setReceiver((f) => got.push(f.length));
      a.write(Buffer.from([0, 2, 1, 1, ...bad, 0, 2, 3, 3]));
      await tick();
      expect(got).toEqual([2]);
      expect(right.stats().corrupt).toBe(1);
      expect(right.send(frame(60, 1))).toBe(false);
    }
  });

  it('drops frames, counted, once a megabyte waits for a peer that does not read', async () => {
    const [a] = pair(); // nobody reads the other end
    const left = new FrameStream(a, MAC, 1500);
    let sent = 0;
    let dropped = 0;
    for (let i = 0; i < 2000; i++) {
      if (left.send(frame(1500, 1))) sent++;
      else dropped++;
      if (i % 100 === 99) await tick();
    }
    expect(dropped).toBeGreaterThan(0);
    expect(left.stats().dropsQueueFull).toBe(dropped);
    expect(sent * 1502).toBeLessThan(2 * 1024 * 1024);
  });

  it('counts a turn\'s own frames against the megabyte too: one synchronous burst cannot queue more', () => {
    const [a] = pair();
    const left = new FrameStream(a, MAC, 1500);
    let sent = 0;
    for (let i = 0; i < 1000; i++) if (left.send(frame(1500, 1))) sent++;
    expect(sent * 1502).toBeLessThanOrEqual((1 << 20) + 1502);
    expect(left.stats().dropsQueueFull).toBe(1000 - sent);
  });
});
