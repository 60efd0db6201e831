/**
 * Durations: parse operator durations (seconds as numbers, humantime strings)
 * into milliseconds, and print milliseconds back in humantime form.
 *
 * Used by every configuration parser (listener timeouts, queue retry
 * intervals, egress path timeouts, memoize ttls) before the mail's path
 * starts; never on a per-message path. Must never accept a sign, a fraction
 * inside a string, or an unknown unit: a typo in a timeout must stop startup.
 *
 * @module
 */

import { ConfigError } from "./config_error.ts";

const MS_PER_SECOND = 1000;
const MONTH_SECONDS = 2_630_016; // 30.44 days, as humantime counts a month
const YEAR_SECONDS = 31_557_600; // 365.25 days, as humantime counts a year

/** Unit name → milliseconds per unit (case-sensitive, humantime's list). */
const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  nsec: 1e-6,
  nanos: 1e-6,
  us: 1e-3,
  usec: 1e-3,
  "µs": 1e-3,
  ms: 1,
  msec: 1,
  millis: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hrs: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  wk: 604_800_000,
  wks: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
  M: MONTH_SECONDS * 1000,
  month: MONTH_SECONDS * 1000,
  months: MONTH_SECONDS * 1000,
  y: YEAR_SECONDS * 1000,
  yr: YEAR_SECONDS * 1000,
  yrs: YEAR_SECONDS * 1000,
  year: YEAR_SECONDS * 1000,
  years: YEAR_SECONDS * 1000,
};

/**
 * One `<int><unit>` item. As humantime's parser, whitespace may surround the
 * number and the unit and is skipped inside the number too (`"1 0m"` is 10
 * minutes); a digit right after a unit starts the next item (`"1h30m"`).
 */
const ITEM = /\s*([0-9][0-9\s]*)([A-Za-zµ]+)\s*/y;

/**
 * Parse a duration into milliseconds.
 *
 * A number is seconds (integer or float, not negative). A string follows
 * humantime: one or more `<int><unit>` items with optional spaces
 * (`"5 minutes"`, `"1h30m"`, humantime's `"1 0m"` = 10 minutes), integers
 * only, no sign; a bare `"0"` is zero.
 *
 * @param value the Lua/JSON value
 * @param key dotted key of the value, for the error
 * @returns milliseconds (fractional below 1 ms for `us`/`ns` units)
 * @throws {ConfigError} for anything else, naming the value
 *
 * @example
 * ```ts
 * parseDuration("1h 30m"); // 5_400_000
 * parseDuration(1.5); // 1500
 * ```
 */
export function parseDuration(value: unknown, key?: string): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) {
      throw new ConfigError(
        `Cannot parse duration ${String(value)}: seconds must be a finite non-negative number`,
        { key },
      );
    }
    return value * MS_PER_SECOND;
  }
  if (typeof value !== "string") {
    throw new ConfigError(
      `Cannot parse duration ${
        describe(value)
      }: expected a number of seconds or a string like "5m"`,
      { key },
    );
  }
  if (value === "0") return 0;
  let total = 0;
  let pos = 0;
  if (value.trim() === "") {
    throw new ConfigError(`Cannot parse duration "${value}": value is empty`, { key });
  }
  while (pos < value.length) {
    ITEM.lastIndex = pos;
    const m = ITEM.exec(value);
    if (m === null) {
      throw new ConfigError(
        `Cannot parse duration "${value}": expected <integer><unit> at offset ${pos}`,
        { key },
      );
    }
    const perUnit = UNIT_MS[m[2]];
    if (perUnit === undefined) {
      throw new ConfigError(
        `Cannot parse duration "${value}": unknown time unit "${m[2]}"`,
        { key },
      );
    }
    total += Number(m[1].replace(/\s+/g, "")) * perUnit;
    pos = ITEM.lastIndex;
  }
  if (!Number.isFinite(total)) {
    throw new ConfigError(`Cannot parse duration "${value}": number is too large`, { key });
  }
  return total;
}

/**
 * Print milliseconds the way humantime's `format_duration` does:
 * `"20m"`, `"1h 30m"`, `"7days"`, `"1s 500ms"`, `"1year 2months"`, `"0s"`.
 *
 * @example
 * ```ts
 * formatDuration(5_400_000); // "1h 30m"
 * ```
 */
export function formatDuration(ms: number): string {
  if (!(ms > 0)) return "0s";
  let secs = Math.floor(ms / MS_PER_SECOND);
  let nanos = Math.round((ms - secs * MS_PER_SECOND) * 1e6);
  if (nanos >= 1e9) {
    secs += 1;
    nanos -= 1e9;
  }
  if (secs === 0 && nanos === 0) return "0s";
  const years = Math.floor(secs / YEAR_SECONDS);
  const ydays = secs % YEAR_SECONDS;
  const months = Math.floor(ydays / MONTH_SECONDS);
  const mdays = ydays % MONTH_SECONDS;
  const days = Math.floor(mdays / 86400);
  const daySecs = mdays % 86400;
  const parts: string[] = [];
  plural(parts, years, "year");
  plural(parts, months, "month");
  plural(parts, days, "day");
  item(parts, Math.floor(daySecs / 3600), "h");
  item(parts, Math.floor((daySecs % 3600) / 60), "m");
  item(parts, daySecs % 60, "s");
  item(parts, Math.floor(nanos / 1e6), "ms");
  item(parts, Math.floor(nanos / 1000) % 1000, "us");
  item(parts, nanos % 1000, "ns");
  return parts.join(" ");
}

function plural(parts: string[], n: number, name: string): void {
  if (n > 0) parts.push(`${n}${name}${n > 1 ? "s" : ""}`);
}

function item(parts: string[], n: number, name: string): void {
  if (n > 0) parts.push(`${n}${name}`);
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return "nil";
  if (typeof value === "object") return Array.isArray(value) ? "(an array)" : "(a table)";
  return `(${typeof value})`;
}
