// The registration tables of §2.1: uid → peer, senders and receivers in
// registration order (the order 04s are sent in), and the uid allocator.
//
// bob counts uids from 1 and wraps after 0xffff onto live peers; 0xffff itself
// overflows its array (§7). Here uids come from 1..maxUid (≤ 0xfffe), round
// robin from the last one given so a freed uid is not reused at once, skipping
// live ones; 0 means none is free.

import type { Peer, Role } from './peer.js';
import { SourceShares } from './sources.js';

export class PeerTable {
  private readonly byUid = new Map<number, Peer>();
  readonly senders = new Map<number, Peer>();
  readonly receivers = new Map<number, Peer>();
  /** Registered peers by source address, in registration order. */
  readonly shares = new SourceShares<Peer>();
  private nextUid = 1;

  constructor(private readonly maxUid: number) {}

  /** Registered peers. */
  get size(): number {
    return this.byUid.size;
  }

  /** A free uid in 1..maxUid, or 0 when all are live. */
  allocateUid(): number {
    for (let tries = 0; tries < this.maxUid; tries++) {
      const uid = this.nextUid;
      this.nextUid = uid >= this.maxUid ? 1 : uid + 1;
      if (!this.byUid.has(uid)) return uid;
    }
    return 0;
  }

  add(peer: Peer, role: Role, uid: number): void {
    peer.role = role;
    peer.uid = uid;
    this.byUid.set(uid, peer);
    this.ofRole(role).set(uid, peer);
    this.shares.add(peer.source, peer);
  }

  /** The registered peer with this uid and role. */
  find(uid: number, role: Role): Peer | undefined {
    const peer = this.byUid.get(uid);
    return peer?.role === role ? peer : undefined;
  }

  /** Unregister `peer` and uncouple it; returns its former candidates. */
  remove(peer: Peer): Peer[] {
    if (peer.role === null || this.byUid.get(peer.uid) !== peer) return [];
    this.byUid.delete(peer.uid);
    this.ofRole(peer.role).delete(peer.uid);
    this.shares.delete(peer.source, peer);
    const candidates = [...peer.candidates];
    for (const other of candidates) other.candidates.delete(peer);
    peer.candidates.clear();
    return candidates;
  }

  ofRole(role: Role): Map<number, Peer> {
    return role === 'sender' ? this.senders : this.receivers;
  }
}
