// The guest's memory outside the arena, charged to the budget. V8's heap
// limit bounds the JS heap, but not ArrayBuffer and SharedArrayBuffer
// backing stores (external memory): without this a guest under --mem 16M
// could hold 512 MiB of them. Rule: the heap's share of the budget
// (--heap) covers the JS heap in use and the isolate's external memory
// together. Two checks:
// - before a large allocation, where JS can see it: `new ArrayBuffer(n)` and
//   `new SharedArrayBuffer(n)` in the guest throw a RangeError when n is
//   more than the share has left (typed arrays made from a length allocate
//   inside V8 and are not seen here);
// - sampled, with every heartbeat (guest-main.ts): over the share after a
//   full collection, the guest is out of memory: the tender reports it and
//   ends it as it does a heap overflow (exit 3).

import { getHeapStatistics } from 'node:v8';

/** Bytes of the share in use now: the JS heap and external memory. */
export function chargedBytes(): { heapUsed: number; external: number } {
  const h = getHeapStatistics();
  return { heapUsed: h.used_heap_size, external: h.external_memory };
}

/** Make the ArrayBuffer and SharedArrayBuffer constructors of a context
 *  (the guest Worker's, or a module guest's own, sandbox.ts) refuse a size
 *  the share cannot hold (`share` bytes in all). */
export function guardBufferConstructors(share: number, global: typeof globalThis = globalThis): void {
  const g = global as unknown as Record<string, unknown>;
  const Refusal = global.RangeError;
  for (const name of ['ArrayBuffer', 'SharedArrayBuffer'] as const) {
    const original = g[name] as new (...args: unknown[]) => object;
    g[name] = new Proxy(original, {
      construct(target, args, newTarget) {
        const size = Number(args[0] ?? 0);
        const { heapUsed, external } = chargedBytes();
        const left = share - heapUsed - external;
        if (size > left) {
          throw new Refusal(`new ${name}(${size}): the guest's memory budget has ${Math.max(0, left)} bytes left (heap and buffers share ${share})`);
        }
        return Reflect.construct(target, args, newTarget) as object;
      },
    });
  }
}

/** The sampled check: over the share after `gc` (if any) ran. */
export function overShare(share: number, gc: (() => void) | null): { heapUsed: number; external: number } | null {
  let now = chargedBytes();
  if (now.heapUsed + now.external <= share) return null;
  // Garbage may be what puts it over: measure again after a full collection.
  gc?.();
  now = chargedBytes();
  return now.heapUsed + now.external > share ? now : null;
}
