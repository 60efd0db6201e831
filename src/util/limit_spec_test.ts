/**
 * Unit tests for parseLimitSpec()/formatLimitSpec() (src/util/limit_spec.ts).
 * Place on the path: beside it, connection limits in egress.
 */
import assert from "node:assert/strict";
import { formatLimitSpec, parseLimitSpec } from "./limit_spec.ts";
import { ConfigError } from "./config_error.ts";

Deno.test("parseLimitSpec() accepts integers and [local:]N strings", () => {
  assert.deepEqual(parseLimitSpec(32), { limit: 32, local: false });
  assert.deepEqual(parseLimitSpec("10"), { limit: 10, local: false });
  assert.deepEqual(parseLimitSpec("local:1,000"), { limit: 1000, local: true });
  assert.deepEqual(parseLimitSpec("1_000"), { limit: 1000, local: false });
});

Deno.test("parseLimitSpec() rejects zero, negatives, fractions and junk", () => {
  for (const bad of [0, -1, 1.5, "0", "local:0", "ten", "", "local:", "5 ", true, null, {}]) {
    assert.throws(() => parseLimitSpec(bad, "connection_limit"), ConfigError, String(bad));
  }
});

Deno.test("formatLimitSpec() gives a number or local:N", () => {
  assert.equal(formatLimitSpec({ limit: 3, local: false }), 3);
  assert.equal(formatLimitSpec({ limit: 3, local: true }), "local:3");
});
