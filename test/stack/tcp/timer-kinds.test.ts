// Where each TCP timer kind lives (stack/tcp/timer-kinds.ts): a slot among a
// control block's TCB_TIMER_WORDS, shared only by kinds that never run
// together; the TIME_WAIT table's kind has none (it is the table's timer).

import { describe, expect, it } from 'vitest';
import { TCB_TIMER_WORDS } from '../../../stack/hotpath/layout.js';
import { TCB_TIMER_SLOTS, TCP_TIMER_COUNT, TCP_TIMER_NAMES, TcpTimer } from '../../../stack/tcp/timer-kinds.js';

describe('TCP timer slots', () => {
  it('give every kind but TIME_WAIT a slot in the record, and TIME_WAIT none', () => {
    expect(TCB_TIMER_SLOTS).toHaveLength(TCP_TIMER_COUNT);
    const names: readonly string[] = TCP_TIMER_NAMES;
    expect(names).toHaveLength(TCP_TIMER_COUNT);
    for (let kind = 0; kind < TCP_TIMER_COUNT; kind++) {
      const slot = TCB_TIMER_SLOTS[kind]!;
      if (kind === TcpTimer.TimeWait) expect(slot, names[kind]).toBe(-1);
      else expect(slot >= 0 && slot < TCB_TIMER_WORDS, names[kind]).toBe(true);
    }
  });

  it('share a slot only among kinds that never run together', () => {
    const bySlot = new Map<number, string[]>();
    TCB_TIMER_SLOTS.forEach((slot, kind) => {
      if (slot >= 0) bySlot.set(slot, [...(bySlot.get(slot) ?? []), TCP_TIMER_NAMES[kind]!]);
    });
    expect([...bySlot.values()].map((names) => names.sort())).toEqual(
      expect.arrayContaining([['persist', 'retransmit'], ['delayedAck'], ['connect', 'finWait2', 'keepalive'], ['retry']]),
    );
    expect(bySlot.size).toBe(4);
  });
});
