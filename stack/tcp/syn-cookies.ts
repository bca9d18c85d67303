// SYN cookies (RFC 4987 section 3.6), as Linux makes them: when a listener's
// SYN backlog is full, the SYN-ACK's initial sequence number carries what the
// connection needs, so the SYN costs no state at all; a returning ACK whose
// acknowledgement number decodes to a valid cookie creates the connection.
//
// The cookie (32 bits), for a SYN with sequence number ISN from the 4-tuple T:
//   cookie = H1(T, ISN) + (count << 24) + ((H2(T, count) + mssIndex) mod 2^24)
// where count is the minute counter (now / 60 s, mod 256), mssIndex picks one
// of COOKIE_MSS, and H1, H2 are SipHash-2-4 under two secret 128-bit keys.
// (Linux adds the ISN to H1(T) instead of hashing it, so an ACK whose
// sequence number is off by a little still decodes; hashing it costs nothing.)
// Checking an ACK: x = (SEG.ACK - 1) - H1(T, SEG.SEQ - 1); its top byte is
// the count; the low 24 bits minus H2(T, count) must be a valid MSS index, and
// the count at most MAX_AGE minutes old (a cookie lives 2 to 3 minutes,
// replays after that are refused). A forged ACK passes with a probability of
// about (MAX_AGE + 1) * COOKIE_MSS.length / 2^32.
//
// What a cookie-made connection loses: the SYN's options beyond the MSS
// (rounded down to a table entry). Without timestamps to carry them (Linux's
// trick) there is no window scaling and no SACK: such a connection sends and
// advertises windows of at most 65,535 bytes and recovers losses with NewReno
// alone. Cookies are only used while the backlog is full, i.e. under a flood.

/** MSS values a cookie can carry (Linux's IPv4 table): the largest not above the peer's is used. */
export const COOKIE_MSS: readonly number[] = [536, 1300, 1440, 1460];
/** Minutes a cookie stays valid after the minute it was made in. */
export const MAX_AGE = 2;
const MINUTE_MS = 60_000;

export type CookieCheck =
  | { ok: true; mss: number }
  | { ok: false; why: 'expired' | 'forged' };

export class SynCookies {
  private readonly key1: Uint32Array;
  private readonly key2: Uint32Array;
  private readonly msg = new Uint8Array(16);
  private readonly words = new DataView(this.msg.buffer);

  /** secret: eight random 32-bit words (two SipHash keys). */
  constructor(secret: Uint32Array) {
    if (secret.length !== 8) throw new RangeError('SynCookies: the secret is eight 32-bit words');
    this.key1 = secret.slice(0, 4);
    this.key2 = secret.slice(4, 8);
  }

  /** The initial sequence number of a cookie SYN-ACK, and the MSS it encodes. */
  make(
    nowMs: number, localAddr: number, localPort: number, remoteAddr: number, remotePort: number,
    peerIsn: number, peerMss: number,
  ): { iss: number; mss: number } {
    let index = 0;
    for (let i = COOKIE_MSS.length - 1; i > 0; i--) {
      if (COOKIE_MSS[i]! <= peerMss) {
        index = i;
        break;
      }
    }
    const count = minuteCount(nowMs);
    const h1 = this.hash(this.key1, localAddr, localPort, remoteAddr, remotePort, peerIsn);
    const h2 = this.hash(this.key2, localAddr, localPort, remoteAddr, remotePort, count);
    const iss = (h1 + (count << 24) + ((h2 + index) & 0xffffff)) >>> 0;
    return { iss, mss: COOKIE_MSS[index]! };
  }

  /** Is `cookie` (SEG.ACK - 1) one we made for this 4-tuple and peer ISN (SEG.SEQ - 1)? */
  check(
    nowMs: number, localAddr: number, localPort: number, remoteAddr: number, remotePort: number,
    peerIsn: number, cookie: number,
  ): CookieCheck {
    const h1 = this.hash(this.key1, localAddr, localPort, remoteAddr, remotePort, peerIsn);
    const x = (cookie - h1) >>> 0;
    const count = x >>> 24;
    const h2 = this.hash(this.key2, localAddr, localPort, remoteAddr, remotePort, count);
    const index = (x - h2) & 0xffffff;
    // The index first: a random number passes it with odds of 4 in 2^24, so
    // what passes and is too old really is one of our cookies, come late.
    if (index >= COOKIE_MSS.length) return { ok: false, why: 'forged' };
    if (((minuteCount(nowMs) - count) & 0xff) > MAX_AGE) return { ok: false, why: 'expired' };
    return { ok: true, mss: COOKIE_MSS[index]! };
  }

  /** SipHash-2-4 of (localAddr, remoteAddr, ports, extra) under key, low 32 bits. */
  private hash(key: Uint32Array, localAddr: number, localPort: number, remoteAddr: number, remotePort: number, extra: number): number {
    const w = this.words;
    w.setUint32(0, localAddr, true);
    w.setUint32(4, remoteAddr, true);
    w.setUint32(8, ((localPort << 16) | remotePort) >>> 0, true);
    w.setUint32(12, extra >>> 0, true);
    return sipHash24(key, this.msg)[1];
  }
}

function minuteCount(nowMs: number): number {
  return Math.floor(nowMs / MINUTE_MS) & 0xff;
}

// ---------------------------------------------------------------------------
// SipHash-2-4 (Aumasson and Bernstein, 2012) on 32-bit halves: JavaScript has
// no 64-bit integers but BigInt, which allocates. Each 64-bit lane is a pair
// (hi, lo) in a small Uint32Array; v is [v0hi, v0lo, v1hi, v1lo, ...].

const v = new Uint32Array(8);
const out: [number, number] = [0, 0];

/** SipHash-2-4 of `message` under a 128-bit key (four little-endian words
 *  k0lo, k0hi, k1lo, k1hi); returns [hi, lo] of the 64-bit result. The
 *  returned array is reused by the next call. */
export function sipHash24(key: Uint32Array, message: Uint8Array): readonly [number, number] {
  const k0lo = key[0]!, k0hi = key[1]!, k1lo = key[2]!, k1hi = key[3]!;
  v[0] = k0hi ^ 0x736f6d65; v[1] = k0lo ^ 0x70736575; // "somepseu"
  v[2] = k1hi ^ 0x646f7261; v[3] = k1lo ^ 0x6e646f6d; // "dorandom"
  v[4] = k0hi ^ 0x6c796765; v[5] = k0lo ^ 0x6e657261; // "lygenera"
  v[6] = k1hi ^ 0x74656462; v[7] = k1lo ^ 0x79746573; // "tedbytes"
  const n = message.length;
  const whole = n - (n % 8);
  for (let i = 0; i < whole; i += 8) absorb(wordAt(message, i + 4), wordAt(message, i));
  // The last block: the remaining bytes, and the length's low byte on top.
  let lo = 0;
  let hi = (n & 0xff) << 24;
  for (let i = whole; i < n; i++) {
    const shift = (i - whole) * 8;
    if (shift < 32) lo |= message[i]! << shift;
    else hi |= message[i]! << (shift - 32);
  }
  absorb(hi >>> 0, lo >>> 0);
  v[5] = (v[5]! ^ 0xff) >>> 0; // v2 ^= 0xff
  for (let r = 0; r < 4; r++) sipRound();
  out[0] = (v[0]! ^ v[2]! ^ v[4]! ^ v[6]!) >>> 0;
  out[1] = (v[1]! ^ v[3]! ^ v[5]! ^ v[7]!) >>> 0;
  return out;
}

function wordAt(m: Uint8Array, i: number): number {
  return (m[i]! | (m[i + 1]! << 8) | (m[i + 2]! << 16) | (m[i + 3]! << 24)) >>> 0;
}

/** One message word m = (hi, lo): v3 ^= m, two rounds, v0 ^= m. */
function absorb(hi: number, lo: number): void {
  v[6] = (v[6]! ^ hi) >>> 0;
  v[7] = (v[7]! ^ lo) >>> 0;
  sipRound();
  sipRound();
  v[0] = (v[0]! ^ hi) >>> 0;
  v[1] = (v[1]! ^ lo) >>> 0;
}

/** a += b (lanes at indices a, b). */
function add(a: number, b: number): void {
  const lo = v[a + 1]! + v[b + 1]!;
  v[a] = (v[a]! + v[b]! + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  v[a + 1] = lo >>> 0;
}

/** Lane a rotated left by s bits (0 < s < 64), then xor-ed with lane x. */
function rotlXor(a: number, s: number, x: number): void {
  let hi = v[a]!, lo = v[a + 1]!;
  if (s >= 32) {
    const t = hi; hi = lo; lo = t;
    s -= 32;
  }
  if (s > 0) {
    const nh = (hi << s) | (lo >>> (32 - s));
    const nl = (lo << s) | (hi >>> (32 - s));
    hi = nh; lo = nl;
  }
  v[a] = (hi ^ v[x]!) >>> 0;
  v[a + 1] = (lo ^ v[x + 1]!) >>> 0;
}

/** Rotate lane a left by 32: swap its halves. */
function rot32(a: number): void {
  const t = v[a]!;
  v[a] = v[a + 1]!;
  v[a + 1] = t;
}

/** SipRound on v0 (0), v1 (2), v2 (4), v3 (6). */
function sipRound(): void {
  add(0, 2); rotlXor(2, 13, 0); rot32(0);
  add(4, 6); rotlXor(6, 16, 4);
  add(0, 6); rotlXor(6, 21, 0);
  add(4, 2); rotlXor(2, 17, 4); rot32(4);
}
