// Runs a handshake machine over a 9000 connection: decodes the packets as
// TCP delivers them (bounded decoder, §1), writes each step's replies in
// order, asks the user when the machine needs an answer, and ends with the
// pairing or a BobError. EOF or a malformed packet from the relay ends it.
// The machine's deferred work (a receiver's PBKDF2s) runs between reads, so
// the deadline, an abort, and packets such as 09 or 0f are seen during it.
import { HandshakeDecoder } from '../handshake/decoder.js';
import { type Frame, encodeFrame } from '../handshake/packet.js';
import { CONNECT_TIMEOUT_MS } from './defaults.js';
import type { Deadline } from './endpoint.js';
import { BobError, ExitCode } from './errors.js';
import { type HandshakeMachine, type Paired, type Question, type Step, hexUid, relayClosedError } from './handshake-common.js';
import type { Logger } from './log.js';
import { Connection, connectTcp, withDeadline } from './socket.js';

export interface PairOptions extends DriverOptions {
  readonly deadline: Deadline;
  readonly signal?: AbortSignal;
  /** Our address for the connection (RelayEndpoint.localAddress). */
  readonly localAddress?: string;
}

/**
 * Connects to the relay's handshake port and runs `machine` until it pairs;
 * at the deadline the machine says why it gives up (§7: bob never does).
 * Like bob, closes the handshake connection once done (§2.4).
 */
export async function pairThroughRelay(ip: string, port: number, machine: HandshakeMachine, options: PairOptions): Promise<Paired> {
  const { deadline, log, signal } = options;
  log.debug(`connecting to the relay at ${ip}:${port}`);
  const connection = new Connection(await connectTcp(ip, port, deadline.cap(CONNECT_TIMEOUT_MS), signal, options.localAddress));
  try {
    const giveUp = () => machine.giveUp(deadline.seconds ?? 0);
    return await withDeadline(connection, deadline.remaining(), giveUp, () => runHandshake(connection, machine, options), signal);
  } finally {
    connection.end();
  }
}

export interface DriverOptions {
  readonly log: Logger;
  /** Called for a receiver's question; returns the packets answering it. */
  readonly ask?: (question: Question) => Promise<Frame[]>;
}

export async function runHandshake(connection: Connection, machine: HandshakeMachine, options: DriverOptions): Promise<Paired> {
  const decoder = new HandshakeDecoder();
  // Ends the machine's deferred work with the handshake, however it ends.
  const stop = new AbortController();
  let reading: Promise<Uint8Array | null> | null = null;
  let working: Promise<Step> | null = null;
  await sendFrames(connection, machine.start(), options.log);
  try {
    for (;;) {
      // A read stays pending while work runs, so a deadline or an abort
      // (connection.fail) rejects it and ends the handshake mid-work.
      reading ??= connection.read();
      working ??= machine.work?.(stop.signal) ?? null;
      const event = await nextEvent(reading, working);
      if (event.kind === 'work') {
        working = null;
        const paired = await applyStep(connection, event.step, options);
        if (paired !== null) return paired;
        continue;
      }
      reading = null;
      if (event.chunk === null) {
        const error = decoder.end();
        if (error !== null) options.log.debug(error.message);
        throw relayClosedError();
      }
      const { frames, error } = decoder.push(event.chunk);
      for (const frame of frames) {
        if (options.log.debugEnabled) options.log.debug(`<- ${hexUid(frame.uid)} ${frame.packet.name}`);
        const paired = await applyStep(connection, machine.handle(frame), options);
        if (paired !== null) return paired;
      }
      if (error !== null) throw new BobError(ExitCode.Failure, `Invalid packet from the relay: ${error.kind} (${error.message})`);
    }
  } finally {
    stop.abort();
    // Whatever is still pending settles unobserved: its outcome no longer matters.
    reading?.catch(() => {});
    working?.catch(() => {});
  }
}

type DriverEvent = { kind: 'read'; chunk: Uint8Array | null } | { kind: 'work'; step: Step };

function nextEvent(reading: Promise<Uint8Array | null>, working: Promise<Step> | null): Promise<DriverEvent> {
  const read = reading.then((chunk): DriverEvent => ({ kind: 'read', chunk }));
  if (working === null) return read;
  return Promise.race([read, working.then((step): DriverEvent => ({ kind: 'work', step }))]);
}

/** Sends a step's packets, then pairs, fails, or asks the user as it says. */
async function applyStep(connection: Connection, step: Step, options: DriverOptions): Promise<Paired | null> {
  await sendFrames(connection, step.send, options.log);
  if (step.error) throw step.error;
  if (step.paired) return step.paired;
  if (step.ask) {
    if (options.ask === undefined) throw new BobError(ExitCode.Internal, 'Internal error: nobody to ask');
    await sendFrames(connection, await options.ask(step.ask), options.log);
  }
  return null;
}

async function sendFrames(connection: Connection, frames: readonly Frame[], log: Logger): Promise<void> {
  for (const frame of frames) {
    if (log.debugEnabled) log.debug(`-> ${hexUid(frame.uid)} ${frame.packet.name}`);
    await connection.write(encodeFrame(frame));
  }
}
