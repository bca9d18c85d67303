// The receiver's side of the 9000 handshake, as a real bob receiver behaves
// (docs/bob-protocol.md §2.4 "Receiver"):
//   connect → 0000 01;  03 → own identity;
//   0000 04 s pub sid → spoke hello → <s>07 X own (bad public → <s>0d 03);
//   <s>06 Y v2 → unknown s: 0000 0c S<s>; client_compute ok → s is current,
//                <s>05 v3; error → forget s, <s>0d code (01 = wrong password);
//   <s>08 with s current → ask the user → <s>0a or <s>0b; else 0000 0c H<s>;
//   0000 0e → paired with sid;  0f or 09 0000 → "Connection closed by relay".
// Every advertised sender costs one PBKDF2 (§4.6), bounded by the count cap
// of relay/spoke/public (MAX_COUNT) that parsePublic enforces (§7).
// Unlike bob, a 0e without agreement is not answered with `0c N0000`, which
// bob relays cannot parse (§7): the receiver just fails.
import type { Frame } from '../handshake/packet.js';
import { SpokeFailure } from '../spoke/failure.js';
import { type ClientState, type Password, type RandomSource, type SharedKeys, clientCompute, clientHello } from '../spoke/spake2ee.js';
import { MAX_PENDING_PEERS } from './defaults.js';
import { BobError, ExitCode } from './errors.js';
import {
  type HandshakeMachine,
  RELAY,
  type Step,
  commonStep,
  frame,
  hexUid,
  identityText,
  noPeerError,
  plural,
  wrongPasswordStep,
} from './handshake-common.js';
import { type Logger, silentLogger } from './log.js';

export interface ReceiverHandshakeOptions {
  readonly password: Password;
  /** Exit at the first sender whose password differs, instead of waiting for another. */
  readonly failFast?: boolean;
  /** Largest PBKDF2 count accepted from a sender (default: MAX_COUNT). */
  readonly maxCount?: number;
  readonly random?: RandomSource;
  readonly log?: Logger;
}

interface Candidate {
  readonly identity: Uint8Array;
  readonly state: ClientState;
  keys: SharedKeys | null;
}

export class ReceiverHandshake implements HandshakeMachine {
  readonly #options: ReceiverHandshakeOptions;
  readonly #log: Logger;
  readonly #candidates = new Map<number, Candidate>();
  #ownIdentity: Uint8Array | null = null;
  /** The sender whose validator checked out (we sent it 05). */
  #current: number | null = null;
  /** The sender we sent 0a to; the relay's 0e then completes the handshake. */
  #accepted: Candidate | null = null;
  #wrongPasswords = 0;
  #refusals = 0;

  constructor(options: ReceiverHandshakeOptions) {
    this.#options = options;
    this.#log = options.log ?? silentLogger;
  }

  start(): Frame[] {
    return [frame(RELAY, { name: 'Hello_as_a_client' })];
  }

  handle(f: Frame): Step {
    const p = f.packet;
    switch (p.name) {
      case 'Client_identity':
        this.#ownIdentity = p.identity;
        this.#log.info(`the relay knows us as ${identityText(p.identity)}`);
        return { send: [] };
      case 'New_server':
        return this.#onNewServer(p.uid, p.public, p.identity);
      case 'Y_and_server_validator':
        return this.#onY(f.uid, p.Y, p.validator);
      case 'Agreement':
        return this.#onAgreement(f.uid);
      case 'Done':
        return this.#onDone();
      case 'Spoke_failure':
        return this.#onSpokeFailure(f.uid, p.code);
      default: // 09, 0f and packets we do not expect
        return commonStep(f, this.#log, (uid) => this.#forget(uid, 'left the relay'));
    }
  }

  /** The user's answer to `ask`: 0a (then wait for 0e) or 0b (and keep waiting for others). */
  answer(s: number, accept: boolean): Frame[] {
    const candidate = this.#candidates.get(s);
    if (candidate === undefined || this.#current !== s) return [];
    if (accept) {
      this.#accepted = candidate;
      return [frame(s, { name: 'Accepted' })];
    }
    this.#refusals++;
    this.#log.info(`refused ${identityText(candidate.identity)}; waiting for another sender`);
    this.#forget(s, 'was refused');
    return [frame(s, { name: 'Refused' })];
  }

  giveUp(seconds: number): BobError {
    const waited = `within ${seconds} s`;
    if (this.#refusals > 0) {
      return new BobError(ExitCode.Refused, `Refused: ${plural(this.#refusals, 'sender')} refused, and no other came ${waited}`);
    }
    return noPeerError('sender', this.#wrongPasswords, waited);
  }

  /** 0000 04 s public sid: one PBKDF2 and X = x·B + M for this sender (§4.4). */
  #onNewServer(s: number, publicBytes: Uint8Array, sid: Uint8Array): Step {
    if (this.#accepted !== null) return { send: [] };
    if (this.#ownIdentity === null) {
      this.#log.warn(`sender ${hexUid(s)} advertised before the relay told us our identity; ignored`);
      return { send: [] };
    }
    if (!this.#candidates.has(s) && this.#candidates.size >= MAX_PENDING_PEERS) {
      this.#log.warn(`too many senders in progress; ignoring ${identityText(sid)}`);
      return { send: [] };
    }
    const hello = clientHello(this.#options.password, publicBytes, { maxCount: this.#options.maxCount, random: this.#options.random });
    if (!hello.ok) {
      this.#log.info(`sender ${identityText(sid)}: ${hello.message}`);
      return { send: [frame(s, { name: 'Spoke_failure', code: hello.code })] };
    }
    this.#candidates.set(s, { identity: sid, state: hello.value.state, keys: null });
    this.#log.debug(`sender ${identityText(sid)} (${hexUid(s)}): sent X`);
    return { send: [frame(s, { name: 'X_and_client_identity', X: hello.value.X, identity: this.#ownIdentity })] };
  }

  /** <s>06 Y v2: check the sender's validator; ours goes back in 05. */
  #onY(s: number, Y: Uint8Array, validator: Uint8Array): Step {
    const candidate = this.#candidates.get(s);
    if (candidate === undefined || this.#ownIdentity === null) {
      return { send: [frame(RELAY, { name: 'Relay_failure', letter: 'S', uid: s })] };
    }
    const ids = { clientIdentity: this.#ownIdentity, serverIdentity: candidate.identity };
    const result = clientCompute(candidate.state, Y, validator, ids);
    if (!result.ok) {
      this.#forget(s, result.message);
      const send = [frame(s, { name: 'Spoke_failure', code: result.code })];
      return result.code === SpokeFailure.InvalidClientValidator ? this.#wrongPassword(candidate.identity, send) : { send };
    }
    candidate.keys = result.value.sharedKeys;
    this.#current = s; // later ones overwrite, as in bob
    this.#log.debug(`sender ${identityText(candidate.identity)}: validator ok, sent ours`);
    return { send: [frame(s, { name: 'Client_validator', validator: result.value.clientValidator })] };
  }

  #onAgreement(s: number): Step {
    const candidate = this.#candidates.get(s);
    if (this.#accepted !== null) return { send: [] };
    if (s !== this.#current || candidate === undefined || candidate.keys === null) {
      return { send: [frame(RELAY, { name: 'Relay_failure', letter: 'H', uid: s })] };
    }
    return { send: [], ask: { uid: s, identity: identityText(candidate.identity) } };
  }

  #onDone(): Step {
    const accepted = this.#accepted;
    if (accepted === null || accepted.keys === null) {
      return { send: [], error: new BobError(ExitCode.Failure, 'The relay ended the handshake without an agreement') };
    }
    return { send: [], paired: { peerIdentity: accepted.identity, keys: accepted.keys } };
  }

  #onSpokeFailure(s: number, code: number): Step {
    const candidate = this.#candidates.get(s);
    this.#forget(s, `reported Spoke_failure ${code}`);
    // 02: the sender found our validator wrong, i.e. its password differs (§1).
    if (code === SpokeFailure.InvalidServerValidator && candidate !== undefined) return this.#wrongPassword(candidate.identity, []);
    return { send: [] };
  }

  #wrongPassword(identity: Uint8Array, send: Frame[]): Step {
    this.#wrongPasswords++;
    return wrongPasswordStep('sender', identity, send, this.#options.failFast, this.#log);
  }

  #forget(s: number, why: string): void {
    if (this.#candidates.delete(s)) this.#log.debug(`sender ${hexUid(s)} ${why}; forgotten`);
    if (this.#current === s) this.#current = null;
  }
}
