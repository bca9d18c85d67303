// TCP 9000: the handshake relay of docs/bob-protocol.md §2. Peers register with a
// Hello, learn about each other through 04s, and exchange SPAKE2+EE packets
// through the relay, which rewrites only the uid (destination → source). An
// Accepted ends both registrations and records a room for TCP 9001.
//
// Where bob is unbounded or keeps dead peers (§7), this relay:
// - caps registered peers and uids, and answers a refused Hello with 0f;
// - forwards only between candidates (peers introduced by a 04), so unknown or
//   stale uids are a no-op;
// - deletes a peer at once on EOF, reset, parse error or timeout, telling its
//   candidates with 09 (bob waits for the next write to fail, §2.3);
// - tells the other candidates of an accepted pair with 09 as well (§7);
// - drops 07s whose identity is not the receiver's own (§7);
// - resets a peer that lets more than maxQueuedBytes pile up unread;
// - shares the peer table fairly between source addresses (limits.ts), and
//   gives a peer with no candidate unpairedTimeoutSec, not -t;
// - bounds what one event may write: each peer gets at most one write per
//   event (packets queue in its outbox until the event ends), a Hello's
//   answer is owed once however often it is asked for in the event, and a
//   connection may repeat its Hello maxHelloRepeats times. One event thus
//   writes at most one 04 per registered sender to a receiver (≤ maxPeers ×
//   ~110 bytes), in one write, instead of that much per 6-byte Hello;
// - sheds its newest connections when Relay.pressure turns on.
//
// Every connection ends through release(), the one path that unregisters it,
// tells its candidates, moves its timer to the linger deadline and closes the
// socket; onClose() then forgets it.

import type { HandshakeError } from '../handshake/decoder.js';
import {
  type Frame,
  frameProblem,
  encodeFrame,
  MIN_IDENTITY_BYTES,
  type Packet,
  type PacketName,
  RELAY_UID,
} from '../handshake/packet.js';
import type { CounterName, RelayContext } from './context.js';
import { couple, otherRole, Peer, type PeerTimerHandler, type Role, uncouple } from './peer.js';
import { IGNORED_EVENTS, type RelaySocket, type SocketEvents } from './socket.js';
import { PeerTable } from './tables.js';

/** Where an Accepted records its room (the 9001 side). */
export interface RoomRecorder {
  /** Record the pair (receiver identity, sender identity); false when no room is free. */
  recordPair(cid: string, sid: string): boolean;
}

/** How a release closes the socket. */
interface Ending {
  /** Send 0000 0f first (timeout, or a refused Hello). */
  timeoutNotice?: boolean;
  /** Reset instead of a graceful close. */
  reset?: boolean;
}

/** The role a packet's source must have (§2.2 "Forwarded"); null: either (0d). */
const SOURCE_ROLE: Partial<Record<PacketName, Role | null>> = {
  Client_validator: 'receiver',
  X_and_client_identity: 'receiver',
  Accepted: 'receiver',
  Refused: 'receiver',
  Y_and_server_validator: 'sender',
  Agreement: 'sender',
  Spoke_failure: null,
};

const TIMEOUT: Frame = { uid: RELAY_UID, packet: { name: 'Timeout' } };
const DONE: Frame = { uid: RELAY_UID, packet: { name: 'Done' } };

const utf8 = new TextEncoder();

export class HandshakeService implements PeerTimerHandler {
  /** Accepted sockets not yet reported closed, in accept order. */
  private readonly conns = new Set<Peer>();
  private readonly table: PeerTable;
  private down = false;
  private pressured = false;
  /** Peers with something in their outbox or owed, written when the event ends. */
  private readonly dirty = new Set<Peer>();
  /** Nesting of events (an adapter may report close from inside destroy()). */
  private depth = 0;

  constructor(
    private readonly ctx: RelayContext,
    private readonly rooms: RoomRecorder,
  ) {
    this.table = new PeerTable(ctx.limits.maxUid);
  }

  // ---- adapter side ------------------------------------------------------------

  accept(socket: RelaySocket): SocketEvents {
    const { limits, counters, timers } = this.ctx;
    if (this.pressured && !this.down) {
      counters.pressureRefused++;
      socket.destroy();
      return IGNORED_EVENTS;
    }
    if (this.down || this.conns.size >= limits.maxHandshakeSockets) {
      counters.handshakeSocketsFull++;
      socket.destroy();
      return IGNORED_EVENTS;
    }
    const identity = utf8.encode(socket.identity);
    if (!usableIdentity(identity, limits.maxIdentityBytes)) {
      // Cannot appear in a 02/03/04 (§1); real `ip:port` texts always can.
      counters.badIdentity++;
      socket.destroy();
      return IGNORED_EVENTS;
    }
    counters.handshakeAccepted++;
    const peer = new Peer(socket, identity, timers.now(), limits.maxIdentityBytes, this);
    this.conns.add(peer);
    const helloSec = Math.min(limits.helloTimeoutSec, limits.handshakeTimeoutSec);
    timers.armAt(peer, peer.acceptedAt + helloSec * 1000);
    return {
      data: (bytes) => this.event(() => this.onData(peer, bytes)),
      end: () => this.event(() => this.onEnd(peer)),
      drain: () => this.onDrain(peer),
      close: () => this.event(() => this.onClose(peer)),
    };
  }

  /**
   * Run one event, then write what it owes each peer, one write per peer.
   * An event reported from inside another (a close from inside destroy(),
   * even during the writes) is part of it: the outer one writes.
   */
  private event(fn: () => void): void {
    this.depth++;
    try {
      fn();
      if (this.depth === 1) this.flushAll();
    } finally {
      this.depth--;
    }
  }

  private onData(peer: Peer, bytes: Uint8Array): void {
    if (peer.state !== 'open') return; // released: the rest is discarded
    const { frames, error } = peer.decoder.push(bytes);
    for (const frame of frames) {
      if (peer.state !== 'open') return;
      this.onFrame(peer, frame);
    }
    if (error !== null) this.parseFailed(peer, error);
  }

  private onEnd(peer: Peer): void {
    if (peer.state !== 'open') return;
    const error = peer.decoder.end();
    if (error !== null) this.parseFailed(peer, error);
    else this.release(peer, 'peerEof');
  }

  private onDrain(peer: Peer): void {
    peer.blocked = false;
    peer.queuedBytes = 0;
  }

  private onClose(peer: Peer): void {
    this.release(peer, 'peerReset', { reset: true });
    this.ctx.timers.cancel(peer);
    this.conns.delete(peer);
    peer.state = 'closed';
  }

  /** The peer's one timer: Hello, unpaired or -t deadline while open, linger while closing. */
  onPeerTimer(peer: Peer): void {
    this.event(() => {
      if (peer.state === 'closing') {
        this.ctx.counters.lingerResets++;
        peer.socket.destroy();
      } else if (peer.state === 'open') {
        // §2.3: a registered peer is deleted with 0f; its candidates get 09.
        if (peer.role === null) this.release(peer, 'helloTimeout');
        else if (this.ctx.timers.now() >= this.tDeadline(peer)) this.release(peer, 'handshakeTimeout', { timeoutNotice: true });
        else this.release(peer, 'unpairedTimeout', { timeoutNotice: true });
      }
    });
  }

  /** bob's -t: counted from accept, like bob's timer (§2.3). */
  private tDeadline(peer: Peer): number {
    return peer.acceptedAt + this.ctx.limits.handshakeTimeoutSec * 1000;
  }

  /** A registered peer's timer: -t, or sooner while it has no candidate. */
  private retime(peer: Peer): void {
    let deadline = this.tDeadline(peer);
    if (peer.unpairedSince !== null) deadline = Math.min(deadline, peer.unpairedSince + this.ctx.limits.unpairedTimeoutSec * 1000);
    this.ctx.timers.armAt(peer, deadline);
  }

  /** After its candidates changed: start or stop the unpaired clock. */
  private noteCandidates(peer: Peer): void {
    if (peer.state !== 'open' || peer.role === null) return;
    const unpaired = peer.candidates.size === 0;
    if (unpaired === (peer.unpairedSince !== null)) return;
    peer.unpairedSince = unpaired ? this.ctx.timers.now() : null;
    this.retime(peer);
  }

  private couple(a: Peer, b: Peer): void {
    couple(a, b);
    this.noteCandidates(a);
    this.noteCandidates(b);
  }

  private uncouple(a: Peer, b: Peer): void {
    uncouple(a, b);
    this.noteCandidates(a);
    this.noteCandidates(b);
  }

  private parseFailed(peer: Peer, error: HandshakeError): void {
    if (peer.state !== 'open') return;
    this.ctx.counters.parseErrors[error.kind]++;
    this.ctx.log('debug', `handshake ${peer.socket.identity}: ${error.kind}: ${error.message}`);
    this.release(peer, 'parseError');
  }

  // ---- packets (§2.2) ------------------------------------------------------------

  private onFrame(peer: Peer, frame: Frame): void {
    const p = frame.packet;
    switch (p.name) {
      case 'Hello_as_a_server':
        return this.hello(peer, frame.uid, 'sender', p.public);
      case 'Hello_as_a_client':
        return this.hello(peer, frame.uid, 'receiver', null);
      case 'Client_validator':
      case 'Y_and_server_validator':
      case 'Agreement':
        return this.forward(peer, frame);
      case 'X_and_client_identity':
        return this.forwardX(peer, frame, p.identity);
      case 'Spoke_failure':
        return this.spokeFailure(peer, frame);
      case 'Accepted':
        return this.accepted(peer, frame.uid);
      case 'Refused':
        return this.refused(peer, frame.uid);
      case 'Relay_failure':
        return this.relayFailure(peer, frame);
      default:
        // 02, 03, 04, 09, 0e, 0f only ever come from the relay.
        this.ctx.counters.ignored++;
    }
  }

  private hello(peer: Peer, uid: number, role: Role, pub: Uint8Array | null): void {
    // A Hello of the other role, or not addressed to the relay, is ignored (§2.2).
    if (uid !== RELAY_UID || (peer.role !== null && peer.role !== role)) {
      this.ctx.counters.ignored++;
      return;
    }
    if (peer.role === null) {
      if (!this.register(peer, role, pub)) return;
    } else if (peer.helloRepeats >= this.ctx.limits.maxHelloRepeats) {
      // Each repeat costs a 04 per peer of the other role: bounded per connection.
      this.ctx.counters.helloRepeatsIgnored++;
      return;
    } else {
      // Repeated Hello: same uid, identity and 04s sent again (§2.2).
      peer.helloRepeats++;
      this.ctx.counters.helloRepeated++;
    }
    if (role === 'receiver') this.announceReceiver(peer);
    else this.announceSender(peer);
  }

  private register(peer: Peer, role: Role, pub: Uint8Array | null): boolean {
    const { counters, timers } = this.ctx;
    if (!this.admit(peer)) return false;
    const uid = this.table.allocateUid();
    if (uid === 0) {
      this.release(peer, 'uidsExhausted', { timeoutNotice: true });
      return false;
    }
    peer.public = pub;
    this.table.add(peer, role, uid);
    if (pub !== null) peer.newServer = encodeFrame(newServer(peer));
    if (role === 'sender') counters.sendersRegistered++;
    else counters.receiversRegistered++;
    // Unpaired until its announcement couples it with someone.
    peer.unpairedSince = timers.now();
    this.retime(peer);
    return true;
  }

  /**
   * Whether the table has a slot for `peer`'s address (limits.ts, fairness):
   * under its per-source ceiling, and either a free slot or one taken from
   * the largest holder if that holds more than this address. Refused with 0f.
   */
  private admit(peer: Peer): boolean {
    const { limits } = this.ctx;
    const held = this.table.shares.count(peer.source);
    if (held >= limits.maxPeersPerSource) {
      this.release(peer, 'peersPerSourceFull', { timeoutNotice: true });
      return false;
    }
    if (this.table.size < limits.maxPeers) return true;
    const holder = this.table.shares.largestAbove(held);
    if (holder === null) {
      this.release(peer, 'peersFull', { timeoutNotice: true });
      return false;
    }
    this.release(oldestUnpaired(holder), 'peersEvicted', { timeoutNotice: true });
    return true;
  }

  /** 01: `0000 03 identity`, then a 04 per registered sender, in table order. */
  private announceReceiver(receiver: Peer): void {
    this.owe(receiver);
    for (const sender of this.table.senders.values()) {
      if (sender.state !== 'open') continue;
      receiver.owed.add(sender);
      this.couple(receiver, sender);
    }
  }

  /** 00: `0000 02 identity`, then a 04 about it to every registered receiver. */
  private announceSender(sender: Peer): void {
    this.owe(sender);
    for (const receiver of this.table.receivers.values()) {
      if (receiver.state !== 'open') continue;
      receiver.owed.add(sender);
      this.dirty.add(receiver);
      this.couple(sender, receiver);
    }
  }

  /** 05, 06, 08: copied with the uid rewritten to the source's. */
  private forward(source: Peer, frame: Frame): void {
    const dest = this.destination(source, frame.uid, frame.packet.name);
    if (dest === null) return;
    this.ctx.counters.forwarded++;
    this.send(dest, { uid: source.uid, packet: frame.packet });
  }

  /** 07: bob forwards its identity unchecked and the sender trusts it (§7). */
  private forwardX(source: Peer, frame: Frame, identity: Uint8Array): void {
    if (this.ctx.limits.checkClientIdentity && source.role === 'receiver' && !sameBytes(identity, source.identity)) {
      this.ctx.counters.identityMismatch++;
      return;
    }
    this.forward(source, frame);
  }

  /** 0d: forwarded, and the pair are no longer candidates (§2.2). */
  private spokeFailure(source: Peer, frame: Frame): void {
    const dest = this.destination(source, frame.uid, frame.packet.name);
    if (dest === null) return;
    this.ctx.counters.spokeFailures++;
    this.send(dest, { uid: source.uid, packet: frame.packet });
    this.uncouple(source, dest);
  }

  /** 0b: candidacy dropped both ways; never forwarded (§2.2). */
  private refused(receiver: Peer, uid: number): void {
    const sender = this.destination(receiver, uid, 'Refused');
    if (sender === null) return;
    this.ctx.counters.refusedPairs++;
    this.uncouple(receiver, sender);
  }

  /** 0a from receiver c to sender s: `<c>0a` to s, `0000 0e` to c, both closed, room recorded (§2.2). */
  private accepted(receiver: Peer, uid: number): void {
    const sender = this.destination(receiver, uid, 'Accepted');
    if (sender === null) return;
    uncouple(receiver, sender); // neither is told about the other's departure; both leave now
    if (!this.rooms.recordPair(receiver.socket.identity, sender.socket.identity)) {
      // recordPair counted why (roomsFull, roomsPerSourceFull).
      this.release(sender, null, { timeoutNotice: true });
      this.release(receiver, null, { timeoutNotice: true });
      return;
    }
    this.ctx.counters.paired++;
    this.send(sender, { uid: receiver.uid, packet: { name: 'Accepted' } });
    this.send(receiver, DONE);
    // Their other candidates get 09 from release(): bob copes, and they stop waiting (§7).
    this.release(sender, null);
    this.release(receiver, null);
  }

  /** 0c to the relay is only logged (§2.2); we never send one. */
  private relayFailure(peer: Peer, frame: Frame): void {
    if (frame.uid !== RELAY_UID || frame.packet.name !== 'Relay_failure') {
      this.ctx.counters.ignored++;
      return;
    }
    this.ctx.counters.relayFailures++;
    const { letter, uid } = frame.packet;
    this.ctx.log('debug', `handshake ${peer.socket.identity}: relay failure ${letter}${uid.toString(16).padStart(4, '0')}`);
  }

  /**
   * The peer a packet from `source` goes to: a registered peer of the other
   * role with the packet's uid that is one of the source's candidates. The
   * source must be registered with the role the packet type requires.
   */
  private destination(source: Peer, uid: number, name: PacketName): Peer | null {
    const { counters } = this.ctx;
    const required = SOURCE_ROLE[name];
    if (source.role === null || (required != null && source.role !== required)) {
      counters.ignored++;
      return null;
    }
    const dest = this.table.find(uid, otherRole(source.role));
    if (dest === undefined) {
      counters.unknownDestination++;
      return null;
    }
    if (!source.candidates.has(dest)) {
      counters.notCandidate++;
      return null;
    }
    return dest;
  }

  // ---- writing and ending ----------------------------------------------------------
  // Packets go to the peer's outbox, and every outbox is written when the
  // event ends, in one write per peer: a chunk of many small packets costs
  // one write per peer it reaches, not one per packet. What a Hello owes
  // (identity, 04s) moves to the outbox before anything sent after it, so
  // the order is that of immediate writes; only a Hello repeated within one
  // event is answered once, and a 04 about a sender gone meanwhile is dropped.

  private send(peer: Peer, frame: Frame): void {
    if (peer.state !== 'open') return;
    if (frameProblem(frame) !== null) {
      // A packet a bob peer could not parse (e.g. a 07 with a 3-byte identity
      // when the identity check is off) is not forwarded.
      this.ctx.counters.unsendable++;
      return;
    }
    this.settle(peer);
    peer.outbox.push(encodeFrame(frame));
    this.dirty.add(peer);
  }

  /** A Hello was answered: its identity packet is owed (once per event). */
  private owe(peer: Peer): void {
    peer.owesIdentity = true;
    this.dirty.add(peer);
  }

  /** Move what `peer` is owed into its outbox: identity, then one 04 per sender still there. */
  private settle(peer: Peer): void {
    if (peer.owesIdentity) {
      peer.owesIdentity = false;
      const name = peer.role === 'sender' ? 'Server_identity' : 'Client_identity';
      peer.outbox.push(encodeFrame({ uid: RELAY_UID, packet: { name, identity: peer.identity } }));
    }
    for (const sender of peer.owed) {
      if (sender.state === 'open' && sender.newServer !== null) peer.outbox.push(sender.newServer);
    }
    peer.owed.clear();
  }

  private flushAll(): void {
    // Writing may release peers, which sends 09s: those join the set and are
    // visited in this same loop.
    for (const peer of this.dirty) {
      this.dirty.delete(peer);
      this.flush(peer);
    }
  }

  /** One write of everything queued for `peer` (also for a closing peer's last packet). */
  private flush(peer: Peer): void {
    if (peer.state === 'open') this.settle(peer);
    const parts = peer.outbox.splice(0);
    if (parts.length === 0 || peer.state === 'closed') return;
    const bytes = parts.length === 1 ? parts[0]! : concat(parts);
    const ok = peer.socket.write(bytes);
    if (ok && !peer.blocked) return;
    peer.blocked = true;
    peer.queuedBytes += bytes.length;
    const cost = peer.socket.queuedBytes?.() ?? peer.queuedBytes;
    if (cost > this.ctx.limits.maxQueuedBytes) this.release(peer, 'slowReader', { reset: true });
  }

  /**
   * The one way a 9000 connection leaves the protocol: unregistered, its
   * candidates told with 09, its timer moved to the linger deadline, its
   * socket closed. Idempotent.
   */
  private release(peer: Peer, reason: CounterName | null, ending: Ending = {}): void {
    if (peer.state !== 'open') return;
    // What it was still owed goes before the 0f and the FIN.
    if (ending.timeoutNotice) this.send(peer, TIMEOUT);
    else this.settle(peer);
    peer.state = 'closing';
    if (reason !== null) this.ctx.counters[reason]++;
    this.unregister(peer);
    this.closeSocket(peer, ending.reset === true);
  }

  private unregister(peer: Peer): void {
    const candidates = this.table.remove(peer);
    if (this.down) return;
    for (const other of candidates) {
      if (other.state !== 'open') continue;
      this.ctx.counters.closedNotices++;
      this.send(other, { uid: RELAY_UID, packet: { name: 'Closed', uid: peer.uid } });
      this.noteCandidates(other);
    }
  }

  private closeSocket(peer: Peer, reset: boolean): void {
    const { timers, limits } = this.ctx;
    if (reset || this.down) {
      peer.outbox.length = 0;
      timers.cancel(peer);
      peer.socket.destroy();
    } else {
      // Its last packets (0a, 0e, 0f) before the FIN. Armed before end(): an
      // adapter may report close from inside it.
      this.flush(peer);
      timers.armIn(peer, limits.lingerSec);
      peer.socket.end();
    }
  }

  // ---- relay-wide ---------------------------------------------------------------------

  /**
   * Memory pressure (Relay.pressure). While on, new sockets are reset at
   * accept. When it turns on, the newest connections that have done the
   * least are shed, up to pressureShedFraction of those open: sockets with
   * no Hello (reset: nothing is owed to them), then registered peers with no
   * candidate, then registered peers with candidates (0f, closed: the
   * protocol's refusal). Rooms, where the paired work is, are kept.
   */
  pressure(on: boolean): void {
    if (on === this.pressured) return;
    this.pressured = on;
    if (on && !this.down) this.event(() => this.shed());
  }

  private shed(): void {
    this.ctx.counters.pressureEpisodes++;
    const open = [...this.conns].filter((p) => p.state === 'open').reverse(); // newest first
    const tiers = [
      open.filter((p) => p.role === null),
      open.filter((p) => p.role !== null && p.candidates.size === 0),
      open.filter((p) => p.role !== null && p.candidates.size > 0),
    ];
    let budget = Math.ceil(open.length * this.ctx.limits.pressureShedFraction);
    for (const peer of tiers.flat()) {
      if (budget === 0) return;
      if (peer.state !== 'open') continue;
      budget--;
      if (peer.role === null) this.release(peer, 'pressureShedUnregistered', { reset: true });
      else this.release(peer, 'pressureShedRegistered', { timeoutNotice: true });
    }
  }

  /** Reset every socket; later accepts are refused. */
  shutdown(): void {
    this.down = true;
    for (const peer of [...this.conns]) {
      if (peer.state === 'open') {
        this.release(peer, 'shutdownCloses', { reset: true });
      } else if (peer.state === 'closing') {
        this.ctx.counters.shutdownCloses++;
        this.closeSocket(peer, true);
      }
    }
  }

  get sockets(): number {
    return this.conns.size;
  }

  /** Source addresses holding registrations. */
  get sources(): number {
    return this.table.shares.sources;
  }

  /** Open connections by role, and bytes held in decoders. */
  levels(): { unregistered: number; senders: number; receivers: number; bufferedBytes: number } {
    const out = { unregistered: 0, senders: 0, receivers: 0, bufferedBytes: 0 };
    for (const peer of this.conns) {
      if (peer.state !== 'open') continue;
      out.bufferedBytes += peer.decoder.bufferedBytes;
      if (peer.role === 'sender') out.senders++;
      else if (peer.role === 'receiver') out.receivers++;
      else out.unregistered++;
    }
    return out;
  }
}

function newServer(sender: Peer): Frame {
  const packet: Packet = { name: 'New_server', uid: sender.uid, public: sender.public!, identity: sender.identity };
  return { uid: RELAY_UID, packet };
}

/** A registration to evict from the largest holder: its oldest with no candidate, else its oldest. */
function oldestUnpaired(holder: ReadonlySet<Peer>): Peer {
  let oldest: Peer | undefined;
  for (const peer of holder) {
    if (peer.candidates.size === 0) return peer;
    oldest ??= peer;
  }
  return oldest!;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function usableIdentity(identity: Uint8Array, max: number): boolean {
  return identity.length >= MIN_IDENTITY_BYTES && identity.length <= max && !identity.includes(0);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
