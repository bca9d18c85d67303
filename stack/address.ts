// IPv4 and MAC address helpers. Inside the stack an IPv4 address is a u32
// number in host order (10.0.0.2 = 0x0a000002), as the hot path's records
// hold it; strings appear only at the API edge.

/** A u32 IPv4 address or its dotted-quad string. */
export type Ipv4Input = string | number;

export const IPV4_BROADCAST = 0xffffffff;
export const IPV4_ANY = 0;

/** Parse dotted-quad '10.0.0.2' into a u32. Throws on anything else.
 *  Reads the characters in place (no split, no regular expression): connect()
 *  parses its address on every call. */
export function parseIpv4(text: string): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x2e; // a final '.' ends the last part
    if (c >= 0x30 && c <= 0x39 && digits < 3) {
      octet = octet * 10 + (c - 0x30);
      digits++;
    } else if (c === 0x2e && digits > 0 && octet <= 255 && parts < 4) {
      value = value * 256 + octet;
      parts++;
      octet = 0;
      digits = 0;
    } else {
      throw new Error(`invalid IPv4 address: '${text}'`);
    }
  }
  if (parts !== 4) throw new Error(`invalid IPv4 address: '${text}'`);
  return value >>> 0;
}

/** Format a u32 as dotted quad. */
export function formatIpv4(address: number): string {
  const a = address >>> 0;
  return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

/** Accept a string or a u32 (validated) and return the u32. */
export function toIpv4(address: Ipv4Input): number {
  if (typeof address === 'string') return parseIpv4(address);
  if (!Number.isInteger(address) || address < 0 || address > 0xffffffff) {
    throw new Error(`invalid IPv4 address: ${address}`);
  }
  return address >>> 0;
}

/** Netmask of a prefix length: 24 -> 0xffffff00. */
export function prefixMask(prefix: number): number {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) {
    throw new Error(`invalid IPv4 prefix length: ${prefix}`);
  }
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parse CIDR '10.0.0.2/24'. */
export function parseCidr(text: string): { address: number; prefix: number } {
  const slash = text.indexOf('/');
  if (slash < 0) throw new Error(`invalid IPv4 CIDR (no /prefix): '${text}'`);
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,2}$/.test(prefixText)) throw new Error(`invalid IPv4 CIDR: '${text}'`);
  const prefix = Number(prefixText);
  prefixMask(prefix); // validates the range
  return { address: parseIpv4(text.slice(0, slash)), prefix };
}

/** Format an address and prefix as CIDR. */
export function formatCidr(address: number, prefix: number): string {
  return `${formatIpv4(address)}/${prefix}`;
}

/** True when a and b are in the same subnet under mask. */
export function sameSubnet(a: number, b: number, mask: number): boolean {
  return ((a ^ b) & mask) === 0;
}

/** Directed broadcast address of the subnet of `address`. */
export function subnetBroadcast(address: number, mask: number): number {
  return (address | ~mask) >>> 0;
}

/** Class D (224.0.0.0/4). */
export function isMulticast(address: number): boolean {
  return address >>> 28 === 0xe;
}

// ---------------------------------------------------------------------------
// MAC addresses travel in the encode record as two words: HI = the first two
// bytes, LO = the last four, both big-endian.

/** Words HI and LO of the 6 bytes at `bytes[off..off+6)`. */
export function macHi(bytes: Uint8Array, off: number): number {
  return (bytes[off]! << 8) | bytes[off + 1]!;
}

export function macLo(bytes: Uint8Array, off: number): number {
  return ((bytes[off + 2]! << 24) | (bytes[off + 3]! << 16) | (bytes[off + 4]! << 8) | bytes[off + 5]!) >>> 0;
}

/** Write a MAC given as HI/LO words to bytes[off..off+6). */
export function writeMac(bytes: Uint8Array, off: number, hi: number, lo: number): void {
  bytes[off] = hi >>> 8;
  bytes[off + 1] = hi & 0xff;
  bytes[off + 2] = lo >>> 24;
  bytes[off + 3] = (lo >>> 16) & 0xff;
  bytes[off + 4] = (lo >>> 8) & 0xff;
  bytes[off + 5] = lo & 0xff;
}

/** 'aa:bb:cc:dd:ee:ff'. */
export function formatMac(mac: Uint8Array): string {
  return Array.from(mac.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Parse 'aa:bb:cc:dd:ee:ff' (or with '-') into 6 bytes. */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) {
    throw new Error(`invalid MAC address: '${text}'`);
  }
  return Uint8Array.from(parts, (p) => parseInt(p, 16));
}
