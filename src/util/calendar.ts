/**
 * Calendar names and the RFC 2822 date line every writer of mail headers
 * uses (Received, DSN Arrival-Date, `kumo.time` formatting). UTC only.
 *
 * Place on the path: a helper; imports nothing. Pure.
 *
 * @module
 */

/** Weekday abbreviations, Sunday first (JS `getUTCDay()` order). */
export const WEEKDAYS_SHORT = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"] as const;
/** Full weekday names, Sunday first. */
export const WEEKDAYS_LONG = [
  "Sunday",
  "Monday",
  "Tuesday",
  "Wednesday",
  "Thursday",
  "Friday",
  "Saturday",
] as const;
/** Month abbreviations, January first. */
export const MONTHS_SHORT = [
  "Jan",
  "Feb",
  "Mar",
  "Apr",
  "May",
  "Jun",
  "Jul",
  "Aug",
  "Sep",
  "Oct",
  "Nov",
  "Dec",
] as const;
/** Full month names, January first. */
export const MONTHS_LONG = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
] as const;

function pad2(n: number): string {
  return n < 10 ? "0" + n : String(n);
}

/**
 * RFC 2822 §3.3 date in UTC, day of month unpadded.
 *
 * @example
 * ```ts
 * rfc2822Date(Date.UTC(2026, 0, 2, 3, 4, 5)); // "Fri, 2 Jan 2026 03:04:05 +0000"
 * ```
 */
export function rfc2822Date(epochMs: number): string {
  const d = new Date(epochMs);
  return `${WEEKDAYS_SHORT[d.getUTCDay()]}, ${d.getUTCDate()} ${
    MONTHS_SHORT[d.getUTCMonth()]
  } ${d.getUTCFullYear()} ` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} +0000`;
}
