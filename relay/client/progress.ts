// A one-line progress bar, redrawn at most 10 times a second. The CLI shows
// it on stderr only when stderr is a terminal and -q is not given, so pipes
// and log files (the seed's stress script redirects stderr) never get it.

export interface ProgressSink {
  write(text: string): unknown;
}

const WIDTH = 30;
const REDRAW_MS = 100;

export class ProgressBar {
  readonly #out: ProgressSink;
  readonly #label: string;
  readonly #started = Date.now();
  #lastDraw = 0;
  #drawn = false;

  constructor(out: ProgressSink, label: string) {
    this.#out = out;
    this.#label = label;
  }

  /** `total` unknown (a receiver before the end): bytes and rate only. */
  update(done: number, total?: number): void {
    const now = Date.now();
    if (now - this.#lastDraw < REDRAW_MS && (total === undefined || done < total)) return;
    this.#lastDraw = now;
    this.#drawn = true;
    this.#out.write(`\r${this.#render(done, total, now)}\x1b[K`);
  }

  /** Ends the line, if one was drawn. */
  finish(): void {
    if (this.#drawn) this.#out.write('\n');
    this.#drawn = false;
  }

  #render(done: number, total: number | undefined, now: number): string {
    const seconds = Math.max((now - this.#started) / 1000, 0.001);
    const rate = `${formatBytes(done / seconds)}/s`;
    if (total === undefined || total === 0) return `${this.#label} ${formatBytes(done)} ${rate}`;
    const fraction = Math.min(done / total, 1);
    const filled = Math.round(fraction * WIDTH);
    const bar = '#'.repeat(filled) + '-'.repeat(WIDTH - filled);
    return `${this.#label} [${bar}] ${(fraction * 100).toFixed(0).padStart(3)}% ${formatBytes(done)} ${rate}`;
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} ${units[0]}` : `${value.toFixed(1)} ${units[unit]}`;
}
