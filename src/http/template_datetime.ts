/**
 * The date/time helpers of MiniJinja's contrib crate that KumoMTA's
 * templates have (http-api.md §3.4): `now()` (a UNIX timestamp, float
 * seconds, UTC) and the filters `datetimeformat`, `dateformat`,
 * `timeformat` with their `format` (`short`, `medium`, `long`, `full`,
 * `iso`, `unix`, or a `time`-crate format description, version 2) and `tz`
 * (an IANA zone name, or `original`) keyword arguments.
 *
 * Values: a number (UNIX seconds), an ISO 8601 string (with an offset, a
 * naive date-time taken in `tz` or UTC, or a date), or an array
 * `[year, month, day]` / `[year, month, day, hour, minute, second]`.
 * The context variables `DATETIME_FORMAT`, `DATE_FORMAT`, `TIME_FORMAT`
 * and `TIMEZONE` of upstream are not read: filters in minijinja-js do not
 * see the template state.
 *
 * Place on the path: registered on each inject template environment by
 * `inject_templates.ts`. Pure apart from the clock; bad input throws a
 * `RangeError` (the caller turns it into that recipient's failure).
 *
 * @module
 */

import { MONTHS_LONG, WEEKDAYS_LONG } from "../util/calendar.ts";

/** A point in time with the UTC offset it is shown in. */
export interface ZonedTime {
  /** Whole seconds since the epoch (UTC). */
  secs: number;
  /** Nanoseconds within the second, 0..999999999. */
  nanos: number;
  /** Offset from UTC in minutes. */
  offsetMin: number;
  /** False for a date without a time. */
  hasTime: boolean;
}

const zoneCache = new Map<string, Intl.DateTimeFormat>();

function zoneFormat(tz: string): Intl.DateTimeFormat {
  let f = zoneCache.get(tz);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat("en-US", {
        timeZone: tz,
        hourCycle: "h23",
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
      });
    } catch {
      throw new RangeError(`unknown timezone '${tz}'`);
    }
    zoneCache.set(tz, f);
  }
  return f;
}

/** The offset (minutes) of zone `tz` at `secs`. */
export function zoneOffsetMinutes(tz: string, secs: number): number {
  const parts: Record<string, number> = {};
  for (const p of zoneFormat(tz).formatToParts(new Date(secs * 1000))) {
    if (p.type !== "literal") parts[p.type] = Number(p.value);
  }
  const local =
    Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second) /
    1000;
  return Math.round((local - secs) / 60);
}

const ISO_RE =
  /^(-?\d{4,})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|z|[+-]\d{2}(?::?\d{2})?)?)?$/;

function naive(
  y: number,
  mo: number,
  d: number,
  h: number,
  mi: number,
  s: number,
  nanos: number,
  tz: string | null,
): ZonedTime {
  const local = Date.UTC(y, mo - 1, d, h, mi, s) / 1000;
  if (!Number.isFinite(local)) throw new RangeError("not a valid date or timestamp");
  if (tz === null) return { secs: local, nanos, offsetMin: 0, hasTime: true };
  let off = zoneOffsetMinutes(tz, local);
  const again = zoneOffsetMinutes(tz, local - off * 60);
  if (again !== off) off = again;
  return { secs: local - off * 60, nanos, offsetMin: off, hasTime: true };
}

function unpackKwargs(args: unknown[]): { positional: unknown[]; kwargs: Map<string, unknown> } {
  const last = args[args.length - 1];
  if (last instanceof Map) return { positional: args.slice(0, -1), kwargs: last };
  return { positional: args, kwargs: new Map() };
}

/**
 * Read a filter input as a point in time; `tz` (not `original`) converts
 * it to that zone (or, for a naive date-time, says which zone it is in).
 *
 * @throws {RangeError} `not a valid date or timestamp`, `value is not a datetime`, `unknown timezone`
 * @example
 * ```ts
 * toZonedTime(0, null); // { secs: 0, nanos: 0, offsetMin: 0, hasTime: true }
 * ```
 */
export function toZonedTime(value: unknown, tz: string | null): ZonedTime {
  const zone = tz === "original" ? null : tz;
  let t: ZonedTime;
  if (typeof value === "number" || typeof value === "bigint") {
    const v = Number(value);
    if (!Number.isFinite(v)) throw new RangeError("date out of range");
    const secs = Math.floor(v);
    t = { secs, nanos: Math.round((v - secs) * 1e9), offsetMin: 0, hasTime: true };
    if (t.nanos >= 1e9) t = { ...t, secs: secs + 1, nanos: 0 };
  } else if (typeof value === "string") {
    const m = ISO_RE.exec(value.trim());
    if (!m) throw new RangeError("not a valid date or timestamp");
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (mo < 1 || mo > 12 || d < 1 || d > 31) throw new RangeError("not a valid date or timestamp");
    if (m[4] === undefined) {
      return { secs: Date.UTC(y, mo - 1, d) / 1000, nanos: 0, offsetMin: 0, hasTime: false };
    }
    const nanos = m[7] ? Number(m[7].padEnd(9, "0")) : 0;
    const [h, mi, s] = [Number(m[4]), Number(m[5]), Number(m[6] ?? 0)];
    if (m[8] === undefined) return naive(y, mo, d, h, mi, s, nanos, zone);
    const offset = /^[Zz]$/.test(m[8]) ? 0 : (() => {
      const om = /^([+-])(\d{2}):?(\d{2})?$/.exec(m[8])!;
      return (om[1] === "-" ? -1 : 1) * (Number(om[2]) * 60 + Number(om[3] ?? 0));
    })();
    t = {
      secs: Date.UTC(y, mo - 1, d, h, mi, s) / 1000 - offset * 60,
      nanos,
      offsetMin: offset,
      hasTime: true,
    };
  } else if (Array.isArray(value) && (value.length === 3 || value.length === 6)) {
    const n = value.map(Number);
    if (n.some((x) => !Number.isInteger(x))) throw new RangeError("not a valid date or timestamp");
    if (n.length === 3) {
      return {
        secs: Date.UTC(n[0], n[1] - 1, n[2]) / 1000,
        nanos: 0,
        offsetMin: 0,
        hasTime: false,
      };
    }
    return naive(n[0], n[1], n[2], n[3], n[4], n[5], 0, zone);
  } else {
    throw new RangeError("value is not a datetime");
  }
  if (zone !== null) t = { ...t, offsetMin: zoneOffsetMinutes(zone, t.secs) };
  return t;
}

function pad(n: number, width: number, padding: string): string {
  const s = String(Math.abs(n));
  const body = padding === "none" ? s : s.padStart(width, padding === "space" ? " " : "0");
  return n < 0 ? "-" + body : body;
}

/**
 * Format with a `time`-crate format description (version 2): `[year]`,
 * `[month]`, `[day]`, `[hour]`, `[minute]`, `[second]`, `[subsecond]`,
 * `[weekday]`, `[period]`, `[ordinal]`, `[offset_hour]`, `[offset_minute]`,
 * `[unix_timestamp]` with their common modifiers; `\[` escapes a bracket.
 *
 * @throws {RangeError} `invalid format string` for an unknown component
 * @example
 * ```ts
 * formatDescription({ secs: 0, nanos: 0, offsetMin: 0, hasTime: true }, "[year]-[month]-[day]"); // "1970-01-01"
 * ```
 */
export function formatDescription(t: ZonedTime, description: string): string {
  const local = new Date((t.secs + t.offsetMin * 60) * 1000);
  const f = {
    year: local.getUTCFullYear(),
    month: local.getUTCMonth() + 1,
    day: local.getUTCDate(),
    hour: local.getUTCHours(),
    minute: local.getUTCMinutes(),
    second: local.getUTCSeconds(),
    weekday: local.getUTCDay(),
    ordinal: Math.floor(
      (Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate()) -
        Date.UTC(local.getUTCFullYear(), 0, 1)) / 86_400_000,
    ) + 1,
  };
  let out = "";
  for (let i = 0; i < description.length; i++) {
    const c = description[i];
    if (c === "\\" && i + 1 < description.length) {
      out += description[++i];
      continue;
    }
    if (c !== "[") {
      if (c === "]") throw new RangeError("invalid format string");
      out += c;
      continue;
    }
    const end = description.indexOf("]", i);
    if (end < 0) throw new RangeError("invalid format string");
    const [name, ...mods] = description.slice(i + 1, end).trim().split(/\s+/);
    i = end;
    const mod = new Map(mods.map((m) => m.split(":") as [string, string]));
    const padding = mod.get("padding") ?? "zero";
    switch (name) {
      case "year":
        out += mod.get("repr") === "last_two"
          ? pad(f.year % 100, 2, padding)
          : (mod.get("sign") === "mandatory" && f.year >= 0 ? "+" : "") + pad(f.year, 4, padding);
        break;
      case "month": {
        const repr = mod.get("repr") ?? "numerical";
        out += repr === "long"
          ? MONTHS_LONG[f.month - 1]
          : repr === "short"
          ? MONTHS_LONG[f.month - 1].slice(0, 3)
          : pad(f.month, 2, padding);
        break;
      }
      case "day":
        out += pad(f.day, 2, padding);
        break;
      case "ordinal":
        out += pad(f.ordinal, 3, padding);
        break;
      case "hour": {
        const h = mod.get("repr") === "12" ? ((f.hour + 11) % 12) + 1 : f.hour;
        out += pad(h, 2, padding);
        break;
      }
      case "minute":
        out += pad(f.minute, 2, padding);
        break;
      case "second":
        out += pad(f.second, 2, padding);
        break;
      case "subsecond": {
        const digits = mod.get("digits") ?? "1+";
        const full = String(t.nanos).padStart(9, "0");
        out += digits === "1+" ? (full.replace(/0+$/, "") || "0") : full.slice(0, Number(digits));
        break;
      }
      case "weekday": {
        const repr = mod.get("repr") ?? "long";
        const one = mod.get("one_indexed") !== "false";
        out += repr === "long"
          ? WEEKDAYS_LONG[f.weekday]
          : repr === "short"
          ? WEEKDAYS_LONG[f.weekday].slice(0, 3)
          : repr === "sunday"
          ? String(f.weekday + (one ? 1 : 0))
          : String(((f.weekday + 6) % 7) + (one ? 1 : 0));
        break;
      }
      case "period": {
        const p = f.hour < 12 ? "AM" : "PM";
        out += mod.get("case") === "lower" ? p.toLowerCase() : p;
        break;
      }
      case "offset_hour": {
        const h = Math.trunc(t.offsetMin / 60);
        const sign = t.offsetMin < 0 ? "-" : mod.get("sign") === "mandatory" ? "+" : "";
        out += sign + pad(Math.abs(h), 2, padding);
        break;
      }
      case "offset_minute":
        out += pad(Math.abs(t.offsetMin) % 60, 2, padding);
        break;
      case "offset_second":
        out += pad(0, 2, padding);
        break;
      case "unix_timestamp": {
        const precision = mod.get("precision") ?? "second";
        const scale = { second: 0, millisecond: 3, microsecond: 6, nanosecond: 9 }[precision];
        if (scale === undefined) throw new RangeError("invalid format string");
        out += scale === 0 ? String(t.secs) : String(
          BigInt(t.secs) * 10n ** BigInt(scale) +
            BigInt(Math.floor(t.nanos / 10 ** (9 - scale))),
        );
        break;
      }
      default:
        throw new RangeError("invalid format string");
    }
  }
  return out;
}

const DATETIME: Record<string, string> = {
  short: "[year]-[month]-[day] [hour]:[minute]",
  medium: "[month repr:short] [day padding:none] [year] [hour]:[minute]",
  long: "[month repr:long] [day padding:none] [year] [hour]:[minute]:[second]",
  full:
    "[weekday], [month repr:long] [day padding:none] [year] [hour]:[minute]:[second].[subsecond]",
  iso: "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]",
  unix: "[unix_timestamp]",
};
const TIME: Record<string, string> = {
  short: "[hour]:[minute]",
  medium: "[hour]:[minute]",
  long: "[hour]:[minute]:[second]",
  full: "[hour]:[minute]:[second].[subsecond]",
  iso: DATETIME.iso,
  unix: DATETIME.unix,
};
const DATE: Record<string, string> = {
  short: "[year]-[month]-[day]",
  medium: "[month repr:short] [day padding:none] [year]",
  long: "[month repr:long] [day padding:none] [year]",
  full: "[weekday], [month repr:long] [day padding:none] [year]",
};

function filter(table: Record<string, string>, allowDate: boolean) {
  return (value: unknown, ...rest: unknown[]): string => {
    const { positional, kwargs } = unpackKwargs(rest);
    if (positional.length > 0) throw new RangeError("too many arguments");
    for (const k of kwargs.keys()) {
      if (k !== "format" && k !== "tz") throw new RangeError(`unknown keyword argument '${k}'`);
    }
    const tz = kwargs.get("tz");
    const t = toZonedTime(value, typeof tz === "string" ? tz : null);
    if (!t.hasTime && !allowDate) {
      throw new RangeError("filter requires time, but only received a date");
    }
    const format = kwargs.get("format");
    const name = typeof format === "string" ? format : "medium";
    return formatDescription(t, table[name] ?? name);
  };
}

/** `value|datetimeformat(format="medium", tz=None)`. */
export const datetimeformat: (value: unknown, ...rest: unknown[]) => string = filter(
  DATETIME,
  false,
);
/** `value|timeformat(format="medium", tz=None)`. */
export const timeformat: (value: unknown, ...rest: unknown[]) => string = filter(TIME, false);
/** `value|dateformat(format="medium", tz=None)`. */
export const dateformat: (value: unknown, ...rest: unknown[]) => string = filter(DATE, true);

/**
 * `now()`: the current time in UTC as a UNIX timestamp (float seconds, µs precision).
 *
 * @example
 * ```ts
 * now(); // 1767322245.123456
 * ```
 */
export function now(): number {
  return Math.floor(Date.now() * 1000) / 1_000_000;
}
