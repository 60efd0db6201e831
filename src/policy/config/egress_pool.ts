/**
 * EgressPool: the typed result of `kumo.make_egress_pool { ... }`
 * (lua-api §6.2) — a weighted set of egress sources.
 *
 * Built by the `get_egress_pool` binding; `egress/` picks a source per ready
 * queue by weighted round-robin. Conversion only: never resolves the named
 * sources here.
 *
 * @module
 */

import { array, convert, dflt, duration, int, object, req, string } from "./schema.ts";

/** One pool member. */
export interface EgressPoolEntry {
  /** Egress source name. */
  name: string;
  /** Relative weight; 0 = never used. @default 1 */
  weight: number;
}

/** A converted egress pool. */
export interface EgressPool {
  name: string;
  /** @default [] — an empty pool fails every message transiently. */
  entries: EgressPoolEntry[];
  /** Cache lifetime (ms). @default 60_000 */
  ttl: number;
}

const ENTRY = object({
  name: req(string()),
  weight: dflt(int({ max: 0xffffffff, name: "u32" }), 1),
}, { name: "EgressPoolEntry" });

/** The schema of `make_egress_pool`. */
export const EGRESS_POOL = object({
  name: req(string()),
  entries: dflt(array(ENTRY), () => []),
  ttl: dflt(duration(), 60_000),
}, { name: "EgressPool" });

/**
 * Convert a `make_egress_pool` table.
 *
 * @example
 * ```ts
 * parseEgressPool({ name: "p", entries: [{ name: "ip-1" }] }).entries[0].weight; // 1
 * ```
 */
export function parseEgressPool(input: unknown): EgressPool {
  return convert(EGRESS_POOL, input);
}

/** The JSON/Lua-readable form. */
export function egressPoolToJSON(x: EgressPool): Record<string, unknown> {
  return EGRESS_POOL.toJSON(x);
}
