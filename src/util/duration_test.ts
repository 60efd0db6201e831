/**
 * Unit tests for parseDuration()/formatDuration() (src/util/duration.ts).
 * Place on the path: beside it, every configured timeout and interval.
 */
import assert from "node:assert/strict";
import { formatDuration, parseDuration } from "./duration.ts";
import { ConfigError } from "./config_error.ts";

Deno.test("parseDuration() takes numbers as seconds", () => {
  assert.equal(parseDuration(30), 30_000);
  assert.equal(parseDuration(1.5), 1500);
  assert.equal(parseDuration(0), 0);
});

Deno.test("parseDuration() accepts every humantime unit", () => {
  const cases: [string, number][] = [
    ["5ns", 5e-6],
    ["5nsec", 5e-6],
    ["5nanos", 5e-6],
    ["5us", 5e-3],
    ["5usec", 5e-3],
    ["5µs", 5e-3],
    ["5ms", 5],
    ["5msec", 5],
    ["5millis", 5],
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
  ];
  for (const [text, ms] of cases) {
    assert.ok(Math.abs(parseDuration(text) - ms) < 1e-9, `${text} → ${parseDuration(text)}`);
  }
});

Deno.test("parseDuration() rejects fractions, signs, unknown units and wrong case", () => {
  for (
    const bad of [
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
      "1 per hour",
    ]
  ) {
    assert.throws(() => parseDuration(bad), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.ok(e.message.includes(`"${bad}"`), e.message);
      return true;
    });
  }
  for (const bad of [-1, NaN, Infinity, true, null, undefined, {}, []]) {
    assert.throws(() => parseDuration(bad, "retry_interval"), ConfigError);
  }
});

Deno.test("parseDuration() distinguishes M (month) from m (minute)", () => {
  assert.notEqual(parseDuration("1M"), parseDuration("1m"));
});

Deno.test("formatDuration() prints humantime's format", () => {
  assert.equal(formatDuration(20 * 60_000), "20m");
  assert.equal(formatDuration(5_400_000), "1h 30m");
  assert.equal(formatDuration(7 * 86_400_000), "7days");
  assert.equal(formatDuration(86_400_000), "1day");
  assert.equal(formatDuration(1500), "1s 500ms");
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(60_000), "1m");
  assert.equal(formatDuration(31_557_600_000 + 2 * 2_630_016_000), "1year 2months");
  assert.equal(formatDuration(0.0015), "1us 500ns");
});

Deno.test("formatDuration() output parses back to the same value", () => {
  for (const ms of [1, 999, 1000, 61_000, 3_600_000, 9_000_000, 604_800_000, 40_000_000_000]) {
    assert.equal(parseDuration(formatDuration(ms)), ms);
  }
});
