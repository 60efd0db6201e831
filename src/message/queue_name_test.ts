/**
 * Unit tests for buildQueueName()/parseQueueName()
 * (src/message/queue_name.ts). Place on the path: choosing the scheduled
 * queue after reception.
 */
import assert from "node:assert/strict";
import { buildQueueName, parseQueueName } from "./queue_name.ts";

const TABLE: [Parameters<typeof buildQueueName>[0], string][] = [
  [{ domain: "Example.COM" }, "example.com"],
  [{ domain: "d.test", routingDomain: "relay.test" }, "d.test!relay.test"],
  [{ domain: "d.test", tenant: "shop" }, "shop@d.test"],
  [{ domain: "d.test", campaign: "spring" }, "spring:@d.test"],
  [{ domain: "d.test", campaign: "spring", tenant: "shop" }, "spring:shop@d.test"],
  [
    {
      domain: "Customer.TEST",
      campaign: "spring",
      tenant: "shop",
      routingDomain: "relay.partner.test",
    },
    "spring:shop@customer.test!relay.partner.test",
  ],
  [{ domain: "d.test", tenant: "shop", routingDomain: "r.test" }, "shop@d.test!r.test"],
  [{ domain: "d.test", campaign: "c", routingDomain: "r.test" }, "c:@d.test!r.test"],
  [{ domain: "d.test", queue: "Verbatim", campaign: "c", tenant: "t" }, "Verbatim"],
  [{ domain: "d.test", queue: null, tenant: undefined }, "d.test"],
];

Deno.test("buildQueueName() follows the naming table", () => {
  for (const [input, want] of TABLE) assert.equal(buildQueueName(input), want);
});

Deno.test("buildQueueName() rejects non-string meta naming the key", () => {
  assert.throws(() => buildQueueName({ domain: "d", tenant: 5 }), /meta "tenant"/);
  assert.throws(() => buildQueueName({ domain: "d", campaign: {} }), /meta "campaign"/);
  assert.throws(
    () => buildQueueName({ domain: "d", routingDomain: true }),
    /meta "routing_domain"/,
  );
  assert.throws(() => buildQueueName({ domain: "d", queue: 1 }), TypeError);
});

Deno.test("parseQueueName() reverses the table, with the campaign:@d quirk", () => {
  assert.deepEqual(parseQueueName("example.com"), { domain: "example.com" });
  assert.deepEqual(parseQueueName("d!r"), { domain: "d", routingDomain: "r" });
  assert.deepEqual(parseQueueName("shop@d"), { domain: "d", tenant: "shop" });
  assert.deepEqual(parseQueueName("spring:@d"), { domain: "d", tenant: "", campaign: "spring" });
  assert.deepEqual(parseQueueName("spring:shop@customer.test!relay.partner.test"), {
    domain: "customer.test",
    tenant: "shop",
    campaign: "spring",
    routingDomain: "relay.partner.test",
  });
  // split at the FIRST '@' and '!', first ':' in the prefix
  assert.deepEqual(parseQueueName("a:b:c@d@e!f!g"), {
    domain: "d@e",
    campaign: "a",
    tenant: "b:c",
    routingDomain: "f!g",
  });
  for (const [input] of TABLE.slice(0, 8)) {
    const p = parseQueueName(buildQueueName(input));
    assert.equal(p.domain, input.domain.toLowerCase());
    assert.equal(p.routingDomain, input.routingDomain);
    assert.equal(p.campaign, input.campaign);
  }
});
