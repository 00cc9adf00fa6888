/**
 * A small per-isolate cache of credential lookups, so a connect storm does not become a D1 storm.
 *
 * The bound it gives: an entry is trusted for at most KEY_CACHE_TTL_MS after it was read from D1.
 * A key revoked (or an account disabled, or a limit changed) through another isolate therefore
 * stops working everywhere within KEY_CACHE_TTL_MS; the isolate that served the admin call drops
 * its entries at once (`invalidateAccount`).
 */

/**
 * 5 s: a revoked key must stop working quickly, and a burst of connects from one client (the
 * expensive case for D1) lands within a second or two; 5 s covers the burst with one lookup.
 */
export const KEY_CACHE_TTL_MS = 5_000;
/**
 * Entries per isolate. One entry is a 64-character hash or ~20-character key id plus a record of a
 * few short strings and numbers, roughly 300 bytes: 1 000 × 300 B ≈ 300 KB, well under 1% of the
 * 128 MB isolate. At the cap the oldest entry is dropped (it only costs a D1 read later).
 */
export const KEY_CACHE_MAX_ENTRIES = 1_000;

export class TtlCache<V> {
  readonly #entries = new Map<string, { value: V; expiresAt: number; tag: string }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  /** The cached value, or undefined when absent or older than the TTL. */
  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (this.now() >= entry.expiresAt) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Stores `value`; `tag` groups entries for `deleteTag` (the account id). */
  set(key: string, value: V, tag: string): void {
    this.#entries.delete(key);
    while (this.#entries.size >= this.maxEntries) {
      // Map iterates in insertion order: the first key is the oldest entry.
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { value, expiresAt: this.now() + this.ttlMs, tag });
  }

  /** Drops every entry stored with `tag`. O(entries), bounded by maxEntries. */
  deleteTag(tag: string): void {
    for (const [key, entry] of this.#entries) {
      if (entry.tag === tag) this.#entries.delete(key);
    }
  }

  clear(): void {
    this.#entries.clear();
  }
}
