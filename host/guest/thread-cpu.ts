// CPU time of the calling thread, for a guest's stats (`cpu` in a stats
// line): getrusage(RUSAGE_THREAD) through koffi, Linux only. The process's
// own counters (process.cpuUsage) would add the tender's and every other
// guest's time.

import koffi from 'koffi';

const RUSAGE_THREAD = 1;
/** struct rusage is 18 longs on 64-bit Linux: ru_utime and ru_stime (each a
 *  timeval: seconds, microseconds) come first. */
const RUSAGE_LONGS = 18;

let getrusage: koffi.KoffiFunction | null | undefined;
const usage = new BigInt64Array(RUSAGE_LONGS);

/** User and system CPU time of this thread in ms, or null where getrusage
 *  cannot be called (not Linux, no libc). */
export function threadCpu(): { userMs: number; systemMs: number } | null {
  if (getrusage === undefined) getrusage = load();
  if (getrusage === null || (getrusage(RUSAGE_THREAD, usage) as number) !== 0) return null;
  const ms = (sec: bigint, usec: bigint): number => Number(sec) * 1000 + Number(usec) / 1000;
  return { userMs: ms(usage[0]!, usage[1]!), systemMs: ms(usage[2]!, usage[3]!) };
}

function load(): koffi.KoffiFunction | null {
  if (process.platform !== 'linux') return null;
  try {
    return koffi.load('libc.so.6').func('int getrusage(int who, void *usage)');
  } catch {
    return null;
  }
}
