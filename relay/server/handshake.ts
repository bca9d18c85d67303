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
// - resets a peer that lets more than maxQueuedBytes pile up unread.
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
  /** Accepted sockets not yet reported closed. */
  private readonly conns = new Set<Peer>();
  private readonly table: PeerTable;
  private down = false;

  constructor(
    private readonly ctx: RelayContext,
    private readonly rooms: RoomRecorder,
  ) {
    this.table = new PeerTable(ctx.limits.maxUid);
  }

  // ---- adapter side ------------------------------------------------------------

  accept(socket: RelaySocket): SocketEvents {
    const { limits, counters, timers } = this.ctx;
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
      data: (bytes) => this.onData(peer, bytes),
      end: () => this.onEnd(peer),
      drain: () => this.onDrain(peer),
      close: () => this.onClose(peer),
    };
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

  /** The peer's one timer: Hello or -t deadline while open, linger while closing. */
  onPeerTimer(peer: Peer): void {
    if (peer.state === 'closing') {
      this.ctx.counters.lingerResets++;
      peer.socket.destroy();
    } else if (peer.state === 'open') {
      // §2.3: a registered peer is deleted with 0f; its candidates get 09.
      if (peer.role !== null) this.release(peer, 'handshakeTimeout', { timeoutNotice: true });
      else this.release(peer, 'helloTimeout');
    }
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
    } else {
      // Repeated Hello: same uid, identity and 04s sent again (§2.2).
      this.ctx.counters.helloRepeated++;
    }
    if (role === 'receiver') this.announceReceiver(peer);
    else this.announceSender(peer);
  }

  private register(peer: Peer, role: Role, pub: Uint8Array | null): boolean {
    const { limits, counters, timers } = this.ctx;
    if (this.table.size >= limits.maxPeers) {
      this.release(peer, 'peersFull', { timeoutNotice: true });
      return false;
    }
    const uid = this.table.allocateUid();
    if (uid === 0) {
      this.release(peer, 'uidsExhausted', { timeoutNotice: true });
      return false;
    }
    peer.public = pub;
    this.table.add(peer, role, uid);
    if (role === 'sender') counters.sendersRegistered++;
    else counters.receiversRegistered++;
    // -t counts from accept, like bob's timer (§2.3).
    timers.armAt(peer, peer.acceptedAt + limits.handshakeTimeoutSec * 1000);
    return true;
  }

  /** 01: `0000 03 identity`, then a 04 per registered sender, in table order. */
  private announceReceiver(receiver: Peer): void {
    this.send(receiver, { uid: RELAY_UID, packet: { name: 'Client_identity', identity: receiver.identity } });
    for (const sender of [...this.table.senders.values()]) {
      if (receiver.state !== 'open') return;
      if (sender.state !== 'open') continue;
      this.send(receiver, newServer(sender));
      couple(receiver, sender);
    }
  }

  /** 00: `0000 02 identity`, then a 04 about it to every registered receiver. */
  private announceSender(sender: Peer): void {
    this.send(sender, { uid: RELAY_UID, packet: { name: 'Server_identity', identity: sender.identity } });
    for (const receiver of [...this.table.receivers.values()]) {
      if (sender.state !== 'open') return;
      if (receiver.state !== 'open') continue;
      this.send(receiver, newServer(sender));
      if (receiver.state === 'open') couple(sender, receiver);
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
    uncouple(source, dest);
  }

  /** 0b: candidacy dropped both ways; never forwarded (§2.2). */
  private refused(receiver: Peer, uid: number): void {
    const sender = this.destination(receiver, uid, 'Refused');
    if (sender === null) return;
    this.ctx.counters.refusedPairs++;
    uncouple(receiver, sender);
  }

  /** 0a from receiver c to sender s: `<c>0a` to s, `0000 0e` to c, both closed, room recorded (§2.2). */
  private accepted(receiver: Peer, uid: number): void {
    const sender = this.destination(receiver, uid, 'Accepted');
    if (sender === null) return;
    uncouple(receiver, sender); // neither is told about the other's departure
    if (!this.rooms.recordPair(receiver.socket.identity, sender.socket.identity)) {
      this.ctx.counters.roomsFull++;
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

  private send(peer: Peer, frame: Frame): void {
    if (peer.state !== 'open') return;
    if (frameProblem(frame) !== null) {
      // A packet a bob peer could not parse (e.g. a 07 with a 3-byte identity
      // when the identity check is off) is not forwarded.
      this.ctx.counters.unsendable++;
      return;
    }
    const bytes = encodeFrame(frame);
    const ok = peer.socket.write(bytes);
    if (ok && !peer.blocked) return;
    peer.blocked = true;
    peer.queuedBytes += bytes.length;
    if (peer.queuedBytes > this.ctx.limits.maxQueuedBytes) this.release(peer, 'slowReader', { reset: true });
  }

  /**
   * The one way a 9000 connection leaves the protocol: unregistered, its
   * candidates told with 09, its timer moved to the linger deadline, its
   * socket closed. Idempotent.
   */
  private release(peer: Peer, reason: CounterName | null, ending: Ending = {}): void {
    if (peer.state !== 'open') return;
    if (ending.timeoutNotice) {
      this.send(peer, TIMEOUT);
      if (peer.state !== 'open') return; // the write itself released it
    }
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
    }
  }

  private closeSocket(peer: Peer, reset: boolean): void {
    const { timers, limits } = this.ctx;
    if (reset || this.down) {
      timers.cancel(peer);
      peer.socket.destroy();
    } else {
      // Armed before end(): an adapter may report close from inside it.
      timers.armIn(peer, limits.lingerSec);
      peer.socket.end();
    }
  }

  // ---- relay-wide ---------------------------------------------------------------------

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

function usableIdentity(identity: Uint8Array, max: number): boolean {
  return identity.length >= MIN_IDENTITY_BYTES && identity.length <= max && !identity.includes(0);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
