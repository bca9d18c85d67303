// Ephemeral port choice (RFC 6056 algorithm 4). Successive connections to one
// destination must walk the whole range before a port comes back: a 4-tuple
// reused within milliseconds meets the peer's TIME_WAIT record with a new ISN
// that may lie below the old incarnation's sequence space, and such a SYN is
// answered with an ACK until the connect times out (seen with random choice
// through the user-mode gateway: about one connect in 10,000 failed).
import { describe, expect, it } from 'vitest';
import { createEngine } from '../../../host/hotpath.js';
import { T } from '../../../stack/hotpath/layout.js';
import { PortTable } from '../../../stack/tcp/ports.js';
import { TcbTable } from '../../../stack/tcp/tcb-table.js';
import { TimeWaitTable } from '../../../stack/tcp/time-wait.js';
import { TimerQueue } from '../../../stack/time/timers.js';

const LOW = 50_000;
const HIGH = 50_999;
const US = 0x0a000201;
const SERVER = 0x0a00020f;

async function setup(): Promise<{ ports: PortTable; timeWait: TimeWaitTable; table: TcbTable }> {
  const hot = await createEngine('ts', 1 << 20);
  const table = new TcbTable(hot, 16);
  const timeWait = new TimeWaitTable(new TimerQueue(1), 64, 60_000, 1, 0);
  return { ports: new PortTable(table, timeWait), timeWait, table };
}

/** A live record holding (US:localPort, SERVER:port). */
function occupy(table: TcbTable, localPort: number, port: number): void {
  const i = table.take();
  const r = table.at(i);
  table.w[r + T.STATE] = 4; // ESTABLISHED
  table.w[r + T.LOCAL_ADDR] = US;
  table.w[r + T.REMOTE_ADDR] = SERVER;
  table.w[r + T.PORTS] = ((localPort << 16) | port) >>> 0;
  table.insert(i);
}

describe('ephemeral ports', () => {
  it('successive choices for one destination cover the whole range once before any port repeats', async () => {
    const { ports } = await setup();
    const first = Array.from({ length: 1000 }, () => ports.ephemeral(US, SERVER, 9000, LOW, HIGH));
    expect(first.every((p) => p >= LOW && p <= HIGH)).toBe(true);
    expect(new Set(first).size).toBe(1000);
    // Then the walk starts over in the same order.
    expect(ports.ephemeral(US, SERVER, 9000, LOW, HIGH)).toBe(first[0]);
  });

  it('skips a port whose 4-tuple is in TIME_WAIT, held by a connection or listened on; 0 once none is left', async () => {
    const { ports, timeWait, table } = await setup();
    const pick = (port = 9000) => ports.ephemeral(US, SERVER, port, LOW, LOW + 3);
    const [a, b, c, d] = [pick(), pick(), pick(), pick()];
    expect(new Set([a, b, c, d]).size).toBe(4);
    // a's tuple in TIME_WAIT, b listened on, c held by a live connection: only d is left.
    timeWait.add(US, a!, SERVER, 9000, 1, 1, 0);
    ports.setListener(b!, {} as never);
    occupy(table, c!, 9000);
    expect(ports.tupleFree(US, c!, SERVER, 9000)).toBe(false);
    expect([pick(), pick()]).toEqual([d, d]);
    // Another destination port may use a's and c's ports (the 4-tuple differs), never the listener's.
    const got = new Set(Array.from({ length: 8 }, () => pick(9001)));
    expect(got).toEqual(new Set([a, c, d]));
    // Another local address (a transparent stack's) is another 4-tuple too.
    expect(ports.tupleFree(US + 1, c!, SERVER, 9000)).toBe(true);
    timeWait.add(US, d!, SERVER, 9000, 1, 1, 0);
    expect(pick()).toBe(0);
  });

  it('walks up one port at a time from a per-destination offset (algorithm 4: the counter moves on by one per try)', async () => {
    const { ports } = await setup();
    const picks = Array.from({ length: 50 }, () => ports.ephemeral(US, SERVER, 9000, LOW, HIGH));
    for (let i = 1; i < picks.length; i++) expect((picks[i]! - picks[i - 1]! + 1000) % 1000, `pick ${i}`).toBe(1);
  });

  it('a pass that finds nothing moves the counter by exactly the range: the walk goes on where it was', async () => {
    const { ports } = await setup();
    const pick = () => ports.ephemeral(US, SERVER, 9000, LOW, LOW + 3);
    const cycle = [pick(), pick(), pick(), pick()];
    const fake = {} as never;
    for (const port of cycle) ports.setListener(port, fake);
    expect(pick()).toBe(0);
    for (const port of cycle) ports.clearListener(port, fake);
    expect(pick()).toBe(cycle[0]);
  });
});

describe('listeners by port', () => {
  it('a listener that has gone does not clear the port another listener holds now', async () => {
    const { ports } = await setup();
    const old = { name: 'old' } as never;
    const now = { name: 'now' } as never;
    ports.setListener(7, old);
    ports.setListener(7, now);
    ports.clearListener(7, old);
    expect(ports.listener(7)).toBe(now);
    ports.clearListener(7, now);
    expect(ports.listener(7)).toBeUndefined();
  });
});
