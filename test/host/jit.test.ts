// `uk run --jit`: the tiers really change. A child process applies each mode,
// then calls a fresh function three million times and asks V8 (natives
// syntax) how that function is compiled: optimized in `optimizing`, only
// Sparkplug in `baseline`. Plus the flag's parsing.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/uk.js';

const OPTIMIZED = 1 << 4; // V8's OptimizationStatus::kOptimized
const BASELINE = 1 << 15; // OptimizationStatus::kBaseline (Sparkplug code)

function statusAfterHotLoop(mode: string): number {
  const jit = pathToFileURL(join(ROOT, 'dist/host/jit.js')).href;
  const script = `
    const { applyJitMode } = await import(${JSON.stringify(jit)});
    applyJitMode(${JSON.stringify(mode)});
    const f = new Function('x', 'return x * 2 + 1');
    let s = 0;
    for (let i = 0; i < 3e6; i++) s += f(i);
    console.log(%GetOptimizationStatus(f));`;
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return Number(r.stdout.trim());
}

describe('--jit', () => {
  it('optimizing: a hot function gets optimized code', () => {
    expect(statusAfterHotLoop('optimizing') & OPTIMIZED).toBe(OPTIMIZED);
  });

  it('baseline: the same function stays on Sparkplug code, never optimized', () => {
    const status = statusAfterHotLoop('baseline');
    expect(status & OPTIMIZED).toBe(0);
    expect(status & BASELINE).toBe(BASELINE);
  });
});
