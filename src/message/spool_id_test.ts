/**
 * Unit tests for spool ids (src/message/spool_id.ts). Place on the path:
 * the id every message gets at reception and keeps in the spool.
 */
import assert from "node:assert/strict";
import { isSpoolId, newSpoolId, spoolIdCreatedMs } from "./spool_id.ts";

/** Reorder a v1 id so string order is timestamp order (time_hi, time_mid, time_low). */
const timeKey = (id: string) => id.slice(12, 16) + id.slice(8, 12) + id.slice(0, 8);

Deno.test("newSpoolId() gives 100k unique 32-hex ids with UUID v1 layout", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 100_000; i++) seen.add(newSpoolId());
  assert.equal(seen.size, 100_000);
  for (const id of [...seen].slice(0, 100)) {
    assert.ok(isSpoolId(id), id);
    assert.equal(id[12], "1", "version 1");
    assert.ok("89ab".includes(id[16]), "RFC 4122 variant");
  }
});

Deno.test("newSpoolId() timestamps strictly increase within the process", () => {
  let prev = timeKey(newSpoolId());
  for (let i = 0; i < 50_000; i++) {
    const cur = timeKey(newSpoolId());
    assert.ok(cur > prev, `${cur} <= ${prev}`);
    prev = cur;
  }
});

Deno.test("newSpoolId() keeps the node part stable per process", () => {
  assert.equal(newSpoolId().slice(16), newSpoolId().slice(16));
});

Deno.test("spoolIdCreatedMs() recovers the creation time", () => {
  const before = Date.now();
  const id = newSpoolId();
  const after = Date.now();
  const ms = spoolIdCreatedMs(id);
  // ids may run up to a few ms ahead after a burst (10,000 ids per ms max)
  assert.ok(ms >= before - 1 && ms <= after + 20, `${before} <= ${ms} <= ${after}`);
  // a known KumoMTA-style v1 id: 1970-01-01T00:00:00Z is tick 0x01b21dd213814000
  assert.equal(spoolIdCreatedMs("13814000" + "1dd2" + "11b2" + "8000" + "010203040506"), 0);
  assert.throws(() => spoolIdCreatedMs("xyz"), TypeError);
});
