/**
 * Egress pools and sources: resolution through `get_egress_pool` /
 * `get_egress_source` with ttl caching, the built-in `unspecified` pool and
 * source, and the weighted round robin that picks a source per message.
 *
 * Place on the path: between the scheduled queue and the ready queue. The
 * queue manager keeps one {@link WeightedRoundRobin} per scheduled queue and
 * asks it which source the next message leaves from. Never imports the queue.
 *
 * @module
 */

import type { PolicyEngine } from "../policy/engine.ts";
import { expectConfig } from "../policy/config_object.ts";
import {
  type EgressPool,
  type EgressPoolEntry,
  parseEgressPool,
} from "../policy/config/egress_pool.ts";
import { type EgressSource, parseEgressSource } from "../policy/config/egress_source.ts";

/** Name of the built-in pool and source. */
export const UNSPECIFIED = "unspecified";

const UNSPECIFIED_POOL: EgressPool = {
  name: UNSPECIFIED,
  entries: [{ name: UNSPECIFIED, weight: 1 }],
  ttl: 60_000,
};
const UNSPECIFIED_SOURCE: EgressSource = { name: UNSPECIFIED, ttl: 60_000 } as EgressSource;

/**
 * Resolves pools and sources through the policy, caching each for its ttl.
 *
 * @example
 * ```ts
 * const egress = new EgressResolver(engine);
 * const pool = await egress.pool("pool-2"); // also resolves every source of the pool
 * ```
 */
export class EgressResolver {
  #engine: PolicyEngine;
  #pools = new Map<string, { value: EgressPool; expires: number }>();
  #sources = new Map<string, { value: EgressSource; expires: number }>();
  #now: () => number;

  constructor(engine: PolicyEngine, now: () => number = Date.now) {
    this.#engine = engine;
    this.#now = now;
  }

  /** A pool by name (`undefined`/`unspecified` → built-in); validates its sources. */
  async pool(name: string | undefined): Promise<EgressPool> {
    if (name === undefined || name === UNSPECIFIED) return UNSPECIFIED_POOL;
    const now = this.#now();
    const hit = this.#pools.get(name);
    if (hit && hit.expires > now) return hit.value;
    if (!this.#engine.hasHandler("get_egress_pool")) {
      throw new Error("Event get_egress_pool has not been registered");
    }
    const ret = await this.#engine.callOrThrow("get_egress_pool", "s", [name]);
    if (ret == null) {
      throw new Error(`Cannot resolve egress pool "${name}": get_egress_pool returned nil`);
    }
    const pool = expectConfig(ret, "EgressPool", parseEgressPool, "get_egress_pool");
    for (const e of pool.entries) await this.source(e.name);
    this.#pools.set(name, { value: pool, expires: now + pool.ttl });
    return pool;
  }

  /** A source by name (`unspecified` → built-in). */
  async source(name: string): Promise<EgressSource> {
    if (name === UNSPECIFIED) return UNSPECIFIED_SOURCE;
    const now = this.#now();
    const hit = this.#sources.get(name);
    if (hit && hit.expires > now) return hit.value;
    if (!this.#engine.hasHandler("get_egress_source")) {
      throw new Error("Event get_egress_source has not been registered");
    }
    const ret = await this.#engine.callOrThrow("get_egress_source", "s", [name]);
    if (ret == null) {
      throw new Error(`Cannot resolve egress source "${name}": get_egress_source returned nil`);
    }
    const src = expectConfig(ret, "EgressSource", parseEgressSource, "get_egress_source");
    this.#sources.set(name, { value: src, expires: now + src.ttl });
    return src;
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * Weighted round robin exactly as upstream (LVS WRR): entries of weight 0
 * are dropped; the first pick is the second entry.
 *
 * @example
 * ```ts
 * const rr = new WeightedRoundRobin([{ name: "a", weight: 2 }, { name: "b", weight: 1 }]);
 * rr.next(); // "b", then "a", "a", "b", …
 * ```
 */
export class WeightedRoundRobin {
  readonly entries: readonly EgressPoolEntry[];
  #max = 0;
  #gcd = 0;
  #index = 0;
  #weight = 0;

  constructor(entries: readonly EgressPoolEntry[]) {
    this.entries = entries.filter((e) => e.weight > 0);
    for (const e of this.entries) {
      this.#max = Math.max(this.#max, e.weight);
      this.#gcd = gcd(this.#gcd, e.weight);
    }
  }

  /** True when `entries` carry the same names and weights (config unchanged). */
  sameAs(entries: readonly EgressPoolEntry[]): boolean {
    const live = entries.filter((e) => e.weight > 0);
    return live.length === this.entries.length &&
      live.every((e, i) => e.name === this.entries[i].name && e.weight === this.entries[i].weight);
  }

  /** The next source name, or `undefined` when the pool has no usable entry. */
  next(): string | undefined {
    const entries = this.entries;
    const n = entries.length;
    if (n === 0) return undefined;
    if (n === 1) return entries[0].name;
    for (;;) {
      this.#index = (this.#index + 1) % n;
      if (this.#index === 0) {
        this.#weight -= this.#gcd;
        if (this.#weight <= 0) {
          this.#weight = this.#max;
          if (this.#weight === 0) return undefined;
        }
      }
      if (entries[this.#index].weight >= this.#weight) return entries[this.#index].name;
    }
  }
}
