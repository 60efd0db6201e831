/**
 * Unit tests for parseDuration()/formatDuration() (src/util/duration.ts).
 * Place on the path: beside it, every configured timeout and interval.
 */
import assert from "node:assert/strict";
import { formatDuration, parseDuration } from "./duration.ts";
import { ConfigError } from "./config_error.ts";
import {
  DURATION_INVALID_STRINGS,
  DURATION_INVALID_VALUES,
  DURATION_VALID,
} from "./scalar_cases.ts";

Deno.test("parseDuration() takes numbers as seconds", () => {
  assert.equal(parseDuration(30), 30_000);
  assert.equal(parseDuration(1.5), 1500);
  assert.equal(parseDuration(0), 0);
});

Deno.test("parseDuration() accepts every humantime unit and form (shared cases)", () => {
  for (const [input, ms] of DURATION_VALID) {
    assert.ok(Math.abs(parseDuration(input) - ms) < 1e-9, `${input} → ${parseDuration(input)}`);
  }
});

Deno.test("parseDuration() rejects fractions, signs, unknown units and wrong case", () => {
  for (const bad of DURATION_INVALID_STRINGS) {
    assert.throws(() => parseDuration(bad), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.ok(e.message.includes(`"${bad}"`), e.message);
      return true;
    });
  }
  for (const bad of DURATION_INVALID_VALUES) {
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
