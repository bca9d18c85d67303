// The sandbox probe (test/fixtures/sandbox/probe.mjs): its folder, and what
// its line must say, one check per route out, for both isolation modes
// (test/host/guest-sandbox.test.ts, test/host/isolate-process.test.ts).

import { builtinModules } from 'node:module';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { expect } from 'vitest';
import { GUEST_GLOBALS } from '../../host/guest/sandbox.js';
import { ROOT } from './uk.js';

export const SANDBOX_FIXTURES = join(ROOT, 'test/fixtures/sandbox');
const REFUSED_IMPORT = /^Error: import '.+' from file:\/\/.+: refused: /;

interface Attempt {
  ok: boolean;
  value?: unknown;
  error?: string;
}
export interface Probe {
  own: number;
  globals: string[];
  types: Record<string, string>;
  imports: Record<string, Attempt>;
  routes: Record<string, Attempt> & { importMetaKeys: string[]; importMetaResolve: string };
  reachable: { objects: number; found: string[] };
  textRoundTrip: string;
  random: number;
}

/** A folder with the probe, its own files, one file outside and a symlink
 *  out; readable by everyone (a guest process runs as nobody). */
export function makeProbeDir(): { dir: string; guestDir: string; probe: string } {
  const dir = mkdtempSync(join(tmpdir(), 'uk-sandbox-'));
  const guestDir = join(dir, 'guest');
  mkdirSync(guestDir);
  for (const f of ['probe.mjs', 'helper.mjs', 'data.json', 'lib.cjs']) copyFileSync(join(SANDBOX_FIXTURES, f), join(guestDir, f));
  copyFileSync(join(SANDBOX_FIXTURES, 'outside.mjs'), join(dir, 'outside.mjs'));
  symlinkSync(join(dir, 'outside.mjs'), join(guestDir, 'link-to-outside.mjs'));
  chmodSync(dir, 0o755);
  chmodSync(guestDir, 0o755);
  for (const f of readdirSync(guestDir)) if (f !== 'link-to-outside.mjs') chmodSync(join(guestDir, f), 0o644);
  return { dir, guestDir, probe: join(guestDir, 'probe.mjs') };
}

export const PROBE_ARGS = [...builtinModules];

/** The probe's JSON from a line of the guest's log. */
export function probeLine(line: string): Probe | null {
  const at = line.indexOf('PROBE ');
  return at < 0 ? null : (JSON.parse(line.slice(at + 6)) as Probe);
}

export const PROBE_CHECKS: Record<string, (p: Probe) => void> = {
  'imports its own files and the built-in apps': (p) => {
    expect(p.own).toBe(42);
    expect(p.routes.ownFile).toEqual({ ok: true, value: 42 });
    expect(p.routes.builtinApp).toEqual({ ok: true, value: 'function' });
    expect(p.routes.unknownBuiltinApp!.error).toMatch(/refused: no built-in app 'nope'/);
  },
  'is refused every Node builtin by dynamic import, bare and with node:, with the reason': (p) => {
    const names = Object.keys(p.imports);
    expect(names.length).toBeGreaterThanOrEqual(builtinModules.length);
    for (const name of names) {
      expect(p.imports[name]!.ok, name).toBe(false);
      expect(p.imports[name]!.error, name).toMatch(REFUSED_IMPORT);
      expect(p.imports[name]!.error, name).toMatch(/has no Node modules or packages/);
    }
  },
  'has the language and GUEST_GLOBALS as globals, nothing of Node': (p) => {
    const language = new Set(Object.getOwnPropertyNames(runInNewContext('globalThis')));
    const extra = p.globals.filter((g) => !language.has(g));
    expect(extra.sort()).toEqual([...GUEST_GLOBALS].filter((g) => !language.has(g)).sort());
    for (const [name, type] of Object.entries(p.types)) expect(type, name).toBe('undefined');
    expect(p.textRoundTrip).toBe('héllo ✓');
    expect(p.random).toBe(8);
  },
  "compiles no code from strings, in its own context or the runtime's": (p) => {
    for (const route of ['eval', 'indirectEval', 'Function', 'asyncFunction', 'generatorFunction', 'runtimeFunctionViaStack', 'runtimeFunctionViaLog', 'runtimeFunctionViaArena']) {
      expect(p.routes[route]!.ok, route).toBe(false);
      expect(p.routes[route]!.error, route).toMatch(/EvalError: Code generation from strings disallowed for this context/);
    }
    expect(p.routes.stringTimer!.error).toBe('TypeError: the callback must be a function');
  },
  'compiles no WebAssembly (its code would live outside the budget)': (p) => {
    for (const route of ['wasmModule', 'wasmCompile', 'wasmInstantiate']) {
      expect(p.routes[route]!.ok, route).toBe(false);
      expect(p.routes[route]!.error, route).toMatch(/CompileError: .*Wasm code generation disallowed by embedder/);
    }
  },
  'imports no URL, no file outside its folder (symlinks too), no JSON, no CommonJS': (p) => {
    const why: Record<string, RegExp> = {
      dataUrl: /not URLs/,
      httpUrl: /not URLs/,
      fileUrlOutside: /outside the guest's folder/,
      absolutePathOutside: /outside the guest's folder/,
      parentFolder: /outside the guest's folder/,
      symlinkOutside: /outside the guest's folder/,
      jsonFile: /\.js and \.mjs files \(ES modules\) only/,
      commonJs: /\.js and \.mjs files \(ES modules\) only/,
      missingFile: /no such file/,
    };
    for (const [route, reason] of Object.entries(why)) {
      expect(p.routes[route]!.error, route).toMatch(REFUSED_IMPORT);
      expect(p.routes[route]!.error, route).toMatch(reason);
    }
  },
  'has import.meta.url and nothing else there': (p) => {
    expect(p.routes.importMetaKeys).toEqual(['url']);
    expect(p.routes.importMetaResolve).toBe('undefined');
  },
  "cannot change the runtime's intrinsics through the API's objects": (p) => {
    expect(p.routes.pollute!.error).toMatch(/^TypeError: Cannot add property polluted, object is not extensible/);
    expect(p.routes.polluteByDefine!.error).toMatch(/^TypeError: Cannot define property then, object is not extensible/);
  },
  'reaches no process, global object or require through everything the context object leads to': (p) => {
    expect(p.reachable.objects).toBeGreaterThan(50);
    expect(p.reachable.found).toEqual([]);
  },
  'is refused buffers beyond its budget in its own context too': (p) => {
    for (const route of ['bigBuffer', 'bigSharedBuffer']) {
      expect(p.routes[route]!.error, route).toMatch(/^RangeError: new (Shared)?ArrayBuffer\(536870912\): the guest's memory budget has \d+ bytes left/);
    }
  },
};
