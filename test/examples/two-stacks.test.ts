// The README's example must keep working: run examples/two-stacks.ts with each
// engine and check that the bytes arrived intact and that a is idle once its
// TIME_WAIT has run out.

import { describe, expect, it } from 'vitest';
import { main } from '../../examples/two-stacks.js';

describe.each(['wasm', 'ts'] as const)('examples/two-stacks.ts (%s)', (engine) => {
  it('b receives every byte a sent, a reads the answer, and a ends idle', async () => {
    const r = await main(engine);
    expect(r.sent.length).toBe(1024 * 1024);
    expect(r.received.length).toBe(r.sent.length);
    expect(Buffer.from(r.received).equals(Buffer.from(r.sent))).toBe(true);
    expect(r.reply).toBe(`got ${r.sent.length} bytes`);

    expect(r.afterClose.tcp.connections).toBe(0);
    expect(r.afterClose.tcp.timeWait).toBe(1);
    expect(r.afterTimeWait.tcp.timeWait).toBe(0);
    expect(r.afterTimeWait.arena.chunksInUse - r.afterTimeWait.arena.tableChunks, 'chunks beyond the fixed tables').toBe(0);
    expect(r.afterTimeWait.timers.byKind.tcp).toBe(0);
  });
});
