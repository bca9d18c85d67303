// Sequence, window and RTO arithmetic of both hot-path engines, checked against
// BigInt and floating-point references written straight from the RFCs, and
// against each other.

import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../host/hotpath.js';
import type { HotPath } from '../../stack/hotpath/engine.js';

const U32_MAX = 0xffffffff;
const TWO32 = 2n ** 32n;

let engines: HotPath[] = [];

beforeAll(async () => {
  engines = [await createEngine('wasm'), await createEngine('ts')];
});

/** Runs a check once per engine, naming the engine when it fails. */
function eachEngine(check: (hp: HotPath) => void): void {
  for (const hp of engines) {
    try {
      check(hp);
    } catch (err) {
      throw new Error(`engine ${hp.name}: ${(err as Error).message}`, { cause: err });
    }
  }
}

// u32 values with extra weight where the wrap-around cases live.
const u32 = fc.oneof(
  fc.integer({ min: 0, max: U32_MAX }),
  fc.integer({ min: 0, max: 16 }),
  fc.integer({ min: U32_MAX - 16, max: U32_MAX }),
  fc.integer({ min: 2 ** 31 - 16, max: 2 ** 31 + 16 }),
);

// ---- BigInt references ---------------------------------------------------

const refDiff = (a: number, b: number): number => Number(BigInt.asIntN(32, BigInt(a) - BigInt(b)));
const refAdd = (a: number, n: number): number => Number((BigInt(a) + BigInt(n)) % TWO32);

/** "lo =< s < lo + n" on the sequence circle, by walking forward from lo. */
function refWithin(s: number, lo: number, n: number): boolean {
  const distance = (BigInt(s) - BigInt(lo) + TWO32) % TWO32;
  return distance < BigInt(n);
}

/** RFC 9293 3.10.7.4, the table as written. */
function refAcceptable(seq: number, len: number, nxt: number, wnd: number): boolean {
  if (len === 0 && wnd === 0) return seq === nxt;
  if (len === 0) return refWithin(seq, nxt, wnd);
  if (wnd === 0) return false;
  return refWithin(seq, nxt, wnd) || refWithin(refAdd(seq, len - 1), nxt, wnd);
}

describe('sequence comparisons across the 2^32 wrap', () => {
  it('match the signed-difference definition for any pair', () => {
    fc.assert(
      fc.property(u32, u32, (a, b) => {
        const d = refDiff(a, b);
        eachEngine((hp) => {
          expect(hp.seqDiff(a, b)).toBe(d);
          expect(hp.seqLt(a, b)).toBe(d < 0);
          expect(hp.seqLe(a, b)).toBe(d <= 0);
          expect(hp.seqGt(a, b)).toBe(d > 0);
          expect(hp.seqGe(a, b)).toBe(d >= 0);
        });
      }),
      { numRuns: 2000 },
    );
  });

  it('seqAdd wraps mod 2^32 and seqDiff undoes it', () => {
    fc.assert(
      fc.property(u32, u32, (a, n) => {
        eachEngine((hp) => {
          const sum = hp.seqAdd(a, n);
          expect(sum).toBe(refAdd(a, n));
          expect(hp.seqDiff(sum, a)).toBe(refDiff(n, 0));
        });
      }),
      { numRuns: 2000 },
    );
  });

  it('a is before a + n for 0 < n < 2^31, after for the mirror', () => {
    fc.assert(
      fc.property(u32, fc.integer({ min: 1, max: 2 ** 31 - 1 }), (a, n) => {
        eachEngine((hp) => {
          const b = hp.seqAdd(a, n);
          expect(hp.seqLt(a, b)).toBe(true);
          expect(hp.seqGt(b, a)).toBe(true);
          expect(hp.seqGe(a, b)).toBe(false);
        });
      }),
    );
  });

  it('handles the named edges', () => {
    eachEngine((hp) => {
      expect(hp.seqLt(U32_MAX, 0)).toBe(true);
      expect(hp.seqGt(0, U32_MAX)).toBe(true);
      expect(hp.seqDiff(0, U32_MAX)).toBe(1);
      expect(hp.seqDiff(U32_MAX, 0)).toBe(-1);
      expect(hp.seqAdd(U32_MAX, 1)).toBe(0);
      expect(hp.seqAdd(U32_MAX, U32_MAX)).toBe(U32_MAX - 1);
      expect(hp.seqLe(5, 5) && hp.seqGe(5, 5)).toBe(true);
      expect(hp.seqLt(5, 5) || hp.seqGt(5, 5)).toBe(false);
      // Exactly half the circle apart: the signed difference is -2^31 both ways,
      // so each number is "before" the other. RFC 9293 leaves this case open.
      expect(hp.seqDiff(0, 2 ** 31)).toBe(-(2 ** 31));
      expect(hp.seqLt(0, 2 ** 31) && hp.seqLt(2 ** 31, 0)).toBe(true);
    });
  });
});

describe('segmentAcceptable (RFC 9293 3.10.7.4)', () => {
  const nxt = 1000;

  it('zero length, zero window: only SEG.SEQ = RCV.NXT', () => {
    eachEngine((hp) => {
      expect(hp.segmentAcceptable(nxt, 0, nxt, 0)).toBe(true);
      expect(hp.segmentAcceptable(nxt + 1, 0, nxt, 0)).toBe(false);
      expect(hp.segmentAcceptable(nxt - 1, 0, nxt, 0)).toBe(false);
      expect(hp.segmentAcceptable(0, 0, U32_MAX, 0)).toBe(false);
    });
  });

  it('zero length, open window: RCV.NXT =< SEG.SEQ < RCV.NXT + RCV.WND', () => {
    eachEngine((hp) => {
      expect(hp.segmentAcceptable(nxt, 0, nxt, 100)).toBe(true);
      expect(hp.segmentAcceptable(nxt + 99, 0, nxt, 100)).toBe(true);
      expect(hp.segmentAcceptable(nxt + 100, 0, nxt, 100)).toBe(false);
      expect(hp.segmentAcceptable(nxt - 1, 0, nxt, 100)).toBe(false);
    });
  });

  it('data, zero window: never, not even at RCV.NXT', () => {
    eachEngine((hp) => {
      expect(hp.segmentAcceptable(nxt, 1, nxt, 0)).toBe(false);
      expect(hp.segmentAcceptable(nxt, 1460, nxt, 0)).toBe(false);
      expect(hp.segmentAcceptable(nxt - 1, 2, nxt, 0)).toBe(false);
    });
  });

  it('data, open window: first or last byte inside the window', () => {
    eachEngine((hp) => {
      expect(hp.segmentAcceptable(nxt, 10, nxt, 100)).toBe(true); // starts at the left edge
      expect(hp.segmentAcceptable(nxt + 99, 10, nxt, 100)).toBe(true); // starts at the last byte
      expect(hp.segmentAcceptable(nxt - 5, 10, nxt, 100)).toBe(true); // old data, tail is new
      expect(hp.segmentAcceptable(nxt - 10, 10, nxt, 100)).toBe(false); // ends at RCV.NXT - 1
      expect(hp.segmentAcceptable(nxt + 100, 10, nxt, 100)).toBe(false); // beyond the window
      // Covers the whole window but neither end is inside: the table says no.
      expect(hp.segmentAcceptable(nxt - 1, 102, nxt, 100)).toBe(false);
    });
  });

  it('works across the wrap', () => {
    const high = U32_MAX - 15;
    eachEngine((hp) => {
      expect(hp.segmentAcceptable(0x10, 0, high, 0x100)).toBe(true);
      expect(hp.segmentAcceptable(U32_MAX, 1, high, 0x100)).toBe(true);
      expect(hp.segmentAcceptable(high - 4, 8, high, 0x100)).toBe(true); // tail crosses in
      expect(hp.segmentAcceptable(high - 8, 8, high, 0x100)).toBe(false); // ends just before
      expect(hp.segmentAcceptable(U32_MAX - 2, 8, 2, 16)).toBe(true); // last byte at 4, past zero
    });
  });

  it('agrees with the table for random segments and TCP-sized windows', () => {
    const wnd = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 65535 << 14 }), fc.integer({ min: 1, max: 64 }));
    const len = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 64 }));
    // Segments near the window are the interesting ones: mostly place seq
    // relative to rcvNxt, sometimes anywhere.
    const near = fc.integer({ min: -70000, max: 70000 });
    fc.assert(
      fc.property(u32, len, wnd, fc.boolean(), near, u32, (rcvNxt, segLen, rcvWnd, anywhere, delta, abs) => {
        const seq = anywhere ? abs : refAdd(rcvNxt, delta >>> 0);
        const want = refAcceptable(seq, segLen, rcvNxt, rcvWnd);
        eachEngine((hp) => expect(hp.segmentAcceptable(seq, segLen, rcvNxt, rcvWnd)).toBe(want));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('window scaling', () => {
  it('windowScaled shifts by at most 14', () => {
    eachEngine((hp) => {
      expect(hp.windowScaled(0, 14)).toBe(0);
      expect(hp.windowScaled(65535, 0)).toBe(65535);
      expect(hp.windowScaled(65535, 7)).toBe(65535 * 128);
      expect(hp.windowScaled(65535, 14)).toBe(65535 * 16384);
      for (const shift of [15, 31, 32, 255, U32_MAX]) {
        expect(hp.windowScaled(65535, shift)).toBe(65535 * 16384);
        expect(hp.windowScaled(1, shift)).toBe(16384);
      }
    });
  });

  it('windowRaw fits the 16-bit field and rounds down', () => {
    eachEngine((hp) => {
      expect(hp.windowRaw(0, 0)).toBe(0);
      expect(hp.windowRaw(65535, 0)).toBe(65535);
      expect(hp.windowRaw(65536, 0)).toBe(65535);
      expect(hp.windowRaw(U32_MAX, 0)).toBe(65535);
      expect(hp.windowRaw(U32_MAX, 14)).toBe(65535);
      expect(hp.windowRaw(16383, 14)).toBe(0); // less than one unit advertises nothing
      expect(hp.windowRaw(16384, 14)).toBe(1);
      expect(hp.windowRaw(65535 << 14, 14)).toBe(65535);
      expect(hp.windowRaw(1 << 20, 40)).toBe(64); // shift capped at 14
    });
  });

  it('windowRaw never advertises more than there is, nor a unit less', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 14 }), u32, (shift, bytes) => {
        eachEngine((hp) => {
          const raw = hp.windowRaw(bytes, shift);
          expect(raw).toBeLessThanOrEqual(65535);
          const back = hp.windowScaled(raw, shift);
          expect(back).toBeLessThanOrEqual(bytes);
          if (bytes < 65536 * 2 ** shift) expect(bytes - back).toBeLessThan(2 ** shift);
        });
      }),
      { numRuns: 2000 },
    );
  });

  it('engines agree on any u32 arguments', () => {
    fc.assert(
      fc.property(u32, u32, (a, b) => {
        const [w, t] = engines;
        expect(t!.windowScaled(a, b)).toBe(w!.windowScaled(a, b));
        expect(t!.windowRaw(a, b)).toBe(w!.windowRaw(a, b));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('RFC 6298 RTT estimation and RTO', () => {
  const G = 1; // clock granularity in ticks
  const NO_CLAMP = [0, U32_MAX] as const;

  it('first sample: SRTT = R, RTTVAR = R/2, RTO = R + 4 * R/2', () => {
    eachEngine((hp) => {
      expect(hp.rttSrtt8(0, 0, 100)).toBe(800);
      expect(hp.rttRttvar4(0, 0, 100)).toBe(200);
      expect(hp.rto(800, 200, G, ...NO_CLAMP)).toBe(300);
      // Whatever rttvar4 held before the first sample is ignored.
      expect(hp.rttRttvar4(0, 12345, 100)).toBe(200);
    });
  });

  it('a zero sample counts as one tick, so srtt8 never returns to "no sample"', () => {
    eachEngine((hp) => {
      expect(hp.rttSrtt8(0, 0, 0)).toBe(8);
      expect(hp.rttRttvar4(0, 0, 0)).toBe(2);
      expect(hp.rttSrtt8(1, 0, 0)).toBeGreaterThan(0);
    });
    fc.assert(
      fc.property(u32, u32, u32, (s, v, r) => {
        eachEngine((hp) => expect(hp.rttSrtt8(s, v, r)).toBeGreaterThan(0));
      }),
    );
  });

  it('follows the RFC update exactly when the fractions are whole', () => {
    eachEngine((hp) => {
      // SRTT 100, RTTVAR 50, R = 200: RTTVAR = 37.5 + 25, SRTT = 87.5 + 25.
      expect(hp.rttRttvar4(800, 200, 200)).toBe(250);
      expect(hp.rttSrtt8(800, 200, 200)).toBe(900);
    });
  });

  it('converges on constant samples', () => {
    eachEngine((hp) => {
      // Start far off (a first sample of 500), then see 100 ticks every time.
      let s = hp.rttSrtt8(0, 0, 500);
      let v = hp.rttRttvar4(0, 0, 500);
      for (let i = 0; i < 200; i++) {
        const ns = hp.rttSrtt8(s, v, 100);
        v = hp.rttRttvar4(s, v, 100);
        s = ns;
      }
      expect(s).toBeGreaterThanOrEqual(800);
      expect(s).toBeLessThan(808); // SRTT within one tick of R
      expect(v).toBeLessThanOrEqual(3); // RTTVAR below one tick
      expect(hp.rto(s, v, G, ...NO_CLAMP)).toBeLessThanOrEqual(104);
      // With RTTVAR gone, the granularity term is what remains above SRTT.
      const rto10 = hp.rto(s, v, 10, ...NO_CLAMP);
      expect(rto10 === 110 || rto10 === 111).toBe(true);
      // Starting from the exact value, it stays exact.
      expect(hp.rttSrtt8(800, 0, 100)).toBe(800);
      expect(hp.rttRttvar4(800, 0, 100)).toBe(0);
    });
  });

  it('tracks the real-valued RFC estimator within a tick or three', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 1, maxLength: 60 }), (samples) => {
        eachEngine((hp) => {
          let s = 0;
          let v = 0;
          let srtt = 0;
          let rttvar = 0;
          samples.forEach((r, i) => {
            if (i === 0) {
              srtt = r;
              rttvar = r / 2;
            } else {
              rttvar = 0.75 * rttvar + 0.25 * Math.abs(srtt - r);
              srtt = 0.875 * srtt + 0.125 * r;
            }
            const ns = hp.rttSrtt8(s, v, r);
            v = hp.rttRttvar4(s, v, r);
            s = ns;
            expect(Math.abs(s / 8 - srtt)).toBeLessThanOrEqual(1);
            expect(Math.abs(v / 4 - rttvar)).toBeLessThanOrEqual(3);
          });
        });
      }),
    );
  });

  it('rto uses max(G, 4 * RTTVAR) and rounds SRTT up', () => {
    eachEngine((hp) => {
      expect(hp.rto(800, 0, 10, ...NO_CLAMP)).toBe(110);
      expect(hp.rto(800, 9, 10, ...NO_CLAMP)).toBe(110);
      expect(hp.rto(800, 11, 10, ...NO_CLAMP)).toBe(111);
      expect(hp.rto(801, 0, 0, ...NO_CLAMP)).toBe(101);
      expect(hp.rto(807, 0, 0, ...NO_CLAMP)).toBe(101);
      expect(hp.rto(808, 0, 0, ...NO_CLAMP)).toBe(101);
      expect(hp.rto(809, 0, 0, ...NO_CLAMP)).toBe(102);
    });
  });

  it('rto is clamped to [min, max], max winning, without wrapping', () => {
    eachEngine((hp) => {
      expect(hp.rto(800, 200, G, 1000, 60000)).toBe(1000); // RFC 6298 2.4: at least 1 s
      expect(hp.rto(8 * 50000, 4 * 10000, G, 1000, 60000)).toBe(60000); // 2.5: a cap
      expect(hp.rto(8 * 5000, 4 * 100, G, 1000, 60000)).toBe(5400);
      expect(hp.rto(800, 200, G, 500, 200)).toBe(200);
      expect(hp.rto(U32_MAX, U32_MAX, U32_MAX, 0, U32_MAX)).toBe(U32_MAX);
      expect(hp.rto(0, 0, 0, 0, 0)).toBe(0);
    });
  });

  it('engines agree on any u32 arguments', () => {
    fc.assert(
      fc.property(u32, u32, u32, u32, u32, (s, v, g, lo, hi) => {
        const [w, t] = engines;
        expect(t!.rttSrtt8(s, v, g)).toBe(w!.rttSrtt8(s, v, g));
        expect(t!.rttRttvar4(s, v, g)).toBe(w!.rttRttvar4(s, v, g));
        expect(t!.rto(s, v, g, lo, hi)).toBe(w!.rto(s, v, g, lo, hi));
        for (const x of [t!.rttSrtt8(s, v, g), t!.rttRttvar4(s, v, g), t!.rto(s, v, g, lo, hi)]) {
          expect(Number.isInteger(x) && x >= 0 && x <= U32_MAX).toBe(true);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
