// The order in which a stress run starts its 2N clients: shuffled, as the
// seed's script shuffles its commands, with at most `concurrency` running.
//
// A plain bound can deadlock: if every running client's partner is still
// queued, nobody can finish (the seed's `parallel -j MAX` has that risk when
// the first MAX commands hold no complete pair). So clients whose partner is
// not running ("open" ones) may hold at most half the slots; beyond that the
// next client started is the first queued one whose partner runs. When all
// slots are full, at least half hold complete pairs, so some client can
// always finish and the run progresses (each client's own timeout bounds the
// rest). It also keeps slots busy with pairs that can finish: an open client
// only waits, and costs every receiver a PBKDF2 (docs/bob-protocol.md §4.6).

export type Role = 'send' | 'recv';

export interface Slot {
  readonly pair: number;
  readonly role: Role;
}

export type RandomInt = (maxExclusive: number) => number;

const cryptoInt: RandomInt = (max) => {
  // Rejection sampling over 32 bits: uniform for any max below 2^32.
  const limit = 0x1_0000_0000 - (0x1_0000_0000 % max);
  for (;;) {
    const value = crypto.getRandomValues(new Uint32Array(1))[0];
    if (value < limit) return value % max;
  }
};

export class StartSchedule {
  readonly #queue: Slot[];
  readonly #concurrency: number;
  readonly #running = new Set<string>();

  constructor(pairs: number, concurrency: number, randomInt: RandomInt = cryptoInt) {
    if (!Number.isInteger(concurrency) || concurrency < 2) throw new RangeError(`concurrency must be an integer >= 2, got ${concurrency}`);
    const slots: Slot[] = [];
    for (let pair = 0; pair < pairs; pair++) slots.push({ pair, role: 'send' }, { pair, role: 'recv' });
    this.#queue = shuffle(slots, randomInt);
    this.#concurrency = concurrency;
  }

  get queued(): number {
    return this.#queue.length;
  }

  get running(): number {
    return this.#running.size;
  }

  /** The next client to start now, or null (queue empty or no free slot). */
  next(): Slot | null {
    if (this.#queue.length === 0 || this.#running.size >= this.#concurrency) return null;
    const index = this.#openCount() < this.#concurrency / 2 ? 0 : this.#partnerIndex();
    const [slot] = this.#queue.splice(index, 1);
    this.#running.add(key(slot));
    return slot;
  }

  finished(slot: Slot): void {
    this.#running.delete(key(slot));
  }

  /** Running clients whose partner is not running. */
  #openCount(): number {
    let open = 0;
    for (const k of this.#running) {
      const [pair, role] = k.split(':');
      if (!this.#running.has(`${pair}:${role === 'send' ? 'recv' : 'send'}`)) open++;
    }
    return open;
  }

  /** The first queued client whose partner runs (0 if none does). */
  #partnerIndex(): number {
    const index = this.#queue.findIndex((slot) => this.#running.has(key(partner(slot))));
    return index < 0 ? 0 : index;
  }
}

function partner(slot: Slot): Slot {
  return { pair: slot.pair, role: slot.role === 'send' ? 'recv' : 'send' };
}

function key(slot: Slot): string {
  return `${slot.pair}:${slot.role}`;
}

/** Fisher-Yates. */
function shuffle<T>(items: T[], randomInt: RandomInt): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}
