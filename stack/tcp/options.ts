// Tunables of one TCP instance and the per-segment option record.
//
// Every number a deployment may want to change lives here, with the default
// and the reason for it. Memory-related defaults are modest on purpose: the
// relay runs 512 connections in a 40 MB guest (docs/architecture.md section 4).

/** Largest maxTimeWait: the TIME_WAIT table is allocated whole, so this bounds it (~54 MiB). */
export const MAX_TIME_WAIT_RECORDS = 1 << 20;

export interface TcpOptions {
  /** Send buffer per connection, bytes (application data not yet acknowledged). */
  sndBuf: number;
  /** Receive buffer per connection, bytes: the most we ever advertise. */
  rcvBuf: number;
  /** Upper bound on live control blocks (TIME_WAIT records are counted apart). */
  maxConnections: number;
  /** Default listen backlog (SYN_RECEIVED + accepted-not-yet-taken). */
  defaultBacklog: number;
  /** SYN cookies (RFC 4987, syn-cookies.ts) when a listener's backlog is full:
   *  a SYN flood then costs no state. Such connections have no window scaling
   *  and no SACK. Off: SYNs beyond the backlog are dropped. */
  synCookies: boolean;
  /** Out-of-order ranges kept per connection (RFC 9293 3.10.7.4 allows dropping
   *  them): bounds the CPU an insertion costs; their bytes are packed into
   *  shared chunks, at most the receive window's worth (buffers.ts Reassembly). */
  maxReassemblySegments: number;

  // ---- RFC 6298 retransmission timer ------------------------------------
  /** Initial RTO before any RTT sample, ms (RFC 6298 2.1: 1 s). */
  initialRto: number;
  /** Lower bound of the RTO, ms (RFC 6298 2.4 says 1 s; 200 ms is common practice). */
  minRto: number;
  /** Upper bound of the RTO, ms (RFC 6298 2.5: at least 60 s). */
  maxRto: number;
  /** Retransmissions of data or FIN before giving up (RFC 9293 3.8.3, R2). */
  maxRetries: number;
  /** Retransmissions of SYN or SYN-ACK before giving up. */
  synRetries: number;

  // ---- Acknowledgements and sending ----------------------------------------
  /** Delayed-ACK timeout, ms (RFC 9293 3.8.6.3: under 0.5 s). The default, 40,
   *  is Linux's minimum ACK delay: well under minRto, so a lone segment's ACK
   *  is never held as long as the sender's retransmission timer. */
  delayedAckMs: number;
  /** Disable Nagle's algorithm on new connections (RFC 9293 3.7.4). */
  noDelay: boolean;
  /** Ceiling of the persist (zero-window probe) interval, ms. */
  maxPersist: number;

  // ---- Closing ---------------------------------------------------------------
  /** FIN_WAIT_2 timeout, ms, counted from when the application closed (close(),
   *  not end()) in FIN_WAIT_2, whatever the peer sends meanwhile (Linux's
   *  tcp_fin_timeout): no peer, silent or chatty, can pin a connection nobody
   *  reads any more. */
  finWait2Timeout: number;
  /** Maximum segment lifetime, ms; TIME_WAIT lasts 2 * msl (RFC 9293 3.4.2). */
  msl: number;
  /** Size of the compact TIME_WAIT table (allocated whole, ~54 B a record); the oldest record is recycled when full. */
  maxTimeWait: number;

  // ---- Keepalive (RFC 9293 3.8.4: off by default) -------------------------
  keepalive: boolean;
  keepaliveIdle: number;
  keepaliveInterval: number;
  keepaliveCount: number;

  // ---- Ports and defences --------------------------------------------------
  /** Ephemeral port range, inclusive (RFC 6335: 49152-65535). */
  ephemeralLow: number;
  ephemeralHigh: number;
  /** Challenge ACKs allowed per second for the whole stack (RFC 5961 section 7). */
  challengeAckLimit: number;
  /** Arena chunks held back for frames: below this many free chunks, new SYNs
   *  are dropped and receive windows stop growing. */
  arenaReserve: number;

  // ---- Extensions ------------------------------------------------------------
  /** RFC 7323 window scaling: offered in every SYN and used when the peer
   *  offers it too, so windows (ours up to rcvBuf, the peer's up to 1 GiB) are
   *  not held below 64 KiB. Off: rcvBuf is clamped to 65535. */
  windowScaling: boolean;
  /** RFC 7323 timestamps (parsed by the decoder; not negotiated yet). */
  timestamps: boolean;
  /** RFC 2018 SACK: SACK-permitted offered in every SYN; when both SYNs
   *  carry it, our ACKs report the out-of-order blocks we hold, and our fast
   *  recovery resends the holes the peer's blocks show first (stack/tcp/README.md). */
  sack: boolean;
  /** The engine's fast path: an ESTABLISHED connection's in-order segments
   *  and new ACKs are processed in one engine call, and its data segments
   *  built in bursts (stack/hotpath/engine.ts). Off: every segment takes the
   *  TypeScript path (the same rules; for comparison and tests). */
  fastPath: boolean;
}

export const DEFAULT_TCP_OPTIONS: Readonly<TcpOptions> = Object.freeze({
  sndBuf: 64 * 1024,
  rcvBuf: 64 * 1024,
  maxConnections: 4096,
  defaultBacklog: 128,
  synCookies: true,
  maxReassemblySegments: 32,
  initialRto: 1000,
  minRto: 200,
  maxRto: 60_000,
  maxRetries: 8,
  synRetries: 5,
  delayedAckMs: 40,
  noDelay: false,
  maxPersist: 60_000,
  finWait2Timeout: 60_000,
  msl: 30_000,
  maxTimeWait: 4096,
  keepalive: false,
  keepaliveIdle: 7_200_000,
  keepaliveInterval: 75_000,
  keepaliveCount: 9,
  ephemeralLow: 49152,
  ephemeralHigh: 65535,
  challengeAckLimit: 10,
  arenaReserve: 32,
  windowScaling: true,
  timestamps: false,
  sack: true,
  fastPath: true,
});

/** Control blocks a stack holds unless told (maxConnections): what an eighth
 *  of its arena takes (256-byte records), from 64 up to DEFAULT_TCP_OPTIONS'. */
export function defaultMaxConnections(arenaBytes: number): number {
  return Math.max(64, Math.min(DEFAULT_TCP_OPTIONS.maxConnections, Math.floor(arenaBytes / 8 / 256)));
}

/** Merge user options over the defaults and check they make sense. With
 *  `arenaBytes`, maxConnections defaults to what that arena affords. */
export function resolveOptions(partial: Partial<TcpOptions> | undefined, arenaBytes?: number): TcpOptions {
  const o: TcpOptions = { ...DEFAULT_TCP_OPTIONS, ...(partial ?? {}) };
  if (partial?.maxConnections === undefined && arenaBytes !== undefined) o.maxConnections = defaultMaxConnections(arenaBytes);
  const positive: (keyof TcpOptions)[] = [
    'sndBuf', 'rcvBuf', 'maxConnections', 'initialRto', 'minRto', 'maxRto',
    'delayedAckMs', 'maxPersist', 'finWait2Timeout', 'msl', 'maxTimeWait',
    'keepaliveIdle', 'keepaliveInterval', 'keepaliveCount',
  ];
  for (const key of positive) {
    const v = o[key] as number;
    if (!(typeof v === 'number' && v > 0 && Number.isFinite(v))) {
      throw new RangeError(`tcp option ${key} must be a positive number, got ${String(v)}`);
    }
  }
  if (o.minRto > o.maxRto) throw new RangeError('tcp option minRto exceeds maxRto');
  if (!Number.isInteger(o.maxTimeWait) || o.maxTimeWait > MAX_TIME_WAIT_RECORDS) {
    throw new RangeError(`tcp option maxTimeWait must be a whole number up to ${MAX_TIME_WAIT_RECORDS}, got ${o.maxTimeWait}`);
  }
  if (o.ephemeralLow < 1 || o.ephemeralHigh > 65535 || o.ephemeralLow > o.ephemeralHigh) {
    throw new RangeError(`tcp ephemeral port range ${o.ephemeralLow}-${o.ephemeralHigh} is invalid`);
  }
  // The advertised window field is 16 bits until window scaling is negotiated.
  if (o.rcvBuf > 65535 && !o.windowScaling) o.rcvBuf = 65535;
  if (o.rcvBuf > MAX_RCV_BUF) {
    throw new RangeError(`tcp option rcvBuf must be at most ${MAX_RCV_BUF} (65535 << 14, RFC 7323), got ${o.rcvBuf}`);
  }
  return o;
}

/** The largest window RFC 7323 can express: 65535 with the largest shift, 14. */
export const MAX_RCV_BUF = 65535 * 2 ** 14;

/** No window-scale option: sent as 0xff in the encode request, read as 0xff from the decoder. */
export const NO_WSCALE = 0xff;

/** The shift to offer for a receive buffer: the smallest that fits it in the 16-bit field. */
export function windowShiftFor(rcvBuf: number): number {
  let shift = 0;
  while (shift < 14 && rcvBuf / 2 ** shift > 65535) shift++;
  return shift;
}

/**
 * TCP options carried by one segment (RFC 9293 3.1, RFC 7323, RFC 2018), as the
 * decoder reports them. MSS and window scale are acted upon; timestamps and
 * SACK have their place so that they can be added without reshaping the
 * input path.
 */
export interface SegmentOptions {
  /** MSS option value, 0 when absent. */
  mss: number;
  /** Window-scale shift as sent, 0xff when absent. */
  wscale: number;
  sackOk: boolean;
  ts: boolean;
  tsVal: number;
  tsEcr: number;
}
