// A module guest's boundary (README, "What a module guest can reach";
// host/guest/sandbox.ts): what it imports, the globals it has, the code it
// may compile, and what it reaches through the guest API's objects. Every
// route out is tried by a real guest (test/fixtures/sandbox/probe.mjs) and
// must be refused with a clear error; static imports of every Node builtin
// go through the same loader in a Worker of their own.

import { builtinModules } from 'node:module';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunError, startGuest, type RunOptions } from '../../host/run.js';
import { GUEST_GLOBALS } from '../../host/guest/sandbox.js';
import { runtimeContextSealed } from '../../host/guest/sandbox-worker.js';
import { ROOT } from '../helpers/uk.js';

const SANDBOX_FIXTURES = join(ROOT, 'test/fixtures/sandbox');
const REFUSED_IMPORT = /^Error: import '.+' from file:\/\/.+: refused: /;

interface Attempt {
  ok: boolean;
  value?: unknown;
  error?: string;
}
interface Probe {
  own: number;
  globals: string[];
  types: Record<string, string>;
  imports: Record<string, Attempt>;
  routes: Record<string, Attempt> & { importMetaKeys: string[]; importMetaResolve: string };
  reachable: { objects: number; found: string[] };
  textRoundTrip: string;
  random: number;
}

let dir: string;
let guestDir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'uk-sandbox-'));
  guestDir = join(dir, 'guest');
  mkdirSync(guestDir);
  for (const f of ['probe.mjs', 'helper.mjs', 'data.json', 'lib.cjs']) copyFileSync(join(SANDBOX_FIXTURES, f), join(guestDir, f));
  copyFileSync(join(SANDBOX_FIXTURES, 'outside.mjs'), join(dir, 'outside.mjs'));
  symlinkSync(join(dir, 'outside.mjs'), join(guestDir, 'link-to-outside.mjs'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Boot the probe, wait for its line, stop it. */
async function probe(extra: Partial<RunOptions> = {}): Promise<Probe> {
  const logged: string[] = [];
  let resolveLine!: (line: string) => void;
  const line = new Promise<string>((r) => (resolveLine = r));
  const run = await startGuest({
    app: join(guestDir, 'probe.mjs'),
    args: [...builtinModules],
    log: (l) => {
      logged.push(l);
      const at = l.indexOf('PROBE ');
      if (at >= 0) resolveLine(l.slice(at + 6));
    },
    ...extra,
  });
  const text = await Promise.race([line, run.done.then((r) => Promise.reject(new Error(`the probe ended first: ${JSON.stringify(r)}\n${logged.join('\n')}`)))]);
  const r = await run.stop();
  expect(r.code).toBe(0);
  return JSON.parse(text) as Probe;
}

describe('a module guest', () => {
  let p: Probe;
  beforeAll(async () => {
    p = await probe();
  }, 60_000);

  it('imports its own files and the built-in apps', () => {
    expect(p.own).toBe(42);
    expect(p.routes.ownFile).toEqual({ ok: true, value: 42 });
    expect(p.routes.builtinApp).toEqual({ ok: true, value: 'function' });
    expect(p.routes.unknownBuiltinApp.error).toMatch(/refused: no built-in app 'nope'/);
  });

  it('is refused every Node builtin by dynamic import, bare and with node:, with the reason', () => {
    const names = Object.keys(p.imports);
    expect(names.length).toBeGreaterThanOrEqual(builtinModules.length);
    for (const name of names) {
      expect(p.imports[name]!.ok, name).toBe(false);
      expect(p.imports[name]!.error, name).toMatch(REFUSED_IMPORT);
      expect(p.imports[name]!.error, name).toMatch(/has no Node modules or packages/);
    }
  });

  it('has the language and GUEST_GLOBALS as globals, nothing of Node', () => {
    const language = new Set(Object.getOwnPropertyNames(runInNewContext('globalThis')));
    const extra = p.globals.filter((g) => !language.has(g));
    expect(extra.sort()).toEqual([...GUEST_GLOBALS].filter((g) => !language.has(g)).sort());
    for (const [name, type] of Object.entries(p.types)) expect(type, name).toBe('undefined');
    expect(p.textRoundTrip).toBe('héllo ✓');
    expect(p.random).toBe(8);
  });

  it('compiles no code from strings, in its own context or the runtime\'s', () => {
    for (const route of ['eval', 'indirectEval', 'Function', 'asyncFunction', 'generatorFunction', 'runtimeFunctionViaStack', 'runtimeFunctionViaLog', 'runtimeFunctionViaArena']) {
      expect(p.routes[route]!.ok, route).toBe(false);
      expect(p.routes[route]!.error, route).toMatch(/EvalError: Code generation from strings disallowed for this context/);
    }
    expect(p.routes.stringTimer.error).toBe('TypeError: the callback must be a function');
  });

  it('compiles no WebAssembly (its code would live outside the budget)', () => {
    for (const route of ['wasmModule', 'wasmCompile', 'wasmInstantiate']) {
      expect(p.routes[route]!.ok, route).toBe(false);
      expect(p.routes[route]!.error, route).toMatch(/CompileError: .*Wasm code generation disallowed by embedder/);
    }
  });

  it('imports no URL, no file outside its folder (symlinks too), no JSON, no CommonJS', () => {
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
  });

  it('has import.meta.url and nothing else there', () => {
    expect(p.routes.importMetaKeys).toEqual(['url']);
    expect(p.routes.importMetaResolve).toBe('undefined');
  });

  it('cannot change the runtime\'s intrinsics through the API\'s objects', () => {
    expect(p.routes.pollute.error).toMatch(/^TypeError: Cannot add property polluted, object is not extensible/);
    expect(p.routes.polluteByDefine.error).toMatch(/^TypeError: Cannot define property then, object is not extensible/);
  });

  it('reaches no process, global object or require through everything the context object leads to', () => {
    expect(p.reachable.objects).toBeGreaterThan(50);
    expect(p.reachable.found).toEqual([]);
  });

  it('is refused buffers beyond its budget in its own context too', () => {
    for (const route of ['bigBuffer', 'bigSharedBuffer']) {
      expect(p.routes[route]!.error, route).toMatch(/^RangeError: new (Shared)?ArrayBuffer\(536870912\): the guest's memory budget has \d+ bytes left/);
    }
  });
});

describe('static imports', () => {
  it('of every Node builtin, bare and with node:, fail the load with the reason', async () => {
    const specifiers = [...new Set(builtinModules.flatMap((n) => [n, n.startsWith('node:') ? n : `node:${n}`]))];
    const worker = new Worker(join(SANDBOX_FIXTURES, 'static-imports.mjs'), {
      execArgv: ['--experimental-vm-modules', '--no-warnings'],
      workerData: { sandboxUrl: pathToFileURL(join(ROOT, 'dist/host/guest/sandbox.js')).href, specifiers },
    });
    const results = await new Promise<Record<string, string>>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(Object.keys(results).length).toBe(specifiers.length);
    for (const spec of specifiers) {
      expect(results[spec], spec).toMatch(/^GuestImportError: import '.+' from file:\/\/.+: refused: a module guest has no Node modules or packages/);
    }
  }, 60_000);

  it('end a guest\'s boot with exit 2 and the refusal', async () => {
    const bad = join(guestDir, 'imports-fs.mjs');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(bad, "import { readFileSync } from 'node:fs';\nexport default function main() { readFileSync('/etc/passwd'); }\n");
    const err = await startGuest({ app: bad, log: () => {} }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RunError);
    expect((err as RunError).code).toBe(2);
    expect((err as RunError).message).toMatch(/cannot load .*imports-fs\.mjs: import 'node:fs' from file:\/\/.*: refused: a module guest has no Node modules/);
  }, 30_000);
});

describe('the runtime\'s context', () => {
  it('is checked before a module guest loads: an ordinary context is not sealed', () => {
    // This test's own context can compile strings: a module guest would refuse to load here.
    expect(runtimeContextSealed()).toBe(false);
  });
});
