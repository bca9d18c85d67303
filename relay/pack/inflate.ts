// A streaming zlib (RFC 1950) / DEFLATE (RFC 1951) decoder, resumable at any
// input boundary and synchronous, so the PACK decoder can find exactly where
// each compressed object ends (the next header or the trailer follows it
// directly, §6) and stream a file with bounded memory. Platform-neutral.
//
// Resumability: every step first checks that all the bits it needs are
// buffered and otherwise returns without consuming anything. A step needs at
// most 20 bits, so the bit buffer never exceeds 27 bits.

const WINDOW = 32768;
const MAX_MATCH = 258;
const EMPTY = new Uint8Array(0);

const LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193,
  12289, 16385, 24577,
];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
/** Order in which the code-length code lengths are sent (RFC 1951 §3.2.7). */
const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/** Lookup table indexed by the next `maxLen` input bits; entry = symbol << 4 | code length, 0 = no such code. */
interface HuffmanTable {
  readonly entries: Uint16Array;
  readonly maxLen: number;
}

/** Canonical Huffman table from code lengths, or null if the lengths over-subscribe the code space. */
function buildTable(lengths: ArrayLike<number>): HuffmanTable | null {
  const count = new Array<number>(16).fill(0);
  let maxLen = 0;
  for (let i = 0; i < lengths.length; i++) {
    count[lengths[i]]++;
    maxLen = Math.max(maxLen, lengths[i]);
  }
  count[0] = 0;
  let left = 1;
  for (let len = 1; len <= 15; len++) {
    left = left * 2 - count[len];
    if (left < 0) return null;
  }
  // An incomplete code is tolerated: its unused entries stay 0 and fail if ever read.
  maxLen = Math.max(maxLen, 1);
  const next = new Array<number>(16).fill(0);
  for (let len = 1, code = 0; len <= 15; len++) {
    code = (code + count[len - 1]) << 1;
    next[len] = code;
  }
  const entries = new Uint16Array(1 << maxLen);
  for (let symbol = 0; symbol < lengths.length; symbol++) {
    const len = lengths[symbol];
    if (len === 0) continue;
    // Codes are sent most significant bit first into a least-significant-first bit stream.
    const reversed = reverseBits(next[len]++, len);
    for (let i = reversed; i < entries.length; i += 1 << len) entries[i] = (symbol << 4) | len;
  }
  return { entries, maxLen };
}

function reverseBits(code: number, length: number): number {
  let out = 0;
  for (let i = 0; i < length; i++, code >>= 1) out = (out << 1) | (code & 1);
  return out;
}

const FIXED_LITERALS = buildTable(Array.from({ length: 288 }, (_, s) => (s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8)))!;
const FIXED_DISTANCES = buildTable(new Array<number>(30).fill(5))!;

type State =
  | 'zlibHeader'
  | 'blockHeader'
  | 'storedLength'
  | 'storedComplement'
  | 'stored'
  | 'dynamicHeader'
  | 'codeLengthCodes'
  | 'codeLengths'
  | 'literal'
  | 'distance'
  | 'distanceExtra'
  | 'checksum'
  | 'done'
  | 'failed';

type Stop = 'need-input' | 'full' | 'done' | 'failed';

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
  #input: Uint8Array = EMPTY;
  #inPos = 0;
  #bits = 0;
  #bitCount = 0;
  #state: State = 'zlibHeader';
  #error = '';
  #finalBlock = false;
  // Output window: the last 32 KiB of history plus up to 32 KiB of new output.
  readonly #window = new Uint8Array(2 * WINDOW);
  #wpos = 0;
  #emitted = 0;
  #total = 0;
  #adlerA = 1;
  #adlerB = 0;
  #adlerPos = 0;
  #checksum = 0;
  #checksumBytes = 0;
  #storedLeft = 0;
  #literalCount = 0;
  #distanceCount = 0;
  #codeLengthCount = 0;
  readonly #lengths = new Uint8Array(286 + 30);
  #index = 0;
  #codeLengthTable: HuffmanTable = FIXED_DISTANCES;
  #literals: HuffmanTable = FIXED_LITERALS;
  #distances: HuffmanTable = FIXED_DISTANCES;
  #matchLength = 0;
  #distanceSymbol = 0;

  /** `maxOutput`: more output than this is an error (the PACK header declares the exact size). */
  constructor(maxOutput: number) {
    this.#maxOutput = maxOutput;
  }

  /** Bytes produced so far. */
  get totalOut(): number {
    return this.#total;
  }

  /** After 'done': the input bytes that follow the zlib stream. */
  get remainingInput(): Uint8Array {
    return this.#input.subarray(this.#inPos);
  }

  feed(input: Uint8Array): void {
    const rest = this.remainingInput;
    if (rest.length === 0) {
      this.#input = input;
    } else {
      this.#input = new Uint8Array(rest.length + input.length);
      this.#input.set(rest, 0);
      this.#input.set(input, rest.length);
    }
    this.#inPos = 0;
  }

  run(): InflateStep {
    const stop = this.#process();
    if (stop === 'failed') return { kind: 'error', message: this.#error };
    if (this.#wpos > this.#emitted) return { kind: 'output', data: this.#takeOutput() };
    return stop === 'done' ? { kind: 'done' } : { kind: 'need-input' };
  }

  #process(): Stop {
    for (;;) {
      const stop = this.#step();
      if (stop !== null) return stop;
    }
  }

  /** One state's work: null to continue, or why to stop. */
  #step(): Stop | null {
    switch (this.#state) {
      case 'zlibHeader':
        return this.#zlibHeader();
      case 'blockHeader':
        return this.#blockHeader();
      case 'storedLength':
      case 'storedComplement':
        return this.#storedHeader();
      case 'stored':
        return this.#stored();
      case 'dynamicHeader':
        return this.#dynamicHeader();
      case 'codeLengthCodes':
        return this.#codeLengthCodes();
      case 'codeLengths':
        return this.#codeLengths();
      case 'literal':
        return this.#literal();
      case 'distance':
        return this.#distance();
      case 'distanceExtra':
        return this.#distanceExtra();
      case 'checksum':
        return this.#readChecksum();
      case 'done':
        return 'done';
      case 'failed':
        return 'failed';
    }
  }

  #zlibHeader(): Stop | null {
    if (!this.#need(16)) return 'need-input';
    const cmf = this.#take(8);
    const flg = this.#take(8);
    if ((cmf & 0x0f) !== 8 || cmf >> 4 > 7) return this.#fail('not a zlib stream (method is not deflate)');
    if ((cmf * 256 + flg) % 31 !== 0) return this.#fail('zlib header check failed');
    if (flg & 0x20) return this.#fail('zlib preset dictionaries are not supported');
    this.#state = 'blockHeader';
    return null;
  }

  #blockHeader(): Stop | null {
    if (!this.#need(3)) return 'need-input';
    this.#finalBlock = this.#take(1) === 1;
    const type = this.#take(2);
    if (type === 0) {
      this.#drop(this.#bitCount % 8); // stored blocks start on a byte boundary
      this.#state = 'storedLength';
    } else if (type === 1) {
      this.#literals = FIXED_LITERALS;
      this.#distances = FIXED_DISTANCES;
      this.#state = 'literal';
    } else if (type === 2) {
      this.#state = 'dynamicHeader';
    } else {
      return this.#fail('invalid deflate block type 3');
    }
    return null;
  }

  #storedHeader(): Stop | null {
    if (!this.#need(16)) return 'need-input';
    const value = this.#take(16);
    if (this.#state === 'storedLength') {
      this.#storedLeft = value;
      this.#state = 'storedComplement';
    } else {
      if (value !== (~this.#storedLeft & 0xffff)) return this.#fail('stored block length check failed');
      this.#state = 'stored';
    }
    return null;
  }

  #stored(): Stop | null {
    if (this.#storedLeft === 0) return this.#endOfBlock();
    if (this.#wpos === this.#window.length) return 'full';
    // Whole bytes may already sit in the bit buffer; the rest is copied straight from the input.
    if (this.#bitCount >= 8) {
      this.#put(this.#take(8));
      this.#storedLeft--;
      return this.#checkTotal();
    }
    const n = Math.min(this.#storedLeft, this.#input.length - this.#inPos, this.#window.length - this.#wpos);
    if (n === 0) return 'need-input';
    this.#window.set(this.#input.subarray(this.#inPos, this.#inPos + n), this.#wpos);
    this.#inPos += n;
    this.#wpos += n;
    this.#total += n;
    this.#storedLeft -= n;
    return this.#checkTotal();
  }

  #dynamicHeader(): Stop | null {
    if (!this.#need(14)) return 'need-input';
    this.#literalCount = this.#take(5) + 257;
    this.#distanceCount = this.#take(5) + 1;
    this.#codeLengthCount = this.#take(4) + 4;
    if (this.#literalCount > 286 || this.#distanceCount > 30) return this.#fail('too many length or distance codes');
    this.#lengths.fill(0);
    this.#index = 0;
    this.#state = 'codeLengthCodes';
    return null;
  }

  #codeLengthCodes(): Stop | null {
    while (this.#index < this.#codeLengthCount) {
      if (!this.#need(3)) return 'need-input';
      this.#lengths[CODE_LENGTH_ORDER[this.#index++]] = this.#take(3);
    }
    const table = buildTable(this.#lengths.subarray(0, 19));
    if (table === null) return this.#fail('invalid code length code');
    this.#codeLengthTable = table;
    this.#lengths.fill(0);
    this.#index = 0;
    this.#state = 'codeLengths';
    return null;
  }

  #codeLengths(): Stop | null {
    const wanted = this.#literalCount + this.#distanceCount;
    while (this.#index < wanted) {
      const entry = this.#peek(this.#codeLengthTable);
      if (entry < 0) return entry === NEED ? 'need-input' : this.#fail('invalid code length symbol');
      const symbol = entry >> 4;
      const codeLength = entry & 15;
      if (symbol < 16) {
        this.#drop(codeLength);
        this.#lengths[this.#index++] = symbol;
        continue;
      }
      const extra = symbol === 16 ? 2 : symbol === 17 ? 3 : 7;
      if (!this.#need(codeLength + extra)) return 'need-input';
      this.#drop(codeLength);
      const repeat = (symbol === 16 ? 3 : symbol === 17 ? 3 : 11) + this.#take(extra);
      if (symbol === 16 && this.#index === 0) return this.#fail('repeated code length with no previous length');
      if (this.#index + repeat > wanted) return this.#fail('code lengths overflow');
      const value = symbol === 16 ? this.#lengths[this.#index - 1] : 0;
      this.#lengths.fill(value, this.#index, this.#index + repeat);
      this.#index += repeat;
    }
    if (this.#lengths[256] === 0) return this.#fail('no end-of-block code');
    const literals = buildTable(this.#lengths.subarray(0, this.#literalCount));
    const distances = buildTable(this.#lengths.subarray(this.#literalCount, wanted));
    if (literals === null || distances === null) return this.#fail('invalid literal or distance code lengths');
    this.#literals = literals;
    this.#distances = distances;
    this.#state = 'literal';
    return null;
  }

  /** The hot loop: literals stay here; a length moves on to its distance. */
  #literal(): Stop | null {
    const table = this.#literals;
    for (;;) {
      if (this.#wpos + MAX_MATCH > this.#window.length) return 'full';
      const entry = this.#peek(table);
      if (entry < 0) return entry === NEED ? 'need-input' : this.#fail('invalid literal/length code');
      const symbol = entry >> 4;
      if (symbol < 256) {
        this.#drop(entry & 15);
        this.#put(symbol);
        if (++this.#total > this.#maxOutput) return this.#tooLong();
        continue;
      }
      if (symbol === 256) {
        this.#drop(entry & 15);
        return this.#endOfBlock();
      }
      if (symbol > 285) return this.#fail(`invalid length symbol ${symbol}`);
      const extra = LENGTH_EXTRA[symbol - 257];
      if (!this.#need((entry & 15) + extra)) return 'need-input';
      this.#drop(entry & 15);
      this.#matchLength = LENGTH_BASE[symbol - 257] + this.#take(extra);
      this.#state = 'distance';
      return null;
    }
  }

  #distance(): Stop | null {
    const entry = this.#peek(this.#distances);
    if (entry < 0) return entry === NEED ? 'need-input' : this.#fail('invalid distance code');
    const symbol = entry >> 4;
    if (symbol >= 30) return this.#fail(`invalid distance symbol ${symbol}`);
    this.#drop(entry & 15);
    this.#distanceSymbol = symbol;
    this.#state = 'distanceExtra';
    return null;
  }

  #distanceExtra(): Stop | null {
    const extra = DIST_EXTRA[this.#distanceSymbol];
    if (!this.#need(extra)) return 'need-input';
    const distance = DIST_BASE[this.#distanceSymbol] + this.#take(extra);
    // Before the first slide the window holds all output; after it, 32 KiB of history.
    if (distance > this.#wpos) return this.#fail('distance reaches before the start of the output');
    this.#copyMatch(distance, this.#matchLength);
    this.#total += this.#matchLength;
    this.#state = 'literal';
    return this.#checkTotal();
  }

  #copyMatch(distance: number, length: number): void {
    const w = this.#window;
    let from = this.#wpos - distance;
    if (distance >= length) {
      w.copyWithin(this.#wpos, from, from + length);
      this.#wpos += length;
      return;
    }
    // Overlapping: the match repeats bytes it is itself producing.
    for (let i = 0; i < length; i++) w[this.#wpos++] = w[from++];
  }

  #endOfBlock(): null {
    this.#state = this.#finalBlock ? 'checksum' : 'blockHeader';
    return null;
  }

  /** Adler-32 of the output, big-endian, on a byte boundary after the last block. */
  #readChecksum(): Stop | null {
    this.#drop(this.#bitCount % 8);
    while (this.#checksumBytes < 4) {
      if (!this.#need(8)) return 'need-input';
      this.#checksum = this.#checksum * 256 + this.#take(8);
      this.#checksumBytes++;
    }
    this.#updateAdler();
    const adler = this.#adlerB * 65536 + this.#adlerA;
    if (adler !== this.#checksum) return this.#fail('zlib checksum mismatch');
    // Never more than 27 bits are buffered, i.e. 3 whole bytes here: all of them were checksum bytes.
    if (this.#bitCount !== 0) return this.#fail('internal error: read past the end of the zlib stream');
    this.#state = 'done';
    return 'done';
  }

  #checkTotal(): Stop | null {
    return this.#total > this.#maxOutput ? this.#tooLong() : null;
  }

  #tooLong(): Stop {
    return this.#fail(`inflates to more than the declared ${this.#maxOutput} bytes`);
  }

  #fail(message: string): Stop {
    this.#state = 'failed';
    this.#error = message;
    return 'failed';
  }

  #put(byte: number): void {
    this.#window[this.#wpos++] = byte;
  }

  #takeOutput(): Uint8Array {
    const data = this.#window.slice(this.#emitted, this.#wpos);
    this.#updateAdler();
    this.#emitted = this.#wpos;
    if (this.#wpos > this.#window.length - MAX_MATCH) {
      // Keep the last 32 KiB as history for back-references.
      this.#window.copyWithin(0, this.#wpos - WINDOW, this.#wpos);
      this.#wpos = this.#emitted = this.#adlerPos = WINDOW;
    }
    return data;
  }

  #updateAdler(): void {
    const w = this.#window;
    let a = this.#adlerA;
    let b = this.#adlerB;
    for (let i = this.#adlerPos; i < this.#wpos; ) {
      // 5552 bytes is the most that can be summed before the modulo without exceeding 2^53.
      const stop = Math.min(this.#wpos, i + 5552);
      for (; i < stop; i++) {
        a += w[i];
        b += a;
      }
      a %= 65521;
      b %= 65521;
    }
    this.#adlerA = a;
    this.#adlerB = b;
    this.#adlerPos = this.#wpos;
  }

  /** Ensures `n` (≤ 24) bits are buffered; false when the input runs out first. */
  #need(n: number): boolean {
    while (this.#bitCount < n) {
      if (this.#inPos >= this.#input.length) return false;
      this.#bits |= this.#input[this.#inPos++] << this.#bitCount;
      this.#bitCount += 8;
    }
    return true;
  }

  #take(n: number): number {
    const value = this.#bits & ((1 << n) - 1);
    this.#drop(n);
    return value;
  }

  #drop(n: number): void {
    this.#bits >>>= n;
    this.#bitCount -= n;
  }

  /** The table entry for the next code without consuming it: NEED or INVALID when negative. */
  #peek(table: HuffmanTable): number {
    if (!this.#need(table.maxLen)) {
      // Near the end of the input a short code may be complete with fewer bits than maxLen.
      const entry = this.#bitCount > 0 ? table.entries[this.#bits & ((1 << table.maxLen) - 1)] : 0;
      return entry !== 0 && (entry & 15) <= this.#bitCount ? entry : NEED;
    }
    const entry = table.entries[this.#bits & ((1 << table.maxLen) - 1)];
    return entry === 0 ? INVALID : entry;
  }
}

const NEED = -1;
const INVALID = -2;
