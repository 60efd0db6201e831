/**
 * Per-message delivery schedules (`msg:set_scheduling`): when a message may
 * next be attempted, given its `first_attempt` and its optional weekly window
 * (`dow`, `tz`, `start`, `end`). The queue stage applies {@linkcode scheduledDue}
 * whenever it (re)schedules a message, so a held message simply sits in its
 * scheduled queue until the window opens — no attempt, no record.
 *
 * Pure functions over numbers; the only state is a cache of one
 * `Intl.DateTimeFormat` per time zone. Never touches the clock itself.
 */

import type { Scheduling } from "./message.ts";
import { WEEKDAYS_SHORT } from "../util/calendar.ts";

const DAY_MS = 86_400_000;

/** A parsed weekly window. */
export interface ScheduleWindow {
  /** Allowed local weekdays, 0 = Sunday. */
  days: Set<number>;
  tz: string;
  /** Seconds since local midnight. */
  start: number;
  end: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (f === undefined) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
      weekday: "short",
    });
    formatters.set(tz, f);
  }
  return f;
}

interface LocalTime {
  y: number;
  m: number;
  d: number;
  weekday: number;
  secs: number;
}

function localTime(ms: number, tz: string): LocalTime {
  const t: LocalTime = { y: 0, m: 0, d: 0, weekday: 0, secs: 0 };
  let h = 0, mi = 0, s = 0;
  for (const p of formatter(tz).formatToParts(ms)) {
    switch (p.type) {
      case "year":
        t.y = Number(p.value);
        break;
      case "month":
        t.m = Number(p.value);
        break;
      case "day":
        t.d = Number(p.value);
        break;
      case "hour":
        h = Number(p.value);
        break;
      case "minute":
        mi = Number(p.value);
        break;
      case "second":
        s = Number(p.value);
        break;
      case "weekday":
        t.weekday = WEEKDAYS_SHORT.indexOf(p.value as typeof WEEKDAYS_SHORT[number]);
        break;
    }
  }
  t.secs = h * 3600 + mi * 60 + s;
  return t;
}

/** Offset of `tz` from UTC at `ms`, in ms (local − UTC). */
function offsetMs(ms: number, tz: string): number {
  const l = localTime(ms, tz);
  const asUtc = Date.UTC(l.y, l.m - 1, l.d) + l.secs * 1000;
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The UTC instant of local wall time `y-m-d + secs` in `tz` (DST-aware). */
function fromLocal(y: number, m: number, d: number, secs: number, tz: string): number {
  const guess = Date.UTC(y, m - 1, d) + secs * 1000;
  let at = guess - offsetMs(guess, tz);
  const second = guess - offsetMs(at, tz);
  if (second !== at) at = second;
  return at;
}

function parseClock(text: string, key: string): number {
  const m = /^(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(text);
  if (m === null || Number(m[1]) > 23 || Number(m[2]) > 59 || Number(m[3] ?? 0) > 59) {
    throw new TypeError(`Cannot set scheduling key "${key}": "${text}" is not HH:MM:SS`);
  }
  return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] ?? 0);
}

/**
 * Validate and parse a schedule's window (`dow`, `tz`, `start`, `end`), or
 * `undefined` when the schedule has none.
 *
 * @throws {TypeError} naming the key whose value is wrong.
 * @example
 * ```ts
 * parseWindow({ dow: "Mon,Wed", tz: "America/Phoenix", start: "09:00:00", end: "17:00:00" });
 * ```
 */
export function parseWindow(s: Scheduling): ScheduleWindow | undefined {
  if (s.dow === undefined || s.tz === undefined || s.start === undefined || s.end === undefined) {
    return undefined;
  }
  const days = new Set<number>();
  for (const raw of s.dow.split(",")) {
    const name = raw.trim();
    const i = WEEKDAYS_SHORT.findIndex((d) => d.toLowerCase() === name.slice(0, 3).toLowerCase());
    if (i < 0 || name.length < 3) {
      throw new TypeError(`Cannot set scheduling key "dow": "${name}" is not a day of the week`);
    }
    days.add(i);
  }
  try {
    formatter(s.tz);
  } catch {
    throw new TypeError(`Cannot set scheduling key "tz": "${s.tz}" is not a known time zone`);
  }
  return { days, tz: s.tz, start: parseClock(s.start, "start"), end: parseClock(s.end, "end") };
}

/** Whether local seconds-of-day `secs` lies inside the window (end inclusive; may wrap midnight). */
function inHours(w: ScheduleWindow, secs: number): boolean {
  return w.start <= w.end ? secs >= w.start && secs <= w.end : secs >= w.start || secs <= w.end;
}

/**
 * The first instant at or after `ms` inside the window.
 *
 * @example
 * ```ts
 * const w = parseWindow({ dow: "Mon", tz: "UTC", start: "09:00", end: "10:00" })!;
 * new Date(nextInWindow(Date.parse("2026-12-01T12:00:00Z"), w)).toISOString();
 * // "2026-12-07T09:00:00.000Z" (the next Monday)
 * ```
 */
export function nextInWindow(ms: number, w: ScheduleWindow): number {
  let at = ms;
  for (let i = 0; i < 9; i++) {
    const l = localTime(at, w.tz);
    if (w.days.has(l.weekday)) {
      if (inHours(w, l.secs)) return at;
      if (l.secs < w.start) return Math.max(at, fromLocal(l.y, l.m, l.d, w.start, w.tz));
    }
    // On to the next local midnight.
    at = Math.max(at + 1000, fromLocal(l.y, l.m, l.d + 1, 0, w.tz));
  }
  return ms + 7 * DAY_MS; // unreachable for a non-empty day set
}

/**
 * When a message due at `due` may really be attempted under its schedule:
 * never before `first_attempt`, and only inside its window.
 *
 * @example
 * ```ts
 * scheduledDue(Date.now(), { first_attempt: "2030-01-01T00:00:00Z" }); // 2030-01-01
 * ```
 */
export function scheduledDue(due: number, s: Scheduling): number {
  let at = due;
  if (s.first_attempt !== undefined) {
    const first = Date.parse(s.first_attempt);
    if (Number.isFinite(first) && first > at) at = first;
  }
  const w = parseWindow(s);
  return w === undefined ? at : nextInWindow(at, w);
}
