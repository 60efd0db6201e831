/**
 * Unit tests for parseMemoize() (`kumo.memoize` options). Place on the
 * path: policy configuration for cached Lua lookups.
 */
import assert from "node:assert/strict";
import { memoizeToJSON, parseMemoize } from "./memoize.ts";

Deno.test("parseMemoize() requires name, ttl, capacity and fills defaults", () => {
  const m = parseMemoize({ name: "x_blocklist", ttl: "2 seconds", capacity: 4 });
  assert.deepEqual(m, {
    name: "x_blocklist",
    ttl: 2000,
    capacity: 4,
    invalidateWithEpoch: false,
    populateTimeout: 120_000,
    retryOnPopulateTimeout: false,
    allowStaleReads: false,
  });
  assert.equal(memoizeToJSON(m).populate_timeout, "2m");
  assert.throws(() => parseMemoize({ ttl: "1s" }), /missing field `name`/);
  assert.throws(() => parseMemoize({ name: "x", ttl: "1s" }), /missing field `capacity`/);
  assert.throws(
    () => parseMemoize({ name: "x", ttl: "1s", capacity: 1, stale: true }),
    /unknown field `stale`, expected one of `name`, `ttl`, `capacity`, /,
  );
  assert.equal(
    parseMemoize({ name: "x", ttl: 1, capacity: 1, invalidate_with_epoch: true })
      .invalidateWithEpoch,
    true,
  );
});
