/**
 * Throttle specs: parse and print KumoMTA rate strings such as `"100/h"`,
 * `"10,000/day"`, `"20/30min"` and `"local:5/s,max_burst=10"`.
 *
 * Used by configuration parsers (queue `max_message_rate`, egress path
 * connection and message rates) before the mail's path starts; the resulting
 * spec feeds a GCRA `Throttle` (`gcra.ts`) on the egress side. Must never
 * accept spaces, plural period names or the word `per`: upstream rejects them.
 *
 * @module
 */

import { ConfigError } from "./config_error.ts";

/** A parsed rate: `limit` events per `periodMs`, bursts up to `maxBurst`. */
export interface ThrottleSpec {
  /** Events allowed per period (> 0). */
  limit: number;
  /** Period in milliseconds (unit × optional multiplier). */
  periodMs: number;
  /** Burst size; defaults to `limit` when `,max_burst=` is absent. */
  maxBurst: number;
  /** `local:` prefix: never share this throttle through redis. */
  local: boolean;
  /** Canonical text form, e.g. `"local:20/30m,max_burst=5"`. */
  text: string;
}

const PERIOD_SECONDS: Readonly<Record<string, number>> = {
  s: 1,
  sec: 1,
  second: 1,
  m: 60,
  min: 60,
  minute: 60,
  h: 3600,
  hr: 3600,
  hour: 3600,
  d: 86400,
  day: 86400,
};

const DIGITS = /^[0-9]+$/;
const MULTIPLIED_PERIOD = /^([0-9]+)([a-z]+)$/;

/**
 * Parse `[local:]LIMIT/[N]PERIOD[,max_burst=B]`.
 *
 * @param s the Lua/JSON value (must be a string)
 * @param key dotted key of the value, for the error
 * @throws {ConfigError} naming the value when it does not match
 *
 * @example
 * ```ts
 * parseThrottleSpec("20/30min"); // { limit: 20, periodMs: 1_800_000, maxBurst: 20, ... }
 * ```
 */
export function parseThrottleSpec(s: unknown, key?: string): ThrottleSpec {
  if (typeof s !== "string") {
    throw new ConfigError(
      `Cannot parse throttle ${
        s === undefined || s === null ? "nil" : `(${typeof s})`
      }: expected a string like "100/h"`,
      { key },
    );
  }
  const fail = (why: string): never => {
    throw new ConfigError(`Cannot parse throttle "${s}": ${why}`, { key });
  };
  let rest = s;
  let local = false;
  if (rest.startsWith("local:")) {
    local = true;
    rest = rest.slice(6);
  }
  let burst: number | undefined;
  const burstAt = rest.indexOf(",max_burst=");
  if (burstAt >= 0) {
    const b = rest.slice(burstAt + 11);
    rest = rest.slice(0, burstAt);
    if (!DIGITS.test(b)) fail(`invalid max_burst "${b}"`);
    burst = Number(b);
    if (burst === 0) fail("max_burst must be greater than 0");
  }
  const slash = rest.indexOf("/");
  if (slash < 0) fail("expected 'limit/period'");
  const limitText = rest.slice(0, slash).replace(/[_,]/g, "");
  const periodText = rest.slice(slash + 1);
  if (!DIGITS.test(limitText)) fail(`invalid limit "${rest.slice(0, slash)}"`);
  const limit = Number(limitText);
  if (limit === 0 || !Number.isSafeInteger(limit)) fail("limit must be greater than 0");
  let periodSeconds = PERIOD_SECONDS[periodText];
  if (periodSeconds === undefined) {
    const m = MULTIPLIED_PERIOD.exec(periodText);
    const unit = m ? PERIOD_SECONDS[m[2]] : undefined;
    if (!m || unit === undefined) fail(`unknown period quantity "${periodText}"`);
    const mult = Number(m![1]);
    if (mult === 0) fail("period multiplier must be greater than 0");
    periodSeconds = mult * unit!;
  }
  const spec: ThrottleSpec = {
    limit,
    periodMs: periodSeconds * 1000,
    maxBurst: burst ?? limit,
    local,
    text: "",
  };
  spec.text = formatThrottleSpec(spec, burst !== undefined);
  return spec;
}

/**
 * Print a spec in canonical form: `[local:]LIMIT/[N]UNIT[,max_burst=B]`,
 * with the largest unit (d, h, m, s) that divides the period.
 *
 * @param spec the spec to print
 * @param withBurst print `,max_burst=` (default: only when it differs from `limit`)
 *
 * @example
 * ```ts
 * formatThrottleSpec({ limit: 20, periodMs: 1_800_000, maxBurst: 20, local: false }); // "20/30m"
 * ```
 */
export function formatThrottleSpec(
  spec: Pick<ThrottleSpec, "limit" | "periodMs" | "maxBurst" | "local">,
  withBurst = spec.maxBurst !== spec.limit,
): string {
  const secs = Math.max(1, Math.round(spec.periodMs / 1000));
  let unit = "s";
  let mult = secs;
  for (const [name, size] of [["d", 86400], ["h", 3600], ["m", 60]] as const) {
    if (secs % size === 0) {
      unit = name;
      mult = secs / size;
      break;
    }
  }
  return `${spec.local ? "local:" : ""}${spec.limit}/${mult === 1 ? "" : mult}${unit}${
    withBurst ? `,max_burst=${spec.maxBurst}` : ""
  }`;
}
