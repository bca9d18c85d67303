// How the clients classify failures: a socket that fails under a transfer
// (reset, broken pipe) is a runtime error (exit 1), not a bug (125).

import { describe, expect, it } from 'vitest';
import { asBobError, BobError, ExitCode } from '../../relay/client/errors.js';

const errno = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('asBobError', () => {
  it.each(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED'])('%s from a socket: exit 1, "Connection lost"', (code) => {
    const e = asBobError(errno(code, `read ${code}`));
    expect(e.code).toBe(ExitCode.Failure);
    expect(e.message).toBe(`Connection lost: read ${code}`);
  });

  it('anything else unexpected is an internal error (125)', () => {
    const e = asBobError(new TypeError('x is not a function'));
    expect(e.code).toBe(ExitCode.Internal);
    expect(e.message).toBe('Internal error: x is not a function');
  });

  it('a BobError passes through unchanged', () => {
    const original = new BobError(ExitCode.Timeout, 'Timeout: nobody');
    expect(asBobError(original)).toBe(original);
  });
});
