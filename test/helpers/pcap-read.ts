// A small reader for classic libpcap files, for tests that replay captured frames.
//
// File layout: a 24-byte global header (magic, version, thiszone, sigfigs,
// snaplen, link type), then records of a 16-byte header (seconds, sub-second
// part, captured length, original length) followed by the captured bytes.
// The magic tells both the byte order of every header field and whether the
// sub-second part counts microseconds or nanoseconds. pcapng is not handled.

import { readFileSync } from 'node:fs';

export interface PcapFrame {
  /** Capture time in seconds (float; use sec/nsec when exactness matters). */
  ts: number;
  sec: number;
  nsec: number;
  /** The captured bytes (a view into the file's buffer). */
  data: Uint8Array;
  /** Length on the wire; larger than data.length when the snap length cut it. */
  origLen: number;
}

export interface PcapHeader {
  littleEndian: boolean;
  nanoseconds: boolean;
  versionMajor: number;
  versionMinor: number;
  snapLen: number;
  /** LINKTYPE_* value; 1 is Ethernet. */
  linkType: number;
}

const MAGIC_MICRO = 0xa1b2c3d4;
const MAGIC_NANO = 0xa1b23c4d;
const GLOBAL_HEADER_LEN = 24;
const RECORD_HEADER_LEN = 16;

export function readPcapHeader(file: Uint8Array): PcapHeader {
  if (file.length < GLOBAL_HEADER_LEN) throw new Error(`pcap: ${file.length} bytes, shorter than the global header`);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  // The writer stored the magic in its own byte order: try both.
  let littleEndian: boolean;
  const le = view.getUint32(0, true);
  const be = view.getUint32(0, false);
  if (le === MAGIC_MICRO || le === MAGIC_NANO) littleEndian = true;
  else if (be === MAGIC_MICRO || be === MAGIC_NANO) littleEndian = false;
  else throw new Error(`pcap: bad magic 0x${be.toString(16)} (pcapng is not supported)`);
  const magic = view.getUint32(0, littleEndian);
  return {
    littleEndian,
    nanoseconds: magic === MAGIC_NANO,
    versionMajor: view.getUint16(4, littleEndian),
    versionMinor: view.getUint16(6, littleEndian),
    snapLen: view.getUint32(16, littleEndian),
    linkType: view.getUint32(20, littleEndian),
  };
}

/** All records of a pcap file held in memory. Throws on a malformed file. */
export function readPcap(file: Uint8Array): PcapFrame[] {
  const header = readPcapHeader(file);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const le = header.littleEndian;
  const frames: PcapFrame[] = [];
  let pos = GLOBAL_HEADER_LEN;
  while (pos < file.length) {
    if (pos + RECORD_HEADER_LEN > file.length) throw new Error(`pcap: record header cut short at byte ${pos}`);
    const sec = view.getUint32(pos, le);
    const sub = view.getUint32(pos + 4, le);
    const capLen = view.getUint32(pos + 8, le);
    const origLen = view.getUint32(pos + 12, le);
    pos += RECORD_HEADER_LEN;
    if (pos + capLen > file.length) throw new Error(`pcap: record of ${capLen} bytes runs past the end at byte ${pos}`);
    const nsec = header.nanoseconds ? sub : sub * 1000;
    frames.push({ ts: sec + nsec / 1e9, sec, nsec, data: file.subarray(pos, pos + capLen), origLen });
    pos += capLen;
  }
  return frames;
}

export function readPcapFile(path: string): PcapFrame[] {
  return readPcap(new Uint8Array(readFileSync(path)));
}
