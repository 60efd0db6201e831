/**
 * Unit tests for parseEgressPool() (`kumo.make_egress_pool`). Place on the
 * path: policy configuration, read by egress source selection.
 */
import assert from "node:assert/strict";
import { egressPoolToJSON, parseEgressPool } from "./egress_pool.ts";

Deno.test("parseEgressPool() defaults: empty entries, weight 1, ttl 60 s", () => {
  assert.deepEqual(parseEgressPool({ name: "p" }), { name: "p", entries: [], ttl: 60_000 });
  const p = parseEgressPool({
    name: "p",
    entries: [{ name: "a" }, { name: "b", weight: 0 }, { name: "c", weight: 5 }],
  });
  assert.deepEqual(p.entries, [{ name: "a", weight: 1 }, { name: "b", weight: 0 }, {
    name: "c",
    weight: 5,
  }]);
  assert.deepEqual(egressPoolToJSON(p).ttl, "1m");
  assert.deepEqual(parseEgressPool({ name: "p", entries: {} }).entries, []);
});

Deno.test("parseEgressPool() rejects unknown keys and bad weights", () => {
  assert.throws(
    () => parseEgressPool({ name: "p", entries: [{ name: "a", wieght: 2 }] }),
    /unknown field `wieght`, expected `name` or `weight`/,
  );
  assert.throws(
    () => parseEgressPool({ name: "p", max: 1 }),
    /unknown field `max`, expected one of `name`, `entries`, `ttl`/,
  );
  assert.throws(
    () => parseEgressPool({ name: "p", entries: [{ name: "a", weight: -1 }] }),
    /invalid value: integer `-1`, expected u32/,
  );
  assert.throws(() => parseEgressPool({ entries: [] }), /missing field `name`/);
});
