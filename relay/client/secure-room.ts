// Joining the secure room on the relay's second port (docs/bob-protocol.md §3):
// write the OTHER peer's identity and "\n", read exactly 2 bytes: the ASCII
// text "00" paired, "01" timeout, "02" invalid peer (two digit characters,
// 0x30 0x30 and so on, as bob's relay writes and its peers compare them);
// nothing else is sent before "00".
// The relay may pipe the partner's first bytes in the same read as the
// status, so whatever follows the 2 bytes is handed back to the caller.
import { CONNECT_TIMEOUT_MS } from './defaults.js';
import type { Deadline } from './endpoint.js';
import { BobError, ExitCode } from './errors.js';
import { Connection, connectTcp, withDeadline } from './socket.js';

const PAIRED = '00';
const TIMED_OUT = '01';
const INVALID_PEER = '02';

export interface Room {
  readonly connection: Connection;
  /** Bytes the partner sent that arrived with the status. */
  readonly leftover: Uint8Array;
}

/** Connects to the secure-room port (same IP as the handshake, §3) and waits, until the deadline, for the partner. */
export async function enterSecureRoom(
  ip: string,
  port: number,
  peer: { identity: Uint8Array; text: string },
  deadline: Deadline,
  signal?: AbortSignal,
  localAddress?: string,
): Promise<Room> {
  const connection = new Connection(await connectTcp(ip, port, deadline.cap(CONNECT_TIMEOUT_MS), signal, localAddress));
  try {
    const timeout = () => new BobError(ExitCode.Timeout, `Timeout: ${peer.text} never joined the secure room`);
    const leftover = await withDeadline(connection, deadline.remaining(), timeout, () => joinSecureRoom(connection, peer.identity), signal);
    return { connection, leftover };
  } catch (error) {
    connection.destroy();
    throw error;
  }
}

export async function joinSecureRoom(connection: Connection, peerIdentity: Uint8Array): Promise<Uint8Array> {
  const line = new Uint8Array(peerIdentity.length + 1);
  line.set(peerIdentity, 0);
  line[peerIdentity.length] = 0x0a;
  await connection.write(line);
  let received: Uint8Array = new Uint8Array(0);
  while (received.length < 2) {
    const chunk = await connection.read();
    if (chunk === null) throw new BobError(ExitCode.Failure, 'Connection closed by relay (secure room)');
    received = concat(received, chunk);
  }
  checkStatus(received.subarray(0, 2));
  return received.subarray(2);
}

/** Throws for any status but "00". */
function checkStatus(bytes: Uint8Array): void {
  const status = String.fromCharCode(bytes[0], bytes[1]);
  if (status === PAIRED) return;
  if (status === TIMED_OUT) throw new BobError(ExitCode.Timeout, 'Timeout (the relay paired nobody with us in the secure room)');
  if (status === INVALID_PEER) throw new BobError(ExitCode.Failure, 'Invalid peer (the relay did not recognise the pair)');
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new BobError(ExitCode.Failure, `Invalid response from relay (secure room status ${hex})`);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
