// A module guest's world: its own V8 context with an allow-listed global
// scope and module graph (README, "What a module guest can reach").
//
// - Globals: the language's own (Object, Promise, typed arrays, Math, JSON,
//   Intl, ...) and GUEST_GLOBALS, each made here in the guest's context over
//   a plain function of the tender's side. Nothing of Node: no process,
//   require, Buffer, module, setImmediate, fetch.
// - Code from strings (eval, Function) and WebAssembly compilation are off
//   in the guest's context. Wasm is refused because its compiled code lives
//   outside the JS heap, where neither --mem nor the heap guard sees it.
// - Imports: the guest's own files (.js, .mjs under the folder of the module
//   `uk run` was given, symlinks resolved) and `uk:apps/NAME`, the built-in
//   apps. Everything else is refused at link time with a GuestImportError:
//   node: builtins, packages, data: and http: URLs, files outside the folder.
//
// The guest API objects (stack, its connections, the arena) belong to the
// runtime's own context. The tender starts a module guest's Worker so that
// context is frozen (--frozen-intrinsics) and cannot compile strings either,
// so what the guest reaches through them is neither a way to run code there
// nor a way to change how the runtime behaves. This is a filter inside one
// process, not a process sandbox: `--isolate process` adds the OS's walls.

import { realpathSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as vm from 'node:vm';
import { guardBufferConstructors } from './memory-guard.js';

/** The globals a module guest has besides the language's own. */
export const GUEST_GLOBALS = [
  'console', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'queueMicrotask',
  'TextEncoder', 'TextDecoder', 'performance', 'crypto',
] as const;

/** Import specifiers a guest may use besides its own files. */
export const GUEST_SPECIFIER_PREFIX = 'uk:apps/';

export class GuestImportError extends Error {}

/** What the sandbox needs from the tender's side, all plain functions. */
export interface SandboxHost {
  /** One line for the app's log. */
  log(line: string): void;
  /** The heap share the buffer guard charges (memory-guard.ts). */
  heapShareBytes: number;
  /** The built-in app modules by name (their default export). */
  builtin(name: string): Promise<unknown>;
}

/** The guest's context, its guest-facing helpers, and its module loader. */
export interface Sandbox {
  readonly context: vm.Context;
  /** Load the entry module and everything it imports; its namespace. */
  load(entryUrl: string): Promise<Record<string, unknown>>;
  /** The guest's view of the run's context, made in its own context. */
  guestContext(ctx: OuterContext): unknown;
}

/** The parts of GuestContext that are the tender's functions and values. */
export interface OuterContext {
  stack: unknown;
  arena: unknown;
  args: readonly string[];
  log(line: string): void;
  signal: AbortSignal;
  publishStats(provide: () => unknown): void;
}

// Compiled in the guest's context (a script compiled through the vm API is
// not code generation from a string inside the guest). It makes the globals
// and the context object over plain functions of the host; what crosses back
// to the guest is a primitive or an object of its own context, and errors
// from the host side are re-made there.
const INSTALL = String.raw`
(function install(host) {
  'use strict';
  const g = globalThis;
  const own = (e) => new Error(String(e && e.message !== undefined ? e.message : e));
  const guard = (f) => function (...args) { try { return f(...args); } catch (e) { throw own(e); } };
  const show = (v) => {
    if (typeof v === 'string') return v;
    if (v instanceof Error) return v.stack || String(v);
    try { const s = JSON.stringify(v); return s === undefined ? String(v) : s; } catch { return String(v); }
  };
  const line = (...values) => host.log(values.map(show).join(' '));
  const console = Object.freeze({ log: line, info: line, warn: line, error: line, debug: line, trace: line });

  // Timers by number: the host keeps its timer objects, the guest sees ids.
  const callbacks = new Map();
  let nextId = 1;
  const fire = (id) => {
    const t = callbacks.get(id);
    if (!t) return;
    if (!t.repeat) callbacks.delete(id);
    t.fn.apply(undefined, t.args);
  };
  const timer = (repeat) => (fn, ms = 0, ...args) => {
    if (typeof fn !== 'function') throw new TypeError('the callback must be a function');
    const id = nextId++;
    callbacks.set(id, { fn, args, repeat });
    host.setTimer(id, Number(ms) || 0, repeat, fire);
    return id;
  };
  const clear = (id) => {
    if (callbacks.delete(id)) host.clearTimer(id);
  };

  class TextEncoder {
    get encoding() { return 'utf-8'; }
    encode(input = '') {
      const s = String(input);
      const out = new Uint8Array(s.length * 3);
      return out.slice(0, host.encodeInto(s, out));
    }
    encodeInto(input, dest) { return { read: undefined, written: host.encodeInto(String(input), dest) }; }
  }
  class TextDecoder {
    #decoder;
    #encoding;
    constructor(label = 'utf-8', options = {}) {
      this.#encoding = host.decoderEncoding(String(label));
      this.#decoder = host.newDecoder(this.#encoding, Boolean(options.fatal), Boolean(options.ignoreBOM));
    }
    get encoding() { return this.#encoding; }
    decode(input, options = {}) { return host.decode(this.#decoder, input, Boolean(options && options.stream)); }
  }
  const performance = Object.freeze({ now: () => host.now(), timeOrigin: host.timeOrigin });
  const crypto = Object.freeze({
    getRandomValues(array) {
      if (!ArrayBuffer.isView(array) || array instanceof Float32Array || array instanceof Float64Array || array instanceof DataView) throw new TypeError('getRandomValues takes an integer typed array');
      if (array.byteLength > 65536) throw new RangeError('getRandomValues: at most 65536 bytes');
      host.randomFill(array);
      return array;
    },
  });
  const values = {
    console, setTimeout: timer(false), setInterval: timer(true), clearTimeout: clear, clearInterval: clear,
    queueMicrotask: (fn) => { Promise.resolve().then(() => fn()); },
    TextEncoder, TextDecoder, performance, crypto,
  };
  for (const [name, value] of Object.entries(values)) {
    Object.defineProperty(g, name, { value, writable: true, configurable: true, enumerable: false });
  }

  // The context object the guest's main receives.
  return function guestContext(outer) {
    const listeners = new Set();
    const signal = {
      get aborted() { return outer.signal.aborted; },
      onabort: null,
      addEventListener(type, fn) { if (type === 'abort' && typeof fn === 'function') listeners.add(fn); },
      removeEventListener(type, fn) { listeners.delete(fn); },
      throwIfAborted() { if (outer.signal.aborted) throw new Error('the guest is stopping'); },
    };
    host.onAbort(outer.signal, () => {
      const event = { type: 'abort', target: signal };
      if (typeof signal.onabort === 'function') signal.onabort(event);
      for (const fn of [...listeners]) fn(event);
    });
    return Object.freeze({
      stack: outer.stack,
      arena: outer.arena,
      args: Object.freeze(Array.from(outer.args, String)),
      log: (...values) => outer.log(values.map(show).join(' ')),
      signal,
      publishStats: guard((provide) => {
        if (typeof provide !== 'function') throw new TypeError('publishStats takes a function');
        outer.publishStats(() => JSON.stringify(provide()));
      }),
    });
  };
})`;

/** The tender's side of the globals: plain functions, null-prototype holder. */
function hostSide(host: SandboxHost): Record<string, unknown> {
  const timers = new Map<number, ReturnType<typeof setTimeout>>();
  const encoder = new TextEncoder();
  return Object.assign(Object.create(null) as Record<string, unknown>, {
    log: (line: string) => host.log(String(line)),
    setTimer(id: number, ms: number, repeat: boolean, fire: (id: number) => void): void {
      const run = (): void => {
        if (!repeat) timers.delete(id);
        fire(id);
      };
      timers.set(id, repeat ? setInterval(run, ms) : setTimeout(run, ms));
    },
    clearTimer(id: number): void {
      clearTimeout(timers.get(id));
      timers.delete(id);
    },
    encodeInto: (s: string, dest: Uint8Array) => encoder.encodeInto(s, dest).written,
    decoderEncoding: (label: string) => new TextDecoder(label).encoding,
    newDecoder: (encoding: string, fatal: boolean, ignoreBOM: boolean) => new TextDecoder(encoding, { fatal, ignoreBOM }),
    decode: (d: TextDecoder, input: unknown, stream: boolean) => d.decode(input as Uint8Array | undefined, { stream }),
    now: () => performance.now(),
    timeOrigin: performance.timeOrigin,
    randomFill: (array: Uint8Array) => void crypto.getRandomValues(array),
    onAbort(signal: AbortSignal, fn: () => void): void {
      if (signal.aborted) queueMicrotask(fn);
      else signal.addEventListener('abort', () => fn(), { once: true });
    },
  });
}

/** A path inside `root` (itself or below it). */
function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

export function createSandbox(host: SandboxHost, entryUrl: string): Sandbox {
  // A null-prototype object as the global's backing: nothing of the
  // tender's Object.prototype shows through the guest's global scope.
  const context = vm.createContext(Object.create(null) as object, {
    name: 'guest',
    codeGeneration: { strings: false, wasm: false },
  });
  const install = new vm.Script(INSTALL, { filename: 'uk:guest-globals' }).runInContext(context) as (h: unknown) => (o: OuterContext) => unknown;
  const makeContext = install(hostSide(host));
  const innerError = new vm.Script('(message) => new Error(message)').runInContext(context) as (m: string) => Error;
  guardBufferConstructors(host.heapShareBytes, vm.runInContext('globalThis', context) as typeof globalThis);

  const root = dirname(realpathSync(fileURLToPath(entryUrl)));
  const modules = new Map<string, vm.Module>();

  const refuse = (specifier: string, from: string, why: string): never => {
    throw new GuestImportError(`import '${specifier}' from ${from}: refused: ${why}`);
  };

  /** The URL a specifier names, if it is one of the guest's own files. */
  function ownFile(specifier: string, referrer: string): string {
    if (specifier.startsWith('node:') || !/^(\.{0,2}\/|file:)/.test(specifier)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(specifier) && !specifier.startsWith('node:')) {
        refuse(specifier, referrer, `a guest imports only its own files and ${GUEST_SPECIFIER_PREFIX}NAME, not URLs`);
      }
      refuse(specifier, referrer, `a module guest has no Node modules or packages; it imports only its own files and ${GUEST_SPECIFIER_PREFIX}NAME`);
    }
    const url = new URL(specifier, referrer);
    if (url.protocol !== 'file:') refuse(specifier, referrer, 'not a file');
    let path: string;
    try {
      path = realpathSync(fileURLToPath(url));
    } catch {
      return refuse(specifier, referrer, 'no such file');
    }
    if (!inside(root, path)) refuse(specifier, referrer, `outside the guest's folder ${root}`);
    if (!['.js', '.mjs'].includes(extname(path)) || !statSync(path).isFile()) refuse(specifier, referrer, 'a guest imports .js and .mjs files (ES modules) only');
    return pathToFileURL(path).href;
  }

  async function builtinModule(specifier: string, referrer: string): Promise<vm.Module> {
    const name = specifier.slice(GUEST_SPECIFIER_PREFIX.length);
    const found = await host.builtin(name).catch(() => undefined);
    if (typeof found !== 'function') return refuse(specifier, referrer, `no built-in app '${name}'`);
    return new vm.SyntheticModule(['default'], function (this: vm.SyntheticModule) {
      this.setExport('default', found);
    }, { context, identifier: specifier });
  }

  async function moduleFor(specifier: string, referrer: string): Promise<vm.Module> {
    const builtin = specifier.startsWith(GUEST_SPECIFIER_PREFIX);
    const key = builtin ? specifier : ownFile(specifier, referrer);
    const known = modules.get(key);
    if (known) return known;
    const made = builtin ? await builtinModule(specifier, referrer) : sourceModule(key);
    modules.set(key, made);
    return made;
  }

  function sourceModule(url: string): vm.Module {
    return new vm.SourceTextModule(readFileSync(fileURLToPath(url), 'utf8'), {
      context,
      identifier: url,
      initializeImportMeta(meta) {
        meta.url = url;
      },
      importModuleDynamically: (async (specifier: string) => {
        try {
          const m = await moduleFor(specifier, url);
          // An import of a module already in the graph finds it linked, or evaluated.
          if (m.status === 'unlinked') await m.link((s, r) => moduleFor(s, r.identifier));
          if (m.status === 'linked') await m.evaluate();
          return m;
        } catch (err) {
          throw innerError((err as Error).message);
        }
      }) as unknown as vm.SourceTextModuleOptions['importModuleDynamically'],
    });
  }

  return {
    context,
    async load(url: string) {
      const entry = await moduleFor(url, url);
      await entry.link((specifier, referrer) => moduleFor(specifier, referrer.identifier));
      await entry.evaluate();
      return entry.namespace as Record<string, unknown>;
    },
    guestContext: (ctx) => makeContext(ctx),
  };
}
