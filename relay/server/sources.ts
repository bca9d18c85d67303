// What each source address holds of a bounded table (registrations, rooms),
// so that one address cannot take a table from the others (limits.ts,
// "Fairness between source addresses"). A source is the IP part of a socket's
// identity; items are kept per source in insertion order, oldest first.

/** The address part of `ip:port` (IPv6 is unbracketed, so cut at the last colon). */
export function ipOf(identity: string): string {
  const colon = identity.lastIndexOf(':');
  return colon < 0 ? identity : identity.slice(0, colon);
}

export class SourceShares<T> {
  private readonly bySource = new Map<string, Set<T>>();

  /** Sources holding at least one item (a gauge: 0 once the table is empty). */
  get sources(): number {
    return this.bySource.size;
  }

  /** How many items `source` holds. */
  count(source: string): number {
    return this.bySource.get(source)?.size ?? 0;
  }

  add(source: string, item: T): void {
    let items = this.bySource.get(source);
    if (items === undefined) {
      items = new Set();
      this.bySource.set(source, items);
    }
    items.add(item);
  }

  delete(source: string, item: T): void {
    const items = this.bySource.get(source);
    if (items === undefined) return;
    items.delete(item);
    // An emptied source is forgotten, so the map never outgrows the table.
    if (items.size === 0) this.bySource.delete(source);
  }

  /**
   * The items of the source holding the most, oldest first, if it holds more
   * than `than`: the one a newcomer holding `than` may take a slot from.
   * A scan over the sources, run only when the table is full.
   */
  largestAbove(than: number): ReadonlySet<T> | null {
    let largest: Set<T> | null = null;
    for (const items of this.bySource.values()) {
      if (items.size > (largest?.size ?? than)) largest = items;
    }
    return largest;
  }
}
