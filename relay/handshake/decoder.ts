// Incremental decoder for handshake packets (docs/bob-protocol.md §1), fed whatever
// TCP reads deliver. It follows bob's parser rules, but unlike bob it is
// bounded: identities longer than a cap are an error, so at most one partial
// packet (≤ maxPacketBytes) is ever buffered, and every failure is a value.
//
// bob only looks for an identity's NUL once 12 bytes beyond the fixed prefix
// are buffered, so a short identity can stall a bob peer. We do not copy that:
// a packet is decoded as soon as its NUL arrives. Peers we talk to may still
// stall, which is why the encoder refuses identities under MIN_IDENTITY_BYTES.
import { SpokeFailure, isSpokeFailureCode } from '../spoke/failure.js';
import { PUBLIC_BYTES } from '../spoke/public.js';
import {
  type Frame,
  HEADER_BYTES,
  LAYOUTS,
  MAX_IDENTITY_BYTES,
  type Packet,
  PACKET_NAMES,
  POINT_BYTES,
  RELAY_FAILURE_LETTERS,
  type RelayFailureLetter,
} from './packet.js';

/** bob's parser errors (§1), plus our caps and EOF inside a packet. All are fatal to the connection. */
export type HandshakeErrorKind =
  | 'Invalid_header' // uid or type is not hex
  | 'Invalid_packet' // type ≥ 0x10, bad 0c letter or uid, 0d code > 4
  | 'Invalid_new_server' // 04's sender uid is not hex
  | 'Invalid_uid' // 09's uid is not hex
  | 'Identity_too_long' // no NUL within maxIdentity bytes (bob would wait forever, §7)
  | 'End_of_input'; // EOF inside a packet

export interface HandshakeError {
  readonly kind: HandshakeErrorKind;
  readonly message: string;
}

export interface DecodeResult {
  /** Packets completed by this push, in order (those before an error included). */
  readonly frames: Frame[];
  /** Set once the stream is invalid; the decoder then stays failed. */
  readonly error: HandshakeError | null;
}

export interface DecoderOptions {
  /** Longest identity accepted; default MAX_IDENTITY_BYTES. */
  readonly maxIdentity?: number;
}

const EMPTY = new Uint8Array(0);

export class HandshakeDecoder {
  readonly #maxIdentity: number;
  #pending: Uint8Array = EMPTY;
  #error: HandshakeError | null = null;

  constructor(options: DecoderOptions = {}) {
    this.#maxIdentity = options.maxIdentity ?? MAX_IDENTITY_BYTES;
  }

  /** Bytes held back as the start of an incomplete packet. */
  get bufferedBytes(): number {
    return this.#pending.length;
  }

  push(chunk: Uint8Array): DecodeResult {
    if (this.#error !== null) return { frames: [], error: this.#error };
    const buf = this.#pending.length === 0 ? chunk : concat(this.#pending, chunk);
    const frames: Frame[] = [];
    let offset = 0;
    for (;;) {
      const step = parseFrame(buf, offset, this.#maxIdentity);
      if (step === null) break;
      if ('kind' in step) {
        this.#error = step;
        this.#pending = EMPTY;
        return { frames, error: step };
      }
      frames.push(step.frame);
      offset = step.next;
    }
    // Copy: never keep a view of the caller's buffer.
    this.#pending = offset === buf.length ? EMPTY : buf.slice(offset);
    return { frames, error: null };
  }

  /** The peer closed: null at a packet boundary, End_of_input inside a packet. */
  end(): HandshakeError | null {
    if (this.#error !== null) return this.#error;
    if (this.#pending.length === 0) return null;
    this.#error = failure('End_of_input', `connection closed inside a packet (${this.#pending.length} bytes buffered)`);
    this.#pending = EMPTY;
    return this.#error;
  }
}

interface Parsed {
  readonly frame: Frame;
  readonly next: number;
}

/** One packet at `start`: parsed, an error, or null when more bytes are needed. */
export function parseFrame(buf: Uint8Array, start: number, maxIdentity: number): Parsed | HandshakeError | null {
  const headerEnd = Math.min(buf.length, start + HEADER_BYTES);
  // Reject a non-hex header byte as soon as it arrives, not after 6 bytes: same verdict, no waiting on garbage.
  for (let i = start; i < headerEnd; i++) {
    if (hexDigit(buf[i]) < 0) return failure('Invalid_header', `non-hex byte 0x${hex2(buf[i])} in packet header`);
  }
  if (headerEnd - start < HEADER_BYTES) return null;
  const uid = hexValue(buf, start, 4);
  const type = hexValue(buf, start + 4, 2);
  if (type >= LAYOUTS.length) return failure('Invalid_packet', `packet type 0x${hex2(type)} is not below 0x10`);
  const body = start + HEADER_BYTES;
  const layout = LAYOUTS[type];
  if (layout.kind === 'fixed') {
    if (buf.length < body + layout.bytes) return null;
    const packet = fixedPacket(type, buf.subarray(body, body + layout.bytes));
    return 'kind' in packet ? packet : { frame: { uid, packet }, next: body + layout.bytes };
  }
  const prefixEnd = body + layout.prefix;
  if (buf.length < prefixEnd) return null;
  const prefix = buf.subarray(body, prefixEnd);
  const prefixError = checkPrefix(type, prefix);
  if (prefixError !== null) return prefixError;
  // The NUL is searched for only after the prefix (X and public may contain 00
  // bytes), and no further than the identity cap.
  const searchEnd = Math.min(buf.length, prefixEnd + maxIdentity + 1);
  const nul = buf.subarray(prefixEnd, searchEnd).indexOf(0);
  if (nul < 0) {
    if (searchEnd - prefixEnd <= maxIdentity) return null;
    return failure('Identity_too_long', `identity longer than ${maxIdentity} bytes in ${PACKET_NAMES[type]}`);
  }
  const packet = delimitedPacket(type, prefix, buf.slice(prefixEnd, prefixEnd + nul));
  return { frame: { uid, packet }, next: prefixEnd + nul + 1 };
}

function fixedPacket(type: number, payload: Uint8Array): Packet | HandshakeError {
  switch (type) {
    case 0x00:
      return { name: 'Hello_as_a_server', public: payload.slice() };
    case 0x05:
      return { name: 'Client_validator', validator: payload.slice() };
    case 0x06:
      return { name: 'Y_and_server_validator', Y: payload.slice(0, POINT_BYTES), validator: payload.slice(POINT_BYTES) };
    case 0x09: {
      const uid = hexValue(payload, 0, 4);
      return uid < 0 ? failure('Invalid_uid', 'Closed carries a non-hex uid') : { name: 'Closed', uid };
    }
    case 0x0c:
      return relayFailure(payload);
    case 0x0d: {
      const code = payload[0];
      if (!isSpokeFailureCode(code)) return failure('Invalid_packet', `Spoke_failure code ${code} is above ${SpokeFailure.InvalidSecretPacket}`);
      return { name: 'Spoke_failure', code };
    }
    default:
      // Types with an empty payload carry nothing but their name.
      return { name: PACKET_NAMES[type] } as Packet;
  }
}

/** `C`/`S`/`H` then a uid; `N0000` too, which bob cannot parse (§7) but we can. Letters are uppercase only. */
function relayFailure(payload: Uint8Array): Packet | HandshakeError {
  const letter = String.fromCharCode(payload[0]);
  if (!(RELAY_FAILURE_LETTERS as readonly string[]).includes(letter)) {
    return failure('Invalid_packet', `Relay_failure letter 0x${hex2(payload[0])} is not C, S, H or N`);
  }
  const uid = hexValue(payload, 1, 4);
  if (uid < 0) return failure('Invalid_packet', 'Relay_failure carries a non-hex uid');
  return { name: 'Relay_failure', letter: letter as RelayFailureLetter, uid };
}

function checkPrefix(type: number, prefix: Uint8Array): HandshakeError | null {
  if (type === 0x04 && hexValue(prefix, 0, 4) < 0) return failure('Invalid_new_server', 'New_server carries a non-hex uid');
  return null;
}

function delimitedPacket(type: number, prefix: Uint8Array, identity: Uint8Array): Packet {
  switch (type) {
    case 0x02:
      return { name: 'Server_identity', identity };
    case 0x03:
      return { name: 'Client_identity', identity };
    case 0x04:
      return { name: 'New_server', uid: hexValue(prefix, 0, 4), public: prefix.slice(4, 4 + PUBLIC_BYTES), identity };
    default:
      return { name: 'X_and_client_identity', X: prefix.slice(), identity };
  }
}

function failure(kind: HandshakeErrorKind, message: string): HandshakeError {
  return { kind, message };
}

/** 0..15 for an ASCII hex digit of either case, else -1. */
function hexDigit(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x41 + 10;
  return -1;
}

/** The value of `length` hex digits at `at`, or -1 if one is not hex. */
function hexValue(buf: Uint8Array, at: number, length: number): number {
  let value = 0;
  for (let i = at; i < at + length; i++) {
    const digit = hexDigit(buf[i]);
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
