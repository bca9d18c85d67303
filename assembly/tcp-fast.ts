// The established-connection fast path: one call per received frame
// (tcpInput) and one per burst of data segments (tcpSendBurst), over the
// control-block records the TypeScript stack keeps in this memory
// (stack/hotpath/layout.ts T, F). stack/hotpath/ts-tcp-fast.ts is the
// TypeScript twin: same rules, same order, same bytes.
//
// tcpInput does what RFC 9293 3.10.7.4 does to the segments of a steady
// transfer and nothing else: header prediction (Van Jacobson's) decides up
// front, before a single word is written, whether the segment is one of
// those; if not, it answers with the reason and the stack's TypeScript path
// handles the segment over the same record, the decoded record already filled.
//
// Trust: frames are untrusted (decode validates them); the configuration
// and the records are the stack's own, and are trusted as the stack's code is.

import { decode, encodeTcp } from './codec';
import { arenaAlloc, arenaFree } from './arena';
import { rto, rttRttvar4, rttSrtt8, seqGe, seqGt, seqLe, seqLt, windowRaw, windowScaled } from './seq';
import {
  ARENA_HEADER_WORDS, ARENA_H_BASE, ARENA_H_COUNT, ARENA_H_IN_USE, ARENA_META_BASE, CHUNK_SHIFT, CHUNK_SIZE,
  DECODED_BASE, ENCODE_BASE, FAST_BASE, BURST_MAX,
  D_IP_DST, D_IP_SRC, D_KIND, D_DPORT, D_SPORT, D_TCP_SEQ, D_TCP_ACK, D_TCP_FLAGS, D_TCP_WINDOW,
  D_OPT_SACK_COUNT, D_PAYLOAD_OFF, D_PAYLOAD_LEN,
  E_IP_ID, E_SPORT, E_DPORT, E_TCP_SEQ, E_TCP_ACK, E_TCP_FLAGS, E_TCP_WINDOW, E_TCP_URG, E_OPT_MSS, E_OPT_WSCALE,
  E_OPT_SACK_OK, E_OPT_TS, E_OPT_SACK_COUNT,
  ETH_HLEN, IPV4_HLEN, TCP_BASE_HLEN, KIND_TCP, R_OK, TCP_ACK, TCP_PSH,
  F_ENABLED, F_LOCAL_ADDR, F_TABLE_BASE, F_CAPACITY, F_BUCKET_BASE, F_BUCKET_MASK, F_SECRET, F_LAST_FOUND,
  F_RCV_BUF, F_MIN_RTO, F_MAX_RTO, F_ARENA_RESERVE, F_INDEX, F_TAKEN, F_ACKED,
  F_BURST_BYTES, F_BURST_RETX, F_BURST_STOP, F_BURST_SLOTS, F_BURST_LENS,
  SLOW_FAST, SLOW_NOT_TCP, SLOW_DISABLED, SLOW_NOT_LOCAL, SLOW_NO_CONNECTION, SLOW_STATE, SLOW_FLAGS,
  SLOW_OPTIONS, SLOW_SEQUENCE, SLOW_ACK, SLOW_RECOVERY, SLOW_CLOSING, SLOW_MEMORY, SLOW_BUSY,
  FA_DATA, FA_ACKED, FA_RESTART_RTO, FA_ARM_DELACK, FA_SACK,
  BURST_DONE, BURST_LIMIT, BURST_NO_SLOT, BURST_SLOW,
  STATE_ESTABLISHED, STATE_CLOSE_WAIT, STATE_FIN_WAIT1, STATE_CLOSING, STATE_LAST_ACK, TE_DATA, TE_WRITABLE,
  TCB_WORDS, T_STATE, T_FLAGS, T_EVENTS, T_LOCAL_ADDR, T_REMOTE_ADDR, T_PORTS, T_SND_UNA, T_SND_NXT, T_SND_MAX,
  T_SND_WND, T_SND_WL1, T_SND_WL2, T_MAX_SND_WND, T_MSS, T_RCV_NXT, T_RCV_ADV_RIGHT, T_SHIFTS,
  T_SRTT8, T_RTTVAR4, T_RTO, T_RETRIES, T_RTT_SEQ, T_CWND, T_SSTHRESH, T_DUP_ACKS, T_UNACKED_BYTES, T_PROBES,
  T_SEND_HEAD, T_RECV_HEAD, T_OOO, T_HASH_NEXT, T_TIMERS, T_LAST_HEARD, T_RTT_START,
  TF_IN_INPUT, TF_IN_RECOVERY, TF_FIN_QUEUED, TF_READ_CLOSED, TF_TIMESTAMPS, TF_RTT_TIMING, TF_ACK_NOW,
  TF_NO_DELAY, TF_SACK_OK, X_RANGES, X_SACK_COUNT, Q_HEAD, Q_TAIL, Q_LEN, Q_CUR_POS, Q_CUR_CHUNK, DELAYED_ACK_TIMER_SLOT,
} from './layout.generated';

// Owner tags (stack/hotpath/engine.ts OwnerKind << 24 | id), checked against it by test/hotpath/tcp-fast-agree.test.ts.
const OWNER_TCP_RECV: u32 = 4 << 24; // OwnerKind.TcpRecv, id = record index + 1
const OWNER_TX: u32 = 2 << 24; // OwnerKind.Tx
const ENTRIES_BASE: u32 = ARENA_META_BASE + ARENA_HEADER_WORDS * 4;
/** RFC 6298 clock granularity G, ms (stack/tcp/rtt.ts). */
const GRANULARITY: u32 = 1;

// ---- memory words ----------------------------------------------------------

// @ts-ignore: decorator
@inline function w(i: u32): u32 {
  return load<u32>(i << 2);
}
// @ts-ignore: decorator
@inline function setW(i: u32, v: u32): void {
  store<u32>(i << 2, v);
}
// @ts-ignore: decorator
@inline function fw(f: u32): u32 {
  return load<u32>(FAST_BASE + (f << 2));
}
// @ts-ignore: decorator
@inline function setF(f: u32, v: u32): void {
  store<u32>(FAST_BASE + (f << 2), v);
}
// @ts-ignore: decorator
@inline function dw(d: u32): u32 {
  return load<u32>(DECODED_BASE + (d << 2));
}
// @ts-ignore: decorator
@inline function setE(e: u32, v: u32): void {
  store<u32>(ENCODE_BASE + (e << 2), v);
}

// ---- the 4-tuple hash (stack/tcp/isn.ts keyedHash, stack/tcp/tcb-table.ts) --

function mix(h: u32, v: u32): u32 {
  h ^= v;
  h = (h ^ (h >>> 16)) * 0x85ebca6b;
  h = (h ^ (h >>> 13)) * 0xc2b2ae35;
  return h ^ (h >>> 16);
}

function bucketOf(local: u32, localPort: u32, remote: u32, remotePort: u32): u32 {
  let h = fw(F_SECRET);
  h = mix(h, local ^ (remote * 0x9e3779b1));
  h = mix(h, fw(F_SECRET + 1));
  h = mix(h, (localPort << 16) | remotePort);
  h = mix(h, fw(F_SECRET + 2));
  h = mix(h, fw(F_SECRET + 3));
  return fw(F_BUCKET_BASE) + (h & fw(F_BUCKET_MASK));
}

function holds(r: u32, local: u32, ports: u32, remote: u32): bool {
  return w(r + T_PORTS) == ports && w(r + T_REMOTE_ADDR) == remote && w(r + T_LOCAL_ADDR) == local;
}

/** The record of (local, remote), -1 if none: the last found first, then the hash. */
function find(local: u32, localPort: u32, remote: u32, remotePort: u32): i32 {
  const base = fw(F_TABLE_BASE);
  const ports = (localPort << 16) | remotePort;
  const last = fw(F_LAST_FOUND);
  if (last != 0 && holds(base + (last - 1) * TCB_WORDS, local, ports, remote)) return <i32>(last - 1);
  const capacity = fw(F_CAPACITY);
  let steps: u32 = 0;
  for (let i = w(bucketOf(local, localPort, remote, remotePort)); i != 0 && i <= capacity && steps <= capacity; steps++) {
    const r = base + (i - 1) * TCB_WORDS;
    if (holds(r, local, ports, remote)) {
      setF(F_LAST_FOUND, i);
      return <i32>(i - 1);
    }
    i = w(r + T_HASH_NEXT);
  }
  return -1;
}

// ---- byte queues over arena chunks (stack/tcp/buffers.ts ChunkQueue) --------

function linkAt(chunk: u32): u32 {
  return ENTRIES_BASE + ((chunk - load<u32>(ARENA_META_BASE + ARENA_H_BASE * 4)) >>> CHUNK_SHIFT) * 8 + 4;
}
function chunkOf(off: u32): u32 {
  return off - ((off - load<u32>(ARENA_META_BASE + ARENA_H_BASE * 4)) & (CHUNK_SIZE - 1));
}
function spareChunks(): i64 {
  return <i64>load<u32>(ARENA_META_BASE + ARENA_H_COUNT * 4) - <i64>load<u32>(ARENA_META_BASE + ARENA_H_IN_USE * 4);
}

/** Room left in the queue's last chunk (0 when empty). */
function tailRoom(q: u32): u32 {
  const len = w(q + Q_LEN);
  if (len == 0) return 0;
  const head = w(q + Q_HEAD);
  const end = (head - chunkOf(head)) + len;
  const inLast = end & (CHUNK_SIZE - 1);
  return inLast == 0 ? 0 : CHUNK_SIZE - inLast;
}

/** Chunks an append of n bytes takes from the arena. */
function chunksFor(q: u32, n: u32): u32 {
  const room = tailRoom(q);
  return n <= room ? 0 : (n - room + CHUNK_SIZE - 1) >>> CHUNK_SHIFT;
}

/** Append n bytes from src to a queue without a cursor (the receive queue;
 *  the caller made sure the arena has the chunks). */
function append(q: u32, owner: u32, src: u32, n: u32): void {
  let done: u32 = 0;
  while (done < n) {
    const len = w(q + Q_LEN);
    let at: u32 = 0;
    const room = tailRoom(q);
    if (len > 0 && room > 0) {
      at = w(q + Q_TAIL) + CHUNK_SIZE - room;
    } else {
      const chunk = arenaAlloc(owner);
      if (chunk == 0) return;
      store<u32>(linkAt(chunk), 0);
      if (len == 0) setW(q + Q_HEAD, chunk);
      else store<u32>(linkAt(w(q + Q_TAIL)), chunk);
      setW(q + Q_TAIL, chunk);
      at = chunk;
    }
    const k = min(CHUNK_SIZE - ((at - load<u32>(ARENA_META_BASE + ARENA_H_BASE * 4)) & (CHUNK_SIZE - 1)), n - done);
    memory.copy(at, src + done, k);
    setW(q + Q_LEN, w(q + Q_LEN) + k);
    done += k;
  }
}

/** Drop n bytes from the head of a queue with a cursor; emptied chunks go back. */
function consume(q: u32, n: u32): void {
  const k = min(n, w(q + Q_LEN));
  if (k == 0) return;
  const len = w(q + Q_LEN) - k;
  if (len == 0) {
    for (let chunk = chunkOf(w(q + Q_HEAD)); chunk != 0; ) {
      const next = load<u32>(linkAt(chunk));
      arenaFree(chunk);
      chunk = next;
    }
    setW(q + Q_HEAD, 0);
    setW(q + Q_TAIL, 0);
    setW(q + Q_LEN, 0);
    setW(q + Q_CUR_POS, 0);
    setW(q + Q_CUR_CHUNK, 0);
    return;
  }
  const head = w(q + Q_HEAD);
  let chunk = chunkOf(head);
  let inChunk = head - chunk + k;
  let freed: u32 = 0;
  while (inChunk >= CHUNK_SIZE) {
    const next = load<u32>(linkAt(chunk));
    arenaFree(chunk);
    chunk = next;
    inChunk -= CHUNK_SIZE;
    freed++;
  }
  setW(q + Q_HEAD, chunk + inChunk);
  setW(q + Q_LEN, len);
  if (freed > 0) {
    const pos = <i64>w(q + Q_CUR_POS) - <i64>freed * CHUNK_SIZE;
    if (pos < 0) {
      setW(q + Q_CUR_POS, 0);
      setW(q + Q_CUR_CHUNK, chunk);
    } else {
      setW(q + Q_CUR_POS, <u32>pos);
    }
  }
}

/** Copy n bytes from position pos of a queue with a cursor to dst, moving the cursor. */
function copyOut(q: u32, pos: u32, n: u32, dst: u32): void {
  const head = w(q + Q_HEAD);
  let logical = head - chunkOf(head) + pos;
  let done: u32 = 0;
  while (done < n) {
    let chunk = chunkOf(w(q + Q_HEAD));
    let start: u32 = 0;
    if (w(q + Q_CUR_POS) <= logical) {
      chunk = w(q + Q_CUR_CHUNK);
      start = w(q + Q_CUR_POS);
    }
    while (logical - start >= CHUNK_SIZE) {
      chunk = load<u32>(linkAt(chunk));
      start += CHUNK_SIZE;
    }
    setW(q + Q_CUR_POS, start);
    setW(q + Q_CUR_CHUNK, chunk);
    const inChunk = logical & (CHUNK_SIZE - 1);
    const k = min(CHUNK_SIZE - inChunk, n - done);
    memory.copy(dst + done, chunk + inChunk, k);
    done += k;
    logical += k;
  }
}

// ---- receive ------------------------------------------------------------------

/**
 * Decode the frame at [off, off+len) and, when it is an in-order segment or
 * pure ACK of an ESTABLISHED connection that needs nothing else, process it
 * whole: RFC 9293 3.10.7.4's checks, SND.UNA and the send window, the RTT
 * sample (RFC 6298), congestion window growth (RFC 5681), the payload into
 * the receive queue, and the ACK decision. Returns Slow.FAST | FA bits, or
 * the Slow reason it was not taken (nothing but the decoded record changed).
 * `now` is the stack's clock, ms.
 */
export function tcpInput(off: u32, len: u32, now: f64): u32 {
  if (decode(off, len) != R_OK || dw(D_KIND) != KIND_TCP) return SLOW_NOT_TCP;
  if (fw(F_ENABLED) == 0) return SLOW_DISABLED;
  const local = dw(D_IP_DST);
  if (fw(F_LOCAL_ADDR) != 0 && local != fw(F_LOCAL_ADDR)) return SLOW_NOT_LOCAL;
  const found = find(local, dw(D_DPORT), dw(D_IP_SRC), dw(D_SPORT));
  if (found < 0) return SLOW_NO_CONNECTION;
  const index = <u32>found;
  setF(F_INDEX, index);
  const r = fw(F_TABLE_BASE) + index * TCB_WORDS;
  const verdict = predict(r);
  if (verdict != SLOW_FAST) return verdict;
  return apply(r, index, now);
}

/** Header prediction: SLOW_FAST when the segment needs nothing but apply(). */
function predict(r: u32): u32 {
  const payload = dw(D_PAYLOAD_LEN);
  if (!stateTakes(w(r + T_STATE), payload)) return SLOW_STATE;
  if (dw(D_TCP_FLAGS) & ~(TCP_ACK | TCP_PSH) || !(dw(D_TCP_FLAGS) & TCP_ACK)) return SLOW_FLAGS;
  const tf = w(r + T_FLAGS);
  if (tf & TF_IN_INPUT) return SLOW_BUSY;
  if ((tf & TF_READ_CLOSED) && payload != 0) return SLOW_CLOSING;
  if (tf & TF_IN_RECOVERY) return SLOW_RECOVERY;
  const ooo = w(r + T_OOO);
  if (ooo != 0 && (w((ooo >>> 2) + X_RANGES) != 0 || w((ooo >>> 2) + X_SACK_COUNT) != 0)) return SLOW_RECOVERY;
  if (tf & TF_TIMESTAMPS) return SLOW_OPTIONS;
  const rcvNxt = w(r + T_RCV_NXT);
  if (dw(D_TCP_SEQ) != rcvNxt) return SLOW_SEQUENCE;
  const rcvWnd = max<i32>(0, <i32>(w(r + T_RCV_ADV_RIGHT) - rcvNxt));
  if (<i64>payload > <i64>rcvWnd) return SLOW_SEQUENCE;
  const ack = dw(D_TCP_ACK);
  const sndUna = w(r + T_SND_UNA);
  if (seqLt(ack, sndUna) || seqGt(ack, w(r + T_SND_MAX))) return SLOW_ACK;
  if (ack == sndUna && payload == 0) return SLOW_ACK;
  // An ACK of our FIN changes the state: input.ts closingAckChecks.
  if ((tf & TF_FIN_QUEUED) && seqGt(ack, sndUna + w(r + T_SEND_HEAD + Q_LEN))) return SLOW_CLOSING;
  if (payload > 0 && <i64>chunksFor(r + T_RECV_HEAD, payload) > spareChunks()) return SLOW_MEMORY;
  return SLOW_FAST;
}

/** ESTABLISHED takes data and ACKs; the states after a FIN (ours queued or
 *  theirs received) take pure ACKs, whose handling there is the same. */
function stateTakes(state: u32, payload: u32): bool {
  if (state == STATE_ESTABLISHED) return true;
  return payload == 0 && (state == STATE_CLOSE_WAIT || state == STATE_FIN_WAIT1 || state == STATE_CLOSING || state == STATE_LAST_ACK);
}

/** The predicted segment's effects, in RFC 9293 3.10.7.4's order. */
function apply(r: u32, index: u32, now: f64): u32 {
  let result: u32 = SLOW_FAST;
  // Heard from the peer: keepalive and persist probes are answered.
  store<f64>((r + T_LAST_HEARD) << 2, now);
  setW(r + T_PROBES, w(r + T_PROBES) & ~0xff00ff);
  const ack = dw(D_TCP_ACK);
  const seq = dw(D_TCP_SEQ);
  const wnd = windowScaled(dw(D_TCP_WINDOW), w(r + T_SHIFTS) & 0xff);
  const sndUna = w(r + T_SND_UNA);
  setF(F_ACKED, 0);
  if (seqGt(ack, sndUna)) result |= newAck(r, index, ack, ack - sndUna, now);
  // Window update: only from a segment not older than the last one used.
  const wl1 = w(r + T_SND_WL1);
  if (seqLt(wl1, seq) || (wl1 == seq && seqLe(w(r + T_SND_WL2), ack))) {
    setW(r + T_SND_WND, wnd);
    setW(r + T_SND_WL1, seq);
    setW(r + T_SND_WL2, ack);
    if (wnd > w(r + T_MAX_SND_WND)) setW(r + T_MAX_SND_WND, wnd);
  }
  const payload = dw(D_PAYLOAD_LEN);
  setF(F_TAKEN, payload);
  if (payload > 0) result |= receive(r, index, payload);
  // The scoreboard is empty (predict): JS records the blocks as input.ts would.
  if (dw(D_OPT_SACK_COUNT) != 0 && (w(r + T_FLAGS) & TF_SACK_OK)) result |= FA_SACK;
  return result;
}

/** SND.UNA < SEG.ACK <= SND.MAX outside recovery (input.ts newAck). */
function newAck(r: u32, index: u32, ack: u32, acked: u32, now: f64): u32 {
  setF(F_ACKED, acked);
  consume(r + T_SEND_HEAD, acked);
  setW(r + T_SND_UNA, ack);
  if (seqGt(ack, w(r + T_SND_NXT))) setW(r + T_SND_NXT, ack);
  const tf = w(r + T_FLAGS);
  if ((tf & TF_RTT_TIMING) && !seqLt(ack, w(r + T_RTT_SEQ))) {
    setW(r + T_FLAGS, tf & ~TF_RTT_TIMING);
    const elapsed16 = <u64>(<u32>(<u64>floor(now * 16)) - w(r + T_RTT_START));
    const sample = <u32>max<u64>(1, (elapsed16 + 8) >> 4);
    const srtt8 = w(r + T_SRTT8);
    const rttvar4 = w(r + T_RTTVAR4);
    const newSrtt8 = rttSrtt8(srtt8, rttvar4, sample);
    const newRttvar4 = rttRttvar4(srtt8, rttvar4, sample);
    setW(r + T_SRTT8, newSrtt8);
    setW(r + T_RTTVAR4, newRttvar4);
    setW(r + T_RTO, rto(newSrtt8, newRttvar4, GRANULARITY, fw(F_MIN_RTO), fw(F_MAX_RTO)));
  }
  setW(r + T_RETRIES, 0);
  setW(r + T_DUP_ACKS, 0);
  // RFC 5681 3.1: slow start (byte counting, L = 1 SMSS) or congestion avoidance.
  const mss = w(r + T_MSS) >>> 16;
  const cwnd = w(r + T_CWND);
  if (cwnd < w(r + T_SSTHRESH)) setW(r + T_CWND, cwnd + min(acked, mss));
  else setW(r + T_CWND, cwnd + max<u32>(1, cwnd == 0 ? 0 : (mss * mss) / cwnd));
  setW(r + T_EVENTS, w(r + T_EVENTS) | TE_WRITABLE);
  let result = FA_ACKED;
  if (seqGt(w(r + T_SND_MAX), ack)) result |= FA_RESTART_RTO;
  return result;
}

/** In-order payload into the receive queue, and the delayed-ACK decision (RFC 5681 4.2). */
function receive(r: u32, index: u32, payload: u32): u32 {
  append(r + T_RECV_HEAD, OWNER_TCP_RECV | (index + 1), dw(D_PAYLOAD_OFF), payload);
  setW(r + T_RCV_NXT, w(r + T_RCV_NXT) + payload);
  setW(r + T_EVENTS, w(r + T_EVENTS) | TE_DATA);
  const unacked = w(r + T_UNACKED_BYTES) + payload;
  setW(r + T_UNACKED_BYTES, unacked);
  const tf = w(r + T_FLAGS);
  if (unacked >= 2 * (w(r + T_MSS) & 0xffff)) {
    setW(r + T_FLAGS, tf | TF_ACK_NOW);
  } else if (!(tf & TF_ACK_NOW) && w(r + T_TIMERS + DELAYED_ACK_TIMER_SLOT) == 0) {
    return FA_DATA | FA_ARM_DELACK;
  }
  return FA_DATA;
}

// ---- transmit -----------------------------------------------------------------

/** The window to advertise (stack/tcp/output.ts receiveWindow). */
function receiveWindow(r: u32): i64 {
  const rcvNxt = w(r + T_RCV_NXT);
  const current = max<i64>(0, <i64><i32>(w(r + T_RCV_ADV_RIGHT) - rcvNxt));
  const rcvBuf = <i64>fw(F_RCV_BUF);
  const readClosed = (w(r + T_FLAGS) & TF_READ_CLOSED) != 0;
  let space = readClosed ? rcvBuf : rcvBuf - <i64>w(r + T_RECV_HEAD + Q_LEN);
  if (!readClosed) {
    const canHold = <i64>tailRoom(r + T_RECV_HEAD) + (spareChunks() - <i64>fw(F_ARENA_RESERVE)) * CHUNK_SIZE;
    if (canHold < space) space = max<i64>(0, canHold);
  }
  const threshold = min<i64>(rcvBuf >> 1, <i64>(w(r + T_MSS) & 0xffff));
  return space - current >= threshold ? space : current;
}

/** The window field of a segment; records the right edge it promises (output.ts windowField). */
function windowField(r: u32): u32 {
  const shift = (w(r + T_SHIFTS) >>> 8) & 0xff;
  const rcvNxt = w(r + T_RCV_NXT);
  const advRight = w(r + T_RCV_ADV_RIGHT);
  let raw = windowRaw(<u32>receiveWindow(r), shift);
  let right = rcvNxt + windowScaled(raw, shift);
  if (seqLt(right, advRight) && raw < 65535) {
    raw++;
    right = rcvNxt + windowScaled(raw, shift);
  }
  if (seqGt(right, advRight)) setW(r + T_RCV_ADV_RIGHT, right);
  return raw;
}

/**
 * Build up to `max` (at most BURST_MAX) data segments of record `index` that
 * the windows, Nagle and SWS avoidance allow now, exactly as output.ts
 * sendData would, each into a TX chunk of its own: headers from the record
 * and the encode request's link and IPv4 words (the stack's route), E.IP_ID
 * moving on by one per frame, every checksum filled. Moves SND.NXT/SND.MAX,
 * starts RTT timing (Karn: new data only) and clears the pending ACK; when
 * nothing more may go and TF.ACK_NOW is still set, adds the pure ACK. Returns
 * the frames built (F.BURST_SLOTS/LENS); F.BURST_STOP says why it stopped.
 */
export function tcpSendBurst(index: u32, max: u32, now: f64): u32 {
  setF(F_BURST_BYTES, 0);
  setF(F_BURST_RETX, 0);
  if (fw(F_ENABLED) == 0 || index >= fw(F_CAPACITY)) {
    setF(F_BURST_STOP, BURST_SLOW);
    return 0;
  }
  const r = fw(F_TABLE_BASE) + index * TCB_WORDS;
  const limit = min(max, BURST_MAX);
  let n: u32 = 0;
  let stop = BURST_DONE;
  for (;;) {
    if (n >= limit) {
      stop = BURST_LIMIT;
      break;
    }
    const state = w(r + T_STATE);
    const tf = w(r + T_FLAGS);
    const ooo = w(r + T_OOO);
    if ((state != STATE_ESTABLISHED && state != STATE_CLOSE_WAIT) || (tf & TF_FIN_QUEUED) ||
        ((tf & TF_SACK_OK) && ooo != 0 && w((ooo >>> 2) + X_RANGES) != 0)) {
      stop = BURST_SLOW;
      break;
    }
    const len = nextSegment(r, tf);
    if (len < 0) break;
    const slot = arenaAlloc(OWNER_TX);
    if (slot == 0) {
      stop = BURST_NO_SLOT;
      break;
    }
    setF(F_BURST_SLOTS + n, slot);
    setF(F_BURST_LENS + n, buildSegment(r, slot, <u32>len, now));
    n++;
  }
  // Nothing more may go and an ACK is due: the pure ACK output.ts would send next.
  if (stop == BURST_DONE && (w(r + T_FLAGS) & TF_ACK_NOW)) {
    const slot = arenaAlloc(OWNER_TX);
    if (slot == 0) {
      stop = BURST_NO_SLOT;
    } else {
      setF(F_BURST_SLOTS + n, slot);
      setF(F_BURST_LENS + n, buildAck(r, slot));
      n++;
    }
  }
  setF(F_BURST_STOP, stop);
  return n;
}

/** The length of the next segment output.ts sendData would send, -1 for none. */
function nextSegment(r: u32, tf: u32): i32 {
  const sndUna = w(r + T_SND_UNA);
  const inFlight = <i32>(w(r + T_SND_NXT) - sndUna);
  const avail = <i32>w(r + T_SEND_HEAD + Q_LEN) - inFlight;
  if (avail <= 0) return -1;
  const mss = <i32>(w(r + T_MSS) >>> 16);
  const limited = (tf & TF_IN_RECOVERY) ? 0 : min<i64>(<i64>w(r + T_DUP_ACKS), 2) * <i64>mss;
  const usable = min<i64>(<i64>w(r + T_SND_WND), <i64>w(r + T_CWND) + limited) - <i64>inFlight;
  const len = <i32>max<i64>(0, min<i64>(min<i64>(<i64>avail, <i64>mss), usable));
  if (len == 0) return -1;
  // Nagle and sender-side SWS avoidance (output.ts worthSending, no FIN here).
  if (len >= mss) return len;
  if (len == avail && ((tf & TF_NO_DELAY) || inFlight == 0)) return len;
  const maxSndWnd = w(r + T_MAX_SND_WND);
  if (maxSndWnd > 0 && <u32>len >= maxSndWnd >>> 1 && inFlight == 0) return len;
  return -1;
}

/** The TCP words of a segment <SEQ=seq><ACK=RCV.NXT><CTL=flags> without options,
 *  then the frame encoded in slot (payload already in place): output.ts transmit. */
function encodeSegment(r: u32, slot: u32, seq: u32, flags: u32, len: u32): u32 {
  const ports = w(r + T_PORTS);
  setE(E_SPORT, ports >>> 16);
  setE(E_DPORT, ports & 0xffff);
  setE(E_TCP_SEQ, seq);
  setE(E_TCP_FLAGS, flags);
  setE(E_TCP_URG, 0);
  setE(E_TCP_ACK, w(r + T_RCV_NXT));
  setE(E_TCP_WINDOW, windowField(r));
  setE(E_OPT_MSS, 0);
  setE(E_OPT_WSCALE, 0xff);
  setE(E_OPT_SACK_OK, 0);
  setE(E_OPT_TS, 0);
  setE(E_OPT_SACK_COUNT, 0);
  const frameLen = encodeTcp(slot, len);
  setE(E_IP_ID, (load<u32>(ENCODE_BASE + (E_IP_ID << 2)) + 1) & 0xffff);
  // Any segment carrying RCV.NXT acknowledges everything received.
  setW(r + T_UNACKED_BYTES, 0);
  setW(r + T_FLAGS, w(r + T_FLAGS) & ~TF_ACK_NOW);
  return frameLen;
}

/** One data segment of len bytes at SND.NXT into slot; returns the frame length. */
function buildSegment(r: u32, slot: u32, len: u32, now: f64): u32 {
  const seq = w(r + T_SND_NXT);
  const pos = seq - w(r + T_SND_UNA);
  const avail = w(r + T_SEND_HEAD + Q_LEN) - pos;
  copyOut(r + T_SEND_HEAD, pos, len, slot + ETH_HLEN + IPV4_HLEN + TCP_BASE_HLEN);
  const frameLen = encodeSegment(r, slot, seq, len == avail ? TCP_ACK | TCP_PSH : TCP_ACK, len);
  setF(F_BURST_BYTES, fw(F_BURST_BYTES) + len);
  const end = seq + len;
  const sndMax = w(r + T_SND_MAX);
  if (seqGe(seq, sndMax)) {
    const tf = w(r + T_FLAGS);
    if (!(tf & TF_RTT_TIMING)) {
      setW(r + T_FLAGS, tf | TF_RTT_TIMING);
      setW(r + T_RTT_SEQ, end);
      setW(r + T_RTT_START, <u32>(<u64>floor(now * 16)));
    }
  } else {
    setF(F_BURST_RETX, fw(F_BURST_RETX) + 1);
  }
  setW(r + T_SND_NXT, end);
  if (seqGt(end, sndMax)) setW(r + T_SND_MAX, end);
  return frameLen;
}

/** A pure ACK <SEQ=SND.MAX> (output.ts sendAck says why SND.MAX) into slot. */
function buildAck(r: u32, slot: u32): u32 {
  return encodeSegment(r, slot, w(r + T_SND_MAX), TCP_ACK, 0);
}
