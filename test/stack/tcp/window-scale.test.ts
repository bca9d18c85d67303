// RFC 7323 section 2: window scaling. Offered in every SYN, used only when both
// SYNs carry it, never applied to a SYN's own window, a peer's shift above 14
// taken as 14, and a scaled window that never moves its right edge left.

import { describe, expect, it } from 'vitest';
import { MAX_RCV_BUF, NO_WSCALE, resolveOptions, type TcpOptions, windowShiftFor } from '../../../stack/tcp/options.js';
import { advance, expectBaseline, levels, makeStacks, pattern } from '../../helpers/stack-pair.js';
import { ACK, add, PSH, SYN, TcpPeer } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;
const MIB = 1024 * 1024;

describe('window scale options', () => {
  it('offers the smallest shift that fits rcvBuf in 16 bits', () => {
    expect(windowShiftFor(65535)).toBe(0);
    expect(windowShiftFor(65536)).toBe(1);
    expect(windowShiftFor(MIB)).toBe(5);
    expect(windowShiftFor(MAX_RCV_BUF)).toBe(14);
  });

  it('clamps rcvBuf to 65535 without scaling and refuses one beyond what 14 can express', () => {
    expect(resolveOptions({ rcvBuf: MIB, windowScaling: false }).rcvBuf).toBe(65535);
    expect(resolveOptions({ rcvBuf: MIB }).rcvBuf).toBe(MIB);
    expect(() => resolveOptions({ rcvBuf: MAX_RCV_BUF + 1 })).toThrow(/rcvBuf must be at most/);
  });
});

describe.each(ENGINES)('TCP window scaling (%s)', (engine) => {
  it('passive open: a SYN with the option gets ours back; the SYN-ACK window is not scaled, later ones are', async () => {
    const p = await TcpPeer.create(engine, { tcp: { rcvBuf: MIB } });
    const listener = p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 1000, mss: 1460, wscale: 7, window: 100 });
    const synAck = p.next()!;
    expect(synAck.flags).toBe(SYN | ACK);
    expect(synAck.wscale).toBe(5);
    expect(synAck.window).toBe(65535);
    // The peer's window of 10 << 7 = 1280 bytes limits what we send.
    const next = listener.next();
    p.inject({ flags: ACK, seq: 1001, ack: add(synAck.seq, 1), window: 10 });
    const conn = (await next).value!;
    conn.setNoDelay(true);
    conn.write(new Uint8Array(5000));
    const sent = p.drain();
    expect(sent.reduce((n, s) => n + s.payload.length, 0)).toBe(1280);
    // Our window fields are now in units of 32 bytes: 1 MiB >> 5.
    p.inject({ flags: ACK, seq: 1001, ack: add(synAck.seq, 1281), window: 10, payload: new Uint8Array(100) });
    p.advance(1000);
    const ack = p.drain().find((s) => s.ack === 1101)!;
    expect(ack.wscale).toBe(NO_WSCALE);
    expect(ack.window).toBe(Math.ceil((MIB - 100) / 32));
  });

  it('passive open: a SYN without the option gets none back and windows stay unscaled', async () => {
    const p = await TcpPeer.create(engine, { tcp: { rcvBuf: MIB } });
    const listener = p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 1000, mss: 1460, window: 1000 });
    const synAck = p.next()!;
    expect(synAck.wscale).toBe(NO_WSCALE);
    const next = listener.next();
    p.inject({ flags: ACK, seq: 1001, ack: add(synAck.seq, 1), window: 1000 });
    const conn = (await next).value!;
    conn.setNoDelay(true);
    conn.write(new Uint8Array(5000));
    expect(p.drain().reduce((n, s) => n + s.payload.length, 0)).toBe(1000);
    // Our window field is bytes, at most 65535, whatever rcvBuf is.
    p.inject({ flags: ACK, seq: 1001, ack: add(synAck.seq, 1001), window: 0, payload: new Uint8Array(10) });
    p.advance(1000);
    expect(p.drain().find((s) => s.ack === 1011)!.window).toBe(65535);
  });

  it('active open: our SYN offers a shift; a peer shift above 14 is taken as 14', async () => {
    const p = await TcpPeer.create(engine);
    const pending = p.tcp.connect('10.0.0.2', 80, { noDelay: true });
    const syn = p.expect({ flags: SYN, dport: 80 });
    expect(syn.wscale).toBe(1); // the default rcvBuf, 64 KiB, needs one bit
    p.inject({ flags: SYN | ACK, seq: 5000, ack: add(syn.seq, 1), sport: 80, dport: syn.sport, mss: 1460, wscale: 15, window: 1 });
    p.expect({ flags: ACK, ack: 5001 });
    const conn = await pending;
    p.port = syn.sport;
    p.peerPort = 80;
    // The SYN-ACK's window of 1 was not scaled: one byte goes out.
    conn.write(new Uint8Array(40_000));
    expect(p.drain().reduce((n, s) => n + s.payload.length, 0)).toBe(1);
    // Then window 2 << 14 = 32768 bytes (with 15 it would be 65536).
    p.inject({ flags: ACK, seq: 5001, ack: add(syn.seq, 2), window: 2 });
    expect(p.liveTcbs()[0]!.sndWnd).toBe(32768);
    expect(p.drain().reduce((n, s) => n + s.payload.length, 0)).toBeGreaterThan(2);
  });

  it('active open: without the option in the SYN-ACK, our windows are bytes and capped at 65535', async () => {
    const p = await TcpPeer.create(engine, { tcp: { rcvBuf: MIB }, memoryBytes: 4 * MIB });
    const { theirs } = await p.open();
    p.inject({ flags: ACK | PSH, seq: theirs, ack: 0, payload: new Uint8Array(70_000).subarray(0, 1460) });
    p.advance(1000);
    const acks = p.drain();
    expect(acks.at(-1)!.window).toBe(65535);
  });

  it('windows off: no option in our SYN, rcvBuf held to 65535', async () => {
    const p = await TcpPeer.create(engine, { tcp: { windowScaling: false, rcvBuf: MIB } });
    void p.tcp.connect('10.0.0.2', 80).catch(() => {});
    const syn = p.expect({ flags: SYN });
    expect(syn.wscale).toBe(NO_WSCALE);
    expect(syn.window).toBe(65535);
  });

  it('takes more than 64 KiB in flight when the buffer allows it, and never moves the right edge left', async () => {
    const p = await TcpPeer.create(engine, { tcp: { rcvBuf: MIB }, memoryBytes: 8 * MIB });
    const listener = p.tcp.listen(80);
    p.inject({ flags: SYN, seq: 1000, mss: 1460, wscale: 7 });
    const synAck = p.next()!;
    const next = listener.next();
    p.inject({ flags: ACK, seq: 1001, ack: add(synAck.seq, 1) });
    const conn = (await next).value!;
    // The application reads nothing: 200 segments of odd sizes, 220 KB in all, pile up.
    let seq = 1001;
    let lastRight = 0;
    for (let i = 0; i < 200; i++) {
      const len = 1001 + ((i * 37) % 459);
      p.inject({ flags: ACK, seq, ack: add(synAck.seq, 1), payload: new Uint8Array(len) });
      seq += len;
      for (const s of p.drain()) {
        const right = s.ack + s.window * 32;
        expect(right, `window edge after segment ${i}`).toBeGreaterThanOrEqual(lastRight);
        lastRight = right;
      }
    }
    expect(conn.readableLength).toBe(seq - 1001);
    expect(conn.readableLength).toBeGreaterThan(200_000);
    expect(p.tcp.stats().counters.dropOutOfWindowData).toBe(0);
  });
});

// A long fat pipe: 20 ms each way. Unscaled, at most 64 KiB can be in flight
// per 40 ms round trip (~13 Mbit/s whatever the link); scaled with 1 MiB
// buffers, slow start keeps doubling well past that. Virtual time, so the
// figures are exact and the same on every machine.
describe.each(ENGINES)('TCP window scaling on a 40 ms round trip (%s)', (engine) => {
  const TOTAL = 4 * MIB;

  async function carry(tcp: Partial<TcpOptions>): Promise<number> {
    const { sim, nodes } = await makeStacks(engine, 2, {
      memoryBytes: 8 * MIB,
      port: { faults: { delay: 10 } },
      tcp: { ...tcp, msl: 1000 },
    });
    const [a, b] = [nodes[0]!, nodes[1]!];
    await advance(sim, 10_000);
    const baseline = [levels(a.stack), levels(b.stack)];
    const data = pattern(TOTAL, 7);
    const listener = b.stack.tcp.listen(9000);
    const received = (async () => {
      const conn = await listener.accept();
      const got = new Uint8Array(TOTAL);
      let at = 0;
      conn.onData = (view) => {
        got.set(view, at);
        at += view.length;
      };
      await new Promise<void>((resolve) => (conn.onEnd = resolve));
      conn.close();
      return got.subarray(0, at);
    })();
    const started = sim.clock.now();
    const conn = await sim.complete(a.stack.tcp.connect(b.ip, 9000));
    let sent = 0;
    const push = (): void => {
      while (sent < TOTAL) {
        const n = conn.write(data.subarray(sent, Math.min(sent + 65_536, TOTAL)));
        if (n === 0) return;
        sent += n;
      }
      conn.end();
    };
    conn.onWritable = push;
    push();
    const got = await sim.complete(received, { maxTime: 120_000 });
    const elapsed = sim.clock.now() - started;
    expect(got.length).toBe(TOTAL);
    expect(got.every((x, i) => x === data[i])).toBe(true);
    listener.close();
    await expectBaseline(sim, [a.stack, b.stack], baseline);
    return elapsed;
  }

  it('1 MiB buffers carry 4 MiB in well under half the time 64 KiB unscaled windows take', async () => {
    const unscaled = await carry({ windowScaling: false });
    const scaled = await carry({ rcvBuf: MIB, sndBuf: MIB });
    // 4 MiB / 64 KiB = 64 round trips at the very least.
    expect(unscaled).toBeGreaterThanOrEqual(64 * 40);
    expect(scaled).toBeLessThan(unscaled / 2);
  });
});
