/**
 * SpoolConfig: the typed result of `kumo.define_spool { ... }` (lua-api §5.3),
 * plus the `min_free_space` / `min_free_inodes` threshold kind shared with
 * local logs.
 *
 * Converted once at startup and handed to `spool/`. Never creates the
 * directory here.
 *
 * @module
 */

import {
  anyJson,
  bool,
  convert,
  custom,
  describeFound,
  dflt,
  enumOf,
  fail,
  type Kind,
  object,
  opt,
  req,
  string,
} from "./schema.ts";

/** A free-space floor: a percentage of the filesystem, or an absolute amount. */
export type MinFree = { percent: number } | { absolute: number };

/** `"N%"` (0..100) or a non-negative number; JSON form is the same. */
export const MIN_FREE: Kind<MinFree> = custom<MinFree>(
  'a percentage string like "10%" or a number',
  (v, cx) => {
    if (typeof v === "number" && Number.isInteger(v) && v >= 0) return { absolute: v };
    if (typeof v === "string") {
      const m = /^([0-9]{1,3})%$/.exec(v);
      if (m && Number(m[1]) <= 100) return { percent: Number(m[1]) };
      fail(cx, `invalid value: string ${JSON.stringify(v)}, expected a percentage like "10%"`);
    }
    return fail(cx, `invalid type: ${describeFound(v)}, expected "N%" or a number`);
  },
  (x) => ("percent" in x ? `${x.percent}%` : x.absolute),
);

/** A converted spool definition. */
export interface SpoolConfig {
  /** `"data"` or `"meta"` (others are ignored by the caller). */
  name: string;
  path: string;
  /** @default "LocalDisk" */
  kind: "LocalDisk" | "RocksDB";
  /** fsync after each write. @default false */
  flush: boolean;
  /** RocksDB tuning: accepted and ignored. */
  rocksParams?: unknown;
  /** @default 10% */
  minFreeSpace: MinFree;
  /** @default 10% */
  minFreeInodes: MinFree;
}

/** The schema of `define_spool`. */
export const SPOOL = object({
  name: req(string()),
  path: req(string()),
  kind: dflt(enumOf(["LocalDisk", "RocksDB"] as const), "LocalDisk"),
  flush: dflt(bool(), false),
  rocks_params: opt(anyJson()),
  min_free_space: dflt(MIN_FREE, (): MinFree => ({ percent: 10 })),
  min_free_inodes: dflt(MIN_FREE, (): MinFree => ({ percent: 10 })),
}, { name: "DefineSpoolParams" });

/**
 * Convert a `define_spool` table.
 *
 * @example
 * ```ts
 * parseSpool({ name: "data", path: "/var/spool/kumo/data" }).kind; // "LocalDisk"
 * ```
 */
export function parseSpool(input: unknown): SpoolConfig {
  return convert(SPOOL, input);
}

/** The JSON/Lua-readable form. */
export function spoolToJSON(x: SpoolConfig): Record<string, unknown> {
  return SPOOL.toJSON(x);
}
