// Guests on a Linux TAP interface against the kernel's own TCP/IP, inside
// network namespaces the tests create (test/helpers/netns.ts): the kernel is
// 10.77.0.1, the guest 10.77.0.2. The kernel pings the guest; kernel TCP
// echoes 100 MB through `echo` (with the TAP's segmentation offload on and
// off), pushes 100 MB into `discard`, opens 1,000
// connections, and the guest's stats come back to their baseline. A second
// guest, started by `uk run` inside its namespace as one would deploy it,
// writes a capture that tshark finds clean.
// Skipped, saying why, without root, /dev/net/tun, namespaces or tshark; in
// CI each of those is a failure instead (test/helpers/capabilities.ts).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGuest, type GuestRun } from '../../host/run.js';
import type { StatsRecord } from '../../host/stats-writer.js';
import { KERNEL, requires } from '../helpers/capabilities.js';
import { createNetns, destroyAllNetns, type Netns } from '../helpers/netns.js';
import { FIXTURES, levels, spawnUk, tsharkFields, tsharkProblems } from '../helpers/uk.js';

const kernel = requires(...KERNEL);
const tshark = requires('tshark');
const SERVICES = join(FIXTURES, 'services.mjs');
const CLIENT = join(FIXTURES, 'kernel-client.mjs');

/** Run the kernel-side client inside the namespace; its JSON answer. */
async function client(ns: Netns, args: string, ms = 120_000): Promise<Record<string, unknown>> {
  const r = await ns.exec(`${process.execPath} ${CLIENT} ${args}`, ms);
  if (r.code !== 0) throw new Error(`client ${args}: exit ${r.code}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout.trim()) as Record<string, unknown>;
}

async function settled(run: GuestRun, cond: (r: StatsRecord) => boolean, ms = 10_000): Promise<StatsRecord> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await run.stats();
    if (cond(r) || Date.now() > end) return r;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// Twice: with a capture the frames pass through the tender's link (where it
// sees them); without one the TAP's own threads serve the guest's rings.
// Without a capture, once with TCP segmentation offload (the default: the
// writer joins the guest's segments, host/devices/gso.ts) and once without.
for (const [how, capture, offloads] of [
  ['with --pcap: frames through the tender', true, true],
  ['without a capture: the TAP threads serve the guest rings, offloads on', false, true],
  ['without a capture: the TAP threads serve the guest rings, offloads off', false, false],
] as const) kernel.describe(`uk run on TAP against the kernel, ${how}`, () => {
  let ns: Netns;
  let run: GuestRun;
  const dir = mkdtempSync(join(tmpdir(), 'uk-tap-'));
  const pcap = join(dir, 'run.pcap');

  beforeAll(async () => {
    ns = createNetns(capture ? 'ukrun' : offloads ? 'ukrund' : 'ukrunf');
    // The tender opens the TAP in this (root) namespace; the harness then
    // moves it into the test's namespace and configures the kernel's side.
    run = await startGuest({
      app: SERVICES,
      net: { kind: 'tap', ifname: ns.tapName },
      ipv4: `${ns.peerIp}/24`,
      pcap: capture ? pcap : undefined,
      offloads,
      log: () => {},
    });
    ns.adoptTap();
  });

  afterAll(async () => {
    await run?.stop();
    ns?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers the kernel’s pings', async () => {
    const r = await ns.exec(`ping -c 3 -i 0.2 -W 1 ${ns.peerIp}`);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/3 received/);
  });

  it('echoes 100 MB of kernel TCP intact, both ways', async () => {
    const r = await client(ns, `echo ${ns.peerIp} 7 ${100 * 1024 * 1024}`);
    expect(r).toEqual({ sent: 100 * 1024 * 1024, received: 100 * 1024 * 1024, same: true });
    const net = (await run.stats()).net as { offloads?: { on: boolean; writes: number; superSegments: number }; framesOut: number };
    if (capture) return;
    expect(net.offloads!.on).toBe(offloads);
    // With offloads, segments that waited together in the TX ring left
    // joined (how many wait depends on how far the writer lags the guest).
    if (offloads) {
      expect(net.offloads!.superSegments).toBeGreaterThan(100);
      expect(net.offloads!.writes).toBeLessThan(net.framesOut - net.offloads!.superSegments);
    } else {
      expect(net.offloads!.superSegments).toBe(0);
      expect(net.offloads!.writes).toBe(net.framesOut);
    }
  });

  it('takes 100 MB into discard', async () => {
    const beforeRecord = await run.stats();
    const before = beforeRecord.tcp.counters;
    const r = await client(ns, `discard ${ns.peerIp} 9 ${100 * 1024 * 1024}`);
    expect(r).toMatchObject({ sent: 100 * 1024 * 1024, received: 0 });
    const after = await settled(run, (s) => s.tcp.connections === 0);
    expect(after.tcp.counters.bytesIn - before.bytesIn).toBe(100 * 1024 * 1024);
    // The kernel read our scaled windows right: it never sent past their edge.
    expect(after.tcp.counters.dropOutOfWindowData - before.dropOutOfWindowData).toBe(0);
    // With receive offloads the kernel sent super-segments, which the reader took apart
    // (every byte above arrived, checked by the stack's checksums).
    const net = after.net as { offloads?: { receive: boolean; superSegmentsIn: number } };
    if (!capture) expect(net.offloads!.receive).toBe(offloads);
    if (!capture && offloads) expect(net.offloads!.superSegmentsIn).toBeGreaterThan(100);
    if (!capture && !offloads) expect(net.offloads!.superSegmentsIn).toBe(0);
    // Every frame the reader made passed the stack's checksums.
    expect(after.drops.tcpBadChecksum - beforeRecord.drops.tcpBadChecksum).toBe(0);
    expect(after.drops.ipBadChecksum - beforeRecord.drops.ipBadChecksum).toBe(0);
  });

  it('serves 1,000 kernel connections and comes back to its baseline', async () => {
    await client(ns, `conns ${ns.peerIp} 7 5 5`); // warm up
    const base = await settled(run, (s) => s.tcp.connections === 0);
    expect(await client(ns, `conns ${ns.peerIp} 7 1000 100`)).toEqual({ ok: 1000 });
    const after = await settled(run, (s) => s.tcp.connections === 0 && s.timers.byKind.tcp === 0);
    expect(levels(after)).toEqual(levels(base));
    expect(after.tcp.counters.passiveOpens - base.tcp.counters.passiveOpens).toBe(1000);
    expect(after.mem.heapUsed - base.mem.heapUsed).toBeLessThan(1.5 * 1024 * 1024);
    // The TAP's figures ride along in the record (`net`). Without a capture
    // its threads are the guest's link: every frame the reader published is
    // one the guest's stack received, and every frame the guest sent was
    // written or counted as a write drop (an EIO before the kernel's side came
    // up, say). With one, the frames pass through the tender's link.
    const net = after.net as { reader: string; framesIn: number; framesOut: number; dropped: { tx: Record<string, number> } };
    expect(net.reader).toBe('running');
    const txDrops = Object.values(net.dropped.tx).reduce((a, b) => a + b, 0);
    if (capture) {
      expect(after.link.toGuest.frames).toBeGreaterThan(0);
    } else {
      expect(after.link.toGuest.frames).toBe(0);
      expect(net.framesIn).toBe(after.frames.rx);
      expect(net.framesOut + txDrops).toBe(after.frames.tx);
      expect(txDrops).toBeLessThan(10);
    }
  });

  if (!capture) it('stops cleanly, the TAP threads with it', async () => {
    const r = await run.stop();
    expect(r.code).toBe(0);
    const net = r.final!.net as { reader: string };
    expect(net.reader).toBe('running'); // the last record is written before the device closes
  });

  if (capture) tshark.it('stops cleanly; the capture of all of the above passes tshark', { timeout: 120_000 }, async () => {
    const r = await run.stop();
    expect(r.code).toBe(0);
    expect(tsharkProblems(pcap)).toBe('');
    const rows = tsharkFields(pcap, ['ip.src', 'ip.proto', 'tcp.dstport', 'tcp.flags.syn', 'tcp.options.wscale.shift', 'tcp.window_size', 'tcp.option_kind']);
    // Every segment we sent is in there, but those the guest's link refused
    // before the capture point (a full TX ring under load, counted deviceDrop)
    // or that never left (stopped, ARP): the guest's TCP frames match its counter.
    const ours = rows.filter(([src, proto]) => src === ns.peerIp && proto === '6');
    const d = r.final!.drops;
    const neverLeft = (d.deviceDrop ?? 0) + (d.stopped ?? 0) + (d.arpQueueFull ?? 0) + (d.arpGiveUp ?? 0) + (d.arpEvicted ?? 0);
    const sent = r.final!.tcp.counters.segmentsOut;
    expect(ours.length).toBeLessThanOrEqual(sent);
    expect(sent - ours.length).toBeLessThanOrEqual(neverLeft);
    expect(rows.length).toBeGreaterThan(100_000);
    // Window scaling (RFC 7323) with the kernel: its SYNs offer a shift, our
    // SYN-ACKs answer with 1 (a 64 KiB rcvBuf), and tshark, reading the
    // handshakes, sees our windows reach the whole 65536-byte buffer, which a
    // 16-bit field cannot say unscaled.
    const isSyn = (row: string[]) => row[3] === '1' || row[3] === 'True';
    const kernelSyns = rows.filter((row) => row[0] === ns.kernelIp && row[1] === '6' && isSyn(row));
    expect(kernelSyns.length).toBeGreaterThan(1000);
    expect(kernelSyns.every((row) => /^\d+$/.test(row[4]!))).toBe(true);
    const ourSynAcks = ours.filter(isSyn);
    expect(ourSynAcks.length).toBeGreaterThan(1000);
    expect(new Set(ourSynAcks.map((row) => row[4]))).toEqual(new Set(['1']));
    expect(ours.reduce((max, row) => Math.max(max, Number(row[5] || 0)), 0)).toBe(65536);
    // SACK (RFC 2018): the kernel's SYNs and our SYN-ACKs both carry SACK-permitted (kind 4).
    const sackPermitted = (row: string[]) => (row[6] ?? '').split(',').includes('4');
    expect(kernelSyns.every(sackPermitted)).toBe(true);
    expect(ourSynAcks.every(sackPermitted)).toBe(true);
  });
});

kernel.describe('uk run inside a namespace, with --pcap', () => {
  afterAll(() => destroyAllNetns());

  tshark.it('serves the kernel, stops on SIGTERM, and its capture passes tshark', async () => {
    const ns = createNetns('ukpcap', { tap: 'inside' });
    const dir = mkdtempSync(join(tmpdir(), 'uk-tap-'));
    const pcap = join(dir, 'tap.pcap');
    const uk = spawnUk(
      ['run', '--net', `tap:${ns.tapName}`, '--ipv4', `${ns.peerIp}/24`, '--hotpath', 'ts', '--pcap', pcap, SERVICES],
      ['ip', 'netns', 'exec', ns.name],
    );
    try {
      await uk.waitFor(/app: .*services\.mjs on the ts hot path/);
      expect(uk.stderr).toMatch(new RegExp(`net: tap:${ns.tapName}: guest ${ns.peerIp.replace(/\./g, '\\.')}/24`));
      expect((await ns.exec(`ping -c 2 -i 0.2 -W 1 ${ns.peerIp}`)).code).toBe(0);
      expect(await client(ns, `echo ${ns.peerIp} 7 ${1024 * 1024}`)).toMatchObject({ same: true });
      expect(await client(ns, `discard ${ns.peerIp} 9 ${2 * 1024 * 1024}`)).toMatchObject({ received: 0 });
      expect(await client(ns, `conns ${ns.peerIp} 7 100 20`)).toEqual({ ok: 100 });
      uk.child.kill('SIGTERM');
      const r = await uk.exited;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/stopped after/);

      expect(tsharkProblems(pcap)).toBe('');
      const rows = tsharkFields(pcap, ['ip.src', 'ip.dst', 'ip.proto', 'icmp.type']);
      const count = (pred: (row: string[]) => boolean) => rows.filter(pred).length;
      expect(count(([src, , proto]) => src === ns.peerIp && proto === '6')).toBeGreaterThan(1000);
      expect(count(([, dst, proto]) => dst === ns.peerIp && proto === '6')).toBeGreaterThan(1000);
      expect(count(([, , , type]) => type === '0')).toBe(2); // our echo replies
    } finally {
      uk.child.kill('SIGKILL');
      ns.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
