import assert from "node:assert/strict";
import { matchesQueue, readExpiry } from "./queue_criteria.ts";
import { parseBounceRequest } from "./admin_bounce.ts";
import { parseQueueName } from "../message/queue_name.ts";

const m = (c: Parameters<typeof matchesQueue>[0], name: string) =>
  matchesQueue(c, name, parseQueueName(name));

Deno.test("matchesQueue() compares set criteria exactly; queue_names replace them", () => {
  assert.equal(m({ queueNames: [] }, "c:t@d.test!r.test"), true);
  assert.equal(m({ tenant: "t", queueNames: [] }, "c:t@d.test"), true);
  assert.equal(m({ tenant: "T", queueNames: [] }, "c:t@d.test"), false);
  assert.equal(m({ campaign: "c", queueNames: [] }, "t@d.test"), false);
  assert.equal(m({ domain: "d.test", queueNames: [] }, "d.test!r.test"), true);
  assert.equal(m({ domain: "r.test", queueNames: [] }, "d.test!r.test"), false);
  assert.equal(m({ routingDomain: "r.test", queueNames: [] }, "d.test!r.test"), true);
  assert.equal(m({ tenant: "x", queueNames: ["d.test"] }, "d.test"), true);
});

Deno.test("readExpiry() defaults to 5 minutes; expires wins over duration", () => {
  assert.equal(readExpiry({}, 1000), 301_000);
  assert.equal(readExpiry({ duration: "1h" }, 0), 3_600_000);
  assert.equal(readExpiry({ duration: 2 }, 0), 2000);
  assert.equal(readExpiry({ duration: "1h", expires: "1970-01-01T00:00:01Z" }, 0), 1000);
});

Deno.test("parseBounceRequest() refuses unknown keys and a missing reason", () => {
  assert.throws(() => parseBounceRequest({ reason: "x", nope: 1 }), /unknown field `nope`/);
  assert.throws(() => parseBounceRequest({ domain: "d" }), /missing field `reason`/);
  assert.equal(parseBounceRequest({ reason: "x", domain: null }).criteria.domain, undefined);
});
