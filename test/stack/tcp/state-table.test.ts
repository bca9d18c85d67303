// The state predicates of stack/tcp/state.ts against RFC 9293 section 3.3.2
// and 3.10.7.4, for every state: which are synchronized, in which the peer
// may still send data, in which the application may still write, and in which
// our FIN has been queued. Then the data rule seen from outside: text after
// the peer's FIN is ignored, text while our own FIN is unacknowledged is not.

import { describe, expect, it } from 'vitest';
import {
  canReceiveData, canSendData, finQueuedState, isSynchronized, State, STATE_NAMES,
} from '../../../stack/tcp/state.js';
import { ACK, add, FIN, TcpPeer } from '../../helpers/tcp-peer.js';

const ALL = [
  State.Closed, State.Listen, State.SynSent, State.SynReceived, State.Established, State.FinWait1,
  State.FinWait2, State.CloseWait, State.Closing, State.LastAck, State.TimeWait,
];
const names = (pred: (s: State) => boolean) => ALL.filter(pred).map((s) => STATE_NAMES[s as number]);

describe('TCP state predicates', () => {
  it('every state has its RFC 9293 name', () => {
    expect(ALL.map((s) => STATE_NAMES[s as number])).toEqual([
      'CLOSED', 'LISTEN', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED', 'FIN_WAIT_1',
      'FIN_WAIT_2', 'CLOSE_WAIT', 'CLOSING', 'LAST_ACK', 'TIME_WAIT',
    ]);
  });

  it('synchronized: the states after the handshake', () => {
    expect(names(isSynchronized)).toEqual([
      'ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2', 'CLOSE_WAIT', 'CLOSING', 'LAST_ACK', 'TIME_WAIT',
    ]);
  });

  it('the peer may send data until its FIN: ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2', () => {
    expect(names(canReceiveData)).toEqual(['ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2']);
  });

  it('the application may write until its FIN: ESTABLISHED, CLOSE_WAIT', () => {
    expect(names(canSendData)).toEqual(['ESTABLISHED', 'CLOSE_WAIT']);
  });

  it('our FIN is queued in FIN_WAIT_1, FIN_WAIT_2, CLOSING, LAST_ACK', () => {
    expect(names(finQueuedState)).toEqual(['FIN_WAIT_1', 'FIN_WAIT_2', 'CLOSING', 'LAST_ACK']);
  });
});

describe.each(['wasm', 'ts'] as const)('TCP text and FINs (%s)', (engine) => {
  it('CLOSE_WAIT: text beyond the peer\'s FIN is ignored, never delivered after the end', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const got: number[] = [];
    conn.onData = (v) => got.push(...v);
    p.inject({ flags: ACK | FIN, seq: theirs, ack: ours });
    expect(p.tcp.stats().byState.CLOSE_WAIT).toBe(1);
    p.inject({ flags: ACK, seq: add(theirs, 1), ack: ours, payload: Uint8Array.of(1, 2, 3) });
    expect(got).toEqual([]);
    expect(p.tcp.stats().counters.bytesIn).toBe(0);
  });

  it('FIN_WAIT_1: the peer\'s data is still delivered while our FIN is unacknowledged', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    const got: number[] = [];
    conn.onData = (v) => got.push(...v);
    conn.end();
    p.expect({ flags: FIN | ACK, seq: ours });
    expect(p.tcp.stats().byState.FIN_WAIT_1).toBe(1);
    p.inject({ flags: ACK, seq: theirs, ack: ours, payload: Uint8Array.of(7, 8) });
    expect(got).toEqual([7, 8]);
    expect(p.tcp.stats().byState.FIN_WAIT_1).toBe(1);
  });

  it('a write after end() is refused (EPIPE)', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, theirs, ours } = await p.accept();
    p.inject({ flags: ACK | FIN, seq: theirs, ack: ours }); // CLOSE_WAIT: still writable
    expect(conn.write(Uint8Array.of(1))).toBe(1);
    conn.end(); // LAST_ACK
    expect(() => conn.write(Uint8Array.of(1))).toThrow(expect.objectContaining({ code: 'EPIPE' }));
  });
});
