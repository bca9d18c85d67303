// `uk run --jit optimizing|baseline`: which V8 tiers compile the guest's JS.
//
// optimizing (the default): every tier V8 has, the optimizing compiler
//   included: the fastest stack (bulk TCP about 3x the baseline tier).
// baseline: the interpreter and the Sparkplug baseline compiler only. Each
//   function is compiled once, on first use, and never recompiled, so once
//   every code path has run the heap's code stops changing. With the
//   optimizing compiler the heap after GC keeps growing by a few hundred KB
//   for many runs while functions are optimized, deoptimized and optimized
//   again (the relay, 20 runs of 256 pairs after a warm-up run: +1.9 % after
//   the first, +5.0 % from the tenth on, all of it code; in baseline +0.00 %,
//   then two steps to +0.46 % when rare paths such as retransmission first
//   ran). Choose it to audit memory to the last percent, or for
//   latency-bound guests that do not miss the optimizer (the relay: about the
//   same wall time both ways, BENCHMARKS.md "Relay").
//
// V8 flags belong to the process, not the isolate: the tender (and its
// user-mode gateway) run on the same tiers as the guest.

import { setFlagsFromString } from 'node:v8';

export const JIT_MODES = ['optimizing', 'baseline'] as const;
export type JitMode = (typeof JIT_MODES)[number];

/** Set the tiers for everything this process compiles from now on. */
export function applyJitMode(mode: JitMode): void {
  // --max-opt: 0 interpreter, 1 Sparkplug, 2 Maglev, 3 Turbofan.
  setFlagsFromString(mode === 'baseline' ? '--max-opt=1 --always-sparkplug' : '--max-opt=999');
}

export function describeJitMode(mode: JitMode): string {
  return mode === 'baseline'
    ? 'jit baseline: interpreter and Sparkplug only, no optimizing compiler (code compiled once, heap code constant)'
    : 'jit optimizing: all V8 tiers';
}
