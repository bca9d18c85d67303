// Handshake packets on TCP 9000 (docs/bob-protocol.md §1): the types, their wire
// layout and the encoder. A packet is `UUUU` `TT` payload: uid and type as
// ASCII hex, then a fixed payload or a fixed prefix and a NUL-terminated
// identity. No length field exists, so the layout table below is the framing.
import { type SpokeFailureCode, isSpokeFailureCode } from '../spoke/failure.js';
import { PUBLIC_BYTES } from '../spoke/public.js';

export const HEADER_BYTES = 6;
export const POINT_BYTES = 32;
export const VALIDATOR_BYTES = 64;
/** The relay's own uid, and the destination of packets meant for the relay. */
export const RELAY_UID = 0x0000;
export const MAX_UID = 0xffff;
/**
 * Shortest identity we emit. bob only searches for an identity's NUL once 12
 * bytes beyond the fixed prefix are buffered (§1 "Quirk"), so a lone packet
 * with a shorter identity stalls a bob peer. Real `ip:port` texts are longer.
 */
export const MIN_IDENTITY_BYTES = 5;
/** Longest identity we accept or emit; bob meant ≤ 53, and IPv6 `addr:port` fits in 64 (§7). */
export const MAX_IDENTITY_BYTES = 64;

/** Letters of Relay_failure (0c): invalid Client uid, invalid Server uid, no Handshake with uid, No agreement. */
export type RelayFailureLetter = 'C' | 'S' | 'H' | 'N';
export const RELAY_FAILURE_LETTERS: readonly RelayFailureLetter[] = ['C', 'S', 'H', 'N'];

/** One packet; `name` is bob's constructor name (§1 table). */
export type Packet =
  | { readonly name: 'Hello_as_a_server'; readonly public: Uint8Array }
  | { readonly name: 'Hello_as_a_client' }
  | { readonly name: 'Server_identity'; readonly identity: Uint8Array }
  | { readonly name: 'Client_identity'; readonly identity: Uint8Array }
  | { readonly name: 'New_server'; readonly uid: number; readonly public: Uint8Array; readonly identity: Uint8Array }
  | { readonly name: 'Client_validator'; readonly validator: Uint8Array }
  | { readonly name: 'Y_and_server_validator'; readonly Y: Uint8Array; readonly validator: Uint8Array }
  | { readonly name: 'X_and_client_identity'; readonly X: Uint8Array; readonly identity: Uint8Array }
  | { readonly name: 'Agreement' }
  | { readonly name: 'Closed'; readonly uid: number }
  | { readonly name: 'Accepted' }
  | { readonly name: 'Refused' }
  | { readonly name: 'Relay_failure'; readonly letter: RelayFailureLetter; readonly uid: number }
  | { readonly name: 'Spoke_failure'; readonly code: SpokeFailureCode }
  | { readonly name: 'Done' }
  | { readonly name: 'Timeout' };

export type PacketName = Packet['name'];

/** A packet with its uid: the destination when sending, the source when receiving (0000 = relay). */
export interface Frame {
  readonly uid: number;
  readonly packet: Packet;
}

/** Wire names indexed by type byte 0x00..0x0f. */
export const PACKET_NAMES: readonly PacketName[] = [
  'Hello_as_a_server',
  'Hello_as_a_client',
  'Server_identity',
  'Client_identity',
  'New_server',
  'Client_validator',
  'Y_and_server_validator',
  'X_and_client_identity',
  'Agreement',
  'Closed',
  'Accepted',
  'Refused',
  'Relay_failure',
  'Spoke_failure',
  'Done',
  'Timeout',
];

export function packetType(name: PacketName): number {
  return PACKET_NAMES.indexOf(name);
}

/** A fixed payload of `bytes`, or `prefix` fixed bytes then an identity up to a NUL. */
export type Layout = { readonly kind: 'fixed'; readonly bytes: number } | { readonly kind: 'delimited'; readonly prefix: number };

const fixed = (bytes: number): Layout => ({ kind: 'fixed', bytes });
const delimited = (prefix: number): Layout => ({ kind: 'delimited', prefix });

/** Payload layouts indexed by type byte (§1 table). */
export const LAYOUTS: readonly Layout[] = [
  fixed(PUBLIC_BYTES), // 00 public
  fixed(0), // 01
  delimited(0), // 02 identity NUL
  delimited(0), // 03 identity NUL
  delimited(4 + PUBLIC_BYTES), // 04 uid (4 hex) public identity NUL
  fixed(VALIDATOR_BYTES), // 05
  fixed(POINT_BYTES + VALIDATOR_BYTES), // 06 Y validator
  delimited(POINT_BYTES), // 07 X identity NUL
  fixed(0), // 08
  fixed(4), // 09 uid (4 hex)
  fixed(0), // 0a
  fixed(0), // 0b
  fixed(5), // 0c letter + uid (4 hex)
  fixed(1), // 0d code
  fixed(0), // 0e
  fixed(0), // 0f
];

/** Longest packet the layouts allow with identities of at most `maxIdentity` bytes (a 04). */
export function maxPacketBytes(maxIdentity: number = MAX_IDENTITY_BYTES): number {
  return HEADER_BYTES + 4 + PUBLIC_BYTES + maxIdentity + 1;
}

/** Why `frame` must not be sent, or null. Checks what a bob peer needs to parse it (§1). */
export function frameProblem(frame: Frame): string | null {
  if (!isUid(frame.uid)) return `uid ${frame.uid} is not in 0..0xffff`;
  const p = frame.packet;
  switch (p.name) {
    case 'Hello_as_a_server':
      return lengthProblem('public', p.public, PUBLIC_BYTES);
    case 'Server_identity':
    case 'Client_identity':
      return identityProblem(p.identity);
    case 'New_server':
      if (!isUid(p.uid)) return `New_server uid ${p.uid} is not in 0..0xffff`;
      return lengthProblem('public', p.public, PUBLIC_BYTES) ?? identityProblem(p.identity);
    case 'Client_validator':
      return lengthProblem('validator', p.validator, VALIDATOR_BYTES);
    case 'Y_and_server_validator':
      return lengthProblem('Y', p.Y, POINT_BYTES) ?? lengthProblem('validator', p.validator, VALIDATOR_BYTES);
    case 'X_and_client_identity':
      return lengthProblem('X', p.X, POINT_BYTES) ?? identityProblem(p.identity);
    case 'Closed':
      return isUid(p.uid) ? null : `Closed uid ${p.uid} is not in 0..0xffff`;
    case 'Relay_failure':
      if (!RELAY_FAILURE_LETTERS.includes(p.letter)) return `Relay_failure letter ${p.letter} is not C, S, H or N`;
      return isUid(p.uid) ? null : `Relay_failure uid ${p.uid} is not in 0..0xffff`;
    case 'Spoke_failure':
      return isSpokeFailureCode(p.code) ? null : `Spoke_failure code ${p.code} is not in 0..4`;
    default:
      return null;
  }
}

/** The wire bytes of `frame`; throws RangeError when `frameProblem` finds one. */
export function encodeFrame(frame: Frame): Uint8Array {
  const problem = frameProblem(frame);
  if (problem !== null) throw new RangeError(problem);
  const parts = [ascii(hex4(frame.uid) + hex2(packetType(frame.packet.name))), ...payloadParts(frame.packet)];
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let pos = 0;
  for (const part of parts) {
    out.set(part, pos);
    pos += part.length;
  }
  return out;
}

const NUL = Uint8Array.of(0);

function payloadParts(p: Packet): Uint8Array[] {
  switch (p.name) {
    case 'Hello_as_a_server':
      return [p.public];
    case 'Server_identity':
    case 'Client_identity':
      return [p.identity, NUL];
    case 'New_server':
      return [ascii(hex4(p.uid)), p.public, p.identity, NUL];
    case 'Client_validator':
      return [p.validator];
    case 'Y_and_server_validator':
      return [p.Y, p.validator];
    case 'X_and_client_identity':
      return [p.X, p.identity, NUL];
    case 'Closed':
      return [ascii(hex4(p.uid))];
    case 'Relay_failure':
      return [ascii(p.letter + hex4(p.uid))];
    case 'Spoke_failure':
      return [Uint8Array.of(p.code)];
    default:
      return [];
  }
}

function isUid(uid: number): boolean {
  return Number.isInteger(uid) && uid >= 0 && uid <= MAX_UID;
}

function lengthProblem(what: string, bytes: Uint8Array, expected: number): string | null {
  return bytes.length === expected ? null : `${what} is ${bytes.length} bytes, expected ${expected}`;
}

function identityProblem(identity: Uint8Array): string | null {
  if (identity.length < MIN_IDENTITY_BYTES || identity.length > MAX_IDENTITY_BYTES) {
    return `identity is ${identity.length} bytes, expected ${MIN_IDENTITY_BYTES}..${MAX_IDENTITY_BYTES}`;
  }
  return identity.includes(0) ? 'identity contains a NUL byte' : null;
}

/** bob writes `%04x%02x`: lowercase. */
function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function ascii(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
