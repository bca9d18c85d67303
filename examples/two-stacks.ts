// Two TCP/IP stacks in one process, joined by the in-process virtual switch.
// Stack b listens with the callback API; stack a connects, sends 1 MiB with
// the streams API and closes its side; b counts the bytes, answers and
// closes. Both stacks run on a Simulation's virtual clock: the handshake,
// the transfer and TIME_WAIT take only the CPU time they need.
//
//   npm run build && node dist/examples/two-stacks.js [wasm|ts]

import { pathToFileURL } from 'node:url';
import { createEngine } from '../host/hotpath.js';
import { Simulation, Stack, type EngineName, type StackStats } from '../stack/index.js';

export interface TwoStacksResult {
  /** What a sent, and what b received. */
  sent: Uint8Array;
  received: Uint8Array;
  /** b's answer, as a read it. */
  reply: string;
  /** a's stats() right after the exchange (its connection in TIME_WAIT),
   *  then once TIME_WAIT has run out. */
  afterClose: StackStats;
  afterTimeWait: StackStats;
}

export async function main(engine: EngineName = 'wasm'): Promise<TwoStacksResult> {
  // A VirtualClock and a VSwitch on it. Each stack gets a port of the switch
  // (its network device) and a hot-path engine of its own, whose fixed memory
  // (4 MiB here) is the arena that holds every byte buffer of the stack.
  const sim = new Simulation();
  const makeStack = async (address: string): Promise<Stack> =>
    new Stack({
      device: sim.switch.attach(),
      hotpath: await createEngine(engine, 4 * 1024 * 1024),
      clock: sim.clock,
      ipv4: { address, prefix: 24 },
    });
  const a = await makeStack('10.0.0.1');
  const b = await makeStack('10.0.0.2');

  // b, callback API: onData receives views of the arena that are valid only
  // during the call (copy what you keep); onEnd follows the peer's FIN.
  let received: Uint8Array = new Uint8Array(0);
  const listener = b.tcp.listen(7000);
  listener.onConnection = (conn) => {
    const parts: Uint8Array[] = [];
    conn.onData = (view) => {
      parts.push(view.slice());
    };
    conn.onEnd = () => {
      received = concat(parts);
      conn.write(new TextEncoder().encode(`got ${received.length} bytes`));
      conn.close(); // FIN after the answer
    };
  };

  // a, streams: write() resolves once the bytes are in the send buffer,
  // close() sends FIN after them; the readable ends at b's FIN.
  const sent = new Uint8Array(1024 * 1024).map((_, i) => (i * 7) & 0xff);
  const client = async (): Promise<string> => {
    const conn = await a.tcp.connect('10.0.0.2', 7000);
    const writer = conn.writable.getWriter();
    await writer.write(sent);
    await writer.close();
    const reply = new TextDecoder().decode(concat(await readAll(conn.readable)));
    await conn.closed; // { reason: 'closed' }: a closed first, so it keeps TIME_WAIT
    return reply;
  };

  // Run the virtual clock until the client is done.
  const reply = await sim.complete(client());
  const afterClose = a.stats();
  await sim.complete(sim.sleep(60_000)); // TIME_WAIT (2 * MSL = 60 s) runs out
  const afterTimeWait = a.stats();

  // shutdown() resets whatever is still open and frees every chunk and timer.
  listener.close();
  a.shutdown();
  b.shutdown();
  return { sent, received, reply, afterClose, afterTimeWait };
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return parts;
    parts.push(value);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const engine = (process.argv[2] ?? 'wasm') as EngineName;
  const r = await main(engine);
  const same = r.received.length === r.sent.length && r.received.every((x, i) => x === r.sent[i]);
  console.log(`engine ${engine}: b received ${r.received.length} bytes (${same ? 'intact' : 'DIFFERENT'}), a read "${r.reply}"`);
  const t1 = r.afterClose.tcp;
  const t2 = r.afterTimeWait.tcp;
  console.log(`a after close:     ${t1.connections} connections, ${t1.timeWait} in TIME_WAIT, ${r.afterClose.frames.tx} frames sent`);
  console.log(`a after TIME_WAIT: ${t2.connections} connections, ${t2.timeWait} in TIME_WAIT, ${r.afterTimeWait.arena.chunksInUse} arena chunks in use`);
}
