/**
 * Unit tests for parseSpool() (`kumo.define_spool`). Place on the path:
 * policy configuration, read when the spools open.
 */
import assert from "node:assert/strict";
import { parseSpool, spoolToJSON } from "./spool.ts";

Deno.test("parseSpool() defaults", () => {
  const s = parseSpool({ name: "data", path: "/tmp/spool/data" });
  assert.deepEqual(s, {
    name: "data",
    path: "/tmp/spool/data",
    kind: "LocalDisk",
    flush: false,
    rocksParams: undefined,
    minFreeSpace: { percent: 10 },
    minFreeInodes: { percent: 10 },
  });
  assert.equal(spoolToJSON(s).min_free_space, "10%");
});

Deno.test("parseSpool() reads keys and rejects bad input", () => {
  const s = parseSpool({
    name: "meta",
    path: "/p",
    kind: "RocksDB",
    flush: true,
    rocks_params: { x: 1 },
    min_free_space: 1024,
    min_free_inodes: "5%",
  });
  assert.deepEqual(s.minFreeSpace, { absolute: 1024 });
  assert.deepEqual(s.minFreeInodes, { percent: 5 });
  assert.throws(() => parseSpool({ name: "data" }), /missing field `path`/);
  assert.throws(
    () => parseSpool({ name: "d", path: "/p", kind: "localdisk" }),
    /unknown variant `localdisk`, expected `LocalDisk` or `RocksDB`/,
  );
  assert.throws(() => parseSpool({ name: "d", path: "/p", min_free_space: "200%" }), /"200%"/);
  assert.throws(
    () => parseSpool({ name: "d", path: "/p", fsync: true }),
    /unknown field `fsync`, expected one of `name`, `path`, `kind`, `flush`, `rocks_params`, `min_free_space`, `min_free_inodes`/,
  );
});
