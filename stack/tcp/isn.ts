// Initial sequence numbers per RFC 6528:
//   ISN = M + F(localip, localport, remoteip, remoteport, secretkey)
// M is a clock ticking every 4 microseconds (RFC 9293 3.4.1) and F a keyed
// hash, so that an off-path attacker cannot predict another connection's ISN,
// while a new incarnation of the same 4-tuple still starts above the old one
// (which is what lets a TIME_WAIT record accept a new SYN).

/** A per-stack secret: four random 32-bit words (RFC 6528 section 3). */
export function randomSecret(): Uint32Array {
  const secret = new Uint32Array(4);
  globalThis.crypto.getRandomValues(secret);
  return secret;
}

/** One 32-bit mixing round (multiply-xorshift); a small keyed PRF is all RFC 6528 asks for. */
function mix(h: number, v: number): number {
  h ^= v;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A keyed hash of two 32-bit words and the secret (RFC 6528's F, RFC 6056's F and G). */
export function keyedHash(secret: Uint32Array, a: number, b: number): number {
  let h = secret[0]!;
  h = mix(h, a);
  h = mix(h, secret[1]!);
  h = mix(h, b);
  h = mix(h, secret[2]!);
  return mix(h, secret[3]!);
}

export class IsnGenerator {
  constructor(private readonly secret: Uint32Array = randomSecret()) {}

  /** F: keyed hash of the 4-tuple. */
  hash(localAddr: number, localPort: number, remoteAddr: number, remotePort: number): number {
    return keyedHash(this.secret, (localAddr ^ Math.imul(remoteAddr, 0x9e3779b1)) >>> 0, ((localPort << 16) | remotePort) >>> 0);
  }

  /** ISN for a connection opened at monotonic time nowMs. */
  isn(nowMs: number, localAddr: number, localPort: number, remoteAddr: number, remotePort: number): number {
    const ticks = Math.floor(nowMs * 250) % 0x100000000; // 4 us ticks, mod 2^32
    return (ticks + this.hash(localAddr, localPort, remoteAddr, remotePort)) >>> 0;
  }
}

/** Random words drawn from the host in batches: one getRandomValues() call
 *  costs microseconds, as much as the rest of a connect(). */
const randomPool = new Uint32Array(64);
let randomLeft = 0;

/** A random u32 (ephemeral port choice and similar). */
export function randomU32(): number {
  if (randomLeft === 0) {
    globalThis.crypto.getRandomValues(randomPool);
    randomLeft = randomPool.length;
  }
  return randomPool[--randomLeft]!;
}
