// User-mode networking carries each host client's own address to the guest
// (the gateway is a transparent proxy, host/net/user.ts): a guest sees
// 127.0.0.9 where a host server would, so limits per source address mean the
// same on every backend. The port is the gateway's own (tcp-forward.ts: a
// host client's port may come back while the guest still holds it in
// TIME_WAIT), and two clients on one port from two addresses stay apart.

import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGuest, type GuestRun } from '../../host/run.js';
import { FIXTURES, freePort } from '../helpers/uk.js';

/** Connect from localAddress[:localPort] and read the guest's one line: the peer it saw. */
function whoami(port: number, localAddress: string, localPort?: number): Promise<{ address: string; port: number }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port, localAddress, ...(localPort ? { localPort } : {}) });
    let text = '';
    sock.on('data', (d) => (text += d.toString()));
    sock.on('end', () => {
      const [address, seenPort] = text.trim().split(':');
      resolve({ address: address!, port: Number(seenPort) });
      sock.end();
    });
    sock.on('error', reject);
  });
}

describe('user networking: the guest sees each host client\'s address', () => {
  let run: GuestRun;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    run = await startGuest({
      app: join(FIXTURES, 'whoami.mjs'),
      net: { kind: 'user', hostfwd: [{ proto: 'tcp', hostAddress: '127.0.0.1', hostPort: port, guestPort: 7 }] },
      log: () => {},
    });
  });

  afterAll(async () => {
    await run?.stop();
  });

  it('a client from 127.0.0.9 is seen from 127.0.0.9, on a gateway port', async () => {
    const r = await whoami(port, '127.0.0.9');
    expect(r.address).toBe('127.0.0.9');
    expect(r.port).toBeGreaterThanOrEqual(49152);
  });

  it('clients from three loopback addresses are told apart', async () => {
    const got = await Promise.all(['127.0.0.21', '127.0.0.22', '127.0.0.23'].map((a) => whoami(port, a)));
    expect(got.map((r) => r.address)).toEqual(['127.0.0.21', '127.0.0.22', '127.0.0.23']);
  });

  it('two clients on the same port from two addresses: both keep their address', async () => {
    const localPort = 20000 + Math.floor(Math.random() * 20000);
    const [a, b] = await Promise.all([whoami(port, '127.0.0.31', localPort), whoami(port, '127.0.0.32', localPort)]);
    expect([a.address, b.address].sort()).toEqual(['127.0.0.31', '127.0.0.32']);
  });

  it('200 connections in a row from one address, each closed by the guest first, all connect', async () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const r = await whoami(port, '127.0.0.41');
      expect(r.address).toBe('127.0.0.41');
      seen.add(r.port);
    }
    // The gateway's ports advance: none came back while the guest may hold it in TIME_WAIT.
    expect(seen.size).toBe(200);
  });

  it('the gateway holds no connection once the clients are gone', async () => {
    await new Promise((r) => setTimeout(r, 200));
    const s = (await run.stats()).net as { gateway?: { tcp: { connections: number } } };
    expect(s.gateway?.tcp.connections).toBe(0);
  });
});
