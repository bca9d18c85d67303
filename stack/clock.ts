// Time for the stack. Everything time-dependent (timers, RTT samples, TIME_WAIT,
// fault-injection delays) reads a Clock, so a VirtualClock makes a whole
// scenario deterministic and instant, while RealClock runs it in real time.

/** One pending wake-up. A subsystem (a stack, a switch) holds one Alarm and moves
 *  it; connections never hold alarms of their own (their timers live in the
 *  stack's timer structure). */
export interface Alarm {
  /** Move the wake-up to monotonic time `at` (ms). Replaces any earlier schedule. */
  reschedule(at: number): void;
  /** No wake-up until rescheduled. */
  cancel(): void;
}

export interface Clock {
  /** Monotonic milliseconds (may be fractional). */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch (pcap timestamps, stats). */
  wallNow(): number;
  /** An alarm that calls `fire` at or after its scheduled time; unscheduled at first. */
  createAlarm(fire: () => void): Alarm;
}
