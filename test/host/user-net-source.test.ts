// User-mode networking carries each host client's own address and port to the
// guest (the gateway is a transparent proxy, host/net/user.ts): a guest sees
// 127.0.0.9:40001 where a host server would, so limits per source address
// mean the same on every backend. Two clients with the same port from two
// addresses keep their addresses; the second gets another port.

import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGuest, type GuestRun } from '../../host/run.js';
import { FIXTURES, freePort } from '../helpers/uk.js';

/** Connect from localAddress[:localPort] and read the guest's one line. */
function whoami(port: number, localAddress: string, localPort?: number): Promise<{ seen: string; us: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port, localAddress, ...(localPort ? { localPort } : {}) });
    let text = '';
    sock.on('data', (d) => (text += d.toString()));
    sock.on('end', () => {
      resolve({ seen: text.trim(), us: `${sock.localAddress}:${sock.localPort}` });
      sock.end();
    });
    sock.on('error', reject);
  });
}

describe('user networking: the guest sees each host client as itself', () => {
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

  it('a client from 127.0.0.9 is seen from 127.0.0.9, on its own port', async () => {
    const r = await whoami(port, '127.0.0.9');
    expect(r.seen).toBe(r.us);
  });

  it('clients from three loopback addresses are told apart', async () => {
    const got = await Promise.all(['127.0.0.21', '127.0.0.22', '127.0.0.23'].map((a) => whoami(port, a)));
    for (const r of got) expect(r.seen).toBe(r.us);
  });

  it('two clients on the same port from two addresses: both keep their address', async () => {
    const localPort = 20000 + Math.floor(Math.random() * 20000);
    // Both connections open at once, so the guest-side 4-tuples would collide on the port.
    const [a, b] = await Promise.all([whoami(port, '127.0.0.31', localPort), whoami(port, '127.0.0.32', localPort)]);
    const [aAddr, aPort] = a.seen.split(':');
    const [bAddr, bPort] = b.seen.split(':');
    expect([aAddr, bAddr].sort()).toEqual(['127.0.0.31', '127.0.0.32']);
    // At least one kept its port; if they overlapped, the other got another one.
    expect([aPort, bPort]).toContain(String(localPort));
  });

  it('the gateway holds nothing once the clients are gone', async () => {
    await new Promise((r) => setTimeout(r, 200));
    const s = (await run.stats()).net as { gateway?: { tcp: { connections: number } } };
    expect(s.gateway?.tcp.connections).toBe(0);
  });
});
