// Every benchmark, one after the other: the hot path, the stack, then loss
// recovery (virtual time, no engine comparison). Each
// prints its own table and writes its section of BENCHMARKS.md and its file in
// bench/results/; at the end one table sums up every figure, wasm against ts.
//
//   npm run bench      (builds, then node --expose-gc dist/bench/all.js)

import { summaryTable } from './common.js';
import { runHotpathBench } from './hotpath.js';
import { runLossBench } from './loss.js';
import { runStackBench } from './stack.js';

const hotpath = await runHotpathBench();
console.log('');
const stack = await runStackBench();
console.log('');
await runLossBench();
console.log('\nAll figures (details above and in BENCHMARKS.md):\n');
console.log(summaryTable([...hotpath, ...stack]));
