// The tender reads a guest's arena straight from shared memory (for the
// out-of-memory report and while the guest runs): its reader must agree with
// both engines' own accounting, chunk for chunk.

import { describe, expect, it } from 'vitest';
import { describeArena, scanArena } from '../../host/arena-report.js';
import { formatBytes } from '../../host/budget.js';
import { createSharedArena } from '../../host/hotpath-shared.js';
import { createTsEngineOver, createWasmEngineOnMemory, OwnerKind, ownerTag, type HotPath } from '../../stack/hotpath/index.js';

async function sharedEngine(engine: 'wasm' | 'ts', pages: number): Promise<{ hot: HotPath; buffer: SharedArrayBuffer }> {
  const arena = await createSharedArena(engine, pages);
  const hot =
    engine === 'wasm'
      ? createWasmEngineOnMemory(arena.module!, arena.memory as WebAssembly.Memory)
      : createTsEngineOver(arena.buffer);
  return { hot, buffer: arena.buffer };
}

describe.each(['wasm', 'ts'] as const)('scanArena over the %s engine', (engine) => {
  it('counts chunks by owner kind and by owner exactly as the engine does', async () => {
    const { hot, buffer } = await sharedEngine(engine, 32);
    expect(hot.buffer).toBe(buffer);
    const held: number[] = [];
    const take = (kind: OwnerKind, id: number, n: number) => {
      for (let i = 0; i < n; i++) held.push(hot.alloc(ownerTag(kind, id)));
    };
    take(OwnerKind.TcpSend, 17, 40);
    take(OwnerKind.TcpRecv, 17, 9);
    take(OwnerKind.TcpRecv, 3, 12);
    take(OwnerKind.App, 42, 5);
    take(OwnerKind.Device, 1, 16);
    hot.free(held[0]!); // one freed: the scan must skip it
    expect(held.every((off) => off !== 0)).toBe(true);

    const scan = scanArena(buffer);
    expect(scan.chunks).toBe(hot.chunkCount);
    expect(scan.inUse).toBe(hot.chunksInUse());
    for (const [kind, name] of [
      [OwnerKind.TcpSend, 'tcpSend'],
      [OwnerKind.TcpRecv, 'tcpRecv'],
      [OwnerKind.App, 'app'],
      [OwnerKind.Device, 'device'],
    ] as const) {
      expect(scan.byKind[name]).toBe(hot.chunksByKind(kind));
    }
    expect(scan.owners.slice(0, 3)).toEqual([
      { tag: ownerTag(OwnerKind.TcpSend, 17), kind: 'tcpSend', id: 17, chunks: 39 },
      { tag: ownerTag(OwnerKind.Device, 1), kind: 'device', id: 1, chunks: 16 },
      { tag: ownerTag(OwnerKind.TcpRecv, 3), kind: 'tcpRecv', id: 3, chunks: 12 },
    ]);

    const lines = describeArena(scan, 2);
    expect(lines[0]).toBe(`arena: 81 of ${hot.chunkCount} chunks in use (162K of ${formatBytes(hot.chunkCount * 2048)})`);
    expect(lines[1]).toBe('  by owner kind: tcpSend 39 (78K), tcpRecv 21 (42K), device 16 (32K), app 5 (10K)');
    expect(lines[2]).toBe('  largest owners: tcpSend#17 39 (78K), device#1 16 (32K)');
  });
});
