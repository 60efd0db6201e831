/**
 * Unit tests for parseLimitSpec()/formatLimitSpec() (src/util/limit_spec.ts).
 * Place on the path: beside it, connection limits in egress.
 */
import assert from "node:assert/strict";
import { formatLimitSpec, parseLimitSpec } from "./limit_spec.ts";
import { ConfigError } from "./config_error.ts";
import { LIMIT_INVALID, LIMIT_VALID } from "./scalar_cases.ts";

Deno.test("parseLimitSpec() accepts integers and [local:]N strings (shared cases)", () => {
  for (const [input, want] of LIMIT_VALID) {
    assert.deepEqual(parseLimitSpec(input), want, String(input));
  }
});

Deno.test("parseLimitSpec() rejects zero, negatives, fractions and junk", () => {
  for (const bad of LIMIT_INVALID) {
    assert.throws(() => parseLimitSpec(bad, "connection_limit"), ConfigError, String(bad));
  }
});

Deno.test("formatLimitSpec() gives a number or local:N", () => {
  assert.equal(formatLimitSpec({ limit: 3, local: false }), 3);
  assert.equal(formatLimitSpec({ limit: 3, local: true }), "local:3");
});
