// Errors the socket API reports, with errno-like codes applications can test.

import type { CloseReason } from './stats.js';

export type TcpErrorCode =
  | 'ECONNREFUSED'
  | 'ECONNRESET'
  | 'ETIMEDOUT'
  | 'ECONNABORTED'
  | 'EADDRINUSE'
  | 'EMFILE'
  | 'ENOBUFS'
  | 'EPIPE'
  | 'ESHUTDOWN'
  | 'EINVAL';

export class TcpError extends Error {
  constructor(
    readonly code: TcpErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'TcpError';
  }
}

/** The error a pending operation sees when its connection ends for `reason`. */
export function errorForClose(reason: CloseReason, detail?: string): TcpError {
  const why = detail !== undefined ? `${reason} (${detail})` : reason;
  switch (reason) {
    case 'refused':
      return new TcpError('ECONNREFUSED', 'connection refused');
    case 'reset':
    case 'pressure':
      return new TcpError('ECONNRESET', `connection reset: ${why}`);
    case 'timeout':
    case 'keepalive':
      return new TcpError('ETIMEDOUT', `connection timed out: ${why}`);
    case 'aborted':
    case 'listenerClosed':
      return new TcpError('ECONNABORTED', `connection aborted: ${why}`);
    case 'shutdown':
      return new TcpError('ESHUTDOWN', 'the stack shut down');
    case 'closed':
      return new TcpError('EPIPE', 'connection closed');
  }
}
