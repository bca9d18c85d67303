// What the sender's and the receiver's handshake machines share: the step
// they return for each packet, and the errors that end a handshake. The
// machines are pure (no sockets, no timers): handshake-driver.ts runs them.
import type { Frame, Packet } from '../handshake/packet.js';
import { escapeUnsafe } from '../pack/format.js';
import type { SharedKeys } from '../spoke/spake2ee.js';
import { BobError, ExitCode } from './errors.js';
import type { Logger } from './log.js';

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
  /**
   * Costly work the machine deferred (a receiver's PBKDF2 per sender), one
   * piece per call, or null when there is none. The driver runs it while it
   * keeps reading packets, and aborts `signal` when the handshake ends.
   */
  work?(signal: AbortSignal): Promise<Step> | null;
}

export const RELAY = 0x0000;

/** The other side of a handshake, as the messages name it. */
export type PeerRole = 'sender' | 'receiver';

export function frame(uid: number, packet: Packet): Frame {
  return { uid, packet };
}

/** An identity as the relay wrote it, for messages: a hostile relay's control characters come out escaped. */
export function identityText(identity: Uint8Array): string {
  return escapeUnsafe(new TextDecoder().decode(identity));
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

/** The packets both machines answer alike: 09 0000 and 0f end the handshake,
 *  09 <uid> means that peer left (`forget` it), anything else is ignored. */
export function commonStep(f: Frame, log: Logger, forget: (uid: number) => void): Step {
  const p = f.packet;
  switch (p.name) {
    case 'Closed':
      if (p.uid === RELAY) return { send: [], error: relayClosedError() };
      forget(p.uid);
      return { send: [] };
    case 'Timeout':
      return { send: [], error: relayTimeoutError() };
    default:
      log.debug(`ignoring ${p.name} from ${hexUid(f.uid)}`);
      return { send: [] };
  }
}

/** A peer's password differs from ours: a warning, and with failFast the end
 *  of the handshake (`send` still goes out first). */
export function wrongPasswordStep(
  peer: PeerRole,
  identity: Uint8Array,
  send: Frame[],
  failFast: boolean | undefined,
  log: Logger,
): Step {
  const message = `Wrong password: the ${peer} ${identityText(identity)} uses another one`;
  log.warn(message);
  return failFast ? { send, error: new BobError(ExitCode.WrongPassword, message) } : { send };
}

/** The --timeout error when no peer got as far as the user's decision: some
 *  had another password, or none came at all. */
export function noPeerError(peer: PeerRole, wrongPasswords: number, waited: string): BobError {
  if (wrongPasswords > 0) {
    return new BobError(
      ExitCode.WrongPassword,
      `Wrong password: ${plural(wrongPasswords, peer)} used another one, and none with ours came ${waited}`,
    );
  }
  return new BobError(ExitCode.Timeout, `Timeout: no ${peer} came ${waited}`);
}
