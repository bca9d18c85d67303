// Connection states of RFC 9293 section 3.3.2, and the names stats() reports.
//
// LISTEN lives in a Listener, not in a control block, and TIME_WAIT lives in a
// compact record (time-wait.ts): a control block is only ever in one of the
// other states. Both still appear in stats().byState.

import { State } from '../hotpath/layout.js';

export { State };

export const STATE_NAMES = [
  'CLOSED',
  'LISTEN',
  'SYN_SENT',
  'SYN_RECEIVED',
  'ESTABLISHED',
  'FIN_WAIT_1',
  'FIN_WAIT_2',
  'CLOSE_WAIT',
  'CLOSING',
  'LAST_ACK',
  'TIME_WAIT',
] as const;

export type StateName = (typeof STATE_NAMES)[number];

/** RFC 9293 3.3.2: states after the handshake, where both sides' ISNs are known. */
export function isSynchronized(s: State): boolean {
  return s >= State.Established;
}

/** States in which the peer may still send us data (RFC 9293 3.10.7.4, seventh). */
export function canReceiveData(s: State): boolean {
  return s === State.Established || s === State.FinWait1 || s === State.FinWait2;
}

/** States in which the application may still queue data to send. */
export function canSendData(s: State): boolean {
  return s === State.Established || s === State.CloseWait;
}

/** States in which our FIN has been queued (it may not be sent or acked yet). */
export function finQueuedState(s: State): boolean {
  return s === State.FinWait1 || s === State.FinWait2 || s === State.Closing || s === State.LastAck;
}
