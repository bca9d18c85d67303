// Minimal reproductions of bugs the scenario tests found, kept so they stay fixed.

import { describe, expect, it } from 'vitest';
import { advance, ENGINES, makeStacks } from '../../helpers/stack-pair.js';

describe.each(ENGINES)('scenario regressions (%s)', (engine) => {
  // Found by endings.test.ts: a keepalive timer re-armed itself for the very
  // instant it fired, forever, when lastHeard + idle rounded down in floating
  // point (virtual time on a switch with delays and bandwidth is fractional).
  it('keepalive: when lastHeard + idle rounds down, the timer probes instead of re-arming for that instant forever', async () => {
    const idle = 30_000;
    const { sim, nodes } = await makeStacks(engine, 2, {
      tcp: { keepalive: true, keepaliveIdle: idle, keepaliveInterval: 1_000, keepaliveCount: 2 },
    });
    const [a, b] = [nodes[0]!, nodes[1]!];
    await advance(sim, 10_000);
    await advance(sim, 1.7); // no link delay: the whole handshake happens at this instant
    const t = sim.clock.now();
    expect(t + idle - t, 'precondition: (t + idle) - t < idle in doubles').toBeLessThan(idle);
    const listener = b.stack.tcp.listen(80);
    const accepted = listener.accept();
    await sim.complete(a.stack.tcp.connect(b.ip, 80));
    const server = await sim.complete(accepted);
    expect(sim.clock.now()).toBe(t);
    // The client vanishes: the server's probes go unanswered and it gives up.
    b.port.setFaults({ loss: 1 });
    await sim.run(() => server.closeInfo !== null, { maxSteps: 200 });
    expect(server.closeInfo).toEqual({ reason: 'keepalive' });
    expect(b.stack.stats().tcp.counters.keepaliveProbes).toBe(2);
    expect(sim.clock.now()).toBeGreaterThan(t + idle);
    a.stack.shutdown();
    b.stack.shutdown();
  });
});
