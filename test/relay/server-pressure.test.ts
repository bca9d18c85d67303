// Relay.pressure(on): what the relay sheds when the guest's heap guard says
// memory is short, and in what order (newest sockets with no Hello, then
// registered peers with no candidate, then other registered peers, up to
// pressureShedFraction of the open handshake connections), and that paired
// work (rooms, piping) carries on.

import { describe, expect, it } from 'vitest';
import { acceptedPair, ascii, enterRoom, type FakeSocket, setup, transfer } from './relay-fakes.js';

const TIMEOUT = ascii('00000f');
const PAYLOAD = Uint8Array.from({ length: 2000 }, (_, i) => (i * 7) & 0xff);

/** Peers that said Hello, in order (one address each), as `spec` lists their roles. */
function registered(h: ReturnType<typeof setup>, spec: ('S' | 'R')[], ipBase = 1): FakeSocket[] {
  return spec.map((role, i) => (role === 'S' ? h.sender(`10.0.0.${ipBase + i}`) : h.receiver(`10.0.0.${ipBase + i}`)));
}

describe('Relay.pressure', () => {
  it('sheds the newest sockets with no Hello, then unpaired peers, up to the fraction; paired work goes on', () => {
    const h = setup();
    // Paired work: a pipe, and a pair still in its handshake.
    const old = acceptedPair(h, '10.0.1.1'); // uids 1, 2
    const pipe = enterRoom(h, old.S, old.C);
    const [R1, S1, S2, S3] = registered(h, ['R', 'S', 'S', 'S']); // uids 3..6, all candidates of R1
    R1.sendFrame(5, { name: 'Spoke_failure', code: 1 }); // S2: another password, no candidate left
    const U1 = h.connect('handshake', '10.0.0.8');
    const U2 = h.connect('handshake', '10.0.0.9');
    for (const s of [R1, S1, S2, S3]) s.take();

    // Six open handshake connections: half of them go.
    const before = h.closings.length;
    h.relay.pressure(true);
    expect(h.closings.slice(before)).toEqual([U2, U1, S2]);
    expect(U1.destroyed && U2.destroyed).toBe(true);
    expect(S2.take()).toEqual(TIMEOUT);
    expect(S2.ended).toBe(true);
    expect([R1, S1, S3].some((s) => s.ended || s.destroyed)).toBe(false);
    expect(h.counters()).toMatchObject({ pressureEpisodes: 1, pressureShedUnregistered: 2, pressureShedRegistered: 1 });

    // While on: new handshake sockets are reset, nothing more is shed...
    const late = h.connect('handshake', '10.0.0.10');
    expect(late.destroyed).toBe(true);
    h.relay.pressure(true);
    expect(h.counters()).toMatchObject({ pressureRefused: 1, pressureEpisodes: 1, pressureShedRegistered: 1 });
    // ...the pipe carries bytes, and a registered pair completes through the room.
    pipe.S2.send(PAYLOAD);
    expect(pipe.C2.take()).toEqual(PAYLOAD);
    R1.sendFrame(4, { name: 'Accepted' });
    expect(S1.frames().at(-1)?.packet.name).toBe('Accepted');
    h.settle();
    const room = enterRoom(h, S1, R1);
    room.S2.send(PAYLOAD);
    expect(room.C2.take()).toEqual(PAYLOAD);
    room.C2.fin();

    // Off: handshakes are accepted again.
    h.relay.pressure(false);
    expect(transfer(h, '10.0.2.1', '10.0.2.2', PAYLOAD)).toEqual(PAYLOAD);
    expect(h.counters().pressureRefused).toBe(1);
    h.expectEmpty();
  });

  it('sheds registered peers with candidates last, newest first, and tells their candidates', () => {
    const h = setup();
    const [R1, S1, S2, S3] = registered(h, ['R', 'S', 'S', 'S']); // all candidates of R1
    R1.take();
    h.relay.pressure(true);
    expect(S3.take()).toEqual(TIMEOUT);
    expect(S2.take()).toEqual(TIMEOUT);
    expect(S1.ended || R1.ended).toBe(false);
    expect(R1.frames()).toEqual([
      { uid: 0, packet: { name: 'Closed', uid: 4 } },
      { uid: 0, packet: { name: 'Closed', uid: 3 } },
    ]);
    expect(h.counters()).toMatchObject({ pressureShedRegistered: 2, pressureShedUnregistered: 0 });
    h.relay.pressure(false);
    h.expectEmpty();
  });

  it('sheds nothing at fraction 0 and every handshake connection at 1, never a room', () => {
    const h0 = setup({ pressureShedFraction: 0 });
    const kept = registered(h0, ['S', 'R']);
    h0.connect('handshake', '10.0.0.5');
    h0.relay.pressure(true);
    expect(h0.counters()).toMatchObject({ pressureEpisodes: 1, pressureShedUnregistered: 0, pressureShedRegistered: 0 });
    expect(kept.some((s) => s.ended)).toBe(false);
    expect(h0.connect('handshake', '10.0.0.6').destroyed).toBe(true);
    h0.expectEmpty();

    const h1 = setup({ pressureShedFraction: 1 });
    const pending = acceptedPair(h1, '10.0.1.1'); // a room, no socket yet
    const all = [...registered(h1, ['S', 'R', 'S']), h1.connect('handshake', '10.0.0.7')];
    h1.relay.pressure(true);
    expect(all.every((s) => s.ended || s.destroyed)).toBe(true);
    expect(h1.counters()).toMatchObject({ pressureShedUnregistered: 1, pressureShedRegistered: 3 });
    expect(h1.relay.stats().rooms.pending).toBe(1);
    // The recorded pair still gets its room while pressure is on.
    const room = enterRoom(h1, pending.S, pending.C);
    room.C2.fin();
    expect(h1.counters().pipeEnded).toBe(1);
    h1.expectEmpty();
  });
});
