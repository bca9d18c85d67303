// The handle API (stack/tcp/listener.ts HandleCallbacks): connections as
// numbers with listener-level callbacks, no Connection object. What is
// checked: every event reaches the callbacks in order; onData's return value
// is backpressure (the rest stays queued, the window closes, resume()
// delivers it); stale, reused and malformed handles are EPIPE for write and a
// no-op for the rest; a record's application word; closing the listener
// leaves its connections running; and everything returns to baseline.

import { describe, expect, it } from 'vitest';
import type { HandleCallbacks } from '../../../stack/tcp/listener.js';
import type { CloseInfo } from '../../../stack/tcp/stats.js';
import { ACK, add, FIN, PSH, RST, SYN, TcpPeer } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;

/** The peer's handshake to a handle listener on p.port; returns the sequence numbers. */
function handshake(p: TcpPeer, sport = 40000, peerIss = 1000): { theirs: number; ours: number } {
  p.inject({ flags: SYN, seq: peerIss, mss: 1460, sport });
  const synAck = p.expect({ flags: SYN | ACK, ack: add(peerIss, 1) });
  p.inject({ flags: ACK, seq: add(peerIss, 1), ack: add(synAck.seq, 1), sport });
  return { theirs: add(peerIss, 1), ours: add(synAck.seq, 1) };
}

/** A listener recording every callback as text. */
function recording(p: TcpPeer, extra: Partial<HandleCallbacks> = {}) {
  const events: string[] = [];
  const handles: number[] = [];
  const listener = p.tcp.listen(p.port, {
    handles: {
      onOpen: (h) => {
        handles.push(h);
        events.push('open');
      },
      onData: (h, bytes) => {
        events.push(`data ${Array.from(bytes).join(',')}`);
        return extra.onData?.(h, bytes);
      },
      onEnd: () => events.push('end'),
      onWritable: () => events.push('writable'),
      onClose: (_h, info: CloseInfo) => events.push(`close ${info.reason}`),
    },
  });
  return { events, handles, listener };
}

describe.each(ENGINES)('TCP handle API (%s)', (engine) => {
  it('a handle connection hears open, data, end and close, answers with write and end, and holds no Connection', async () => {
    const p = await TcpPeer.create(engine);
    const { events, handles } = recording(p);
    const { theirs, ours } = handshake(p);
    expect(events).toEqual(['open']);
    const h = handles[0]!;
    expect(p.tcp.stateOf(h)).toBe('ESTABLISHED');
    expect(p.tcp.inspect(h)!.conn).toBeNull();
    expect(p.tcp.endpoints(h)).toEqual({ localAddress: '10.0.0.1', localPort: 80, remoteAddress: '10.0.0.2', remotePort: 40000 });
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: Uint8Array.of(1, 2, 3) });
    expect(events.at(-1)).toBe('data 1,2,3');
    expect(p.tcp.recvQueued(h)).toBe(0); // consumed when onData returned
    expect(p.tcp.write(h, Uint8Array.of(9, 8))).toBe(2);
    p.expect({ flags: ACK | PSH, seq: ours, ack: add(theirs, 3), payload: Uint8Array.of(9, 8) });
    p.inject({ flags: FIN | ACK, seq: add(theirs, 3), ack: add(ours, 2) });
    expect(events.at(-1)).toBe('end');
    p.drain();
    p.tcp.end(h);
    p.expect({ flags: FIN | ACK, seq: add(ours, 2) });
    p.inject({ flags: ACK, seq: add(theirs, 4), ack: add(ours, 3) });
    expect(events).toEqual(['open', 'data 1,2,3', 'end', 'close closed']);
    expect(p.tcp.stateOf(h)).toBe('CLOSED');
    p.expectNothingHeld();
  });

  it('onData taking less than offered keeps the rest queued until resume(); onEnd waits for it', async () => {
    const p = await TcpPeer.create(engine);
    let budget = 1;
    const { events, handles } = recording(p, { onData: () => budget });
    const { theirs, ours } = handshake(p);
    const h = handles[0]!;
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: Uint8Array.of(1, 2, 3, 4) });
    p.inject({ flags: FIN | ACK, seq: add(theirs, 4), ack: ours });
    // One byte taken; the other three stay queued, and with them the FIN's onEnd.
    expect(events).toEqual(['open', 'data 1,2,3,4']);
    expect(p.tcp.recvQueued(h)).toBe(3);
    budget = 2;
    p.tcp.resume(h);
    expect(events.slice(2)).toEqual(['data 2,3,4']);
    expect(p.tcp.recvQueued(h)).toBe(1);
    budget = 10;
    p.tcp.resume(h);
    expect(events.slice(3)).toEqual(['data 4', 'end']);
    p.tcp.abort(h);
    expect(events.at(-1)).toBe('close aborted');
    p.drain();
    p.expectNothingHeld();
  });

  it('a stale handle (even with its record reused) and malformed handles: EPIPE for write, no-op for the rest', async () => {
    const p = await TcpPeer.create(engine);
    const { events, handles } = recording(p);
    const first = handshake(p, 40001);
    const old = handles[0]!;
    p.inject({ flags: RST, seq: first.theirs, sport: 40001 });
    expect(events.at(-1)).toBe('close reset');
    handshake(p, 40002);
    const now = handles[1]!;
    expect(p.tcp.table.indexOf(now)).toBeGreaterThanOrEqual(0); // live
    expect(now % 2 ** 24).toBe(old % 2 ** 24); // the same record, another generation
    expect(now).not.toBe(old);
    p.drain();
    for (const bad of [old, -1, 1.5, Number.NaN, 2 ** 60, now + 2 ** 24]) {
      expect(() => p.tcp.write(bad, Uint8Array.of(1))).toThrow(/EPIPE/);
      p.tcp.end(bad);
      p.tcp.abort(bad);
      p.tcp.resume(bad);
      p.tcp.setUserData(bad, 5);
      expect(p.tcp.userData(bad)).toBe(0);
      expect(p.tcp.stateOf(bad)).toBe('CLOSED');
      expect(p.tcp.endpoints(bad)).toBeNull();
    }
    p.expectNone(); // nothing reached the live connection
    expect(p.tcp.stateOf(now)).toBe('ESTABLISHED');
    expect(() => p.tcp.write(now, Uint8Array.of(1), 1, 1)).toThrow(RangeError);
    p.tcp.abort(now);
    p.drain();
    p.expectNothingHeld();
  });

  it('keeps one application word per connection, zero for a new one', async () => {
    const p = await TcpPeer.create(engine);
    const { handles } = recording(p);
    handshake(p, 40001);
    handshake(p, 40002);
    const [a, b] = handles as [number, number];
    p.tcp.setUserData(a, 0xdeadbeef);
    expect([p.tcp.userData(a), p.tcp.userData(b)]).toEqual([0xdeadbeef, 0]);
    p.tcp.abort(a);
    p.drain(); // a's RST
    handshake(p, 40003); // takes a's record
    expect(p.tcp.userData(handles[2]!)).toBe(0);
    p.tcp.abort(b);
    p.tcp.abort(handles[2]!);
    p.drain();
    p.expectNothingHeld();
  });

  it('closing the listener leaves its handle connections running; they still hear their end', async () => {
    const p = await TcpPeer.create(engine);
    const { events, handles, listener } = recording(p);
    const c = handshake(p);
    const h = handles[0]!;
    expect(p.tcp.handlesOf(listener)).toEqual([h]);
    listener.close();
    expect(p.tcp.stateOf(h)).toBe('ESTABLISHED');
    // The port is free again: a new listener there gets another id.
    const again = p.tcp.listen(p.port);
    expect(again.id).not.toBe(listener.id);
    again.close();
    p.inject({ flags: ACK, seq: c.theirs, ack: c.ours, payload: Uint8Array.of(7) });
    expect(events.at(-1)).toBe('data 7');
    p.inject({ flags: RST, seq: add(c.theirs, 1) });
    expect(events.at(-1)).toBe('close reset');
    // Its id is free once no connection names it.
    expect(p.tcp.listen(p.port).id).toBe(listener.id);
    p.drain();
    p.expectNothingHeld();
  });

  it('rejects handles that are not an object of callbacks', async () => {
    const p = await TcpPeer.create(engine);
    expect(() => p.tcp.listen(81, { handles: 5 as never })).toThrow(/EINVAL/);
    expect(() => p.tcp.listen(81, { handles: null as never })).toThrow(/EINVAL/);
  });
});
