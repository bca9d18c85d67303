// The receiver's side of the 9000 handshake, as a real bob receiver behaves
// (docs/bob-protocol.md §2.4 "Receiver"):
//   connect → 0000 01;  03 → own identity;
//   0000 04 s pub sid → spoke hello → <s>07 X own (bad public → <s>0d 03);
//   <s>06 Y v2 → unknown s: 0000 0c S<s>; client_compute ok → s is current,
//                <s>05 v3; error → forget s, <s>0d code (01 = wrong password);
//   <s>08 with s current → ask the user → <s>0a or <s>0b; else 0000 0c H<s>;
//   0000 0e → paired with sid;  0f or 09 0000 → "Connection closed by relay".
// Every advertised sender costs one PBKDF2 at the count it chose (§4.6), and
// anyone can register senders, so unlike bob a receiver
//   - refuses counts above MAX_COUNT with 0d 03 before running anything (§7);
//   - with `queue` (the driver's mode), queues senders and derives their keys
//     one at a time in `work()`, in slices that give the event loop back, so
//     --timeout, signals and 09/0f keep working; the queue is bounded in
//     senders and in PBKDF2 work, and senders beyond it are ignored (counted,
//     logged at -v);
//   - tries a sender (uid and identity) once: a re-sent Hello (which bob's
//     relay answers with the same 04 again) buys no second PBKDF2.
// Unlike bob, a 0e without agreement is not answered with `0c N0000`, which
// bob relays cannot parse (§7): the receiver just fails.
import type { Frame } from '../handshake/packet.js';
import { SpokeFailure } from '../spoke/failure.js';
import { type PublicParams, parsePublic } from '../spoke/public.js';
import {
  type ClientState,
  type Password,
  type PasswordKeys,
  type RandomSource,
  type SharedKeys,
  clientCompute,
  helloFromKeys,
  passwordKeys,
  passwordKeysSliced,
} from '../spoke/spake2ee.js';
import { MAX_PENDING_PEERS, MAX_QUEUED_PBKDF2_WORK, MAX_QUEUED_SENDERS } from './defaults.js';
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

/** Derives a sender's password keys (the PBKDF2); must stop when `signal` aborts. */
export type KeyDerivation = (password: Password, params: PublicParams, signal: AbortSignal) => Promise<PasswordKeys>;

const slicedDerivation: KeyDerivation = (password, params, signal) => passwordKeysSliced(password, params, { signal });

export interface ReceiverHandshakeOptions {
  readonly password: Password;
  /** Exit at the first sender whose password differs, instead of waiting for another. */
  readonly failFast?: boolean;
  /** Largest PBKDF2 count accepted from a sender (default: MAX_COUNT). */
  readonly maxCount?: number;
  readonly random?: RandomSource;
  readonly log?: Logger;
  /**
   * Queue advertised senders and derive their keys in `work()`, in slices:
   * what the driver (and so every client) uses. Without it `handle()`
   * derives inline and blocks meanwhile, which only suits tests of the
   * machine itself.
   */
  readonly queue?: boolean;
  /** Most senders waiting for (or in) their PBKDF2 (default MAX_QUEUED_SENDERS). */
  readonly maxQueuedSenders?: number;
  /** Most PBKDF2 work, in units of count, those senders may add up to (default MAX_QUEUED_PBKDF2_WORK, or maxCount if larger). */
  readonly maxQueuedWork?: number;
  /** The queued senders' key derivation (default: the sliced PBKDF2). */
  readonly deriveKeys?: KeyDerivation;
}

/** What became of the senders the relay advertised (04). */
export interface SenderStats {
  readonly advertised: number;
  /** Refused with 0d 03 (a bad public packet, e.g. a count above the cap), without a PBKDF2. */
  readonly refused: number;
  /** Ignored because the queue (or the table of senders in progress) was full. */
  readonly ignored: number;
  /** Advertised again (same uid and identity) after being queued or tried: not tried again. */
  readonly repeated: number;
  /** PBKDF2 runs begun, and finished. */
  readonly derivationsStarted: number;
  readonly derivationsDone: number;
}

interface Candidate {
  readonly identity: Uint8Array;
  readonly state: ClientState;
  keys: SharedKeys | null;
}

interface Queued {
  readonly uid: number;
  readonly identity: Uint8Array;
  readonly params: PublicParams;
  /** The sender left (09) while its keys were being derived. */
  gone: boolean;
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
  /** Senders waiting for their PBKDF2, oldest first, and the one being derived. */
  readonly #queue: Queued[] = [];
  #deriving: Queued | null = null;
  /** Sum of the counts of the queued senders and the one being derived. */
  #queuedWork = 0;
  /** Identity of every sender queued or tried, by uid, until it leaves (09). */
  readonly #seen = new Map<number, Uint8Array>();
  readonly #stats = { advertised: 0, refused: 0, ignored: 0, repeated: 0, derivationsStarted: 0, derivationsDone: 0 };

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
        return commonStep(f, this.#log, (uid) => this.#left(uid));
    }
  }

  get stats(): SenderStats {
    return { ...this.#stats };
  }

  /**
   * The next queued sender's PBKDF2, then its 07 (or nothing if it left or
   * another sender was accepted meanwhile); null when nothing is queued.
   * Rejects with the signal's reason once it aborts.
   */
  work(signal: AbortSignal): Promise<Step> | null {
    if (this.#accepted !== null || this.#queue.length === 0) return null;
    const next = this.#queue.shift()!;
    this.#deriving = next;
    return this.#derive(next, signal).finally(() => {
      this.#deriving = null;
      this.#queuedWork -= next.params.count;
    });
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
    const error = this.#refusals > 0
      ? new BobError(ExitCode.Refused, `Refused: ${plural(this.#refusals, 'sender')} refused, and no other came ${waited}`)
      : noPeerError('sender', this.#wrongPasswords, waited);
    const { advertised, refused, ignored } = this.#stats;
    if (refused === 0 && ignored === 0) return error;
    // Senders the user never heard of explain the wait: say what became of them.
    return new BobError(error.code, `${error.message} (${plural(advertised, 'sender')} advertised: ${refused} refused, ${ignored} ignored)`);
  }

  /** 0000 04 s public sid: checks, then one PBKDF2 and X = x·B + M for this sender (§4.4), now or queued. */
  #onNewServer(s: number, publicBytes: Uint8Array, sid: Uint8Array): Step {
    this.#stats.advertised++;
    if (this.#accepted !== null) return { send: [] };
    if (this.#ownIdentity === null) {
      this.#log.warn(`sender ${hexUid(s)} advertised before the relay told us our identity; ignored`);
      return { send: [] };
    }
    const seen = this.#seen.get(s);
    if (seen !== undefined && sameBytes(seen, sid)) {
      this.#stats.repeated++;
      this.#log.debug(`sender ${identityText(sid)} (${hexUid(s)}) advertised again; already tried`);
      return { send: [] };
    }
    // A uid the relay gave to another sender since: the old one is gone.
    if (seen !== undefined) this.#left(s);
    const params = parsePublic(publicBytes, this.#options.maxCount);
    if (!params.ok) {
      // Warn once (a legitimate sender with too high a count wants to be noticed), then at -v.
      const message = `refused sender ${identityText(sid)}: ${params.message}`;
      if (this.#stats.refused++ === 0) this.#log.warn(message);
      else this.#log.info(message);
      return { send: [frame(s, { name: 'Spoke_failure', code: params.code })] };
    }
    const count = params.value.count;
    if (this.#candidates.size + this.#queue.length >= MAX_PENDING_PEERS) return this.#ignore(sid, 'too many senders in progress');
    if (!this.#options.queue) {
      this.#seen.set(s, sid);
      this.#stats.derivationsStarted++;
      const keys = passwordKeys(this.#options.password, params.value);
      this.#stats.derivationsDone++;
      return this.#hello(s, sid, params.value, keys);
    }
    const maxSenders = this.#options.maxQueuedSenders ?? MAX_QUEUED_SENDERS;
    // A raised maxCount raises the default budget with it: a sender at the cap must fit an empty queue.
    const maxWork = this.#options.maxQueuedWork ?? Math.max(MAX_QUEUED_PBKDF2_WORK, this.#options.maxCount ?? 0);
    const queued = this.#queue.length + (this.#deriving === null ? 0 : 1);
    if (queued >= maxSenders || this.#queuedWork + count > maxWork) {
      return this.#ignore(sid, `${plural(queued, 'sender')} (PBKDF2 work ${this.#queuedWork}) already queued`);
    }
    this.#seen.set(s, sid);
    this.#queue.push({ uid: s, identity: sid, params: params.value, gone: false });
    this.#queuedWork += count;
    this.#log.debug(`sender ${identityText(sid)} (${hexUid(s)}) queued, PBKDF2 count ${count}`);
    return { send: [] };
  }

  #ignore(sid: Uint8Array, why: string): Step {
    // The first at -v, each at debug, the total in giveUp's message.
    const message = `ignoring sender ${identityText(sid)}: ${why}`;
    if (this.#stats.ignored++ === 0) this.#log.info(message);
    else this.#log.debug(message);
    return { send: [] };
  }

  async #derive(next: Queued, signal: AbortSignal): Promise<Step> {
    // One macrotask turn per sender even when its PBKDF2 fits in one slice,
    // so that a queue of cheap senders does not hold the event loop either.
    await new Promise((resolve) => setImmediate(resolve));
    signal.throwIfAborted();
    this.#stats.derivationsStarted++;
    const keys = await (this.#options.deriveKeys ?? slicedDerivation)(this.#options.password, next.params, signal);
    this.#stats.derivationsDone++;
    if (next.gone || this.#accepted !== null) return { send: [] };
    return this.#hello(next.uid, next.identity, next.params, keys);
  }

  /** X for a sender whose keys are derived: it becomes a candidate, and 07 goes out. */
  #hello(s: number, sid: Uint8Array, params: PublicParams, keys: PasswordKeys): Step {
    const hello = helloFromKeys(params, keys, this.#options.random);
    if (!hello.ok) {
      this.#log.info(`sender ${identityText(sid)}: ${hello.message}`);
      return { send: [frame(s, { name: 'Spoke_failure', code: hello.code })] };
    }
    this.#candidates.set(s, { identity: sid, state: hello.value.state, keys: null });
    this.#log.debug(`sender ${identityText(sid)} (${hexUid(s)}): sent X`);
    return { send: [frame(s, { name: 'X_and_client_identity', X: hello.value.X, identity: this.#ownIdentity! })] };
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

  /** 09 s: the sender left the relay. Drop it wherever it is; its uid may come back as another sender. */
  #left(s: number): void {
    this.#forget(s, 'left the relay');
    this.#seen.delete(s);
    const at = this.#queue.findIndex((q) => q.uid === s);
    if (at >= 0) this.#queuedWork -= this.#queue.splice(at, 1)[0].params.count;
    if (this.#deriving?.uid === s) this.#deriving.gone = true;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
