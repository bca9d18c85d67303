// Where a received file goes (docs/bob-protocol.md §6, §8) and how it gets there
// safely (§7): `-o DST` must not exist and must not be `.` or `..`; without
// it the sender's basename is used if it is free, else a random `bob-XXXXXX`
// in the same directory (with a warning). Bytes go to a hidden temporary
// file beside the destination, which takes its final name only after the
// SHA-1 trailer verifies, by link(2), so an existing file is never replaced.
import { randomBytes } from 'node:crypto';
import { type FileHandle, link, lstat, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { escapeUnsafe } from '../pack/format.js';
import { BobError, ExitCode } from './errors.js';
import type { Logger } from './log.js';

/** Why `-o output` cannot be used, or null (the CLI turns a problem into exit 124). */
export async function outputProblem(output: string, cwd: string = process.cwd()): Promise<string | null> {
  const name = basename(output);
  if (output === '' || name === '.' || name === '..' || output.endsWith('/')) return `Invalid output "${output}": not a file name`;
  if (await exists(resolve(cwd, output))) return `Output "${output}" already exists`;
  return null;
}

/** The destination for a file the sender calls `name` (already checked by the PACK decoder). */
export async function chooseDestination(name: string, output: string | undefined, cwd: string, log: Logger): Promise<string> {
  if (output !== undefined) return resolve(cwd, output);
  const byName = resolve(cwd, name);
  if (!(await exists(byName))) return byName;
  const fallback = join(cwd, randomName());
  log.warn(`${escapeUnsafe(name)} already exists; saving into ${basename(fallback)}`);
  return fallback;
}

/** A file written under a temporary name, then published or discarded. */
export class PendingFile {
  readonly destination: string;
  readonly #tempPath: string;
  readonly #handle: FileHandle;
  #closed = false;

  private constructor(destination: string, tempPath: string, handle: FileHandle) {
    this.destination = destination;
    this.#tempPath = tempPath;
    this.#handle = handle;
  }

  static async create(destination: string): Promise<PendingFile> {
    const tempPath = join(dirname(destination), `.${randomName()}.part`);
    try {
      return new PendingFile(destination, tempPath, await open(tempPath, 'wx'));
    } catch (error) {
      throw new BobError(ExitCode.Failure, `Cannot create a file in ${dirname(destination)}: ${errorText(error)}`);
    }
  }

  async write(chunk: Uint8Array): Promise<void> {
    try {
      await this.#handle.write(chunk);
    } catch (error) {
      throw new BobError(ExitCode.Failure, `Cannot write ${this.#tempPath}: ${errorText(error)}`);
    }
  }

  /** Gives the verified file its name; never replaces an existing file (exit 7 if one appeared). */
  async publish(): Promise<void> {
    await this.#close();
    try {
      await link(this.#tempPath, this.destination);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        await this.discard();
        throw new BobError(ExitCode.OutputExists, `Output file exists: ${this.destination}`);
      }
      // Filesystems without hard links: check, then rename (a small race, reported if lost).
      if (await exists(this.destination)) {
        await this.discard();
        throw new BobError(ExitCode.OutputExists, `Output file exists: ${this.destination}`);
      }
      await rename(this.#tempPath, this.destination);
      return;
    }
    await unlink(this.#tempPath).catch(() => {});
  }

  /** Removes the temporary file (after a failure). */
  async discard(): Promise<void> {
    await this.#close();
    await unlink(this.#tempPath).catch(() => {});
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.close();
  }
}

/** lstat, not access: a dangling symlink exists too. */
async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** `bob-` and 6 random letters or digits. */
function randomName(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(6);
  return `bob-${Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('')}`;
}

function errorText(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
}
