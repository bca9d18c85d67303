// TCP 9001: the secure room of docs/bob-protocol.md §3. Each peer writes the other
// peer's identity and `\n`, and reads two bytes: `00` paired, `01` timeout,
// `02` invalid peer. Paired sockets are piped verbatim both ways; on EOF or
// error on either side both get `ff ff ff ff` and are closed.
//
// Unlike bob (§7): rooms are single use and capped, one socket may wait per
// line, a line must come from the IP of the peer it stands for, and the
// pairing timeout is short. Piping honours backpressure: a reader is paused
// while its partner's queue is full, and resumed on drain. Rooms are shared
// fairly between source addresses (limits.ts), and a pipe ends, both sockets
// reset, after pipeIdleTimeoutSec without a byte or pipeLifetimeSec in all.
//
// Every 9001 connection ends through release(); onClose() then forgets it.

import type { CounterName, RelayContext } from './context.js';
import type { RoomRecorder } from './handshake.js';
import { otherSide, Room, RoomTable, type RoomTimerHandler, type Side } from './rooms.js';
import { SecureConn, type SecureTimerHandler } from './secure-conn.js';
import { IGNORED_EVENTS, type RelaySocket, type SocketEvents } from './socket.js';
import { ipOf } from './sources.js';

// The status is two ASCII digits, "00"/"01"/"02" (bob writes the OCaml string "00").
const PAIRED = Uint8Array.of(0x30, 0x30); // "00"
const TIMED_OUT = Uint8Array.of(0x30, 0x31); // "01"
const INVALID_PEER = Uint8Array.of(0x30, 0x32); // "02"
/** End of stream for the record layer (§5); the relay sends it raw to both. */
const CLOSE_MARKER = Uint8Array.of(0xff, 0xff, 0xff, 0xff);
const NEWLINE = 0x0a;

export class SecureService implements RoomRecorder, RoomTimerHandler, SecureTimerHandler {
  /** Accepted sockets not yet reported closed. */
  private readonly conns = new Set<SecureConn>();
  private readonly rooms = new RoomTable();
  private down = false;

  constructor(private readonly ctx: RelayContext) {}

  // ---- rooms (recorded by the handshake side at Accepted) ---------------------------

  /** Record a room for an Accepted pair; false (counted why) when refused. */
  recordPair(cid: string, sid: string): boolean {
    const { limits, timers, counters } = this.ctx;
    if (this.down) return false;
    // A line still listed belongs to an older, unused room of a peer whose
    // `ip:port` came back: that room can never pair correctly any more.
    for (const line of [cid, sid]) {
      const old = this.rooms.lookup(line);
      if (old !== undefined) {
        counters.roomsReplaced++;
        this.dropRoom(old);
      }
    }
    const room = new Room(cid, sid, this);
    if (!this.admit(room)) return false;
    this.rooms.add(room);
    timers.armIn(room, limits.pairingTimeoutSec);
    return true;
  }

  /**
   * Whether `room` may be added (limits.ts, fairness): each of its addresses
   * under the per-source ceiling, and either a free room or one taken from
   * the largest holder if that holds more than either of its addresses.
   */
  private admit(room: Room): boolean {
    const { limits, counters } = this.ctx;
    const held = Math.max(...room.sources.map((source) => this.rooms.shares.count(source)));
    if (held >= limits.maxRoomsPerSource) {
      counters.roomsPerSourceFull++;
      return false;
    }
    if (this.rooms.size < limits.maxRooms) return true;
    const holder = this.rooms.shares.largestAbove(held);
    if (holder === null) {
      counters.roomsFull++;
      return false;
    }
    counters.roomsEvicted++;
    this.evict(oldestNotPiping(holder));
    return true;
  }

  /** Drop a room for a newcomer: a piping one resets both its sockets. */
  private evict(room: Room): void {
    if (room.state === 'piping') this.release(room.senderSide!, null, true);
    else this.dropRoom(room);
  }

  /** Pending: no socket came in time. Piping: idle or lifetime deadline. */
  onRoomTimer(room: Room): void {
    if (room.state === 'piping') return this.checkPipe(room);
    if (room.state !== 'pending') return;
    this.ctx.counters.roomsExpired++;
    this.rooms.remove(room);
  }

  /**
   * A pipe's timer is armed at 00 and not moved per byte: when it fires, a
   * pipe that saw bytes since is re-armed at its new idle deadline.
   */
  private checkPipe(room: Room): void {
    const { limits, timers } = this.ctx;
    const now = timers.now();
    const end = room.pipedAt + limits.pipeLifetimeSec * 1000;
    const idle = room.lastActivity + limits.pipeIdleTimeoutSec * 1000;
    if (now >= end) this.release(room.senderSide!, 'pipeLifetimeExpired', true);
    else if (now >= idle) this.release(room.senderSide!, 'pipeIdleTimeout', true);
    else timers.armAt(room, Math.min(end, idle));
  }

  /** Forget a room that has not started piping, closing its waiting socket. */
  private dropRoom(room: Room): void {
    const waiting = room.senderSide ?? room.receiverSide;
    if (waiting !== null) this.release(waiting, null);
    this.ctx.timers.cancel(room);
    this.rooms.remove(room);
  }

  // ---- adapter side -----------------------------------------------------------------

  accept(socket: RelaySocket): SocketEvents {
    const { limits, counters, timers } = this.ctx;
    if (this.down || this.conns.size >= limits.maxSecureSockets) {
      counters.secureSocketsFull++;
      socket.destroy();
      return IGNORED_EVENTS;
    }
    counters.secureAccepted++;
    const conn = new SecureConn(socket, limits.maxLineBytes, this);
    this.conns.add(conn);
    // No valid line in time → 01; a line but no partner in time → silent close (§3).
    timers.armIn(conn, limits.pairingTimeoutSec);
    return {
      data: (bytes) => this.onData(conn, bytes),
      end: () => this.onEnd(conn),
      drain: () => this.onDrain(conn),
      close: () => this.onClose(conn),
    };
  }

  private onData(conn: SecureConn, bytes: Uint8Array): void {
    switch (conn.state) {
      case 'line':
        return this.readLine(conn, bytes);
      case 'piping':
        return this.pipe(conn, bytes);
      case 'waiting':
        // Paused; a transport may still hand over a read already in flight.
        // Nothing may be sent before 00, and bob drops it too.
        this.ctx.counters.earlyBytesDropped += bytes.length;
        return;
      default:
        return; // released: discarded
    }
  }

  private onEnd(conn: SecureConn): void {
    switch (conn.state) {
      case 'line':
        return this.answer(conn, INVALID_PEER, 'lineEof');
      case 'waiting':
        return this.release(conn, 'waitingEof');
      case 'piping':
        return this.endPipe(conn);
      default:
        return;
    }
  }

  private onClose(conn: SecureConn): void {
    // A reset ends the socket like an EOF would; writes to it are no-ops now.
    this.onEnd(conn);
    this.ctx.timers.cancel(conn);
    this.conns.delete(conn);
    conn.state = 'closed';
  }

  /** The socket's one timer: pairing deadline while line/waiting, linger while closing. */
  onSecureTimer(conn: SecureConn): void {
    switch (conn.state) {
      case 'line':
        return this.answer(conn, TIMED_OUT, 'lineTimeout');
      case 'waiting':
        return this.release(conn, 'pairingTimeout');
      case 'closing':
        this.ctx.counters.lingerResets++;
        conn.socket.destroy();
        return;
      default:
        return;
    }
  }

  // ---- the line and the room ----------------------------------------------------------

  /** Up to maxLineBytes, then `\n` (§3). */
  private readLine(conn: SecureConn, bytes: Uint8Array): void {
    const newline = bytes.indexOf(NEWLINE);
    const take = newline < 0 ? bytes.length : newline;
    if (conn.lineLength + take > this.ctx.limits.maxLineBytes) return this.answer(conn, INVALID_PEER, 'lineTooLong');
    conn.line.set(bytes.subarray(0, take), conn.lineLength);
    conn.lineLength += take;
    if (newline < 0) return;
    // bob discards what follows the line in the same read; a bob peer sends
    // nothing before 00 anyway.
    this.ctx.counters.earlyBytesDropped += bytes.length - newline - 1;
    const line = latin1(conn.line.subarray(0, conn.lineLength));
    conn.lineLength = 0;
    this.lineDone(conn, line);
  }

  private lineDone(conn: SecureConn, line: string): void {
    const room = this.rooms.lookup(line);
    if (room === undefined) return this.answer(conn, INVALID_PEER, 'unknownLine');
    const side = room.sideOf(line);
    if (room[side] !== null) return this.answer(conn, INVALID_PEER, 'duplicateLine');
    if (this.ctx.limits.checkRoomSource && ipOf(conn.socket.identity) !== ipOf(room.expectedPeer(side))) {
      return this.answer(conn, INVALID_PEER, 'sourceMismatch');
    }
    this.join(conn, room, side);
  }

  private join(conn: SecureConn, room: Room, side: Side): void {
    room[side] = conn;
    conn.room = room;
    conn.state = 'waiting';
    // Not read while waiting: whatever the peer sends stays in the transport.
    conn.socket.pause();
    const partner = room[otherSide(side)];
    if (partner === null) {
      room.state = 'waiting';
      this.ctx.timers.cancel(room); // the waiting socket's own timer governs now
      return;
    }
    this.startPipe(room, conn, partner);
  }

  /** Both sides are here: `00` to both, then bytes flow (§3). */
  private startPipe(room: Room, a: SecureConn, b: SecureConn): void {
    const { counters, timers } = this.ctx;
    this.rooms.unlist(room);
    room.state = 'piping';
    counters.roomsPiped++;
    room.pipedAt = room.lastActivity = timers.now();
    timers.armAt(room, room.pipedAt + Math.min(this.ctx.limits.pipeIdleTimeoutSec, this.ctx.limits.pipeLifetimeSec) * 1000);
    for (const [conn, partner] of [
      [a, b],
      [b, a],
    ] as const) {
      timers.cancel(conn); // the room's timer governs a running pipe (bob's has none, §3)
      conn.partner = partner;
      conn.state = 'piping';
    }
    a.socket.write(PAIRED);
    b.socket.write(PAIRED);
    // Resuming may deliver data (or an EOF that ends the pipe) at once.
    a.socket.resume();
    if (b.state === 'piping') b.socket.resume();
  }

  // ---- piping ------------------------------------------------------------------------------

  private pipe(from: SecureConn, bytes: Uint8Array): void {
    const to = from.partner!;
    this.ctx.counters.bytesPiped += bytes.length;
    from.room!.lastActivity = this.ctx.timers.now();
    if (to.socket.write(bytes) || from.held) return;
    // The partner's queue is full: stop reading until it drains.
    from.held = true;
    this.ctx.counters.pipePauses++;
    from.socket.pause();
  }

  private onDrain(conn: SecureConn): void {
    const reader = conn.partner;
    if (conn.state !== 'piping' || reader === null || reader.state !== 'piping' || !reader.held) return;
    reader.held = false;
    this.ctx.counters.pipeResumes++;
    reader.socket.resume();
  }

  /** EOF or error on either side: `ff ff ff ff` to both, then both closed (§3). */
  private endPipe(conn: SecureConn): void {
    const partner = conn.partner!;
    this.ctx.counters.pipeEnded++;
    conn.socket.write(CLOSE_MARKER);
    partner.socket.write(CLOSE_MARKER);
    this.release(conn, null);
    this.release(partner, null);
  }

  // ---- ending ----------------------------------------------------------------------------------

  /** Write a two-byte answer, then close. */
  private answer(conn: SecureConn, code: Uint8Array, reason: CounterName): void {
    conn.socket.write(code);
    this.release(conn, reason);
  }

  /**
   * The one way a 9001 connection leaves: out of its room (a waiting room is
   * dropped, single use; a piping room ends with its partner), its timer moved
   * to the linger deadline, its socket closed. Idempotent.
   */
  private release(conn: SecureConn, reason: CounterName | null, reset = false): void {
    if (conn.state === 'closing' || conn.state === 'closed') return;
    const { counters, timers, limits } = this.ctx;
    conn.state = 'closing';
    conn.lineLength = 0;
    if (reason !== null) counters[reason]++;
    const room = conn.room;
    conn.room = null;
    if (room !== null) {
      timers.cancel(room);
      this.rooms.remove(room);
      if (conn.partner !== null) this.release(conn.partner, null, reset);
    }
    if (reset || this.down) {
      timers.cancel(conn);
      conn.socket.destroy();
    } else {
      // Armed before end(): an adapter may report close from inside it.
      timers.armIn(conn, limits.lingerSec);
      conn.socket.end();
    }
  }

  // ---- relay-wide ------------------------------------------------------------------------------

  /** Reset every socket and forget every room; later accepts are refused. */
  shutdown(): void {
    this.down = true;
    for (const conn of [...this.conns]) {
      if (conn.state === 'closed') continue;
      this.ctx.counters.shutdownCloses++;
      if (conn.state === 'closing') {
        this.ctx.timers.cancel(conn);
        conn.socket.destroy();
      } else {
        this.release(conn, null, true);
      }
    }
    for (const room of this.rooms.rooms()) {
      this.ctx.timers.cancel(room);
      this.rooms.remove(room);
    }
  }

  get sockets(): number {
    return this.conns.size;
  }

  /** Source addresses taking part in rooms. */
  get sources(): number {
    return this.rooms.shares.sources;
  }

  roomCounts(): { pending: number; waiting: number; piping: number } {
    return this.rooms.counts();
  }

  /** Bytes of partial lines. */
  bufferedBytes(): number {
    let n = 0;
    for (const conn of this.conns) n += conn.lineLength;
    return n;
  }
}

/** Bytes as code points 0..255: identities are ASCII, and any byte maps back one to one. */
function latin1(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return text;
}

/** A room to evict from the largest holder: its oldest not yet piping, else its oldest. */
function oldestNotPiping(holder: ReadonlySet<Room>): Room {
  let oldest: Room | undefined;
  for (const room of holder) {
    if (room.state !== 'piping') return room;
    oldest ??= room;
  }
  return oldest!;
}
