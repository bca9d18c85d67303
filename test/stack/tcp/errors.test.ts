// The errors pending socket operations see (stack/tcp/errors.ts): one code per
// way a connection ends, and a message that says why, with the detail.

import { describe, expect, it } from 'vitest';
import { errorForClose, TcpError } from '../../../stack/tcp/errors.js';
import type { CloseReason } from '../../../stack/tcp/stats.js';

const CASES: [CloseReason, string, string][] = [
  ['refused', 'ECONNREFUSED', 'ECONNREFUSED: connection refused'],
  ['reset', 'ECONNRESET', 'ECONNRESET: connection reset: reset (rst)'],
  ['pressure', 'ECONNRESET', 'ECONNRESET: connection reset: pressure (rst)'],
  ['timeout', 'ETIMEDOUT', 'ETIMEDOUT: connection timed out: timeout (rst)'],
  ['keepalive', 'ETIMEDOUT', 'ETIMEDOUT: connection timed out: keepalive (rst)'],
  ['aborted', 'ECONNABORTED', 'ECONNABORTED: connection aborted: aborted (rst)'],
  ['listenerClosed', 'ECONNABORTED', 'ECONNABORTED: connection aborted: listenerClosed (rst)'],
  ['shutdown', 'ESHUTDOWN', 'ESHUTDOWN: the stack shut down'],
  ['closed', 'EPIPE', 'EPIPE: connection closed'],
];

describe('errorForClose', () => {
  it.each(CASES)('%s: %s, with its message', (reason, code, message) => {
    const e = errorForClose(reason, 'rst');
    expect(e).toBeInstanceOf(TcpError);
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe(code);
    expect(e.message).toBe(message);
    expect(e.name).toBe('TcpError');
  });

  it('leaves the detail out when there is none', () => {
    expect(errorForClose('reset').message).toBe('ECONNRESET: connection reset: reset');
    expect(errorForClose('timeout').message).toBe('ETIMEDOUT: connection timed out: timeout');
  });
});
