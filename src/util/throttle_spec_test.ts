/**
 * Unit tests for parseThrottleSpec()/formatThrottleSpec()
 * (src/util/throttle_spec.ts). Place on the path: beside it, rate limits
 * in egress and policy.
 */
import assert from "node:assert/strict";
import { formatThrottleSpec, parseThrottleSpec } from "./throttle_spec.ts";
import { ConfigError } from "./config_error.ts";

Deno.test("parseThrottleSpec() accepts every period name", () => {
  const cases: [string, number][] = [
    ["10/s", 1000],
    ["10/sec", 1000],
    ["10/second", 1000],
    ["10/m", 60_000],
    ["10/min", 60_000],
    ["10/minute", 60_000],
    ["10/h", 3_600_000],
    ["10/hr", 3_600_000],
    ["10/hour", 3_600_000],
    ["10/d", 86_400_000],
    ["10/day", 86_400_000],
  ];
  for (const [text, periodMs] of cases) {
    const t = parseThrottleSpec(text);
    assert.equal(t.limit, 10, text);
    assert.equal(t.periodMs, periodMs, text);
    assert.equal(t.maxBurst, 10, text);
    assert.equal(t.local, false);
  }
});

Deno.test("parseThrottleSpec() handles separators, multipliers, local and max_burst", () => {
  assert.deepEqual(parseThrottleSpec("20/30min"), {
    limit: 20,
    periodMs: 1_800_000,
    maxBurst: 20,
    local: false,
    text: "20/30m",
  });
  assert.equal(parseThrottleSpec("1_000/hr").limit, 1000);
  assert.equal(parseThrottleSpec("10,000/h").limit, 10000);
  assert.equal(parseThrottleSpec("1_0,0/hour").limit, 100);
  assert.deepEqual(parseThrottleSpec("local:5/s,max_burst=10"), {
    limit: 5,
    periodMs: 1000,
    maxBurst: 10,
    local: true,
    text: "local:5/s,max_burst=10",
  });
  assert.equal(parseThrottleSpec("60/min,max_burst=1").maxBurst, 1);
  assert.equal(parseThrottleSpec("local:100/s").text, "local:100/s");
  assert.equal(parseThrottleSpec("100/hour").text, "100/h");
  assert.equal(parseThrottleSpec("5/90s").text, "5/90s");
  assert.equal(parseThrottleSpec("5/120s").text, "5/2m");
});

Deno.test("parseThrottleSpec() rejects spaces, plurals, per, zero and junk", () => {
  for (
    const bad of [
      "10,000 per hour",
      "100/hours",
      "100/mins",
      "10 /h",
      "10/ h",
      "0/h",
      "ten/h",
      "100",
      "100/our",
      "-1/h",
      "10/0min",
      "10/h,max_burst=",
      "10/h,max_burst=0",
      "10/H",
      "",
    ]
  ) {
    assert.throws(() => parseThrottleSpec(bad, "max_message_rate"), (e: unknown) => {
      assert.ok(e instanceof ConfigError, bad);
      assert.ok(e.message.includes(`"${bad}"`), e.message);
      assert.equal(e.key, "max_message_rate");
      return true;
    });
  }
  assert.throws(() => parseThrottleSpec(100), ConfigError);
});

Deno.test("formatThrottleSpec() round-trips", () => {
  for (const text of ["100/h", "local:3/d", "20/30m", "7/s,max_burst=2"]) {
    assert.equal(formatThrottleSpec(parseThrottleSpec(text)), text);
  }
});
