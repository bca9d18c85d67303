import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CLOSE_MARKER,
  MAX_RECORD_PLAINTEXT,
  type ReadResult,
  RecordReader,
  RecordWriter,
  directionKeys,
  recordAad,
  recordCipherProblem,
  recordIv,
  senderToReceiver,
} from '../../relay/records.js';
import { hex, unhex, vectorJson } from './vectors.js';

interface RecordVectors {
  key_32: string;
  nonce_base_12: string;
  records: Array<{ seq: number; plaintext: string; iv_20: string; aad_4: string; wire: string }>;
}
const rv = vectorJson<RecordVectors>('spoke/records-aes256gcm.json');
const ex = vectorJson<{ values: Record<string, string> }>('spoke/spake2ee-exchange.json').values;
const subkey0 = unhex(ex.subkey0_client_sk);

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Feeds `bytes` cut at sorted offsets, then EOF unless `eof` is false. */
function readInPieces(bytes: Uint8Array, cuts: number[], eof = true): { plaintexts: Uint8Array[]; last: ReadResult } {
  const reader = new RecordReader(subkey0, 0);
  const plaintexts: Uint8Array[] = [];
  const bounds = [0, ...cuts, bytes.length];
  let last: ReadResult = { plaintexts: [], status: 'open' };
  for (let i = 0; i + 1 < bounds.length; i++) {
    last = reader.push(bytes.subarray(bounds[i], bounds[i + 1]));
    plaintexts.push(...last.plaintexts);
  }
  if (eof) {
    last = reader.end();
    plaintexts.push(...last.plaintexts);
  }
  return { plaintexts, last };
}

const cutsOf = (length: number) =>
  fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, length - 1) }), { maxLength: 20 }).map((c) => c.sort((a, b) => a - b));

describe('record vectors (spoke/records-aes256gcm.json)', () => {
  it('key and nonce base come from subkey 0', () => {
    const keys = directionKeys(subkey0);
    expect(hex(keys.key)).toBe(rv.key_32);
    expect(hex(keys.nonceBase)).toBe(rv.nonce_base_12);
  });

  it('IV, AAD and wire bytes of records 0-2', () => {
    const writer = new RecordWriter(subkey0, 0);
    for (const r of rv.records) {
      const plaintext = unhex(r.plaintext);
      expect(hex(recordIv(unhex(rv.nonce_base_12), r.seq))).toBe(r.iv_20);
      expect(hex(recordAad(plaintext.length))).toBe(r.aad_4);
      expect(writer.sequence).toBe(r.seq);
      expect(hex(writer.seal(plaintext))).toBe(r.wire);
    }
  });

  it('the wire bytes decrypt back, whole and byte by byte', () => {
    const wire = concat(rv.records.map((r) => unhex(r.wire)));
    const want = rv.records.map((r) => r.plaintext);
    for (const cuts of [[], Array.from({ length: wire.length - 1 }, (_, i) => i + 1)]) {
      const { plaintexts, last } = readInPieces(wire, cuts);
      expect(plaintexts.map(hex)).toEqual(want);
      expect(last.status).toBe('end');
    }
  });
});

describe('record stream', () => {
  const plaintextArb = fc.uint8Array({ minLength: 1, maxLength: 3000 });

  it('round-trips random plaintexts under random chunking', () => {
    fc.assert(
      fc.property(
        fc.array(plaintextArb, { maxLength: 8 }).chain((pts) => {
          const writer = new RecordWriter(subkey0, 0);
          const wire = concat(pts.map((p) => writer.seal(p)));
          return fc.tuple(fc.constant(pts), fc.constant(wire), cutsOf(wire.length));
        }),
        ([pts, wire, cuts]) => {
          const { plaintexts, last } = readInPieces(wire, cuts);
          expect(plaintexts).toEqual(pts);
          expect(last.status).toBe('end');
        },
      ),
      { numRuns: 60 },
    );
  });

  it('carries the largest record (0x7fff bytes) and refuses empty or larger ones', () => {
    const writer = new RecordWriter(subkey0, 0);
    const big = new Uint8Array(MAX_RECORD_PLAINTEXT).fill(7);
    const { plaintexts } = readInPieces(writer.seal(big), []);
    expect(plaintexts).toHaveLength(1);
    expect(Buffer.from(plaintexts[0]).equals(Buffer.from(big))).toBe(true);
    expect(() => writer.seal(new Uint8Array(0))).toThrow(RangeError);
    expect(() => writer.seal(new Uint8Array(MAX_RECORD_PLAINTEXT + 1))).toThrow(RangeError);
  });

  it('any flipped bit is corrupted, and earlier records still come out', () => {
    fc.assert(
      fc.property(
        fc.array(plaintextArb, { minLength: 1, maxLength: 4 }).chain((pts) => {
          const writer = new RecordWriter(subkey0, 0);
          const records = pts.map((p) => writer.seal(p));
          const wire = concat(records);
          return fc.tuple(fc.constant(pts), fc.constant(records), fc.integer({ min: 0, max: wire.length * 8 - 1 }), cutsOf(wire.length));
        }),
        ([pts, records, bit, cuts]) => {
          const wire = concat(records);
          wire[bit >> 3] ^= 1 << (bit & 7);
          let before = 0; // records wholly before the flipped byte come out intact
          for (let end = records[0].length; end <= bit >> 3; end += records[before].length) before++;
          const { plaintexts, last } = readInPieces(wire, cuts);
          expect(last.status).toBe('corrupted');
          expect(plaintexts).toEqual(pts.slice(0, before));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('records out of order are corrupted (the sequence is in the IV)', () => {
    const writer = new RecordWriter(subkey0, 0);
    const a = writer.seal(Uint8Array.of(1));
    const b = writer.seal(Uint8Array.of(2));
    expect(readInPieces(concat([b, a]), []).last.status).toBe('corrupted');
  });

  it('EOF inside a record or its header is corrupted; between records it is the end', () => {
    const record = new RecordWriter(subkey0, 0).seal(Uint8Array.of(1, 2, 3));
    for (let cut = 1; cut < record.length; cut++) {
      const { last } = readInPieces(record.subarray(0, cut), []);
      expect(last.status).toBe('corrupted');
      expect(last.reason).toMatch(/inside a record/);
    }
    expect(readInPieces(new Uint8Array(0), []).last.status).toBe('end');
  });

  it('the close marker ends the stream (its first two bytes suffice) and later bytes are ignored', () => {
    const writer = new RecordWriter(subkey0, 0);
    const wire = concat([writer.seal(Uint8Array.of(9)), CLOSE_MARKER as Uint8Array, writer.seal(Uint8Array.of(8))]);
    const { plaintexts, last } = readInPieces(wire, [], false);
    expect(plaintexts).toEqual([Uint8Array.of(9)]);
    expect(last.status).toBe('end');
    expect(readInPieces(Uint8Array.of(0xff, 0xff), [1], false).last.status).toBe('end');
  });

  it('lengths 0 and 0x8000..0xfffe are corrupted at once', () => {
    for (const header of [[0, 0], [0x80, 0], [0xff, 0xfe]]) {
      const { last } = readInPieces(Uint8Array.from(header), [], false);
      expect(last.status).toBe('corrupted');
    }
  });

  it('buffers at most one record', () => {
    const reader = new RecordReader(subkey0, 0);
    const record = new RecordWriter(subkey0, 0).seal(new Uint8Array(MAX_RECORD_PLAINTEXT));
    reader.push(record.subarray(0, record.length - 1));
    expect(reader.bufferedBytes).toBe(record.length - 1);
    expect(reader.push(record.subarray(record.length - 1)).plaintexts).toHaveLength(1);
    expect(reader.bufferedBytes).toBe(0);
  });
});

describe('ciphers', () => {
  it('the file direction is subkey 0 with cipher 0', () => {
    const keys = { k0: subkey0, k1: new Uint8Array(64), ciphers: [0, 2] as const };
    expect(senderToReceiver(keys)).toEqual({ subkey: subkey0, cipher: 0 });
  });

  it('only AES-256-GCM (0) is usable with 20-byte IVs', () => {
    expect(recordCipherProblem(0)).toBeNull();
    for (const cipher of [1, 2] as const) {
      expect(recordCipherProblem(cipher)).toMatch(/20-byte/);
      expect(() => new RecordWriter(subkey0, cipher)).toThrow(RangeError);
      expect(() => new RecordReader(subkey0, cipher)).toThrow(/AES-256-GCM/);
    }
  });
});
