// What the sender's and the receiver's handshake machines share: the step
// they return for each packet, and the errors that end a handshake. The
// machines are pure (no sockets, no timers): handshake-driver.ts runs them.
import type { Frame, Packet } from '../handshake/packet.js';
import type { SharedKeys } from '../spoke/spake2ee.js';
import { BobError, ExitCode } from './errors.js';

/** The handshake succeeded: go to the secure room with the peer's identity (§3). */
export interface Paired {
  /** The other peer's identity as the relay wrote it: the 9001 line. */
  readonly peerIdentity: Uint8Array;
  readonly keys: SharedKeys;
}

/** A receiver must ask its user before accepting this sender (§2.4). */
export interface Question {
  readonly uid: number;
  readonly identity: string;
}

/** What one packet leads to: packets to send, then at most one of the rest. */
export interface Step {
  readonly send: Frame[];
  readonly paired?: Paired;
  readonly ask?: Question;
  readonly error?: BobError;
}

export interface HandshakeMachine {
  /** The packets to send as soon as the connection is open. */
  start(): Frame[];
  handle(frame: Frame): Step;
  /** The error to report when the user's --timeout expires now. */
  giveUp(seconds: number): BobError;
}

export const RELAY = 0x0000;

export function frame(uid: number, packet: Packet): Frame {
  return { uid, packet };
}

export function identityText(identity: Uint8Array): string {
  return new TextDecoder().decode(identity);
}

/** 0f: the relay timed us out and closes (§2.3). */
export function relayTimeoutError(): BobError {
  return new BobError(ExitCode.Timeout, 'Connection closed by relay (timeout)');
}

/** `09 0000` or EOF on 9000: bob's "Connection closed by relay". */
export function relayClosedError(): BobError {
  return new BobError(ExitCode.Failure, 'Connection closed by relay');
}

export function hexUid(uid: number): string {
  return uid.toString(16).padStart(4, '0');
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
