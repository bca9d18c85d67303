// Loads the captured bob protocol vectors (test/fixtures/bob/, see its README
// for where they came from).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const vectorsDir = path.resolve(projectRoot, 'test', 'fixtures', 'bob');

export function vectorBytes(relative: string): Uint8Array {
  return new Uint8Array(readFileSync(path.join(vectorsDir, relative)));
}

export function vectorJson<T = unknown>(relative: string): T {
  return JSON.parse(readFileSync(path.join(vectorsDir, relative), 'utf8')) as T;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function unhex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'hex'));
}

export function ascii(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
