// The byte layout shared by both hot-path engines and the stack, and its one
// source: the AssemblyScript engine reads it as assembly/layout.generated.ts,
// which scripts/gen-assembly-layout.mjs writes from this file before every
// Wasm build. Numeric constants and const enums with literal values only.
//
// Both engines work over one linear memory (the guest arena):
//
//   [0, SCRATCH_BASE)                     engine-private (Wasm static data)
//   [SCRATCH_BASE, ARENA_META_BASE)       fixed records: decoded frame, encode request
//   [ARENA_META_BASE, arenaChunksBase)    arena metadata: one 8-byte entry per chunk
//   [arenaChunksBase, memory end)         CHUNK_SIZE-byte chunks (frames, buffers)
//
// The stack reads a decoded frame and writes an encode request as arrays of
// u32 words at fixed word indexes, so that the per-packet exchange between the
// TypeScript stack and the engine is a handful of typed-array loads and stores.
// All words are little-endian u32 (the Wasm and x86/arm64 native order).
// Multi-byte network values (addresses, ports, sequence numbers) are stored as
// plain numbers already converted from network byte order.

/** Chunk size of the arena: one Ethernet frame slot (1514 bytes) fits, with room. */
export const CHUNK_SIZE = 2048;

/** Start of the fixed records. Wasm static data must end below this. */
export const SCRATCH_BASE = 16384;
/** Decoded-frame record: DECODED_WORDS u32 words. */
export const DECODED_BASE = SCRATCH_BASE;
export const DECODED_WORDS = 64;
/** Encode request record: ENCODE_WORDS u32 words. */
export const ENCODE_BASE = DECODED_BASE + DECODED_WORDS * 4;
export const ENCODE_WORDS = 64;
/** The TCP fast path's record (layout F below): FAST_WORDS u32 words. */
export const FAST_BASE = ENCODE_BASE + ENCODE_WORDS * 4;
export const FAST_WORDS = 256;
/** Most segments one tcpSendBurst call builds. */
export const BURST_MAX = 64;
/** Arena metadata starts here (aligned to 64). */
export const ARENA_META_BASE = 32768;
/** Bytes of metadata per chunk: owner tag (u32) and free-list link (u32). */
export const ARENA_META_BYTES_PER_CHUNK = 8;
/** log2(CHUNK_SIZE). */
export const CHUNK_SHIFT = 11;
/** The first chunk starts on this boundary. */
export const CHUNK_ALIGN = 64;
/** The arena's header, at ARENA_META_BASE: word indexes (u32 each). The
 *  per-chunk entries follow the header's ARENA_HEADER_WORDS words. */
export const enum ArenaHeader {
  COUNT = 0, // chunks
  BASE = 1, // byte offset of the first chunk
  HEAD = 2, // free-list head (chunk index + 1, 0 = empty)
  IN_USE = 3,
  BAD_FREES = 4,
  BY_KIND = 8, // 256 words: chunks in use per owner kind
}
export const ARENA_HEADER_WORDS = 8 + 256;

/** Wasm page size. Memories are whole pages, fixed (initial = maximum). */
export const PAGE_SIZE = 65536;

// ---------------------------------------------------------------------------
// Frame kinds written to D.KIND by decode.
export const enum Kind {
  None = 0,
  Arp = 1,
  Ipv4Other = 2, // an IPv4 protocol the stack has no handler for (payload located)
  Icmp = 3,
  Udp = 4,
  Tcp = 5,
  Ipv4Fragment = 6, // a fragment (MF set or offset != 0): L4 not decoded
}

// Ethernet types.
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;

// IP protocol numbers.
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

// TCP flag bits (as in the header's low byte; CWR/ECE included).
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

// ---------------------------------------------------------------------------
// Rejection reasons. decode returns one (0 = accepted) and writes it to D.REASON.
// The stack counts drops by these codes; names are exported for stats().
export const enum Reason {
  Ok = 0,
  FrameTooShort = 1, // shorter than an Ethernet header
  UnknownEthertype = 2, // not IPv4 or ARP (IPv6 included for now)
  ArpTooShort = 3,
  ArpUnsupported = 4, // hardware type != Ethernet, protocol != IPv4, bad lengths
  ArpBadOp = 5, // op not request (1) or reply (2)
  IpTooShort = 6, // fewer than 20 bytes after Ethernet
  IpBadVersion = 7,
  IpBadIhl = 8, // IHL < 5 or header longer than the frame
  IpBadTotalLength = 9, // total length < header or > bytes present
  IpBadChecksum = 10,
  IpBadOptions = 11, // malformed IPv4 option lengths
  IpBadFragment = 12, // fragment fields impossible (offset*8 + len > 65535, DF with MF ...)
  IcmpTooShort = 13,
  IcmpBadChecksum = 14,
  UdpTooShort = 15,
  UdpBadLength = 16, // UDP length < 8 or > IP payload
  UdpBadChecksum = 17,
  TcpTooShort = 18,
  TcpBadDataOffset = 19, // data offset < 5 or header beyond the segment
  TcpBadChecksum = 20,
  TcpBadOption = 21, // malformed option length (0/1 for a length-bearing kind, runs past header, wrong fixed length)
  IpSourceInvalid = 22, // source is multicast/broadcast (0xE0000000.. or 255.255.255.255)
  TcpBadFlags = 23, // SYN+FIN, SYN+RST, or no flags at all
  ReasonCount = 24,
}

export const REASON_NAMES: readonly string[] = [
  'ok',
  'frameTooShort',
  'unknownEthertype',
  'arpTooShort',
  'arpUnsupported',
  'arpBadOp',
  'ipTooShort',
  'ipBadVersion',
  'ipBadIhl',
  'ipBadTotalLength',
  'ipBadChecksum',
  'ipBadOptions',
  'ipBadFragment',
  'icmpTooShort',
  'icmpBadChecksum',
  'udpTooShort',
  'udpBadLength',
  'udpBadChecksum',
  'tcpTooShort',
  'tcpBadDataOffset',
  'tcpBadChecksum',
  'tcpBadOption',
  'ipSourceInvalid',
  'tcpBadFlags',
];

// ---------------------------------------------------------------------------
// Decoded-frame record: word indexes (u32 each) from DECODED_BASE.
// Offsets ("_OFF") are absolute byte offsets in linear memory.
// Fields of layers that were not decoded are left unspecified: read D.KIND first.
export const enum D {
  REASON = 0,
  KIND = 1,
  FRAME_OFF = 2, // the frame's start (Ethernet destination MAC)
  FRAME_LEN = 3,
  ETHERTYPE = 4,
  // ARP (IPv4 over Ethernet). MACs are read from the frame at SHA_OFF / THA_OFF.
  ARP_OP = 5,
  ARP_SHA_OFF = 6,
  ARP_SPA = 7,
  ARP_THA_OFF = 8,
  ARP_TPA = 9,
  // IPv4
  IP_OFF = 10, // start of the IPv4 header
  IP_HLEN = 11, // header length in bytes (IHL * 4)
  IP_TOS = 12,
  IP_TOTAL_LEN = 13,
  IP_ID = 14,
  IP_FRAG = 15, // raw flags+fragment-offset 16-bit field
  IP_TTL = 16,
  IP_PROTO = 17,
  IP_SRC = 18,
  IP_DST = 19,
  L4_OFF = 20, // start of the IP payload (transport header)
  L4_LEN = 21, // IP payload length (total length - header length)
  // ICMP
  ICMP_TYPE = 22,
  ICMP_CODE = 23,
  ICMP_REST = 24, // the 4 "rest of header" bytes as one big-endian u32 (echo: id << 16 | seq)
  // UDP and TCP ports
  SPORT = 25,
  DPORT = 26,
  // TCP
  TCP_SEQ = 27,
  TCP_ACK = 28,
  TCP_HLEN = 29, // header length in bytes (data offset * 4)
  TCP_FLAGS = 30, // low 8 flag bits
  TCP_WINDOW = 31, // raw, unscaled
  TCP_URG = 32,
  OPT_MSS = 33, // 0 when absent
  OPT_WSCALE = 34, // 0xff when absent; otherwise the shift as sent (the stack clamps to 14)
  OPT_SACK_OK = 35, // 1 when SACK-permitted is present
  OPT_TS = 36, // 1 when the timestamps option is present
  OPT_TSVAL = 37,
  OPT_TSECR = 38,
  OPT_SACK_COUNT = 39, // number of SACK blocks (0..4)
  OPT_SACK = 40, // 8 words: left0, right0, left1, right1, ... (absolute sequence numbers)
  // Application payload of ICMP (after 8 bytes), UDP or TCP.
  PAYLOAD_OFF = 48,
  PAYLOAD_LEN = 49,
}

// ---------------------------------------------------------------------------
// Encode request record: word indexes (u32 each) from ENCODE_BASE. The stack fills
// the words, then calls an encode function; the engine writes Ethernet, IPv4 and the
// transport header with every checksum filled in.
// MACs are 6 bytes as two words: HI = first 2 bytes (big-endian), LO = last 4 (big-endian).
export const enum E {
  DST_MAC_HI = 0,
  DST_MAC_LO = 1,
  SRC_MAC_HI = 2,
  SRC_MAC_LO = 3,
  // IPv4
  IP_SRC = 4,
  IP_DST = 5,
  IP_TTL = 6,
  IP_TOS = 7,
  IP_ID = 8,
  IP_FRAG = 9, // raw flags+offset field (0x4000 = DF)
  IP_PROTO = 10, // used by encodeIpv4 only
  // Ports
  SPORT = 11,
  DPORT = 12,
  // TCP
  TCP_SEQ = 13,
  TCP_ACK = 14,
  TCP_FLAGS = 15,
  TCP_WINDOW = 16, // raw (already scaled down by the sender's shift)
  TCP_URG = 17,
  OPT_MSS = 18, // 0 = omit
  OPT_WSCALE = 19, // 0xff = omit
  OPT_SACK_OK = 20, // 1 = include SACK-permitted
  OPT_TS = 21, // 1 = include timestamps
  OPT_TSVAL = 22,
  OPT_TSECR = 23,
  OPT_SACK_COUNT = 24, // 0..4 blocks
  OPT_SACK = 25, // 8 words
  // ICMP
  ICMP_TYPE = 33,
  ICMP_CODE = 34,
  ICMP_REST = 35,
  // ARP
  ARP_OP = 36,
  ARP_SHA_HI = 37,
  ARP_SHA_LO = 38,
  ARP_SPA = 39,
  ARP_THA_HI = 40,
  ARP_THA_LO = 41,
  ARP_TPA = 42,
}

/** Sizes of fixed headers. */
export const ETH_HLEN = 14;
export const IPV4_HLEN = 20; // the encoder never emits IPv4 options
export const UDP_HLEN = 8;
export const ICMP_HLEN = 8;
export const TCP_BASE_HLEN = 20;
export const ARP_FRAME_LEN = 42; // Ethernet + ARP, before padding to 60
export const ARP_PADDED_LEN = 60; // the Ethernet minimum

// ---------------------------------------------------------------------------
// The TCP control block (RFC 9293 3.3.1) as a record in the arena: TCB_WORDS
// u32 words (256 bytes) per connection in the TCB table (stack/tcp/tcb-table.ts),
// read and written by the TypeScript stack through stack/tcp/tcb.ts and, for
// the established-connection fast path, by the engines. Sequence numbers,
// windows and counts are u32; the three times are f64 milliseconds (two words
// each, 8-byte aligned); addresses take 4 words each, room for IPv6. What a
// connection needs only under loss (out-of-order ranges, the SACK scoreboard)
// lives in a chunk of its own, taken on demand (T.OOO, layout X below).
// Word offsets from the record's first word:
export const TCB_WORDS = 64;
/** Words of T.TIMERS: the control block's timer slots. */
export const TCB_TIMER_WORDS = 4;
export const enum T {
  STATE = 0, // State (stack/tcp/state.ts); 0 (CLOSED) in a free record
  GEN = 1, // generation: moves on when the record is freed, so a stale handle is seen
  FLAGS = 2, // TF bits
  EVENTS = 3, // TcbEvent bits pending for the application
  LOCAL_ADDR = 4, // 4 words (an IPv4 address in the first)
  REMOTE_ADDR = 8, // 4 words
  PORTS = 12, // local port << 16 | remote port
  LISTENER = 13, // listener id + 1 while the listener holds it, 0 otherwise
  // Send sequence space
  ISS = 14,
  SND_UNA = 15,
  SND_NXT = 16,
  SND_MAX = 17, // highest sequence number sent + 1
  SND_WND = 18, // the peer's window, scaled
  SND_WL1 = 19,
  SND_WL2 = 20,
  MAX_SND_WND = 21, // RFC 5961 5.2 MAX.SND.WND
  MSS = 22, // our send MSS << 16 | the MSS we announced
  // Receive sequence space
  IRS = 23,
  RCV_NXT = 24,
  RCV_ADV_RIGHT = 25, // right edge of the window last advertised
  SHIFTS = 26, // send shift | receive shift << 8 | window scale offered << 16 (0xff: none)
  // SACK (RFC 2018)
  SACK_LATEST = 27, // first sequence number of the latest out-of-order segment held
  SACK_RETX_HIGH = 28, // end of the highest hole resent in this recovery
  // RFC 6298 retransmission timer
  SRTT8 = 29,
  RTTVAR4 = 30,
  RTO = 31, // ms
  RETRIES = 32,
  RTT_SEQ = 33, // the timed segment ends here (TF.RTT_TIMING)
  // Congestion control (RFC 5681/6582)
  CWND = 34,
  SSTHRESH = 35,
  DUP_ACKS = 36,
  RECOVER = 37,
  // Acknowledgement and probing
  UNACKED_BYTES = 38,
  PROBES = 39, // persist probes | persist backoff << 8 | keepalive probes << 16
  // Send queue (bytes written, not yet acknowledged): a chain of arena chunks
  SEND_HEAD = 40, // arena offset of its first byte (0: empty)
  SEND_TAIL = 41, // its last chunk
  SEND_LEN = 42,
  SEND_CUR_POS = 43, // a cursor for random access: the byte position ...
  SEND_CUR_CHUNK = 44, // ... where this chunk starts
  // Receive queue (in-order bytes for the application)
  RECV_HEAD = 45,
  RECV_TAIL = 46,
  RECV_LEN = 47,
  OOO = 48, // arena chunk of out-of-order ranges and the SACK scoreboard (0: none)
  EMB_PREV = 49, // embryonic connections, oldest first (record index + 1); free records chain through EMB_NEXT
  EMB_NEXT = 50,
  HASH_NEXT = 51, // the 4-tuple hash chain (record index + 1)
  // Timestamps (RFC 7323), not negotiated yet: TS.Recent, its age, our clock offset
  TS_RECENT = 52,
  TS_RECENT_AGE = 53,
  TS_OFFSET = 54,
  APP = 55, // the application's word (a handle listener's per-connection state: Tcp.userData)
  // The connection's timers: heap position + 1 of each slot in the stack's
  // TimerQueue (0: unarmed). Kinds that never run together share a slot
  // (stack/tcp/timer-kinds.ts TCB_TIMER_SLOTS), so no timer memory lies outside the record.
  TIMERS = 56, // TCB_TIMER_WORDS words
  // f64 time, ms (word offset; the f64 view's index is (record word + offset) / 2)
  LAST_HEARD = 60, // the last segment from the peer
  // u32 times: they only ever measure short spans, with wrapping differences
  RTT_START = 62, // when the timed segment left, in 1/16 ms
  LAST_OOW_ACK = 63, // the last answer to an unacceptable pure ACK (RFC 5961 rate limit), ms; TF.OOW_ACKED says there was one
  // CUBIC (W_max, K, epoch) and RACK-TLP state join SACK's in the T.OOO chunk,
  // which a connection takes at its first loss: before one they have no value.
}

/** Connection states of RFC 9293 section 3.3.2 (T.STATE; names in stack/tcp/state.ts). */
export const enum State {
  Closed = 0,
  Listen = 1,
  SynSent = 2,
  SynReceived = 3,
  Established = 4,
  FinWait1 = 5,
  FinWait2 = 6,
  CloseWait = 7,
  Closing = 8,
  LastAck = 9,
  TimeWait = 10,
  Count = 11,
}

/** Words of a byte queue's state (stack/tcp/buffers.ts ChunkQueue), from its
 *  first: a record's T.SEND_HEAD (with the cursor) and T.RECV_HEAD (without). */
export const enum Q {
  HEAD = 0, // arena offset of the first byte (0: empty)
  TAIL = 1, // last chunk
  LEN = 2,
  CUR_POS = 3, // (queues with a cursor) logical position where CUR_CHUNK starts, from the head chunk's start
  CUR_CHUNK = 4,
}

/** The delayed-ACK timer's slot among T.TIMERS (stack/tcp/timer-kinds.ts
 *  TCB_TIMER_SLOTS): the fast path asks whether it is armed. */
export const DELAYED_ACK_TIMER_SLOT = 1;

/** Bits of T.EVENTS: what the last segment or timer did, for the application. */
export const enum TE {
  ESTABLISHED = 1, // the handshake completed
  DATA = 2, // bytes were added to the receive queue
  EOF = 4, // the peer's FIN arrived (after all its data)
  WRITABLE = 8, // send-buffer space was freed
}

/** Bits of the record's T.FLAGS word. */
export const enum TF {
  ACTIVE = 1 << 0, // opened by connect()
  FIN_QUEUED = 1 << 1, // the application will write no more: FIN after the queued data
  FIN_ACKED = 1 << 2,
  FIN_RECEIVED = 1 << 3,
  READ_CLOSED = 1 << 4, // incoming data is acknowledged and discarded
  SACK_OK = 1 << 5,
  SACK_OFFER = 1 << 6, // our SYN offers SACK-permitted
  TIMESTAMPS = 1 << 7,
  IN_RECOVERY = 1 << 8,
  RTT_TIMING = 1 << 9,
  ACK_NOW = 1 << 10,
  NO_DELAY = 1 << 11,
  KEEPALIVE = 1 << 12,
  IN_INPUT = 1 << 13, // a segment for it is being processed
  HAS_CONN = 1 << 14, // the application asked for a Connection object
  EMBRYONIC = 1 << 15, // on the embryonic list
  HANDLES = 1 << 16, // no Connection: events go to its listener's handle callbacks (T.LISTENER)
  EOF_TOLD = 1 << 17, // (handles) onEnd was called
  WANT_WRITABLE = 1 << 18, // (handles) a write took less than offered: onWritable when room frees
  READ_PAUSED = 1 << 19, // (handles) onData consumed less than offered: no delivery until resume()
  OOW_ACKED = 1 << 20, // T.LAST_OOW_ACK holds a time
  // A fast-path segment's reactions wait for the device's batch end (tcp.ts endBatch):
  BATCHED = 1 << 21, // on TCP's list of connections to finish
  BATCH_RTO = 1 << 22, // restart the retransmission timer then
  BATCH_DELACK = 1 << 23, // an ACK may still be owed then: arm the delayed-ACK timer
  FIN_HELD = 1 << 24, // the peer's FIN came out of order, right after held data: X.FIN_SEQ
}

/** Words of a control block's out-of-order chunk (T.OOO): the list of such
 *  connections, the ranges held and the slab their bytes are packed in
 *  (stack/tcp/buffers.ts Reassembly), and the peer's SACK blocks
 *  (stack/tcp/sack-scoreboard.ts). 512 words: one arena chunk. */
export const OOO_MAX_RANGES = 32;
export const OOO_MAX_SLAB = 196;
export const OOO_MAX_SACK = 8;
export const enum X {
  PREV = 0, // connections holding such a chunk (record index + 1): pruned first under pressure
  NEXT = 1,
  RANGES = 2, // ranges held
  BYTES = 3, // bytes held
  TAIL_USED = 4, // bytes used in the slab's last chunk
  SLAB = 5, // slab chunks
  SACK_COUNT = 6, // SACK blocks held
  SACK_EDGES = 7, // 2 * OOO_MAX_SACK words: left, right, ...
  RANGE_SEQ = 23, // OOO_MAX_RANGES words each: first sequence number, ...
  RANGE_LEN = 55, // ... length ...
  RANGE_OFF = 87, // ... and arena offset of the range's bytes
  SLAB_CHUNK = 119, // OOO_MAX_SLAB words each: the chunk, ...
  SLAB_LIVE = 315, // ... and the bytes of live ranges in it
  FIN_SEQ = 511, // the peer's FIN that came after held data (while TF.FIN_HELD)
  END = 512,
}

// ---------------------------------------------------------------------------
// The TCP fast path (stack/hotpath/engine.ts tcpInput, tcpSendBurst): its
// record at FAST_BASE, word indexes (u32 each). The stack writes the
// configuration when its TCP layer claims the engine; the engine writes the
// results of each call.
export const enum F {
  ENABLED = 0, // 1: tcpInput may take segments (0 before TCP claims the engine, and after shutdown)
  LOCAL_ADDR = 1, // the interface's address: segments to any other go the slow way; 0: any (a transparent proxy's stack: the 4-tuple lookup decides)
  TABLE_BASE = 2, // word index of control block 0
  CAPACITY = 3, // control blocks in the table
  BUCKET_BASE = 4, // word index of the 4-tuple hash's bucket 0
  BUCKET_MASK = 5, // buckets - 1 (a power of two less one)
  SECRET = 6, // 4 words: the hash's key
  LAST_FOUND = 10, // the record found last, index + 1 (0: none): tried before the hash
  RCV_BUF = 11, // receive buffer, bytes
  MIN_RTO = 12, // ms
  MAX_RTO = 13, // ms
  ARENA_RESERVE = 14, // chunks the receive window never offers
  // Results of tcpInput
  INDEX = 16, // the control block the segment was for (set from the lookup on)
  TAKEN = 17, // payload bytes appended to its receive queue
  ACKED = 18, // bytes of ours newly acknowledged
  // Results of tcpSendBurst
  BURST_BYTES = 20, // payload bytes in the frames built
  BURST_RETX = 21, // segments among them that resend data
  BURST_STOP = 22, // why it stopped: a Burst value
  BURST_SLOTS = 64, // BURST_MAX words: the TX slot of each frame built, ...
  BURST_LENS = 128, // ... and its length (Ethernet included)
}

/** tcpInput's answer, low byte: FAST (0), the segment was processed whole;
 *  otherwise why it goes the slow way (the decoded record is filled, and
 *  nothing else was changed). stats() counts them under these names. */
export const enum Slow {
  FAST = 0,
  NOT_TCP = 1, // not a valid TCP segment (another protocol, or decode rejected it): not a TCP slow path
  DISABLED = 2, // no TCP layer has claimed the engine
  NOT_LOCAL = 3, // to another address than the interface's (a broadcast, another host's)
  NO_CONNECTION = 4, // no control block: a listener's, TIME_WAIT's or a closed port's
  STATE = 5, // not ESTABLISHED (after a FIN, only pure ACKs are taken: CLOSE_WAIT, FIN_WAIT_1, CLOSING, LAST_ACK)
  FLAGS = 6, // SYN, FIN, RST or URG, or no ACK
  OPTIONS = 7, // timestamps in use
  SEQUENCE = 8, // not the next in order, or not all inside the window
  ACK = 9, // a duplicate ACK, a window update, or an ACK outside [SND.UNA, SND.MAX]
  RECOVERY = 10, // loss recovery, out-of-order data or SACK blocks held
  CLOSING = 11, // an ACK of our FIN, or data after our read side closed
  MEMORY = 12, // the arena cannot take the payload whole
  BUSY = 13, // the connection is inside a segment's processing already
  COUNT = 14,
}

export const SLOW_NAMES: readonly string[] = [
  'fast',
  'notTcp',
  'disabled',
  'notLocal',
  'noConnection',
  'state',
  'flags',
  'options',
  'sequence',
  'ack',
  'recovery',
  'closing',
  'memory',
  'busy',
];

/** tcpInput's action bits (above the low byte) when it answers FAST: what JS
 *  has left to do. */
export const enum FA {
  DATA = 1 << 8, // payload was queued: deliver (T.EVENTS has DATA)
  ACKED = 1 << 9, // new data of ours was acknowledged (T.EVENTS has WRITABLE)
  RESTART_RTO = 1 << 10, // data is still outstanding: restart the retransmission timer (RFC 6298 5.3)
  ARM_DELACK = 1 << 11, // arm the delayed-ACK timer (its slot in T.TIMERS is empty)
  SACK = 1 << 12, // the segment carries SACK blocks for a SACK connection: record them (D.OPT_SACK)
}

/** Why tcpSendBurst stopped (F.BURST_STOP): JS's own loop takes over from there. */
export const enum Burst {
  DONE = 0, // nothing more may go: window, Nagle or no data
  LIMIT = 1, // built as many as asked
  NO_SLOT = 2, // the arena had no TX chunk
  SLOW = 3, // a segment the engine does not build (our FIN, SACK blocks, a state other than ESTABLISHED/CLOSE_WAIT)
}
