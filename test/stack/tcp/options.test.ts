// TCP options: what resolveOptions accepts, what it refuses with a clear
// RangeError (naming the option and the value), what it adjusts, and the
// window shift offered for a receive buffer (RFC 7323).

import { describe, expect, it } from 'vitest';
import { DEFAULT_TCP_OPTIONS, MAX_RCV_BUF, MAX_TIME_WAIT_RECORDS, resolveOptions, windowShiftFor, type TcpOptions } from '../../../stack/tcp/options.js';

const POSITIVE = [
  'sndBuf', 'rcvBuf', 'maxConnections', 'initialRto', 'minRto', 'maxRto',
  'delayedAckMs', 'maxPersist', 'finWait2Timeout', 'msl', 'maxTimeWait',
  'keepaliveIdle', 'keepaliveInterval', 'keepaliveCount',
] as const;

describe('resolveOptions', () => {
  it('the defaults pass as they are; an arena sizes maxConnections unless it is given', () => {
    expect(resolveOptions(undefined)).toEqual(DEFAULT_TCP_OPTIONS);
    expect(resolveOptions({ maxConnections: 10 }, 1 << 30).maxConnections).toBe(10);
    expect(resolveOptions({}, 2 * 1024 * 1024).maxConnections).toBe(1024); // an eighth of the arena, 256 bytes each
  });

  it.each(POSITIVE)('%s must be a positive finite number', (key) => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
      expect(() => resolveOptions({ [key]: bad } as Partial<TcpOptions>)).toThrow(
        new RangeError(`tcp option ${key} must be a positive number, got ${String(bad)}`),
      );
    }
  });

  it('refuses minRto above maxRto (equal is fine)', () => {
    expect(() => resolveOptions({ minRto: 2000, maxRto: 1000 })).toThrow(new RangeError('tcp option minRto exceeds maxRto'));
    expect(resolveOptions({ minRto: 1000, maxRto: 1000 }).minRto).toBe(1000);
  });

  it('maxTimeWait is a whole number up to the table\'s records', () => {
    const message = (v: number) => new RangeError(`tcp option maxTimeWait must be a whole number up to ${MAX_TIME_WAIT_RECORDS}, got ${v}`);
    expect(() => resolveOptions({ maxTimeWait: 1.5 })).toThrow(message(1.5));
    expect(() => resolveOptions({ maxTimeWait: MAX_TIME_WAIT_RECORDS + 1 })).toThrow(message(MAX_TIME_WAIT_RECORDS + 1));
    expect(resolveOptions({ maxTimeWait: MAX_TIME_WAIT_RECORDS }).maxTimeWait).toBe(MAX_TIME_WAIT_RECORDS);
  });

  it('the ephemeral port range lies in 1-65535, low not above high', () => {
    const bad = (low: number, high: number) => () => resolveOptions({ ephemeralLow: low, ephemeralHigh: high });
    expect(bad(0, 100)).toThrow(new RangeError('tcp ephemeral port range 0-100 is invalid'));
    expect(bad(100, 65536)).toThrow(new RangeError('tcp ephemeral port range 100-65536 is invalid'));
    expect(bad(200, 100)).toThrow(new RangeError('tcp ephemeral port range 200-100 is invalid'));
    expect(resolveOptions({ ephemeralLow: 1, ephemeralHigh: 1 })).toMatchObject({ ephemeralLow: 1, ephemeralHigh: 1 });
    expect(resolveOptions({ ephemeralLow: 65535, ephemeralHigh: 65535 }).ephemeralHigh).toBe(65535);
  });

  it('rcvBuf: clamped to 65535 without window scaling, at most 65535 << 14 with it', () => {
    expect(resolveOptions({ rcvBuf: 65535, windowScaling: false }).rcvBuf).toBe(65535);
    expect(resolveOptions({ rcvBuf: 65536, windowScaling: false }).rcvBuf).toBe(65535);
    expect(resolveOptions({ rcvBuf: 65536 }).rcvBuf).toBe(65536);
    expect(resolveOptions({ rcvBuf: MAX_RCV_BUF }).rcvBuf).toBe(MAX_RCV_BUF);
    expect(() => resolveOptions({ rcvBuf: MAX_RCV_BUF + 1 })).toThrow(
      new RangeError(`tcp option rcvBuf must be at most ${MAX_RCV_BUF} (65535 << 14, RFC 7323), got ${MAX_RCV_BUF + 1}`),
    );
  });
});

describe('windowShiftFor', () => {
  it('is the smallest shift that fits the buffer in the 16-bit window field, at most 14', () => {
    expect(windowShiftFor(65535)).toBe(0);
    expect(windowShiftFor(65536)).toBe(1);
    expect(windowShiftFor(2 * 65535)).toBe(1);
    expect(windowShiftFor(2 * 65535 + 1)).toBe(2);
    expect(windowShiftFor(MAX_RCV_BUF)).toBe(14);
    expect(windowShiftFor(MAX_RCV_BUF * 4)).toBe(14);
  });
});
