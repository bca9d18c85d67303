// Inflates one zlib stream (RFC 1950) of the PACK stream, synchronously and
// resumable at any input boundary, on pako's port of zlib's inflate().
//
// pako's low-level API is used rather than its Inflate class because the
// decoder needs what the class hides: the class inflates a whole pushed
// chunk in one go (a 2 KiB record of zeros can expand to 2 MiB), so it could
// neither stop at the declared size nor keep memory bounded, and it keeps the
// input position (needed to find the trailer) private. Here each `run` fills
// at most one output buffer, and zlib itself stops reading exactly after the
// Adler-32 that ends the stream, so `next_in` marks where the PACK resumes.
import { ZStream, Z_BUF_ERROR, Z_NEED_DICT, Z_NO_FLUSH, Z_OK, Z_STREAM_END, zlibInflate, zlibInflateInit2 } from 'pako';

const CHUNK_BYTES = 65536;
/** A zlib wrapper with a window of up to 32 KiB; not 15 + 32, which would also accept gzip. */
const ZLIB_WINDOW_BITS = 15;
const EMPTY = new Uint8Array(0);

export type InflateStep =
  | { readonly kind: 'output'; readonly data: Uint8Array }
  | { readonly kind: 'need-input' }
  | { readonly kind: 'done' }
  | { readonly kind: 'error'; readonly message: string };

/**
 * Decodes one zlib stream. Call `feed` with input, then `run` until it
 * returns 'need-input' (feed more), 'done' (see `remainingInput`) or 'error'.
 * Each 'output' carries at most 64 KiB, a fresh copy.
 */
export class ZlibInflater {
  readonly #maxOutput: number;
  readonly #strm = new ZStream();
  readonly #out = new Uint8Array(CHUNK_BYTES);
  #ended = false;
  /** zlib used all its input and had output room to spare: calling it again before `feed` is futile. */
  #starved = false;
  #error: string | null = null;

  /** `maxOutput`: more output than this is an error (the PACK header declares the exact size). */
  constructor(maxOutput: number) {
    this.#maxOutput = maxOutput;
    const status = zlibInflateInit2(this.#strm, ZLIB_WINDOW_BITS);
    if (status !== Z_OK) throw new Error(`zlib inflate could not start (status ${status})`);
    this.#strm.output = this.#out;
  }

  /** Bytes produced so far. */
  get totalOut(): number {
    return this.#strm.total_out;
  }

  /** After 'done': the input bytes that follow the zlib stream. */
  get remainingInput(): Uint8Array {
    const strm = this.#strm;
    return strm.avail_in === 0 ? EMPTY : strm.input.subarray(strm.next_in, strm.next_in + strm.avail_in);
  }

  /** Only once `run` asked for input: zlib has then taken all of the previous input into its own state. */
  feed(input: Uint8Array): void {
    const strm = this.#strm;
    if (strm.avail_in !== 0) throw new Error('ZlibInflater.feed() called before the previous input was used up');
    this.#starved = false;
    strm.input = input;
    strm.next_in = 0;
    strm.avail_in = input.length;
  }

  run(): InflateStep {
    if (this.#error !== null) return { kind: 'error', message: this.#error };
    if (this.#ended) return { kind: 'done' };
    if (this.#starved) return { kind: 'need-input' };
    const strm = this.#strm;
    strm.next_out = 0;
    // Room for one byte more than may still come: zlib writing that byte proves
    // the object too long without inflating any further.
    strm.avail_out = Math.min(CHUNK_BYTES, this.#maxOutput - strm.total_out + 1);
    const status = zlibInflate(strm, Z_NO_FLUSH);
    if (strm.total_out > this.#maxOutput) return this.#fail(`inflates to more than the declared ${this.#maxOutput} bytes`);
    if (status === Z_STREAM_END) {
      this.#ended = true;
    } else if (status === Z_NEED_DICT) {
      return this.#fail('zlib preset dictionaries are not supported');
    } else if (status !== Z_OK && status !== Z_BUF_ERROR) {
      // Z_BUF_ERROR only means no progress was possible: more input is needed.
      return this.#fail(`corrupted zlib stream: ${strm.msg || `status ${status}`}`);
    }
    this.#starved = strm.avail_in === 0 && strm.avail_out > 0;
    if (strm.next_out > 0) return { kind: 'output', data: this.#out.slice(0, strm.next_out) };
    return this.#ended ? { kind: 'done' } : { kind: 'need-input' };
  }

  #fail(message: string): InflateStep {
    this.#error = message;
    return { kind: 'error', message };
  }
}
