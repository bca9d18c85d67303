// The established-connection fast path in TypeScript: the twin of
// assembly/tcp-fast.ts, same rules in the same order over the same bytes, so
// the agreement tests can drive both with one segment sequence and compare
// memory word for word. The comments of the AssemblyScript file say why each
// step is there; this one follows it function by function.
//
// Integer discipline: every u32 word is read from a Uint32Array (so it is
// already a non-negative integer) and written back through one (so a sum
// wraps mod 2^32 as Wasm's does); sequence arithmetic goes through ts-seq.ts.

import {
  ARENA_HEADER_WORDS, ARENA_META_BASE, ArenaHeader, BURST_MAX, Burst, CHUNK_SHIFT, CHUNK_SIZE, D, DECODED_BASE,
  DELAYED_ACK_TIMER_SLOT, E,
  ENCODE_BASE, ETH_HLEN, F, FA, FAST_BASE, FAST_WORDS, IPV4_HLEN, Kind, Reason, Slow, State, T, TCB_WORDS,
  Q, TCP_ACK, TCP_BASE_HLEN, TCP_PSH, TE, TF, X,
} from './layout.js';
import { OwnerKind, ownerTag } from './engine.js';
import type { TsArena } from './ts-arena.js';
import type { TsCodec } from './ts-codec.js';
import { rto, rttRttvar4, rttSrtt8, seqGe, seqGt, seqLe, seqLt, windowRaw, windowScaled } from './ts-seq.js';

const OWNER_TX = ownerTag(OwnerKind.Tx, 0);
const W_LINKS = (ARENA_META_BASE >>> 2) + ARENA_HEADER_WORDS + 1; // chunk 0's link word
const W_COUNT = (ARENA_META_BASE >>> 2) + ArenaHeader.COUNT;
const W_BASE = (ARENA_META_BASE >>> 2) + ArenaHeader.BASE;
const W_IN_USE = (ARENA_META_BASE >>> 2) + ArenaHeader.IN_USE;
const GRANULARITY = 1;

function mix(h: number, v: number): number {
  h = (h ^ v) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function stateTakes(state: number, payload: number): boolean {
  if (state === State.Established) return true;
  return payload === 0 && (state === State.CloseWait || state === State.FinWait1 || state === State.Closing || state === State.LastAck);
}

export class TsTcpFast {
  private readonly w: Uint32Array;
  private readonly f: Uint32Array;
  private readonly d: Uint32Array;
  private readonly e: Uint32Array;
  private readonly f64: Float64Array;
  private readonly bytes: Uint8Array;

  constructor(
    buffer: ArrayBuffer | SharedArrayBuffer,
    private readonly codec: TsCodec,
    private readonly arena: TsArena,
  ) {
    this.w = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
    this.f = new Uint32Array(buffer, FAST_BASE, FAST_WORDS);
    this.d = new Uint32Array(buffer, DECODED_BASE, 64);
    this.e = new Uint32Array(buffer, ENCODE_BASE, 64);
    this.f64 = new Float64Array(buffer, 0, buffer.byteLength >>> 3);
    this.bytes = new Uint8Array(buffer);
  }

  // ---- the 4-tuple hash ---------------------------------------------------------

  private bucketOf(local: number, localPort: number, remote: number, remotePort: number): number {
    const f = this.f;
    let h = f[F.SECRET]!;
    h = mix(h, (local ^ Math.imul(remote, 0x9e3779b1)) >>> 0);
    h = mix(h, f[F.SECRET + 1]!);
    h = mix(h, ((localPort << 16) | remotePort) >>> 0);
    h = mix(h, f[F.SECRET + 2]!);
    h = mix(h, f[F.SECRET + 3]!);
    return f[F.BUCKET_BASE]! + ((h & f[F.BUCKET_MASK]!) >>> 0);
  }

  private holds(r: number, local: number, ports: number, remote: number): boolean {
    const w = this.w;
    return w[r + T.PORTS] === ports && w[r + T.REMOTE_ADDR] === remote && w[r + T.LOCAL_ADDR] === local;
  }

  private find(local: number, localPort: number, remote: number, remotePort: number): number {
    const f = this.f;
    const w = this.w;
    const base = f[F.TABLE_BASE]!;
    const ports = ((localPort << 16) | remotePort) >>> 0;
    const last = f[F.LAST_FOUND]!;
    if (last !== 0 && this.holds(base + (last - 1) * TCB_WORDS, local, ports, remote)) return last - 1;
    const capacity = f[F.CAPACITY]!;
    let steps = 0;
    for (let i = w[this.bucketOf(local, localPort, remote, remotePort)]!; i !== 0 && i <= capacity && steps <= capacity; steps++) {
      const r = base + (i - 1) * TCB_WORDS;
      if (this.holds(r, local, ports, remote)) {
        f[F.LAST_FOUND] = i;
        return i - 1;
      }
      i = w[r + T.HASH_NEXT]!;
    }
    return -1;
  }

  // ---- byte queues ----------------------------------------------------------------

  private linkOf(chunk: number): number {
    return W_LINKS + (((chunk - this.w[W_BASE]!) >>> CHUNK_SHIFT) << 1);
  }
  private chunkOf(off: number): number {
    return off - ((off - this.w[W_BASE]!) & (CHUNK_SIZE - 1));
  }
  private spareChunks(): number {
    return this.w[W_COUNT]! - this.w[W_IN_USE]!;
  }

  private tailRoom(q: number): number {
    const w = this.w;
    const len = w[q + Q.LEN]!;
    if (len === 0) return 0;
    const head = w[q + Q.HEAD]!;
    const inLast = (head - this.chunkOf(head) + len) & (CHUNK_SIZE - 1);
    return inLast === 0 ? 0 : CHUNK_SIZE - inLast;
  }

  private chunksFor(q: number, n: number): number {
    const room = this.tailRoom(q);
    return n <= room ? 0 : (n - room + CHUNK_SIZE - 1) >>> CHUNK_SHIFT;
  }

  private append(q: number, owner: number, src: number, n: number): void {
    const w = this.w;
    let done = 0;
    while (done < n) {
      const len = w[q + Q.LEN]!;
      let at: number;
      const room = this.tailRoom(q);
      if (len > 0 && room > 0) {
        at = w[q + Q.TAIL]! + CHUNK_SIZE - room;
      } else {
        const chunk = this.arena.alloc(owner);
        if (chunk === 0) return;
        w[this.linkOf(chunk)] = 0;
        if (len === 0) w[q + Q.HEAD] = chunk;
        else w[this.linkOf(w[q + Q.TAIL]!)] = chunk;
        w[q + Q.TAIL] = chunk;
        at = chunk;
      }
      const k = Math.min(CHUNK_SIZE - ((at - w[W_BASE]!) & (CHUNK_SIZE - 1)), n - done);
      this.bytes.copyWithin(at, src + done, src + done + k);
      w[q + Q.LEN] = w[q + Q.LEN]! + k;
      done += k;
    }
  }

  private consume(q: number, n: number): void {
    const w = this.w;
    const k = Math.min(n, w[q + Q.LEN]!);
    if (k === 0) return;
    const len = w[q + Q.LEN]! - k;
    if (len === 0) {
      for (let chunk = this.chunkOf(w[q + Q.HEAD]!); chunk !== 0; ) {
        const next = w[this.linkOf(chunk)]!;
        this.arena.free(chunk);
        chunk = next;
      }
      w.fill(0, q + Q.HEAD, q + Q.CUR_CHUNK + 1);
      return;
    }
    const head = w[q + Q.HEAD]!;
    let chunk = this.chunkOf(head);
    let inChunk = head - chunk + k;
    let freed = 0;
    while (inChunk >= CHUNK_SIZE) {
      const next = w[this.linkOf(chunk)]!;
      this.arena.free(chunk);
      chunk = next;
      inChunk -= CHUNK_SIZE;
      freed++;
    }
    w[q + Q.HEAD] = chunk + inChunk;
    w[q + Q.LEN] = len;
    if (freed > 0) {
      const pos = w[q + Q.CUR_POS]! - freed * CHUNK_SIZE;
      if (pos < 0) {
        w[q + Q.CUR_POS] = 0;
        w[q + Q.CUR_CHUNK] = chunk;
      } else {
        w[q + Q.CUR_POS] = pos;
      }
    }
  }

  private copyOut(q: number, pos: number, n: number, dst: number): void {
    const w = this.w;
    const head = w[q + Q.HEAD]!;
    let logical = head - this.chunkOf(head) + pos;
    let done = 0;
    while (done < n) {
      let chunk = this.chunkOf(w[q + Q.HEAD]!);
      let start = 0;
      if (w[q + Q.CUR_POS]! <= logical) {
        chunk = w[q + Q.CUR_CHUNK]!;
        start = w[q + Q.CUR_POS]!;
      }
      while (logical - start >= CHUNK_SIZE) {
        chunk = w[this.linkOf(chunk)]!;
        start += CHUNK_SIZE;
      }
      w[q + Q.CUR_POS] = start;
      w[q + Q.CUR_CHUNK] = chunk;
      const inChunk = logical & (CHUNK_SIZE - 1);
      const k = Math.min(CHUNK_SIZE - inChunk, n - done);
      this.bytes.copyWithin(dst + done, chunk + inChunk, chunk + inChunk + k);
      done += k;
      logical += k;
    }
  }

  // ---- receive ----------------------------------------------------------------------

  tcpInput(off: number, len: number, now: number): number {
    const d = this.d;
    const f = this.f;
    if (this.codec.decode(off, len) !== Reason.Ok || d[D.KIND] !== Kind.Tcp) return Slow.NOT_TCP;
    if (f[F.ENABLED] === 0) return Slow.DISABLED;
    const local = d[D.IP_DST]!;
    if (f[F.LOCAL_ADDR] !== 0 && local !== f[F.LOCAL_ADDR]) return Slow.NOT_LOCAL;
    const index = this.find(local, d[D.DPORT]!, d[D.IP_SRC]!, d[D.SPORT]!);
    if (index < 0) return Slow.NO_CONNECTION;
    f[F.INDEX] = index;
    const r = f[F.TABLE_BASE]! + index * TCB_WORDS;
    const verdict = this.predict(r);
    if (verdict !== Slow.FAST) return verdict;
    return this.apply(r, index, now);
  }

  private predict(r: number): number {
    const w = this.w;
    const d = this.d;
    const payload = d[D.PAYLOAD_LEN]!;
    if (!stateTakes(w[r + T.STATE]!, payload)) return Slow.STATE;
    const flags = d[D.TCP_FLAGS]!;
    if ((flags & ~(TCP_ACK | TCP_PSH)) !== 0 || (flags & TCP_ACK) === 0) return Slow.FLAGS;
    const tf = w[r + T.FLAGS]!;
    if ((tf & TF.IN_INPUT) !== 0) return Slow.BUSY;
    if ((tf & TF.READ_CLOSED) !== 0 && payload !== 0) return Slow.CLOSING;
    if ((tf & TF.IN_RECOVERY) !== 0) return Slow.RECOVERY;
    const ooo = w[r + T.OOO]!;
    if (ooo !== 0 && (w[(ooo >>> 2) + X.RANGES] !== 0 || w[(ooo >>> 2) + X.SACK_COUNT] !== 0)) return Slow.RECOVERY;
    if ((tf & TF.TIMESTAMPS) !== 0) return Slow.OPTIONS;
    const rcvNxt = w[r + T.RCV_NXT]!;
    if (d[D.TCP_SEQ] !== rcvNxt) return Slow.SEQUENCE;
    const rcvWnd = Math.max(0, (w[r + T.RCV_ADV_RIGHT]! - rcvNxt) | 0);
    if (payload > rcvWnd) return Slow.SEQUENCE;
    const ack = d[D.TCP_ACK]!;
    const sndUna = w[r + T.SND_UNA]!;
    if (seqLt(ack, sndUna) || seqGt(ack, w[r + T.SND_MAX]!)) return Slow.ACK;
    if (ack === sndUna && payload === 0) return Slow.ACK;
    if ((tf & TF.FIN_QUEUED) !== 0 && seqGt(ack, (sndUna + w[r + T.SEND_HEAD + Q.LEN]!) >>> 0)) return Slow.CLOSING;
    if (payload > 0 && this.chunksFor(r + T.RECV_HEAD, payload) > this.spareChunks()) return Slow.MEMORY;
    return Slow.FAST;
  }

  private apply(r: number, index: number, now: number): number {
    const w = this.w;
    const d = this.d;
    let result: number = Slow.FAST;
    this.f64[(r + T.LAST_HEARD) >>> 1] = now;
    w[r + T.PROBES] = w[r + T.PROBES]! & ~0xff00ff;
    const ack = d[D.TCP_ACK]!;
    const seq = d[D.TCP_SEQ]!;
    const wnd = windowScaled(d[D.TCP_WINDOW]!, w[r + T.SHIFTS]! & 0xff);
    const sndUna = w[r + T.SND_UNA]!;
    this.f[F.ACKED] = 0;
    if (seqGt(ack, sndUna)) result |= this.newAck(r, ack, (ack - sndUna) >>> 0, now);
    const wl1 = w[r + T.SND_WL1]!;
    if (seqLt(wl1, seq) || (wl1 === seq && seqLe(w[r + T.SND_WL2]!, ack))) {
      w[r + T.SND_WND] = wnd;
      w[r + T.SND_WL1] = seq;
      w[r + T.SND_WL2] = ack;
      if (wnd > w[r + T.MAX_SND_WND]!) w[r + T.MAX_SND_WND] = wnd;
    }
    const payload = d[D.PAYLOAD_LEN]!;
    this.f[F.TAKEN] = payload;
    if (payload > 0) result |= this.receive(r, index, payload);
    // The scoreboard is empty (predict): JS records the blocks as input.ts would.
    if (d[D.OPT_SACK_COUNT] !== 0 && (w[r + T.FLAGS]! & TF.SACK_OK) !== 0) result |= FA.SACK;
    return result;
  }

  private newAck(r: number, ack: number, acked: number, now: number): number {
    const w = this.w;
    this.f[F.ACKED] = acked;
    this.consume(r + T.SEND_HEAD, acked);
    w[r + T.SND_UNA] = ack;
    if (seqGt(ack, w[r + T.SND_NXT]!)) w[r + T.SND_NXT] = ack;
    const tf = w[r + T.FLAGS]!;
    if ((tf & TF.RTT_TIMING) !== 0 && !seqLt(ack, w[r + T.RTT_SEQ]!)) {
      w[r + T.FLAGS] = tf & ~TF.RTT_TIMING;
      const elapsed16 = (Math.floor(now * 16) - w[r + T.RTT_START]!) >>> 0;
      const sample = Math.max(1, Math.round(elapsed16 / 16));
      const srtt8 = w[r + T.SRTT8]!;
      const rttvar4 = w[r + T.RTTVAR4]!;
      const newSrtt8 = rttSrtt8(srtt8, rttvar4, sample);
      const newRttvar4 = rttRttvar4(srtt8, rttvar4, sample);
      w[r + T.SRTT8] = newSrtt8;
      w[r + T.RTTVAR4] = newRttvar4;
      w[r + T.RTO] = rto(newSrtt8, newRttvar4, GRANULARITY, this.f[F.MIN_RTO]!, this.f[F.MAX_RTO]!);
    }
    w[r + T.RETRIES] = 0;
    w[r + T.DUP_ACKS] = 0;
    const mss = w[r + T.MSS]! >>> 16;
    const cwnd = w[r + T.CWND]!;
    if (cwnd < w[r + T.SSTHRESH]!) w[r + T.CWND] = cwnd + Math.min(acked, mss);
    else w[r + T.CWND] = cwnd + Math.max(1, cwnd === 0 ? 0 : Math.floor((mss * mss) / cwnd));
    w[r + T.EVENTS] = w[r + T.EVENTS]! | TE.WRITABLE;
    let result: number = FA.ACKED;
    if (seqGt(w[r + T.SND_MAX]!, ack)) result |= FA.RESTART_RTO;
    return result;
  }

  private receive(r: number, index: number, payload: number): number {
    const w = this.w;
    this.append(r + T.RECV_HEAD, ownerTag(OwnerKind.TcpRecv, index + 1), this.d[D.PAYLOAD_OFF]!, payload);
    w[r + T.RCV_NXT] = w[r + T.RCV_NXT]! + payload;
    w[r + T.EVENTS] = w[r + T.EVENTS]! | TE.DATA;
    const unacked = w[r + T.UNACKED_BYTES]! + payload;
    w[r + T.UNACKED_BYTES] = unacked;
    const tf = w[r + T.FLAGS]!;
    if (unacked >= 2 * (w[r + T.MSS]! & 0xffff)) {
      w[r + T.FLAGS] = tf | TF.ACK_NOW;
    } else if ((tf & TF.ACK_NOW) === 0 && w[r + T.TIMERS + DELAYED_ACK_TIMER_SLOT] === 0) {
      return FA.DATA | FA.ARM_DELACK;
    }
    return FA.DATA;
  }

  // ---- transmit ---------------------------------------------------------------------

  private receiveWindow(r: number): number {
    const w = this.w;
    const rcvNxt = w[r + T.RCV_NXT]!;
    const current = Math.max(0, (w[r + T.RCV_ADV_RIGHT]! - rcvNxt) | 0);
    const rcvBuf = this.f[F.RCV_BUF]!;
    const readClosed = (w[r + T.FLAGS]! & TF.READ_CLOSED) !== 0;
    let space = readClosed ? rcvBuf : rcvBuf - w[r + T.RECV_HEAD + Q.LEN]!;
    if (!readClosed) {
      const canHold = this.tailRoom(r + T.RECV_HEAD) + (this.spareChunks() - this.f[F.ARENA_RESERVE]!) * CHUNK_SIZE;
      if (canHold < space) space = Math.max(0, canHold);
    }
    const threshold = Math.min(rcvBuf >>> 1, w[r + T.MSS]! & 0xffff);
    return space - current >= threshold ? space : current;
  }

  private windowField(r: number): number {
    const w = this.w;
    const shift = (w[r + T.SHIFTS]! >>> 8) & 0xff;
    const rcvNxt = w[r + T.RCV_NXT]!;
    const advRight = w[r + T.RCV_ADV_RIGHT]!;
    let raw = windowRaw(this.receiveWindow(r), shift);
    let right = (rcvNxt + windowScaled(raw, shift)) >>> 0;
    if (seqLt(right, advRight) && raw < 65535) {
      raw++;
      right = (rcvNxt + windowScaled(raw, shift)) >>> 0;
    }
    if (seqGt(right, advRight)) w[r + T.RCV_ADV_RIGHT] = right;
    return raw;
  }

  tcpSendBurst(index: number, max: number, now: number): number {
    const f = this.f;
    const w = this.w;
    f[F.BURST_BYTES] = 0;
    f[F.BURST_RETX] = 0;
    if (f[F.ENABLED] === 0 || index >= f[F.CAPACITY]!) {
      f[F.BURST_STOP] = Burst.SLOW;
      return 0;
    }
    const r = f[F.TABLE_BASE]! + index * TCB_WORDS;
    const limit = Math.min(max, BURST_MAX);
    let n = 0;
    let stop: number = Burst.DONE;
    for (;;) {
      if (n >= limit) {
        stop = Burst.LIMIT;
        break;
      }
      const state = w[r + T.STATE]!;
      const tf = w[r + T.FLAGS]!;
      const ooo = w[r + T.OOO]!;
      if ((state !== State.Established && state !== State.CloseWait) || (tf & TF.FIN_QUEUED) !== 0 ||
          ((tf & TF.SACK_OK) !== 0 && ooo !== 0 && w[(ooo >>> 2) + X.RANGES] !== 0)) {
        stop = Burst.SLOW;
        break;
      }
      const len = this.nextSegment(r, tf);
      if (len < 0) break;
      const slot = this.arena.alloc(OWNER_TX);
      if (slot === 0) {
        stop = Burst.NO_SLOT;
        break;
      }
      f[F.BURST_SLOTS + n] = slot;
      f[F.BURST_LENS + n] = this.buildSegment(r, slot, len, now);
      n++;
    }
    if (stop === Burst.DONE && (w[r + T.FLAGS]! & TF.ACK_NOW) !== 0) {
      const slot = this.arena.alloc(OWNER_TX);
      if (slot === 0) {
        stop = Burst.NO_SLOT;
      } else {
        f[F.BURST_SLOTS + n] = slot;
        f[F.BURST_LENS + n] = this.encodeSegment(r, slot, w[r + T.SND_MAX]!, TCP_ACK, 0);
        n++;
      }
    }
    f[F.BURST_STOP] = stop;
    return n;
  }

  private nextSegment(r: number, tf: number): number {
    const w = this.w;
    const sndUna = w[r + T.SND_UNA]!;
    const inFlight = (w[r + T.SND_NXT]! - sndUna) | 0;
    const avail = (w[r + T.SEND_HEAD + Q.LEN]! | 0) - inFlight;
    if (avail <= 0) return -1;
    const mss = w[r + T.MSS]! >>> 16;
    const limited = (tf & TF.IN_RECOVERY) !== 0 ? 0 : Math.min(w[r + T.DUP_ACKS]!, 2) * mss;
    const usable = Math.min(w[r + T.SND_WND]!, w[r + T.CWND]! + limited) - inFlight;
    const len = Math.max(0, Math.min(avail, mss, usable));
    if (len === 0) return -1;
    if (len >= mss) return len;
    if (len === avail && ((tf & TF.NO_DELAY) !== 0 || inFlight === 0)) return len;
    const maxSndWnd = w[r + T.MAX_SND_WND]!;
    if (maxSndWnd > 0 && len >= maxSndWnd >>> 1 && inFlight === 0) return len;
    return -1;
  }

  private encodeSegment(r: number, slot: number, seq: number, flags: number, len: number): number {
    const w = this.w;
    const e = this.e;
    const ports = w[r + T.PORTS]!;
    e[E.SPORT] = ports >>> 16;
    e[E.DPORT] = ports & 0xffff;
    e[E.TCP_SEQ] = seq;
    e[E.TCP_FLAGS] = flags;
    e[E.TCP_URG] = 0;
    e[E.TCP_ACK] = w[r + T.RCV_NXT]!;
    e[E.TCP_WINDOW] = this.windowField(r);
    e[E.OPT_MSS] = 0;
    e[E.OPT_WSCALE] = 0xff;
    e[E.OPT_SACK_OK] = 0;
    e[E.OPT_TS] = 0;
    e[E.OPT_SACK_COUNT] = 0;
    const frameLen = this.codec.encodeTcp(slot, len);
    e[E.IP_ID] = (e[E.IP_ID]! + 1) & 0xffff;
    w[r + T.UNACKED_BYTES] = 0;
    w[r + T.FLAGS] = w[r + T.FLAGS]! & ~TF.ACK_NOW;
    return frameLen;
  }

  private buildSegment(r: number, slot: number, len: number, now: number): number {
    const w = this.w;
    const f = this.f;
    const seq = w[r + T.SND_NXT]!;
    const pos = (seq - w[r + T.SND_UNA]!) >>> 0;
    const avail = w[r + T.SEND_HEAD + Q.LEN]! - pos;
    this.copyOut(r + T.SEND_HEAD, pos, len, slot + ETH_HLEN + IPV4_HLEN + TCP_BASE_HLEN);
    const frameLen = this.encodeSegment(r, slot, seq, len === avail ? TCP_ACK | TCP_PSH : TCP_ACK, len);
    f[F.BURST_BYTES] = f[F.BURST_BYTES]! + len;
    const end = (seq + len) >>> 0;
    const sndMax = w[r + T.SND_MAX]!;
    if (seqGe(seq, sndMax)) {
      const tf = w[r + T.FLAGS]!;
      if ((tf & TF.RTT_TIMING) === 0) {
        w[r + T.FLAGS] = tf | TF.RTT_TIMING;
        w[r + T.RTT_SEQ] = end;
        w[r + T.RTT_START] = Math.floor(now * 16) >>> 0;
      }
    } else {
      f[F.BURST_RETX] = f[F.BURST_RETX]! + 1;
    }
    w[r + T.SND_NXT] = end;
    if (seqGt(end, sndMax)) w[r + T.SND_MAX] = end;
    return frameLen;
  }
}
