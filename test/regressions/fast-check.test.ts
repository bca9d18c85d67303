// The regressions file (test/regressions/fast-check.ts) stays usable: every
// entry is well formed and names a property that exists, and no two
// properties share an id (one would be fed the other's counterexamples).

import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REGRESSIONS } from './fast-check.js';

const TEST_DIR = join(import.meta.dirname, '..');
/** The helper's own tests, which pass registries of their own. */
const SELF_TEST = join('helpers', 'property.test.ts');

/** Every checkProperty id in the test files, with where it is. */
function propertyIds(): { id: string; file: string }[] {
  const out: { id: string; file: string }[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.test.ts') && relative(TEST_DIR, path) !== SELF_TEST) {
        const text = readFileSync(path, 'utf8');
        // checkProperty('id', ...), "id" or `id` (a template: one id per ${...} value is not checked).
        for (const m of text.matchAll(/checkProperty\(\s*(['"`])((?:(?!\1).)*)\1/g)) {
          out.push({ id: m[2]!, file: relative(TEST_DIR, path) });
        }
      }
    }
  };
  walk(TEST_DIR);
  return out;
}

describe('the fast-check regressions', () => {
  const ids = propertyIds();

  it('finds the properties that go through checkProperty', () => {
    // The scan itself works: these two are known to.
    expect(ids.map((p) => p.id)).toEqual(expect.arrayContaining(['stack/tcp/fuzz (${engine})', 'stack/stack: random and mutated frames (${engine})']));
  });

  it('gives every property its own id', () => {
    const seen = new Map<string, string>();
    const clashes: string[] = [];
    for (const { id, file } of ids) {
      if (seen.has(id)) clashes.push(`${id} in ${seen.get(id)} and ${file}`);
      seen.set(id, file);
    }
    expect(clashes).toEqual([]);
  });

  it('records each failure with its date and what it showed, under the id of a property that exists', () => {
    const known = ids.map((p) => p.id);
    // An id built from a template (`... (${engine})`) covers its expansions.
    const exists = (id: string) => known.some((k) => k === id || new RegExp(`^${k.replace(/[.*+?^()|[\]\\]/g, '\\$&').replace(/\\?\$\{[^}]*\}/g, '.+')}$`).test(id));
    const problems: string[] = [];
    for (const [id, entries] of Object.entries(REGRESSIONS)) {
      if (!exists(id)) problems.push(`${id}: no checkProperty('${id}', ...) in test/`);
      for (const e of entries) {
        if (!/^\d{4}-\d{2}-\d{2}$/.test(e.found)) problems.push(`${id}: found '${e.found}' is not YYYY-MM-DD`);
        if (e.why.trim() === '') problems.push(`${id}: no why`);
        if ('example' in e && e.example.length === 0) problems.push(`${id}: an empty example`);
        if ('seed' in e && (!Number.isInteger(e.seed) || !/^\d+(:\d+)*$/.test(e.path))) problems.push(`${id}: bad seed or path`);
      }
    }
    expect(problems).toEqual([]);
  });
});
