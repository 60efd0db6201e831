/**
 * The process-wide caches behind `kumo.memoize`.
 *
 * Place on the path: policy. Every Lua context shares these caches (keyed by
 * cache name); values are stored as the marshalled copy the prelude hands
 * over, and handed back as a fresh copy, so no context can mutate another's
 * value. Errors are never cached (the prelude only stores successful results).
 *
 * @module
 */

/** Parsed options of one cache. */
export interface MemoizeOptions {
  name: string;
  ttlMs: number;
  capacity: number;
  invalidateWithEpoch: boolean;
}

interface Entry {
  value: unknown;
  expires: number;
  epoch: number;
}

/** One LRU cache with a TTL. */
export class MemoCache {
  readonly options: MemoizeOptions;
  #map = new Map<string, Entry>();
  constructor(options: MemoizeOptions) {
    this.options = options;
  }

  /** Returns [found, value]. */
  get(key: string, epoch: number, now = Date.now()): [boolean, unknown] {
    const e = this.#map.get(key);
    if (!e) return [false, undefined];
    if (e.expires <= now || (this.options.invalidateWithEpoch && e.epoch !== epoch)) {
      this.#map.delete(key);
      return [false, undefined];
    }
    // refresh LRU position
    this.#map.delete(key);
    this.#map.set(key, e);
    return [true, e.value];
  }

  /** Store `value` under `key` for the TTL, evicting the least recently used beyond capacity. */
  put(key: string, value: unknown, epoch: number, now = Date.now()): void {
    this.#map.delete(key);
    this.#map.set(key, { value, expires: now + this.options.ttlMs, epoch });
    while (this.#map.size > this.options.capacity) {
      const oldest = this.#map.keys().next().value as string;
      this.#map.delete(oldest);
    }
  }

  /** How many entries are cached (expired ones included until looked up). */
  get size(): number {
    return this.#map.size;
  }
}

/** All caches by name; the same name gives the same cache. */
export class MemoRegistry {
  #caches = new Map<string, MemoCache>();

  /** Returns the cache for these options; changed options replace it. */
  define(options: MemoizeOptions): MemoCache {
    const existing = this.#caches.get(options.name);
    if (
      existing && existing.options.ttlMs === options.ttlMs &&
      existing.options.capacity === options.capacity &&
      existing.options.invalidateWithEpoch === options.invalidateWithEpoch
    ) return existing;
    const cache = new MemoCache(options);
    this.#caches.set(options.name, cache);
    return cache;
  }
}
