// The capability rule (test/helpers/capabilities.ts) with the environment and
// the probe results injected: nothing missing runs; something missing skips
// with the reason in the name, or, under UK_CI, fails naming exactly what is
// missing. Plus the real probes where their answer is known here.

import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ciMode, decide, gate, missingOf, probeMachine, type Capability } from './capabilities.js';

const CI = { UK_CI: '1' };
const LOCAL = {};

/** A probe for a machine that lacks exactly `absent`, each with a recognisable reason. */
function machineWithout(...absent: Capability[]): (c: Capability) => string | null {
  return (c) => (absent.includes(c) ? `no ${c} here` : null);
}

describe('ciMode', () => {
  it('is on when UK_CI is set to something other than empty, 0 or false', () => {
    expect(ciMode({})).toBe(false);
    expect(ciMode({ UK_CI: '' })).toBe(false);
    expect(ciMode({ UK_CI: '0' })).toBe(false);
    expect(ciMode({ UK_CI: 'false' })).toBe(false);
    expect(ciMode({ UK_CI: 'FALSE' })).toBe(false);
    expect(ciMode({ UK_CI: '1' })).toBe(true);
    expect(ciMode({ UK_CI: 'true' })).toBe(true);
    expect(ciMode({ CI: 'true' })).toBe(false); // only our variable declares it
  });
});

describe('decide', () => {
  it('runs when nothing is missing, in CI or not', () => {
    expect(decide([], false)).toEqual({ action: 'run' });
    expect(decide([], true)).toEqual({ action: 'run' });
  });

  it('skips outside CI, giving each missing capability and its reason', () => {
    const d = decide([{ capability: 'tshark', reason: 'not found on PATH' }, { capability: 'root', reason: 'uid 1000' }], false);
    expect(d).toEqual({ action: 'skip', reason: 'tshark: not found on PATH; root: uid 1000' });
  });

  it('fails in CI, naming what is missing and saying why it is not a skip', () => {
    const d = decide([{ capability: 'parallel', reason: 'not GNU parallel' }], true);
    expect(d.action).toBe('fail');
    expect(d.action === 'fail' && d.reason).toBe(
      'UK_CI is set, so a missing capability fails instead of skipping. Missing: parallel: not GNU parallel',
    );
  });
});

describe('gate', () => {
  it('asks the probe about each capability once, in order, and lists only the missing ones', () => {
    const asked: Capability[] = [];
    const probe = (c: Capability) => {
      asked.push(c);
      return c === 'ping' ? 'absent' : null;
    };
    expect(missingOf(['root', 'ping', 'root', 'netns'], probe)).toEqual([{ capability: 'ping', reason: 'absent' }]);
    expect(asked).toEqual(['root', 'ping', 'netns']);
  });

  it('with everything present: runs, no note, check() passes, in CI or not', () => {
    for (const env of [CI, LOCAL]) {
      const g = gate(['tshark', 'capinfos'], { env, probe: machineWithout('root') });
      expect(g.decision).toEqual({ action: 'run' });
      expect(g.skip).toBe(false);
      expect(g.note).toBe('');
      expect(() => g.check()).not.toThrow();
    }
  });

  it('outside CI with tshark missing: skips, and the name says why', () => {
    const g = gate(['tshark', 'capinfos'], { env: LOCAL, probe: machineWithout('tshark') });
    expect(g.skip).toBe(true);
    expect(g.note).toBe(' (skipped: tshark: no tshark here)');
    expect(() => g.check()).not.toThrow();
  });

  it('in CI with tshark missing: does not skip, and fails naming tshark alone', () => {
    const g = gate(['tshark', 'capinfos', 'parallel'], { env: CI, probe: machineWithout('tshark', 'root') });
    expect(g.skip).toBe(false);
    expect(g.note).toBe('');
    expect(() => g.check()).toThrow(/Missing: tshark: no tshark here$/);
    let ran = false;
    const body = g.guard(() => {
      ran = true;
    });
    expect(() => body({} as never)).toThrow(/tshark/);
    expect(ran).toBe(false); // the test's own body never starts
  });

  it('a guarded body runs, and returns what it returns, when nothing is missing', async () => {
    const g = gate(['gc'], { env: CI, probe: machineWithout() });
    await expect(g.guard(async () => 42)({} as never)).resolves.toBe(42);
  });
});

describe('the real probes', () => {
  it('see --expose-gc, which vitest.config.ts passes', () => {
    expect(probeMachine('gc')).toBeNull();
  });

  it('report a program hidden from PATH as not found, with the package to install', () => {
    const empty = mkdtempSync(join(tmpdir(), 'uk-nopath-'));
    try {
      const env = { ...process.env, PATH: empty };
      expect(probeMachine('tshark', env)).toBe('not found on PATH (apt-get install tshark)');
      expect(probeMachine('capinfos', env)).toBe('not found on PATH (apt-get install tshark (capinfos comes with it))');
      expect(probeMachine('parallel', env)).toBe('not found on PATH (apt-get install parallel)');
      expect(probeMachine('setpriv', env)).toBe('not found on PATH (apt-get install util-linux)');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('tell another `parallel` from GNU parallel', () => {
    const dir = mkdtempSync(join(tmpdir(), 'uk-fakepar-'));
    try {
      // `true` exits 0 and prints nothing: a `parallel` that is not GNU's.
      symlinkSync(process.platform === 'darwin' ? '/usr/bin/true' : '/bin/true', join(dir, 'parallel'));
      expect(probeMachine('parallel', { ...process.env, PATH: dir })).toMatch(/not GNU parallel/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
