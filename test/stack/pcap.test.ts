// pcap output: bytes checked with a small parser written from the format's
// description, a file written through host/pcap-file.ts, and (when tshark is
// installed; CI fails without it) read back by tshark, which must see every
// frame, every checksum good, and nothing malformed, and counted by capinfos.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openPcapFile } from '../../host/pcap-file.js';
import { PCAP_MAGIC_NS, PCAP_MAGIC_US, PcapWriter } from '../../stack/pcap.js';
import { VirtualClock } from '../../stack/time/virtual-clock.js';
import { VSwitch } from '../../stack/vswitch/vswitch.js';
import { requires } from '../helpers/capabilities.js';

// tshark and capinfos (one package): skipped without them, a failure in CI.
const wireshark = requires('tshark', 'capinfos');
const dir = mkdtempSync(join(tmpdir(), 'uk-pcap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// ---- a tiny reader ---------------------------------------------------------------

interface Capture {
  magic: number;
  major: number;
  minor: number;
  snaplen: number;
  linktype: number;
  records: { seconds: number; fraction: number; included: number; original: number; data: Uint8Array }[];
}

function parsePcap(bytes: Uint8Array): Capture {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const capture: Capture = {
    magic: v.getUint32(0, true),
    major: v.getUint16(4, true),
    minor: v.getUint16(6, true),
    snaplen: v.getUint32(16, true),
    linktype: v.getUint32(20, true),
    records: [],
  };
  let off = 24;
  while (off < bytes.length) {
    expect(off + 16).toBeLessThanOrEqual(bytes.length);
    const included = v.getUint32(off + 8, true);
    capture.records.push({
      seconds: v.getUint32(off, true),
      fraction: v.getUint32(off + 4, true),
      included,
      original: v.getUint32(off + 12, true),
      data: bytes.slice(off + 16, off + 16 + included),
    });
    off += 16 + included;
  }
  expect(off).toBe(bytes.length);
  return capture;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

// ---- valid Ethernet/IPv4/UDP frames, checksums computed by hand ----------------

function onesComplementSum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  for (let i = start; i < end; i += 2) sum += (bytes[i] << 8) | (i + 1 < end ? bytes[i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

const MAC_A = Uint8Array.of(0x02, 0, 0, 0, 0, 1);
const MAC_B = Uint8Array.of(0x02, 0, 0, 0, 0, 2);

/** Ethernet + IPv4 10.0.0.1 -> 10.0.0.2 + UDP 49999 -> 50001 (no dissector claims them) with `payload` bytes. */
function udpFrame(id: number, payload: number, dst = MAC_B, src = MAC_A): Uint8Array {
  const f = new Uint8Array(Math.max(60, 42 + payload)); // Ethernet pads to 60
  const v = new DataView(f.buffer);
  f.set(dst, 0);
  f.set(src, 6);
  v.setUint16(12, 0x0800);
  v.setUint8(14, 0x45);
  v.setUint16(16, 28 + payload);
  v.setUint16(18, id);
  v.setUint16(20, 0x4000); // don't fragment
  v.setUint8(22, 64);
  v.setUint8(23, 17);
  v.setUint32(26, 0x0a000001);
  v.setUint32(30, 0x0a000002);
  v.setUint16(24, ~onesComplementSum(f, 14, 34) & 0xffff);
  v.setUint16(34, 49999);
  v.setUint16(36, 50001);
  v.setUint16(38, 8 + payload);
  for (let i = 0; i < payload; i++) f[42 + i] = (id * 13 + i) & 0xff;
  const pseudo = onesComplementSum(f, 26, 34, 17 + 8 + payload);
  v.setUint16(40, ~onesComplementSum(f, 34, 42 + payload, pseudo) & 0xffff || 0xffff);
  return f;
}

const FRAMES = [0, 1, 18, 100, 512, 1000, 1472].map((payload, i) => udpFrame(i + 1, payload));
const WALL0 = Date.UTC(2024, 0, 1, 12, 0, 0);

function writeCapture(path: string, precision: 'us' | 'ns'): void {
  const sink = openPcapFile(path, { bufferBytes: 1000 }); // small: exercises flushes
  const writer = new PcapWriter(sink, { precision });
  FRAMES.forEach((f, i) => writer.write(f, WALL0 + i * 1.25 + 0.000321));
  sink.close();
  sink.close(); // idempotent
}

function tshark(args: string[]): { stdout: string; stderr: string } {
  const result = spawnSync('tshark', args, { encoding: 'utf8' });
  expect(result.status, result.stderr).toBe(0);
  return { stdout: result.stdout, stderr: result.stderr };
}

// ---- tests ------------------------------------------------------------------------

describe('PcapWriter', () => {
  it('writes a classic little-endian header and one record per frame', () => {
    const chunks: Uint8Array[] = [];
    const writer = new PcapWriter((b) => chunks.push(b));
    expect(chunks).toHaveLength(1); // the header, at once
    FRAMES.forEach((f, i) => writer.write(f, WALL0 + i * 1000 + 0.5));
    const capture = parsePcap(concat(chunks));
    expect(capture).toMatchObject({ magic: PCAP_MAGIC_US, major: 2, minor: 4, snaplen: 65535, linktype: 1 });
    expect(capture.records).toHaveLength(FRAMES.length);
    capture.records.forEach((r, i) => {
      expect(r.data).toEqual(FRAMES[i]);
      expect(r.included).toBe(FRAMES[i].length);
      expect(r.original).toBe(FRAMES[i].length);
      expect(r.seconds).toBe(WALL0 / 1000 + i);
      expect(r.fraction).toBe(500); // 0.5 ms in µs
    });
  });

  it('writes nanosecond timestamps under the nanosecond magic, carrying rounding into seconds', () => {
    const w = new PcapWriter(undefined, { precision: 'ns' });
    expect(new DataView(w.header().buffer).getUint32(0, true)).toBe(PCAP_MAGIC_NS);
    const rec = (wall: number) => {
      const v = new DataView(w.record(new Uint8Array(60), wall).buffer);
      return [v.getUint32(0, true), v.getUint32(4, true)];
    };
    // A double holding ms since 1970 resolves ~0.24 µs today: that is the limit.
    const [seconds, ns] = rec(WALL0 + 123.456789);
    expect(seconds).toBe(WALL0 / 1000);
    expect(Math.abs(ns - 123_456_789)).toBeLessThan(300);
    expect(rec(WALL0 + 0.5)).toEqual([WALL0 / 1000, 500_000_000 / 1000]);
    expect(rec(WALL0 + 999.9999999)).toEqual([WALL0 / 1000 + 1, 0]);
    const us = new PcapWriter();
    const v = new DataView(us.record(new Uint8Array(60), WALL0 + 999.9996).buffer);
    expect([v.getUint32(0, true), v.getUint32(4, true)]).toEqual([WALL0 / 1000 + 1, 0]);
  });

  it('truncates frames to snaplen, keeping the original length', () => {
    const w = new PcapWriter(undefined, { snaplen: 64 });
    const rec = w.record(FRAMES[6], WALL0);
    const v = new DataView(rec.buffer);
    expect(v.getUint32(8, true)).toBe(64);
    expect(v.getUint32(12, true)).toBe(FRAMES[6].length);
    expect(rec.length).toBe(16 + 64);
    expect(() => w.write(FRAMES[0], WALL0)).toThrow(/no sink/);
  });

  it('writes a file through openPcapFile that parses back identically', () => {
    const path = join(dir, 'file.pcap');
    writeCapture(path, 'us');
    const capture = parsePcap(new Uint8Array(readFileSync(path)));
    expect(capture.records.map((r) => r.data)).toEqual(FRAMES);
    const sink = openPcapFile(join(dir, 'closed.pcap'));
    sink.close();
    expect(() => sink(new Uint8Array(1))).toThrow(/closed/);
  });

  it('captures a switch run with the virtual clock\'s wall time', () => {
    const chunks: Uint8Array[] = [];
    const clock = new VirtualClock();
    const sw = new VSwitch(clock, { tap: new PcapWriter((b) => chunks.push(b)) });
    const a = sw.attach({ mac: MAC_A, faults: { delay: 1.5 } });
    const b = sw.attach({ mac: MAC_B });
    b.setReceiver(() => {});
    a.send(FRAMES[3]);
    clock.advance(10);
    const [record] = parsePcap(concat(chunks)).records;
    expect(record.data).toEqual(FRAMES[3]);
    const wall = clock.wallNow() - 10 + 1.5;
    expect(record.seconds * 1000 + record.fraction / 1000).toBe(wall);
  });

  wireshark.it('is read by tshark: every frame, good checksums, nothing malformed (µs)', () => {
    const path = join(dir, 'tshark-us.pcap');
    writeCapture(path, 'us');
    checkWithTshark(path);
  });

  wireshark.it('is read by tshark with nanosecond timestamps', () => {
    const path = join(dir, 'tshark-ns.pcap');
    writeCapture(path, 'ns');
    checkWithTshark(path);
    const { stdout } = tshark(['-r', path, '-T', 'fields', '-e', 'frame.time_epoch']);
    const times = stdout.trim().split('\n');
    expect(times).toHaveLength(FRAMES.length);
    // 2024-01-01T12:00:00.001250321Z for the second frame, to the ~0.24 µs a
    // double wall time resolves: sub-µs digits reach tshark.
    const [seconds, fraction] = times[1].split('.');
    expect(seconds).toBe('1704110400');
    expect(Math.abs(Number(fraction.slice(0, 9)) - 1_250_321)).toBeLessThan(300);
  });
});

function checkWithTshark(path: string): void {
  const fields = tshark([
    '-r', path,
    '-o', 'ip.check_checksum:TRUE',
    '-o', 'udp.check_checksum:TRUE',
    '-T', 'fields',
    '-e', 'frame.len', '-e', 'ip.checksum.status', '-e', 'udp.checksum.status', '-e', '_ws.malformed',
  ]);
  const rows = fields.stdout.replace(/\n$/, '').split('\n').map((line) => line.split('\t'));
  // Checksum status 1 = "Good"; an empty last column = not malformed.
  expect(rows).toEqual(FRAMES.map((f) => [String(f.length), '1', '1', '']));
  const summary = tshark(['-r', path]);
  expect(summary.stdout.split('\n').filter(Boolean)).toHaveLength(FRAMES.length);
  expect(`${summary.stdout}\n${summary.stderr}\n${fields.stderr}`).not.toMatch(/malformed/i);
  expect(execFileSync('capinfos', ['-c', path], { encoding: 'utf8' })).toMatch(new RegExp(`${FRAMES.length}\\b`));
}
