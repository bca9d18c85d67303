// Questions on stdout, answers from stdin, one line each (docs/bob-protocol.md §8):
// `Receive "NAME" (SIZE) from <ip:port> [Y/n]: ` once the PACK stream has
// announced the file (bob asks `Accept from <ip:port> [Y/n]: ` earlier,
// knowing only the sender; `askAccept` is that question, for library users
// who ask in the handshake) accepts on y, yes, an empty line or EOF (the
// seed's stress script runs receivers with stdin at EOF and relies on it),
// refuses on n or no; `Your password: ` when recv gets none.
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { escapeUnsafe } from '../pack/format.js';
import { formatBytes } from './progress.js';

export interface PromptIo {
  readonly input: Readable;
  readonly output: { write(text: string): unknown };
}

/** Reads answers line by line; null once the input has ended. */
export class LineAsker {
  readonly #io: PromptIo;
  readonly #lines: string[] = [];
  readonly #waiters: Array<(line: string | null) => void> = [];
  #ended = false;
  #reader: ReturnType<typeof createInterface> | null = null;

  constructor(io: PromptIo) {
    this.#io = io;
  }

  async ask(question: string): Promise<string | null> {
    this.#io.output.write(question);
    this.#start();
    const line = this.#lines.shift() ?? (this.#ended ? null : await new Promise<string | null>((resolve) => this.#waiters.push(resolve)));
    // At EOF nothing echoed a newline after the question: end its line ourselves.
    if (line === null) this.#io.output.write('\n');
    return line;
  }

  /** Stops reading (lets the process exit). */
  close(): void {
    this.#reader?.close();
  }

  /** stdin is only read once a question is asked: a non-interactive run never touches it. */
  #start(): void {
    if (this.#reader !== null) return;
    this.#reader = createInterface({ input: this.#io.input, terminal: false });
    this.#reader.on('line', (line) => {
      const waiter = this.#waiters.shift();
      if (waiter) waiter(line);
      else this.#lines.push(line);
    });
    this.#reader.on('close', () => {
      this.#ended = true;
      for (const waiter of this.#waiters.splice(0)) waiter(null);
    });
  }
}

const MAX_UNCLEAR_ANSWERS = 5;

/**
 * Asks until the answer is clear: true to accept (y, yes, empty, EOF), false
 * to refuse (n, no). bob re-asks forever; after 5 unclear answers we refuse.
 */
export async function askAccept(asker: LineAsker, identity: string): Promise<boolean> {
  let question = `Accept from ${identity} [Y/n]: `;
  for (let attempt = 0; attempt < MAX_UNCLEAR_ANSWERS; attempt++) {
    const line = await asker.ask(question);
    if (line === null) return true;
    const answer = line.trim().toLowerCase();
    if (answer === '' || answer === 'y' || answer === 'yes') return true;
    if (answer === 'n' || answer === 'no') return false;
    question = `Invalid response, accept from ${identity} [Y/n]: `;
  }
  return false;
}

/** What `askReceive` shows: the announced name and size, and the sender. */
export interface Offer {
  readonly name: string;
  readonly size: number;
  /** Already escaped (handshake-common identityText). */
  readonly peer: string;
}

/**
 * `Receive "NAME" (SIZE) from <ip:port> [Y/n]: `, answered as askAccept's
 * question. The name is quoted with `\` and `"` escaped and control or bidi
 * characters written as `\xNN`/`\uNNNN`, so it cannot end the quotes or
 * redraw the line it is on.
 */
export async function askReceive(asker: LineAsker, offer: Offer): Promise<boolean> {
  const what = `${quoteName(offer.name)} (${sizeText(offer.size)}) from ${offer.peer}`;
  let question = `Receive ${what} [Y/n]: `;
  for (let attempt = 0; attempt < MAX_UNCLEAR_ANSWERS; attempt++) {
    const line = await asker.ask(question);
    if (line === null) return true;
    const answer = line.trim().toLowerCase();
    if (answer === '' || answer === 'y' || answer === 'yes') return true;
    if (answer === 'n' || answer === 'no') return false;
    question = `Invalid response, receive ${what} [Y/n]: `;
  }
  return false;
}

export function quoteName(name: string): string {
  return `"${escapeUnsafe(name.replace(/["\\]/g, '\\$&'))}"`;
}

/** Bytes below 1 KiB, then KiB, MiB… with one decimal. */
export function sizeText(size: number): string {
  return size < 1024 ? `${size} byte${size === 1 ? '' : 's'}` : formatBytes(size);
}

/** `Your password: `, re-asked on an empty line as bob does; null at EOF (bob would loop forever). */
export async function askPassword(asker: LineAsker): Promise<string | null> {
  let question = 'Your password: ';
  for (let attempt = 0; attempt < MAX_UNCLEAR_ANSWERS; attempt++) {
    const line = await asker.ask(question);
    if (line === null) return null;
    if (line !== '') return line;
    question = 'You must insert a password: ';
  }
  return null;
}
