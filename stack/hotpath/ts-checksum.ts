// Internet checksum (RFC 1071) in plain TypeScript: the ts engine's twin of
// assembly/checksum.ts. Results are identical, bit for bit, to the wasm engine.
//
// Two loops. Headers (short ranges) use big-endian 32-bit DataView reads at
// any alignment. Long ranges read aligned u32 words through a Uint32Array
// (native order, little-endian on every platform Node runs on). The ones'-complement sum does
// not care about byte order except for one swap at the end (RFC 1071 2B), and
// since 2^16 = 1 (mod 0xffff) a u32 word counts as the sum of its two halves.
// So each byte is weighted by its absolute address: even bytes are low bytes
// (weight 1), odd bytes high bytes (weight 256). A range starting at an even
// address then has its words byte-swapped, and is swapped back at the end.

/** Returned by sum16/checksum when the range is not inside memory: bit 16
 *  set, so it can never be mistaken for a 16-bit result. */
export const CHECKSUM_OUT_OF_RANGE = 0x10000;

/** Words summed per block: 4 accumulators of 2^20 / 4 words below 2^32 each
 *  stay far below 2^53, where doubles stop being exact integers. */
const BLOCK_WORDS = 1 << 20;

/** Folds a non-negative integer below 2^53 to 16 bits with end-around carries.
 *  Zero stays zero; anything else lands in [1, 0xffff]. */
export function foldSum(s: number): number {
  while (s > 0xffffffff) s = (s >>> 0) + Math.floor(s / 0x100000000);
  s = (s & 0xffff) + (s >>> 16);
  return (s & 0xffff) + (s >>> 16);
}

function swap16(x: number): number {
  return ((x & 0xff) << 8) | (x >>> 8);
}

/** Bytes [p, end) weighted by address parity (see the file comment). */
function sumBytes(bytes: Uint8Array, p: number, end: number): number {
  let s = 0;
  for (; p < end; p++) s += (p & 1) !== 0 ? bytes[p] << 8 : bytes[p];
  return s;
}

/** Sum of the aligned words [i, end), unfolded but below 2^53. */
function sumWords(words: Uint32Array, i: number, end: number): number {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  // Four independent chains, two words each, keep the adders busy.
  const end8 = end - 7;
  for (; i < end8; i += 8) {
    a += words[i] + words[i + 4];
    b += words[i + 1] + words[i + 5];
    c += words[i + 2] + words[i + 6];
    d += words[i + 3] + words[i + 7];
  }
  for (; i < end; i++) a += words[i];
  return a + b + c + d;
}

/** Below this length a simple loop of big-endian 32-bit reads wins. */
const SHORT_LEN = 64;

/** Network-order folded sum of [off, off+len); the caller checked the range
 *  (memories are at most 2 GiB, so every position fits an int32). The three
 *  views are over the same memory. */
export function rangeSum(bytes: Uint8Array, words: Uint32Array, view: DataView, off: number, len: number): number {
  return len < SHORT_LEN ? shortSum(view, off, len) : longSum(bytes, words, off, len);
}

/** Headers: big-endian reads (DataView compiles to a load and a byte swap) at
 *  any alignment. Kept apart from the long loop so that feedback from long
 *  buffers never shapes the per-header path. */
function shortSum(view: DataView, off: number, len: number): number {
  const end = off + (len & ~3);
  let s = 0;
  let p = off;
  for (; p < end; p += 4) {
    const w = view.getUint32(p);
    s += (w >>> 16) + (w & 0xffff);
  }
  if ((len & 2) !== 0) {
    s += view.getUint16(p);
    p += 2;
  }
  if ((len & 1) !== 0) s += view.getUint8(p) << 8;
  s = (s & 0xffff) + (s >>> 16); // s < 2^22 here
  return (s & 0xffff) + (s >>> 16);
}

/** Long ranges: odd bytes up to a 4-byte boundary, aligned words, odd bytes
 *  after; weighted by address parity and swapped back when off is even. */
function longSum(bytes: Uint8Array, words: Uint32Array, off: number, len: number): number {
  const end = off + len;
  const head = Math.min(off + ((4 - (off & 3)) & 3), end);
  let s = sumBytes(bytes, off, head);
  const firstWord = head >>> 2;
  const lastWord = end >>> 2;
  for (let i = firstWord; i < lastWord; i += BLOCK_WORDS) {
    s = foldSum(s + sumWords(words, i, Math.min(i + BLOCK_WORDS, lastWord)));
  }
  s += sumBytes(bytes, Math.max(head, lastWord * 4), end); // * 4: 2^31 overflows <<
  const folded = foldSum(s);
  return (off & 1) === 0 ? swap16(folded) : folded;
}

/** Folded sum of the IPv4 pseudo-header: addresses, zero, protocol, length. */
export function pseudoHeaderSumV4(src: number, dst: number, proto: number, length: number): number {
  return foldSum(
    (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + (proto & 0xff) + (length & 0xffff),
  );
}

/** RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), all 16-bit ones'-complement. */
export function checksumUpdate16(oldChecksum: number, oldWord: number, newWord: number): number {
  return ~foldSum((~oldChecksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff)) & 0xffff;
}
