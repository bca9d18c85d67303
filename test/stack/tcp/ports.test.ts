// Ephemeral port choice (RFC 6056 algorithm 4). Successive connections to one
// destination must walk the whole range before a port comes back: a 4-tuple
// reused within milliseconds meets the peer's TIME_WAIT record with a new ISN
// that may lie below the old incarnation's sequence space, and such a SYN is
// answered with an ACK until the connect times out (seen with random choice
// through the user-mode gateway: about one connect in 10,000 failed).
import { describe, expect, it } from 'vitest';
import { PortTable } from '../../../stack/tcp/ports.js';
import { remoteKeyOf } from '../../../stack/tcp/tcb.js';
import { TimeWaitTable } from '../../../stack/tcp/time-wait.js';
import { TimerQueue } from '../../../stack/time/timers.js';

const LOW = 50_000;
const HIGH = 50_999;
const SERVER = remoteKeyOf(0x0a00020f, 9000);

function setup(): { ports: PortTable; timeWait: TimeWaitTable } {
  return { ports: new PortTable(), timeWait: new TimeWaitTable(new TimerQueue(1), 64, 60_000, 1, 0) };
}

describe('ephemeral ports', () => {
  it('successive choices for one destination cover the whole range once before any port repeats', () => {
    const { ports, timeWait } = setup();
    const first = Array.from({ length: 1000 }, () => ports.ephemeral(SERVER, LOW, HIGH, timeWait));
    expect(first.every((p) => p >= LOW && p <= HIGH)).toBe(true);
    expect(new Set(first).size).toBe(1000);
    // Then the walk starts over in the same order.
    expect(ports.ephemeral(SERVER, LOW, HIGH, timeWait)).toBe(first[0]);
  });

  it('skips a port whose 4-tuple is in TIME_WAIT or has a listener; 0 once none is left', () => {
    const { ports, timeWait } = setup();
    const a = ports.ephemeral(SERVER, LOW, LOW + 2, timeWait);
    const b = ports.ephemeral(SERVER, LOW, LOW + 2, timeWait);
    const c = ports.ephemeral(SERVER, LOW, LOW + 2, timeWait);
    expect(new Set([a, b, c]).size).toBe(3);
    // a's tuple in TIME_WAIT, b listened on: only c is left, for this destination.
    timeWait.add(0x0a000201, a, 0x0a00020f, 9000, 1, 1, 0);
    ports.setListener(b, {} as never);
    expect([ports.ephemeral(SERVER, LOW, LOW + 2, timeWait), ports.ephemeral(SERVER, LOW, LOW + 2, timeWait)]).toEqual([c, c]);
    // Another destination may use a's port (the 4-tuple differs), never the listener's.
    const other = remoteKeyOf(0x0a00020f, 9001);
    const got = new Set(Array.from({ length: 6 }, () => ports.ephemeral(other, LOW, LOW + 2, timeWait)));
    expect(got).toEqual(new Set([a, c]));
    timeWait.add(0x0a000201, c, 0x0a00020f, 9000, 1, 1, 0);
    expect(ports.ephemeral(SERVER, LOW, LOW + 2, timeWait)).toBe(0);
  });
});
