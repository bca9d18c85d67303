// CPU time of the calling thread, for a guest's stats (`cpu` in a stats
// line), from /proc/thread-self/stat on Linux. The process's own counters
// (process.cpuUsage) would add the tender's and every other guest's time.
// Read with node:fs, already loaded: a native binding here would cost the
// guest's heap more than half a megabyte (the 40 MB guests' heap guard
// noticed).

import { readFileSync } from 'node:fs';

/** /proc reports times in USER_HZ ticks: 100 per second on Linux's ABIs. */
const TICKS_PER_SECOND = 100;
/** utime and stime: fields 14 and 15 of stat, 12th and 13th after the ')' ending field 2. */
const UTIME_AFTER_COMM = 11;

let readable = process.platform === 'linux';

/** User and system CPU time of this thread in ms, or null where it cannot be read. */
export function threadCpu(): { userMs: number; systemMs: number } | null {
  if (!readable) return null;
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'latin1');
    // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ms = (ticks: string | undefined): number => (Number(ticks) * 1000) / TICKS_PER_SECOND;
    return { userMs: ms(fields[UTIME_AFTER_COMM]), systemMs: ms(fields[UTIME_AFTER_COMM + 1]) };
  } catch {
    readable = false;
    return null;
  }
}
