/**
 * `kumo.time.*`: Time and TimeDelta objects for policy (upstream's shapes:
 * Time fields `year month day hour minute second unix_timestamp
 * unix_timestamp_millis rfc2822 rfc3339 elapsed`, `:format(strftime)`,
 * `tostring` → `2000-01-02 03:04:05 UTC`, `==`, `<`, `+`/`-` with deltas;
 * TimeDelta fields `seconds milliseconds microseconds nanoseconds human`),
 * plus `sleep` and `start_timer` (`:done()` → elapsed seconds, also on
 * `<close>`).
 *
 * Place on the path: policy helpers; no I/O apart from sleeping. Times are
 * UTC with millisecond precision (JS Date); deltas are milliseconds (float).
 *
 * @module
 */

import { formatDuration, parseDuration } from "../../util/duration.ts";
import { registerLuaClass } from "./host_object.ts";
import {
  MONTHS_LONG,
  MONTHS_SHORT,
  rfc2822Date,
  WEEKDAYS_LONG,
  WEEKDAYS_SHORT,
} from "../../util/calendar.ts";

/** A point in time (UTC), ms since the epoch. */
export class LuaTime {
  constructor(readonly ms: number) {}
}

/** A signed interval in ms. */
export class LuaTimeDelta {
  constructor(readonly ms: number) {}
}

/** A running timer from `kumo.time.start_timer(label)`. */
export class LuaTimer {
  #start = performance.now();
  #done = false;
  constructor(readonly label: string) {}
  /** Stop once; elapsed seconds, or undefined when already stopped. */
  done(): number | undefined {
    if (this.#done) return undefined;
    this.#done = true;
    return (performance.now() - this.#start) / 1000;
  }
}

const p2 = (n: number) => String(n).padStart(2, "0");

function fraction(ms: number): string {
  const f = ((ms % 1000) + 1000) % 1000;
  if (f === 0) return "";
  return "." + String(Math.round(f * 1e6)).padStart(9, "0").replace(/(000)+$/, "");
}

/** `Sun, 2 Jan 2000 03:04:05 +0000` (RFC 2822 §3.3). */
export const rfc2822 = rfc2822Date;

/** `2000-01-02T03:04:05+00:00` (RFC 3339), fraction only when non-zero. */
export function rfc3339(ms: number): string {
  const iso = new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19);
  return `${iso}${fraction(ms)}+00:00`;
}

/** strftime (chrono's common specifiers) in UTC. */
export function strftime(ms: number, fmt: string): string {
  const d = new Date(ms);
  const Y = d.getUTCFullYear(), m = d.getUTCMonth(), day = d.getUTCDate();
  const H = d.getUTCHours(), M = d.getUTCMinutes(), S = d.getUTCSeconds();
  const frac = ((ms % 1000) + 1000) % 1000;
  const yday = Math.floor((Date.UTC(Y, m, day) - Date.UTC(Y, 0, 1)) / 86_400_000) + 1;
  return fmt.replace(/%(\.?[369]?f|[a-zA-Z%+])/g, (_all, c: string) => {
    switch (c) {
      case "Y":
        return String(Y);
      case "C":
        return p2(Math.floor(Y / 100));
      case "y":
        return p2(Y % 100);
      case "m":
        return p2(m + 1);
      case "b":
      case "h":
        return MONTHS_SHORT[m];
      case "B":
        return MONTHS_LONG[m];
      case "d":
        return p2(day);
      case "e":
        return String(day).padStart(2, " ");
      case "a":
        return WEEKDAYS_SHORT[d.getUTCDay()];
      case "A":
        return WEEKDAYS_LONG[d.getUTCDay()];
      case "w":
        return String(d.getUTCDay());
      case "u":
        return String(d.getUTCDay() || 7);
      case "j":
        return String(yday).padStart(3, "0");
      case "H":
        return p2(H);
      case "k":
        return String(H).padStart(2, " ");
      case "I":
        return p2(H % 12 || 12);
      case "l":
        return String(H % 12 || 12).padStart(2, " ");
      case "p":
        return H < 12 ? "AM" : "PM";
      case "P":
        return H < 12 ? "am" : "pm";
      case "M":
        return p2(M);
      case "S":
        return p2(S);
      case "f":
        return String(Math.round(frac * 1e6)).padStart(9, "0");
      case "3f":
        return String(Math.floor(frac)).padStart(3, "0");
      case "6f":
        return String(Math.round(frac * 1000)).padStart(6, "0");
      case "9f":
        return String(Math.round(frac * 1e6)).padStart(9, "0");
      case ".f":
        return fraction(ms);
      case ".3f":
        return "." + String(Math.floor(frac)).padStart(3, "0");
      case ".6f":
        return "." + String(Math.round(frac * 1000)).padStart(6, "0");
      case ".9f":
        return "." + String(Math.round(frac * 1e6)).padStart(9, "0");
      case "s":
        return String(Math.floor(ms / 1000));
      case "z":
        return "+0000";
      case "Z":
        return "UTC";
      case "T":
        return `${p2(H)}:${p2(M)}:${p2(S)}`;
      case "R":
        return `${p2(H)}:${p2(M)}`;
      case "D":
        return `${p2(m + 1)}/${p2(day)}/${p2(Y % 100)}`;
      case "F":
        return `${Y}-${p2(m + 1)}-${p2(day)}`;
      case "c":
        return `${WEEKDAYS_SHORT[d.getUTCDay()]} ${MONTHS_SHORT[m]} ${
          String(day).padStart(2, " ")
        } ${p2(H)}:${p2(M)}:${p2(S)} ${Y}`;
      case "+":
        return rfc3339(ms);
      case "n":
        return "\n";
      case "t":
        return "\t";
      case "%":
        return "%";
      default:
        throw new RangeError(`Cannot format time with "%${c}": unsupported specifier`);
    }
  });
}

function display(ms: number): string {
  const iso = new Date(Math.floor(ms / 1000) * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${fraction(ms)} UTC`;
}

function checked(ms: number, what: string): LuaTime {
  if (!Number.isFinite(ms) || Number.isNaN(new Date(ms).getTime())) {
    throw new RangeError(`Cannot make a time from ${what}: out of range`);
  }
  return new LuaTime(ms);
}

/** Parse an RFC 3339 timestamp (`T` or space, `Z` or ±hh:mm). */
export function parseRfc3339(s: unknown): LuaTime {
  const text = String(s);
  const re = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
  if (!re.test(text)) throw new SyntaxError(`Cannot parse "${text}" as RFC 3339: invalid format`);
  const ms = Date.parse(text.replace(" ", "T"));
  if (Number.isNaN(ms)) throw new SyntaxError(`Cannot parse "${text}" as RFC 3339: invalid date`);
  const frac = /\.(\d+)/.exec(text);
  const extra = frac
    ? Number("0." + frac[1]) * 1000 - Math.floor(Number("0." + frac[1]) * 1000)
    : 0;
  return new LuaTime(ms + extra);
}

const ZONES: Record<string, number> = {
  UT: 0,
  GMT: 0,
  Z: 0,
  EST: -300,
  EDT: -240,
  CST: -360,
  CDT: -300,
  MST: -420,
  MDT: -360,
  PST: -480,
  PDT: -420,
};

/** Parse an RFC 2822 date (`[Day, ]D Mon YYYY HH:MM[:SS] zone`). */
export function parseRfc2822(s: unknown): LuaTime {
  const text = String(s).trim().replace(/\s*\([^)]*\)\s*$/, "");
  const m =
    /^(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{2,4})\s+(\d{2}):(\d{2})(?::(\d{2}))?\s+([+-]\d{4}|[A-Za-z]{1,3})$/
      .exec(text);
  const mon = m ? MONTHS_SHORT.findIndex((x) => x.toLowerCase() === m[2].toLowerCase()) : -1;
  if (!m || mon < 0) throw new SyntaxError(`Cannot parse "${text}" as RFC 2822: invalid format`);
  let year = Number(m[3]);
  if (m[3].length === 2) year += year < 50 ? 2000 : 1900;
  let offsetMin: number;
  if (/^[+-]/.test(m[7])) {
    const sign = m[7][0] === "-" ? -1 : 1;
    offsetMin = sign * (Number(m[7].slice(1, 3)) * 60 + Number(m[7].slice(3, 5)));
  } else {
    offsetMin = ZONES[m[7].toUpperCase()] ?? 0;
  }
  const ms = Date.UTC(year, mon, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0)) -
    offsetMin * 60_000;
  return checked(ms, `"${text}"`);
}

/** Signed seconds, or a humantime string (optionally `-` prefixed), as a delta. */
export function parseTimeDelta(v: unknown): LuaTimeDelta {
  if (typeof v === "number") return new LuaTimeDelta(v * 1000);
  const s = String(v).trim();
  if (s.startsWith("-")) return new LuaTimeDelta(-parseDuration(s.slice(1).trim()));
  return new LuaTimeDelta(parseDuration(s));
}

function timeField(t: LuaTime, k: string): unknown {
  const d = new Date(t.ms);
  switch (k) {
    case "year":
      return d.getUTCFullYear();
    case "month":
      return d.getUTCMonth() + 1;
    case "day":
      return d.getUTCDate();
    case "hour":
      return d.getUTCHours();
    case "minute":
      return d.getUTCMinutes();
    case "second":
      return d.getUTCSeconds();
    case "unix_timestamp":
      return Math.floor(t.ms / 1000);
    case "unix_timestamp_millis":
      return Math.floor(t.ms);
    case "rfc2822":
      return rfc2822(t.ms);
    case "rfc3339":
      return rfc3339(t.ms);
    case "elapsed":
      return new LuaTimeDelta(Date.now() - t.ms);
    default:
      return undefined;
  }
}

function deltaField(t: LuaTimeDelta, k: string): unknown {
  switch (k) {
    case "seconds":
      return t.ms / 1000;
    case "milliseconds":
      return Math.trunc(t.ms);
    case "microseconds":
      return Math.trunc(t.ms * 1000);
    case "nanoseconds":
      return Math.trunc(t.ms * 1e6);
    case "human":
      return humanDelta(t.ms);
    default:
      return undefined;
  }
}

function humanDelta(ms: number): string {
  return ms < 0 ? "-" + formatDuration(-ms) : formatDuration(ms);
}

registerLuaClass(LuaTime, {
  name: "Time",
  fields: timeField,
  methods: { format: (t, fmt: string) => strftime(t.ms, String(fmt)) },
  meta: {
    __tostring: (t) => display(t.ms),
    __eq: (t, o: unknown) => o instanceof LuaTime && o.ms === t.ms,
    __lt: (t, o: unknown) => o instanceof LuaTime && t.ms < o.ms,
    __le: (t, o: unknown) => o instanceof LuaTime && t.ms <= o.ms,
    __add: (t, o: unknown) => {
      if (!(o instanceof LuaTimeDelta)) throw new TypeError("Time + x: x must be a TimeDelta");
      return new LuaTime(t.ms + o.ms);
    },
    __sub: (t, o: unknown) => {
      if (o instanceof LuaTimeDelta) return new LuaTime(t.ms - o.ms);
      if (o instanceof LuaTime) return new LuaTimeDelta(t.ms - o.ms);
      throw new TypeError("Time - x: x must be a Time or a TimeDelta");
    },
  },
});

registerLuaClass(LuaTimeDelta, {
  name: "TimeDelta",
  fields: deltaField,
  meta: {
    __tostring: (t) => humanDelta(t.ms),
    __eq: (t, o: unknown) => o instanceof LuaTimeDelta && o.ms === t.ms,
    __lt: (t, o: unknown) => o instanceof LuaTimeDelta && t.ms < o.ms,
    __le: (t, o: unknown) => o instanceof LuaTimeDelta && t.ms <= o.ms,
    __add: (t, o: unknown) => {
      if (!(o instanceof LuaTimeDelta)) throw new TypeError("TimeDelta + x: x must be a TimeDelta");
      return new LuaTimeDelta(t.ms + o.ms);
    },
    __sub: (t, o: unknown) => {
      if (!(o instanceof LuaTimeDelta)) throw new TypeError("TimeDelta - x: x must be a TimeDelta");
      return new LuaTimeDelta(t.ms - o.ms);
    },
  },
});

registerLuaClass(LuaTimer, {
  name: "Timer",
  fields: (t, k) => (k === "label" ? t.label : undefined),
  methods: { done: (t) => t.done() },
  meta: { __close: (t) => void t.done() },
});

type Fn = (...args: never[]) => unknown;

/** Synchronous `kumo.time.*`. */
export const TIME_SYNC_FUNCTIONS: Record<string, Fn> = {
  "time.now": (() => new LuaTime(Date.now())) as Fn,
  "time.from_unix_timestamp": ((secs: number) => {
    if (typeof secs !== "number") {
      throw new TypeError("kumo.time.from_unix_timestamp: expected a number of seconds");
    }
    return checked(secs * 1000, String(secs));
  }) as Fn,
  "time.parse_rfc3339": parseRfc3339 as Fn,
  "time.parse_rfc2822": parseRfc2822 as Fn,
  "time.parse_duration": parseTimeDelta as Fn,
  "time.with_ymd_hms": ((y: number, mo: number, d: number, h: number, mi: number, s: number) => {
    const vals = [y, mo, d, h, mi, s].map(Number);
    const ms = Date.UTC(vals[0], vals[1] - 1, vals[2], vals[3], vals[4], vals[5]);
    const back = new Date(ms);
    if (
      vals.some((v) => !Number.isInteger(v)) || back.getUTCMonth() !== vals[1] - 1 ||
      back.getUTCDate() !== vals[2] || vals[3] > 23 || vals[4] > 59 || vals[5] > 59
    ) {
      throw new RangeError(`kumo.time.with_ymd_hms: invalid date/time "${vals.join(", ")}"`);
    }
    return new LuaTime(ms);
  }) as Fn,
  "time.start_timer": ((label: string) => new LuaTimer(String(label ?? ""))) as Fn,
};

/** Asynchronous `kumo.time.*`. */
export const TIME_ASYNC_FUNCTIONS: Record<string, (...args: never[]) => Promise<unknown>> = {
  "time.sleep":
    ((secs: number) => new Promise((r) => setTimeout(r, Math.max(0, Number(secs) * 1000)))) as (
      ...args: never[]
    ) => Promise<unknown>,
};
