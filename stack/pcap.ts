// Classic libpcap capture files (the format tcpdump, Wireshark and tshark read):
// a 24-byte global header, then per frame a 16-byte record header and the frame
// bytes. Written little-endian, link type Ethernet. Platform-neutral: this file
// produces bytes; the host decides where they go (host/pcap-file.ts for files).

/** Magic for microsecond timestamps; 0xa1b23c4d marks nanosecond ones. */
export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
export const LINKTYPE_ETHERNET = 1;
export const PCAP_HEADER_BYTES = 24;
export const PCAP_RECORD_HEADER_BYTES = 16;

export interface PcapOptions {
  /** Timestamp resolution (default 'us', which every reader understands). */
  precision?: 'us' | 'ns';
  /** Bytes kept per frame; longer frames are truncated (default 65535). */
  snaplen?: number;
  /** Link-layer type (default 1, Ethernet). */
  linktype?: number;
}

/** Where capture bytes go. The writer hands over a fresh array each call, so the
 *  sink may keep it. */
export type PcapSink = (bytes: Uint8Array) => void;

export class PcapWriter {
  readonly precision: 'us' | 'ns';
  readonly snaplen: number;
  readonly linktype: number;

  /** With a sink, the global header is written to it at once and write() appends
   *  records. Without one, use header() and record() to get the bytes. */
  constructor(
    private readonly sink?: PcapSink,
    opts: PcapOptions = {},
  ) {
    this.precision = opts.precision ?? 'us';
    this.snaplen = opts.snaplen ?? 65535;
    this.linktype = opts.linktype ?? LINKTYPE_ETHERNET;
    if (!(this.snaplen > 0 && this.snaplen <= 0x7fffffff)) throw new RangeError(`pcap snaplen ${this.snaplen}`);
    if (sink) sink(this.header());
  }

  /** The 24-byte global header. */
  header(): Uint8Array {
    const bytes = new Uint8Array(PCAP_HEADER_BYTES);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, this.precision === 'ns' ? PCAP_MAGIC_NS : PCAP_MAGIC_US, true);
    view.setUint16(4, 2, true); // format version 2.4
    view.setUint16(6, 4, true);
    view.setInt32(8, 0, true); // timestamps are UTC
    view.setUint32(12, 0, true); // accuracy: always 0
    view.setUint32(16, this.snaplen, true);
    view.setUint32(20, this.linktype, true);
    return bytes;
  }

  /** One record: header with the timestamp (wall-clock ms since the Unix epoch,
   *  fractions kept to the file's precision) and the frame, cut at snaplen. */
  record(frame: Uint8Array, wallMs: number): Uint8Array {
    const kept = Math.min(frame.length, this.snaplen);
    const bytes = new Uint8Array(PCAP_RECORD_HEADER_BYTES + kept);
    const view = new DataView(bytes.buffer);
    const [seconds, fraction] = splitTimestamp(wallMs, this.precision === 'ns' ? 1e9 : 1e6);
    view.setUint32(0, seconds, true);
    view.setUint32(4, fraction, true);
    view.setUint32(8, kept, true);
    view.setUint32(12, frame.length, true);
    bytes.set(frame.subarray(0, kept), PCAP_RECORD_HEADER_BYTES);
    return bytes;
  }

  /** Append one frame to the sink given at construction. */
  write(frame: Uint8Array, wallMs: number): void {
    if (!this.sink) throw new Error('PcapWriter.write: this writer has no sink; use record()');
    this.sink(this.record(frame, wallMs));
  }
}

/** Whole seconds and the fraction in 1/unitsPerSecond. Splitting before scaling
 *  keeps nanoseconds exact enough: ms since 1970 times 1e6 would exceed 2^53. */
function splitTimestamp(wallMs: number, unitsPerSecond: number): [number, number] {
  const ms = Math.max(0, wallMs);
  let seconds = Math.floor(ms / 1000);
  let fraction = Math.round((ms - seconds * 1000) * (unitsPerSecond / 1000));
  if (fraction >= unitsPerSecond) {
    seconds += 1;
    fraction -= unitsPerSecond;
  }
  return [seconds >>> 0, fraction];
}
