// The 9001 rooms (docs/bob-protocol.md §3). A room is recorded at Accepted with the
// pair (cid, sid): the receiver's and the sender's 9000 identities. The sender
// then connects to 9001 and writes cid, the receiver writes sid. A room is
// pending until its first socket arrives, waiting with one socket, piping
// with both. Its lines pair once only: they are unlisted when piping starts.

import type { SecureConn } from './secure-conn.js';
import { ipOf, SourceShares } from './sources.js';
import type { Timed } from './timers.js';

export type RoomState = 'pending' | 'waiting' | 'piping' | 'done';

/** Which socket of the room: the one that wrote cid is the sender's. */
export type Side = 'senderSide' | 'receiverSide';

export interface RoomTimerHandler {
  onRoomTimer(room: Room): void;
}

export class Room implements Timed {
  timerSlot = -1;
  state: RoomState = 'pending';
  senderSide: SecureConn | null = null;
  receiverSide: SecureConn | null = null;
  /** The addresses it counts against (limits.ts, fairness): one or two. */
  readonly sources: readonly string[];
  /** Monotonic ms of its 00, and of the last byte piped either way. */
  pipedAt = 0;
  lastActivity = 0;

  constructor(
    /** The receiver's identity: the line the sender writes. */
    readonly cid: string,
    /** The sender's identity: the line the receiver writes. */
    readonly sid: string,
    private readonly handler: RoomTimerHandler,
  ) {
    this.sources = [...new Set([ipOf(cid), ipOf(sid)])];
  }

  onTimer(): void {
    this.handler.onRoomTimer(this);
  }

  /** The side a line names: cid comes from the sender, sid from the receiver. */
  sideOf(line: string): Side {
    return line === this.cid ? 'senderSide' : 'receiverSide';
  }

  /** The identity of the peer expected on `side` (its IP must match, §7). */
  expectedPeer(side: Side): string {
    return side === 'senderSide' ? this.sid : this.cid;
  }
}

export function otherSide(side: Side): Side {
  return side === 'senderSide' ? 'receiverSide' : 'senderSide';
}

export class RoomTable {
  /** Lines that still pair: cid and sid of every pending or waiting room. */
  private readonly byLine = new Map<string, Room>();
  private readonly live = new Set<Room>();
  /** Live rooms by source address, oldest first. */
  readonly shares = new SourceShares<Room>();

  get size(): number {
    return this.live.size;
  }

  lookup(line: string): Room | undefined {
    return this.byLine.get(line);
  }

  add(room: Room): void {
    this.live.add(room);
    for (const source of room.sources) this.shares.add(source, room);
    this.byLine.set(room.cid, room);
    this.byLine.set(room.sid, room);
  }

  /** Its lines no longer pair (single use, §7). */
  unlist(room: Room): void {
    for (const line of [room.cid, room.sid]) {
      if (this.byLine.get(line) === room) this.byLine.delete(line);
    }
  }

  remove(room: Room): void {
    this.unlist(room);
    this.live.delete(room);
    for (const source of room.sources) this.shares.delete(source, room);
    room.state = 'done';
  }

  rooms(): Room[] {
    return [...this.live];
  }

  counts(): { pending: number; waiting: number; piping: number } {
    const out = { pending: 0, waiting: 0, piping: 0 };
    for (const room of this.live) if (room.state !== 'done') out[room.state]++;
    return out;
  }
}
