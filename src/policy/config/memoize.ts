/**
 * MemoizeOptions: the typed options table of `kumo.memoize(fn, { ... })`
 * (lua-api §8).
 *
 * Converted at policy load; the memoize cache in `policy/` uses it for every
 * cached call. Never creates the cache here.
 *
 * @module
 */

import { bool, convert, dflt, duration, int, object, req, string } from "./schema.ts";

/** Converted memoize options. Durations in ms. */
export interface MemoizeOptions {
  /** Cache name: same name ⇒ same process-wide cache. */
  name: string;
  /** Entry lifetime (ms). */
  ttl: number;
  /** Maximum entries. */
  capacity: number;
  /** Drop entries when the config epoch changes. @default false */
  invalidateWithEpoch: boolean;
  /** @default 120_000 */
  populateTimeout: number;
  /** @default false */
  retryOnPopulateTimeout: boolean;
  /** @default false */
  allowStaleReads: boolean;
}

/** The schema of the memoize options table. */
export const MEMOIZE = object({
  name: req(string()),
  ttl: req(duration()),
  capacity: req(int({ min: 1, name: "usize" })),
  invalidate_with_epoch: dflt(bool(), false),
  populate_timeout: dflt(duration(), 120_000),
  retry_on_populate_timeout: dflt(bool(), false),
  allow_stale_reads: dflt(bool(), false),
}, { name: "MemoizeParams" });

/**
 * Convert the memoize options table.
 *
 * @example
 * ```ts
 * parseMemoize({ name: "x", ttl: "2 seconds", capacity: 4 }).ttl; // 2000
 * ```
 */
export function parseMemoize(input: unknown): MemoizeOptions {
  return convert(MEMOIZE, input);
}

/** The JSON/Lua-readable form. */
export function memoizeToJSON(x: MemoizeOptions): Record<string, unknown> {
  return MEMOIZE.toJSON(x);
}
