// Internet checksum (RFC 1071), IPv4 pseudo-header sum and RFC 1624 update.
//
// Byte order: the ones'-complement sum is byte-order independent up to one
// final swap (RFC 1071 section 2B). Wasm loads are little-endian, so the loops
// below sum little-endian words starting at the range's first byte and the
// result is swapped once into network order. Loads may be unaligned: Wasm
// allows it and x86/arm64 pay little for it.
//
// Accumulators are wider than 16 bits and folded only at the end; since
// 2^16 = 1 (mod 0xffff), summing u32 or u64 words is the same as summing
// their 16-bit halves, as long as no carry is lost.

/** Returned by sum16/checksum when [off, off+len) is not inside memory:
 *  bit 16 set, so it can never be mistaken for a 16-bit result. */
export const CHECKSUM_OUT_OF_RANGE: u32 = 0x10000;

/** Below this length the scalar loop wins (setting up vectors costs more). */
const SIMD_MIN_LEN: u32 = 128;
/** Vectors summed per block before the i32 lanes are widened: 16384 vectors
 *  add at most 16384 * 65536 = 2^30 to a lane, far from overflow. */
const BLOCK_VECTORS: u32 = 16384;

/** True when [off, off+len) lies inside linear memory (no u32 wrap-around). */
// @ts-ignore: decorator
@inline export function inMemory(off: u32, len: u32): bool {
  return <u64>off + <u64>len <= (<u64>memory.size() << 16);
}

/** Folds a sum to 16 bits with end-around carries. Zero stays zero; any other
 *  value lands in [1, 0xffff]. */
// @ts-ignore: decorator
@inline export function fold64(s: u64): u32 {
  s = (s & 0xffffffff) + (s >> 32);
  s = (s & 0xffffffff) + (s >> 32);
  let t = <u32>s;
  t = (t & 0xffff) + (t >>> 16);
  return (t & 0xffff) + (t >>> 16);
}

// @ts-ignore: decorator
@inline function swap16(x: u32): u32 {
  return ((x & 0xff) << 8) | (x >>> 8);
}

/** Little-endian word sum of [p, p+len), unfolded. Fits in u64 for any
 *  length below 4 GiB (fewer than 2^30 words of less than 2^32 each). */
function sumScalarLE(p: u32, len: u32): u64 {
  let a: u64 = 0;
  let b: u64 = 0;
  // Two independent chains let the CPU overlap the additions.
  while (len >= 16) {
    a += <u64>load<u32>(p) + <u64>load<u32>(p, 4);
    b += <u64>load<u32>(p, 8) + <u64>load<u32>(p, 12);
    p += 16;
    len -= 16;
  }
  while (len >= 4) {
    a += <u64>load<u32>(p);
    p += 4;
    len -= 4;
  }
  // The rest starts at an even distance from the range's start, so a 16-bit
  // load keeps its pairing and a last odd byte is the low byte of its word.
  if (len >= 2) {
    a += <u64>load<u16>(p);
    p += 2;
    len -= 2;
  }
  if (len != 0) a += <u64>load<u8>(p);
  return a + b;
}

/** Sum of `vectors` 16-byte vectors at p, as a u64 comparable with sumScalarLE.
 *
 *  Why the bias: i32x4.dot_i16x8_s (one multiply-add instruction on x86) adds
 *  adjacent *signed* 16-bit lanes. Flipping the top bit of an unsigned lane u
 *  gives a signed lane worth exactly u - 0x8000, so each dot lane is the
 *  unsigned pair sum minus 0x10000; the bias is added back once per block. */
// @ts-ignore: decorator
@inline function sumBlock(p: u32, vectors: u32): u64 {
  const flip = i16x8.splat(-0x8000);
  const ones = i16x8.splat(1);
  let a0 = i32x4.splat(0);
  let a1 = i32x4.splat(0);
  let a2 = i32x4.splat(0);
  let a3 = i32x4.splat(0);
  let n = vectors >>> 2;
  while (n != 0) {
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.xor(v128.load(p), flip), ones));
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.xor(v128.load(p, 16), flip), ones));
    a2 = i32x4.add(a2, i32x4.dot_i16x8_s(v128.xor(v128.load(p, 32), flip), ones));
    a3 = i32x4.add(a3, i32x4.dot_i16x8_s(v128.xor(v128.load(p, 48), flip), ones));
    p += 64;
    n--;
  }
  n = vectors & 3;
  while (n != 0) {
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.xor(v128.load(p), flip), ones));
    p += 16;
    n--;
  }
  const t = i32x4.add(i32x4.add(a0, a1), i32x4.add(a2, a3));
  const w = i64x2.add(i64x2.extend_low_i32x4_s(t), i64x2.extend_high_i32x4_s(t));
  const signed = i64x2.extract_lane(w, 0) + i64x2.extract_lane(w, 1);
  // Each vector lost 0x10000 in each of its 4 lanes.
  return <u64>(signed + (<i64>vectors << 18));
}

/** Same value as sumScalarLE, 16 bytes at a time. */
function sumSimdLE(p: u32, len: u32): u64 {
  let s: u64 = 0;
  while (len >= 16) {
    const vectors = min<u32>(len >>> 4, BLOCK_VECTORS);
    s += sumBlock(p, vectors);
    p += vectors << 4;
    len -= vectors << 4;
  }
  return s + sumScalarLE(p, len);
}

/** Network-order folded sum of a range already known to be in memory. */
// @ts-ignore: decorator
@inline export function rangeSum(off: u32, len: u32): u32 {
  const s = len >= SIMD_MIN_LEN ? sumSimdLE(off, len) : sumScalarLE(off, len);
  return swap16(fold64(s));
}

/** Network-order folded sum by the scalar loop only (short headers). */
// @ts-ignore: decorator
@inline export function rangeSumScalar(off: u32, len: u32): u32 {
  return swap16(fold64(sumScalarLE(off, len)));
}

// @ts-ignore: decorator
@inline export function addFold(a: u32, b: u32): u32 {
  return fold64(<u64>a + <u64>b);
}

/** Ones'-complement sum of [off, off+len) plus `initial`, folded to 16 bits. */
export function sum16(off: u32, len: u32, initial: u32): u32 {
  if (!inMemory(off, len)) return CHECKSUM_OUT_OF_RANGE;
  return addFold(rangeSum(off, len), initial);
}

/** The checksum field value: the complement of sum16. */
export function checksum(off: u32, len: u32, initial: u32): u32 {
  if (!inMemory(off, len)) return CHECKSUM_OUT_OF_RANGE;
  return ~addFold(rangeSum(off, len), initial) & 0xffff;
}

export function checksumScalar(off: u32, len: u32, initial: u32): u32 {
  if (!inMemory(off, len)) return CHECKSUM_OUT_OF_RANGE;
  return ~addFold(rangeSumScalar(off, len), initial) & 0xffff;
}

/** Folded sum of the IPv4 pseudo-header: addresses, zero, protocol, length. */
export function pseudoHeaderSumV4(src: u32, dst: u32, proto: u32, length: u32): u32 {
  const s =
    <u64>(src >>> 16) + <u64>(src & 0xffff) + <u64>(dst >>> 16) + <u64>(dst & 0xffff) + <u64>(proto & 0xff) + <u64>(length & 0xffff);
  return fold64(s);
}

/** RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), all 16-bit ones'-complement. */
export function checksumUpdate16(oldChecksum: u32, oldWord: u32, newWord: u32): u32 {
  const s = <u64>(~oldChecksum & 0xffff) + <u64>(~oldWord & 0xffff) + <u64>(newWord & 0xffff);
  return ~fold64(s) & 0xffff;
}
