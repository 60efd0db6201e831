/**
 * The spec's scalar forms as case tables (lua-api.md §0.3): durations,
 * throttle/rate specs and limit specs, each valid form with the value it
 * means and each invalid form that must be refused.
 *
 * Place on the path: beside the scalar parsers; test data only. The unit
 * tests beside the parsers (duration_test.ts, throttle_spec_test.ts,
 * limit_spec_test.ts) and the Lua engine tests (src/policy/engine_test.ts,
 * through `kumo.make_*`) run the same tables, so a form the parser accepts
 * is also what a policy gets.
 *
 * @module
 */

import type { LimitSpec } from "./limit_spec.ts";
import type { ThrottleSpec } from "./throttle_spec.ts";

/** Valid durations: input → milliseconds (numbers are seconds). */
export const DURATION_VALID: readonly (readonly [string | number, number])[] = [
  [30, 30_000],
  [1.5, 1500],
  [0, 0],
  ["5ns", 5e-6],
  ["5nsec", 5e-6],
  ["5nanos", 5e-6],
  ["5us", 5e-3],
  ["5usec", 5e-3],
  ["5µs", 5e-3],
  ["5ms", 5],
  ["5msec", 5],
  ["5millis", 5],
  ["500ms", 500],
  ["5s", 5000],
  ["5sec", 5000],
  ["5secs", 5000],
  ["1second", 1000],
  ["5seconds", 5000],
  ["5m", 300_000],
  ["5min", 300_000],
  ["5mins", 300_000],
  ["1minute", 60_000],
  ["5 minutes", 300_000],
  ["1h", 3_600_000],
  ["1hr", 3_600_000],
  ["2hrs", 7_200_000],
  ["1hour", 3_600_000],
  ["2hours", 7_200_000],
  ["1d", 86_400_000],
  ["1day", 86_400_000],
  ["7days", 604_800_000],
  ["1w", 604_800_000],
  ["1wk", 604_800_000],
  ["2wks", 1_209_600_000],
  ["1week", 604_800_000],
  ["2weeks", 1_209_600_000],
  ["1M", 2_630_016_000],
  ["1month", 2_630_016_000],
  ["2months", 5_260_032_000],
  ["1y", 31_557_600_000],
  ["1yr", 31_557_600_000],
  ["2yrs", 63_115_200_000],
  ["1year", 31_557_600_000],
  ["2years", 63_115_200_000],
  ["2h 30m", 9_000_000],
  ["1h30m", 5_400_000],
  ["10s", 10_000],
  ["0", 0],
  ["0s", 0],
  ["  1h  ", 3_600_000],
  ["20 min 17 nsec ", 1_200_000.000017],
  // humantime skips whitespace inside a number: "1 0m" is 10 minutes
  ["1 0m", 600_000],
  ["1 0 m", 600_000],
];

/** Invalid duration strings (the error quotes them). */
export const DURATION_INVALID_STRINGS: readonly string[] = [
  "1.5h",
  "-1s",
  "+1s",
  "5 parsecs",
  "10 MINUTES",
  "10S",
  "5",
  "",
  " ",
  "h",
  "5m10",
  "1 h 2",
  "1 per hour",
  "m 5",
  "5 m s",
];

/**
 * Invalid non-string durations. `null`/`undefined` are here for the parser;
 * in a Lua table they are `nil`, i.e. an absent key (the default applies).
 */
export const DURATION_INVALID_VALUES: readonly unknown[] = [
  -1,
  NaN,
  Infinity,
  true,
  null,
  undefined,
  {},
  [],
];

/** Valid throttle specs: input → the parsed spec (with its canonical text). */
export const THROTTLE_VALID: readonly (readonly [string, ThrottleSpec])[] = [
  ...(["s", "sec", "second"] as const).map((p) => rate(`10/${p}`, 10, 1000, 10, false, "10/s")),
  ...(["m", "min", "minute"] as const).map((p) => rate(`10/${p}`, 10, 60_000, 10, false, "10/m")),
  ...(["h", "hr", "hour"] as const).map((p) => rate(`10/${p}`, 10, 3_600_000, 10, false, "10/h")),
  ...(["d", "day"] as const).map((p) => rate(`10/${p}`, 10, 86_400_000, 10, false, "10/d")),
  rate("100/s", 100, 1000, 100, false, "100/s"),
  rate("5/day", 5, 86_400_000, 5, false, "5/d"),
  rate("100/hour", 100, 3_600_000, 100, false, "100/h"),
  rate("20/30min", 20, 1_800_000, 20, false, "20/30m"),
  rate("1_000/hr", 1000, 3_600_000, 1000, false, "1000/h"),
  rate("10,000/h", 10_000, 3_600_000, 10_000, false, "10000/h"),
  rate("1_0,0/hour", 100, 3_600_000, 100, false, "100/h"),
  rate("local:5/s,max_burst=10", 5, 1000, 10, true, "local:5/s,max_burst=10"),
  rate("60/min,max_burst=1", 60, 60_000, 1, false, "60/m,max_burst=1"),
  rate("local:100/s", 100, 1000, 100, true, "local:100/s"),
  rate("local:3/d", 3, 86_400_000, 3, true, "local:3/d"),
  rate("5/90s", 5, 90_000, 5, false, "5/90s"),
  rate("5/120s", 5, 120_000, 5, false, "5/2m"),
];

/** Invalid throttle strings (the error quotes them). */
export const THROTTLE_INVALID_STRINGS: readonly string[] = [
  "10,000 per hour",
  "100/hours",
  "100/mins",
  "10/mins",
  "10 /h",
  "10/ h",
  "100 / s",
  "0/h",
  "0/s",
  "ten/h",
  "abc",
  "100",
  "100/our",
  "-1/h",
  "10/0min",
  "10/h,max_burst=",
  "10/h,max_burst=0",
  "10/H",
  "",
];

/** Invalid non-string throttle values (a throttle is always a string). */
export const THROTTLE_INVALID_VALUES: readonly unknown[] = [100, true, {}];

/** Valid limit specs: input → the parsed spec. */
export const LIMIT_VALID: readonly (readonly [string | number, LimitSpec])[] = [
  [32, { limit: 32, local: false }],
  [5, { limit: 5, local: false }],
  ["10", { limit: 10, local: false }],
  ["local:1,000", { limit: 1000, local: true }],
  ["local:1_000", { limit: 1000, local: true }],
  ["1_000", { limit: 1000, local: false }],
];

/** Invalid limit values (`null`: see {@linkcode DURATION_INVALID_VALUES}). */
export const LIMIT_INVALID: readonly unknown[] = [
  0,
  -1,
  1.5,
  "0",
  "local:0",
  "ten",
  "",
  "local:",
  "5 ",
  true,
  null,
  {},
];

function rate(
  input: string,
  limit: number,
  periodMs: number,
  maxBurst: number,
  local: boolean,
  text: string,
): readonly [string, ThrottleSpec] {
  return [input, { limit, periodMs, maxBurst, local, text }];
}
