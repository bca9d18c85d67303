// The package as a user gets it: `npm pack` the project, install the tarball
// into a new project in a temporary folder, and use it there only through its
// public entry points (package.json `exports` and `bin`):
// - `npx uk run --help` and `npx bob --help` work (bins linked and executable);
// - an ESM script imports `uk-runtime` (the platform-neutral stack) and moves
//   1 MiB between two stacks on both engines: the TypeScript one, and the
//   WebAssembly one instantiated from the module the package exports as
//   `uk-runtime/hotpath.wasm`; it also loads an engine with `uk-runtime/node`;
// - `uk-runtime/relay` exposes the relay and clients.
// The pack runs with --ignore-scripts: `npm test` has just built dist/ and
// build/ (its pretest), which is what the prepack script would do again.

import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..', '..');
const NPM_FLAGS = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];

const SCRIPT = `
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Simulation, Stack, createTsEngine, instantiateWasmEngine } from 'uk-runtime';
import { createEngine } from 'uk-runtime/node';
import { startHostRelay, send, receive } from 'uk-runtime/relay';

const wasmBytes = readFileSync(fileURLToPath(import.meta.resolve('uk-runtime/hotpath.wasm')));
const ARENA = 4 * 1024 * 1024;
const engines = {
  ts: () => createTsEngine(ARENA),
  wasm: () => instantiateWasmEngine(wasmBytes, ARENA),
};

async function transfer(engineName) {
  const sim = new Simulation();
  const make = async (address) =>
    new Stack({ device: sim.switch.attach(), hotpath: await engines[engineName](), clock: sim.clock, ipv4: { address, prefix: 24 } });
  const a = await make('10.0.0.1');
  const b = await make('10.0.0.2');
  const sent = new Uint8Array(1024 * 1024);
  for (let i = 0; i < sent.length; i++) sent[i] = (i * 31 + (i >>> 11)) & 0xff;
  const got = createHash('sha256');
  let count = 0;
  let ended;
  const done = new Promise((r) => (ended = r));
  b.tcp.listen(7000).onConnection = (conn) => {
    conn.onData = (view) => { got.update(view); count += view.length; };
    conn.onEnd = () => { conn.close(); ended(); };
  };
  const client = async () => {
    const conn = await a.tcp.connect('10.0.0.2', 7000);
    const writer = conn.writable.getWriter();
    await writer.write(sent);
    await writer.close();
    await done;
  };
  await sim.complete(client());
  const result = {
    engine: a.hot.name,
    bytes: count,
    same: got.digest('hex') === createHash('sha256').update(sent).digest('hex'),
  };
  a.shutdown();
  b.shutdown();
  return result;
}

const node = await createEngine('wasm', 1 << 20);
console.log(JSON.stringify({
  transfers: [await transfer('ts'), await transfer('wasm')],
  nodeEngine: node.name,
  relay: [typeof startHostRelay, typeof send, typeof receive],
}));
`;

describe('the packed package, installed into a new project', () => {
  let work: string;
  let project: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'uk-pack-'));
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work, '--loglevel=error'], { cwd: root });
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    if (!tarball) throw new Error(`npm pack wrote no tarball into ${work}`);
    project = join(work, 'app');
    await run('mkdir', ['-p', project]);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    await run('npm', ['install', ...NPM_FLAGS, join(work, tarball)], { cwd: project, timeout: 240_000 });
  }, 300_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('ships the build, the wasm modules and the docs, and no tests or benchmarks', async () => {
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--dry-run', '--json'], { cwd: root });
    const files: string[] = JSON.parse(stdout)[0].files.map((f: { path: string }) => f.path);
    for (const f of ['dist/stack/index.js', 'dist/stack/index.d.ts', 'dist/host/index.js', 'dist/relay/index.js', 'dist/host/cli.js', 'dist/relay/cli.js', 'build/hotpath.wasm', 'build/hotpath.shared.wasm', 'README.md']) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => f.startsWith('dist/test/') || f.startsWith('dist/bench/') || f.startsWith('test/'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
  });

  it('`npx uk run --help` prints the usage of uk run', async () => {
    const { stdout } = await run('npx', ['--no-install', 'uk', 'run', '--help'], { cwd: project });
    expect(stdout).toMatch(/^Usage: uk run \[options\] <app>/);
  });

  it('`npx bob --help` prints the usage of bob', async () => {
    const { stdout } = await run('npx', ['--no-install', 'bob', '--help'], { cwd: project });
    expect(stdout).toMatch(/^Usage: bob \[options\] \[command\]/);
    expect(stdout).toMatch(/send/);
  });

  it('an ESM script imports uk-runtime and moves 1 MiB between two stacks on both engines', async () => {
    writeFileSync(join(project, 'transfer.mjs'), SCRIPT);
    const { stdout } = await run('node', ['transfer.mjs'], { cwd: project, timeout: 120_000 });
    const out = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(out.transfers).toEqual([
      { engine: 'ts', bytes: 1024 * 1024, same: true },
      { engine: 'wasm', bytes: 1024 * 1024, same: true },
    ]);
    expect(out.nodeEngine).toBe('wasm');
    expect(out.relay).toEqual(['function', 'function', 'function']);
  });
});
