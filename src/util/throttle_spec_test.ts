/**
 * Unit tests for parseThrottleSpec()/formatThrottleSpec()
 * (src/util/throttle_spec.ts). Place on the path: beside it, rate limits
 * in egress and policy.
 */
import assert from "node:assert/strict";
import { formatThrottleSpec, parseThrottleSpec } from "./throttle_spec.ts";
import { ConfigError } from "./config_error.ts";
import {
  THROTTLE_INVALID_STRINGS,
  THROTTLE_INVALID_VALUES,
  THROTTLE_VALID,
} from "./scalar_cases.ts";

Deno.test("parseThrottleSpec() accepts every period name, separator, multiplier, local and max_burst (shared cases)", () => {
  for (const [text, want] of THROTTLE_VALID) {
    assert.deepEqual(parseThrottleSpec(text), want, text);
  }
});

Deno.test("parseThrottleSpec() rejects spaces, plurals, per, zero and junk", () => {
  for (const bad of THROTTLE_INVALID_STRINGS) {
    assert.throws(() => parseThrottleSpec(bad, "max_message_rate"), (e: unknown) => {
      assert.ok(e instanceof ConfigError, bad);
      assert.ok(e.message.includes(`"${bad}"`), e.message);
      assert.equal(e.key, "max_message_rate");
      return true;
    });
  }
  for (const bad of THROTTLE_INVALID_VALUES) {
    assert.throws(() => parseThrottleSpec(bad), ConfigError, String(bad));
  }
});

Deno.test("formatThrottleSpec() round-trips", () => {
  for (const text of ["100/h", "local:3/d", "20/30m", "7/s,max_burst=2"]) {
    assert.equal(formatThrottleSpec(parseThrottleSpec(text)), text);
  }
});
