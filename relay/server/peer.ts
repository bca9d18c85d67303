// One connection on TCP 9000 and what the relay knows about it: its identity,
// its decoder, its role and uid once registered, and its candidates — the peers
// of the other role it was introduced to with a 04 (docs/bob-protocol.md §2.1).

import { HandshakeDecoder } from '../handshake/decoder.js';
import type { RelaySocket } from './socket.js';
import { ipOf } from './sources.js';
import type { Timed } from './timers.js';

export type Role = 'sender' | 'receiver';

/** open: in the protocol; closing: released, socket flushing; closed: the adapter reported close. */
export type PeerState = 'open' | 'closing' | 'closed';

export interface PeerTimerHandler {
  onPeerTimer(peer: Peer): void;
}

export class Peer implements Timed {
  timerSlot = -1;
  readonly decoder: HandshakeDecoder;
  state: PeerState = 'open';
  role: Role | null = null;
  /** 1..maxUid once registered, 0 before. */
  uid = 0;
  /** A sender's public (§4.1), sent in every 04 about it. */
  public: Uint8Array | null = null;
  /** Peers of the other role this one may exchange packets with. */
  readonly candidates = new Set<Peer>();
  /** A write returned false and no drain came since. */
  blocked = false;
  /** Bytes written while blocked. */
  queuedBytes = 0;
  /** The address its registration counts against (limits.ts, fairness). */
  readonly source: string;
  /** Monotonic ms since it has been registered with no candidate; null while it has one. */
  unpairedSince: number | null = null;
  /** Hellos after the first (bounded by maxHelloRepeats). */
  helloRepeats = 0;
  /** A sender's 04, encoded once at registration: every receiver gets the same bytes. */
  newServer: Uint8Array | null = null;
  // What the current event owes this peer, written in one go at its end
  // (handshake.ts, "Writing"): packets in order, and the answer to its
  // Hellos — identity, then the 04s — each owed once however often asked.
  readonly outbox: Uint8Array[] = [];
  owesIdentity = false;
  /** Senders whose 04 it is owed. */
  readonly owed = new Set<Peer>();

  constructor(
    readonly socket: RelaySocket,
    /** The identity as sent in 02/03/04 and compared with 07s. */
    readonly identity: Uint8Array,
    /** Monotonic ms: the -t timeout counts from here (§2.3). */
    readonly acceptedAt: number,
    maxIdentity: number,
    private readonly handler: PeerTimerHandler,
  ) {
    this.decoder = new HandshakeDecoder({ maxIdentity });
    this.source = ipOf(socket.identity);
  }

  onTimer(): void {
    this.handler.onPeerTimer(this);
  }
}

export function otherRole(role: Role): Role {
  return role === 'sender' ? 'receiver' : 'sender';
}

/** Introduce two peers of opposite roles to each other. */
export function couple(a: Peer, b: Peer): void {
  a.candidates.add(b);
  b.candidates.add(a);
}

export function uncouple(a: Peer, b: Peer): void {
  a.candidates.delete(b);
  b.candidates.delete(a);
}
