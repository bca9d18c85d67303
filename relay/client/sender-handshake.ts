// The sender's side of the 9000 handshake, packet by packet as a real bob
// sender behaves (docs/bob-protocol.md §2.4 "Sender"):
//   connect → 0000 00 public;  02 → own identity;
//   <c>07 X cid → server_compute → <c>06 Y v2 (failure → <c>0d code);
//   <c>05 v3 → unknown c: 0000 0c C<c>; valid: <c>08, c is the agreement;
//              invalid: forget c, <c>0d 02;
//   <c>0a with c the agreement → paired with cid; otherwise 0000 0c H<c>;
//   0d/09 naming c → forget c;  0f or 09 0000 → "Connection closed by relay".
// Like bob it keeps waiting after a receiver's wrong password; unlike bob it
// can give up (failFast, or the driver's --timeout) with a distinct error.
import type { Frame } from '../handshake/packet.js';
import { SpokeFailure } from '../spoke/failure.js';
import { type RandomSource, type ServerState, serverCompute, serverFinish } from '../spoke/spake2ee.js';
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
  wrongPasswordStep,
} from './handshake-common.js';
import { type Logger, silentLogger } from './log.js';

export interface SenderHandshakeOptions {
  /** The public packet advertised in 00 and the secret kept beside it (spake2ee serverInit). */
  readonly publicBytes: Uint8Array;
  readonly secret: Uint8Array;
  /** Exit at the first receiver that reports another password. */
  readonly failFast?: boolean;
  readonly random?: RandomSource;
  readonly log?: Logger;
}

interface Candidate {
  readonly identity: Uint8Array;
  readonly state: ServerState;
}

export class SenderHandshake implements HandshakeMachine {
  readonly #options: SenderHandshakeOptions;
  readonly #log: Logger;
  readonly #candidates = new Map<number, Candidate>();
  #ownIdentity: Uint8Array | null = null;
  /** The receiver we sent 08 to: the only one whose 0a counts. */
  #agreement: number | null = null;
  #wrongPasswords = 0;
  #agreements = 0;

  constructor(options: SenderHandshakeOptions) {
    this.#options = options;
    this.#log = options.log ?? silentLogger;
  }

  start(): Frame[] {
    return [frame(RELAY, { name: 'Hello_as_a_server', public: this.#options.publicBytes })];
  }

  handle(f: Frame): Step {
    const p = f.packet;
    switch (p.name) {
      case 'Server_identity':
        this.#ownIdentity = p.identity;
        this.#log.info(`the relay knows us as ${identityText(p.identity)}`);
        return { send: [] };
      case 'X_and_client_identity':
        return this.#onX(f.uid, p.X, p.identity);
      case 'Client_validator':
        return this.#onValidator(f.uid, p.validator);
      case 'Accepted':
        return this.#onAccepted(f.uid);
      case 'Spoke_failure':
        return this.#onSpokeFailure(f.uid, p.code);
      default: // 09, 0f and packets we do not expect
        return commonStep(f, this.#log, (uid) => this.#forget(uid, 'left the relay'));
    }
  }

  giveUp(seconds: number): BobError {
    const waited = `within ${seconds} s`;
    if (this.#agreements > 0) return new BobError(ExitCode.Refused, `Not accepted: no receiver accepted the file ${waited}`);
    return noPeerError('receiver', this.#wrongPasswords, waited);
  }

  /** <c>07 X cid: compute Y and our validator for this receiver (§4.4). */
  #onX(c: number, X: Uint8Array, cid: Uint8Array): Step {
    if (this.#ownIdentity === null) {
      this.#log.warn(`X from ${hexUid(c)} before the relay told us our identity; ignored`);
      return { send: [] };
    }
    if (!this.#candidates.has(c) && this.#candidates.size >= MAX_PENDING_PEERS) {
      this.#log.warn(`too many receivers in progress; ignoring ${hexUid(c)}`);
      return { send: [] };
    }
    const ids = { clientIdentity: cid, serverIdentity: this.#ownIdentity };
    const result = serverCompute(this.#options.secret, X, ids, { random: this.#options.random });
    if (!result.ok) {
      this.#log.info(`receiver ${identityText(cid)}: ${result.message}`);
      return { send: [frame(c, { name: 'Spoke_failure', code: result.code })] };
    }
    this.#candidates.set(c, { identity: cid, state: result.value.state });
    this.#log.debug(`receiver ${identityText(cid)} (${hexUid(c)}): sent Y and our validator`);
    const reply = { name: 'Y_and_server_validator', Y: result.value.Y, validator: result.value.serverValidator } as const;
    return { send: [frame(c, reply)] };
  }

  /** <c>05 v3: the receiver's proof that it derived the same keys. */
  #onValidator(c: number, validator: Uint8Array): Step {
    const candidate = this.#candidates.get(c);
    if (candidate === undefined) return { send: [frame(RELAY, { name: 'Relay_failure', letter: 'C', uid: c })] };
    const result = serverFinish(candidate.state, validator);
    if (!result.ok) {
      this.#forget(c, 'sent a wrong validator');
      return this.#wrongPassword(candidate.identity, [frame(c, { name: 'Spoke_failure', code: SpokeFailure.InvalidServerValidator })]);
    }
    this.#agreement = c; // later agreements overwrite earlier ones, as in bob
    this.#agreements++;
    this.#log.info(`agreement with ${identityText(candidate.identity)}; waiting for it to accept`);
    return { send: [frame(c, { name: 'Agreement' })] };
  }

  #onAccepted(c: number): Step {
    const candidate = this.#candidates.get(c);
    if (c !== this.#agreement || candidate === undefined) {
      return { send: [frame(RELAY, { name: 'Relay_failure', letter: 'H', uid: c })] };
    }
    this.#log.info(`accepted by ${identityText(candidate.identity)}`);
    return { send: [], paired: { peerIdentity: candidate.identity, keys: candidate.state.sharedKeys } };
  }

  #onSpokeFailure(c: number, code: number): Step {
    const candidate = this.#candidates.get(c);
    this.#forget(c, `reported Spoke_failure ${code}`);
    // 01: the receiver found our validator wrong, i.e. its password differs (§1).
    if (code === SpokeFailure.InvalidClientValidator && candidate !== undefined) {
      return this.#wrongPassword(candidate.identity, []);
    }
    return { send: [] };
  }

  #wrongPassword(identity: Uint8Array, send: Frame[]): Step {
    this.#wrongPasswords++;
    return wrongPasswordStep('receiver', identity, send, this.#options.failFast, this.#log);
  }

  #forget(c: number, why: string): void {
    if (this.#candidates.delete(c)) this.#log.debug(`receiver ${hexUid(c)} ${why}; forgotten`);
    if (this.#agreement === c) this.#agreement = null;
  }
}
