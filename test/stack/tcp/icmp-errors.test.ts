// ICMP errors about our segments (RFC 1122 4.2.3.9, RFC 5927), as TCP hears
// them from ICMP (Tcp.icmpError; the quoting and parsing are in
// test/stack/icmp.test.ts): only an error quoting a sequence number we sent
// and have not had acknowledged counts; protocol and port unreachable end a
// connect still in SYN_SENT (ECONNREFUSED); everything else, and any error
// once synchronized, is noted and nothing is torn down.

import { describe, expect, it } from 'vitest';
import { parseIpv4 } from '../../../stack/address.js';
import type { IcmpErrorReport } from '../../../stack/ip/icmp.js';
import { TcpError } from '../../../stack/tcp/errors.js';
import { State } from '../../../stack/tcp/state.js';
import { ACK, add, LOCAL_IP, PSH, REMOTE_IP, SYN, TcpPeer } from '../../helpers/tcp-peer.js';

const ENGINES = ['wasm', 'ts'] as const;

/** A pending connect in SYN_SENT, and a report builder for its segments. */
async function connecting(engine: 'wasm' | 'ts') {
  const p = await TcpPeer.create(engine);
  const pending = p.tcp.connect(REMOTE_IP, 80);
  const outcome = pending.then(
    () => 'connected',
    (e: unknown) => e,
  );
  const syn = p.expect({ flags: SYN, dport: 80 });
  const report = (type: number, code: number, seq = syn.seq, localPort = syn.sport): IcmpErrorReport => ({
    type, code, seq, localPort, remotePort: 80, localAddr: parseIpv4(LOCAL_IP), remoteAddr: parseIpv4(REMOTE_IP),
  });
  return { p, syn, outcome, report };
}

describe.each(ENGINES)('ICMP errors to TCP (%s)', (engine) => {
  it.each([[3, 'port'], [2, 'protocol']])('%s (%s unreachable) while connecting: the connect fails with ECONNREFUSED, nothing held', async (code) => {
    const { p, outcome, report } = await connecting(engine);
    p.tcp.icmpError(report(3, code));
    const e = await outcome;
    expect(e).toBeInstanceOf(TcpError);
    expect((e as TcpError).code).toBe('ECONNREFUSED');
    expect(p.tcp.stats().counters.icmpHardErrors).toBe(1);
    expect(p.tcp.stats().connections).toBe(0);
    p.expectNone(); // no RST for it
    p.tcp.shutdown();
    p.expectNothingHeld();
  });

  it('is ignored when it quotes a sequence number we did not send, or a connection we do not have', async () => {
    const { p, syn, report } = await connecting(engine);
    p.tcp.icmpError(report(3, 3, add(syn.seq, 1)));
    p.tcp.icmpError(report(3, 3, add(syn.seq, -1)));
    p.tcp.icmpError(report(3, 3, syn.seq, syn.sport + 1));
    const c = p.tcp.stats().counters;
    expect([c.icmpBadSequence, c.icmpNoConnection, c.icmpHardErrors]).toEqual([2, 1, 0]);
    expect(p.liveTcbs()[0]!.state).toBe(State.SynSent);
  });

  it('soft errors while connecting (host unreachable, time exceeded, fragmentation needed) are noted; the connect goes on', async () => {
    const { p, syn, outcome, report } = await connecting(engine);
    p.tcp.icmpError(report(3, 1));
    p.tcp.icmpError(report(11, 0));
    p.tcp.icmpError(report(3, 4));
    const c = p.tcp.stats().counters;
    expect([c.icmpSoftErrors, c.icmpFragNeeded, c.icmpHardErrors]).toEqual([3, 1, 0]);
    p.inject({ flags: SYN | ACK, seq: 5000, ack: add(syn.seq, 1), sport: 80, dport: syn.sport, mss: 1460 });
    expect(await outcome).toBe('connected');
  });

  it('once established, even port unreachable tears nothing down (RFC 5927 4.2)', async () => {
    const p = await TcpPeer.create(engine);
    const { conn, ours, theirs } = await p.open();
    conn.write(new Uint8Array(100));
    const data = p.expect({ flags: ACK | PSH, len: 100 });
    p.tcp.icmpError({ type: 3, code: 3, seq: data.seq, localPort: p.port, remotePort: p.peerPort, localAddr: parseIpv4(LOCAL_IP), remoteAddr: parseIpv4(REMOTE_IP) });
    expect(p.tcp.stats().counters.icmpSoftErrors).toBe(1);
    expect(conn.closeInfo).toBeNull();
    p.inject({ flags: ACK, seq: theirs, ack: add(ours, 100) });
    expect(p.liveTcbs()[0]!.state).toBe(State.Established);
  });
});
