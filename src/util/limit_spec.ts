/**
 * Limit specs: parse concurrency limits such as `connection_limit = 32` or
 * `"local:1_000"`.
 *
 * Used by egress path configuration before the mail's path starts; the
 * result caps concurrent connections per (source, site). Must never accept 0.
 *
 * @module
 */

import { ConfigError } from "./config_error.ts";

/** A parsed limit. */
export interface LimitSpec {
  /** Maximum concurrent holders (≥ 1). */
  limit: number;
  /** `local:` prefix: never share this limit through redis. */
  local: boolean;
}

/**
 * Parse an integer ≥ 1 or a string `"[local:]N"` (N may contain `,`/`_`).
 *
 * @throws {ConfigError} naming the value
 *
 * @example
 * ```ts
 * parseLimitSpec("local:1,000"); // { limit: 1000, local: true }
 * ```
 */
export function parseLimitSpec(v: unknown, key?: string): LimitSpec {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new ConfigError(`Cannot parse limit ${v}: must be an integer of at least 1`, { key });
    }
    return { limit: v, local: false };
  }
  if (typeof v !== "string") {
    throw new ConfigError(
      `Cannot parse limit ${
        v === null || v === undefined ? "nil" : `(${typeof v})`
      }: expected an integer or a string like "local:10"`,
      { key },
    );
  }
  let rest = v;
  let local = false;
  if (rest.startsWith("local:")) {
    local = true;
    rest = rest.slice(6);
  }
  const digits = rest.replace(/[_,]/g, "");
  if (!/^[0-9]+$/.test(digits)) {
    throw new ConfigError(`Cannot parse limit "${v}": expected [local:]N`, { key });
  }
  const limit = Number(digits);
  if (limit < 1 || !Number.isSafeInteger(limit)) {
    throw new ConfigError(`Cannot parse limit "${v}": limit must be at least 1`, { key });
  }
  return { limit, local };
}

/**
 * The JSON/Lua form: a plain number, or `"local:N"`.
 *
 * @example
 * ```ts
 * formatLimitSpec({ limit: 5, local: true }); // "local:5"
 * ```
 */
export function formatLimitSpec(spec: LimitSpec): number | string {
  return spec.local ? `local:${spec.limit}` : spec.limit;
}
