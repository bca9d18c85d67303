// One source for the byte layout: assembly/layout.generated.ts is written from
// stack/hotpath/layout.ts before every Wasm build. This checks the generated
// twin holds every record word and constant the TypeScript side uses, with
// the same value, so the engines read the same bytes.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../host/hotpath.js';
import * as layoutModule from '../../stack/hotpath/layout.js';

// The const enums as the objects they are at run time in this test (TypeScript
// would inline them; the test reads them whole).
const layout = layoutModule as unknown as Record<string, unknown>;

const generated = readFileSync(join(packageRoot(), 'assembly/layout.generated.ts'), 'utf8');

/** NAME -> value of `export const NAME: u32 = <expr>;`, expressions evaluated in order. */
function assemblyConstants(): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of generated.matchAll(/^export const ([A-Z0-9_]+): u32 = ([^;]+);$/gm)) {
    const expr = m[2]!.replace(/[A-Z][A-Z0-9_]+/g, (name) => String(out.get(name)));
    out.set(m[1]!, Function(`return (${expr});`)() as number);
  }
  return out;
}

const upperSnake = (name: string) => (/^[A-Z0-9_]+$/.test(name) ? name : name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase());

/** The members of a (non-const at runtime) enum object: name -> value. */
function members(e: object): [string, number][] {
  return Object.entries(e).filter((entry): entry is [string, number] => typeof entry[1] === 'number');
}

describe('the AssemblyScript layout is generated from stack/hotpath/layout.ts', () => {
  const as = assemblyConstants();

  it.each([
    ['D', 'D'],
    ['E', 'E'],
    ['Kind', 'KIND'],
    ['Reason', 'R'],
    ['ArenaHeader', 'ARENA_H'],
    ['T', 'T'],
    ['TF', 'TF'],
    ['X', 'X'],
  ] as const)('every member of %s, with its value', (name, prefix) => {
    const list = members(layout[name] as object);
    expect(list.length).toBeGreaterThan(3);
    for (const [name, value] of list) expect(as.get(`${prefix}_${upperSnake(name)}`), `${prefix}_${upperSnake(name)}`).toBe(value);
  });

  it('every numeric constant, with its value', () => {
    const constants = Object.entries(layout).filter((entry): entry is [string, number] => typeof entry[1] === 'number');
    expect(constants.length).toBeGreaterThan(20);
    for (const [name, value] of constants) expect(as.get(name), name).toBe(value);
  });

  it('says it is generated', () => {
    expect(generated.startsWith('// GENERATED from stack/hotpath/layout.ts')).toBe(true);
  });
});
