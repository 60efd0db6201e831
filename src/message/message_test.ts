/**
 * Unit tests for the Message (src/message/message.ts): ids, queue names,
 * envelope setters, header helpers, scheduling and spool records.
 * Place on the path: the unit that travels from reception to delivery.
 */
import assert from "node:assert/strict";
import { Message } from "./message.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const DATA = "Subject: hi\r\nX-Campaign-ID: c1\r\n\r\nbody\r\n";

function make(recipients = ["b@Example.NET"]) {
  return new Message({ sender: "a@example.com", recipients, data: enc(DATA) });
}

Deno.test("Message has an id whose time is its creation time", () => {
  const before = Date.now();
  const msg = make();
  assert.match(msg.id, /^[0-9a-f]{32}$/);
  assert.ok(Math.abs(msg.createdMs - before) < 1000);
  assert.equal(msg.numAttempts, 0);
  assert.equal(msg.incrementNumAttempts(), 1);
});

Deno.test("Message.queueName() uses meta and the lower-cased first recipient domain", () => {
  const msg = make(["b@Example.NET", "c@other.test"]);
  assert.equal(msg.queueName(), "example.net");
  msg.setMeta("campaign", "spring");
  assert.equal(msg.queueName(), "spring:@example.net");
  msg.setMeta("tenant", "shop");
  msg.setMeta("routing_domain", "relay.test");
  assert.equal(msg.queueName(), "spring:shop@example.net!relay.test");
  msg.setMeta("queue", "custom");
  assert.equal(msg.queueName(), "custom");
  msg.setMeta("queue", undefined);
  assert.equal(msg.getMeta("queue"), null);
  msg.setMeta("tenant", 3);
  assert.throws(() => msg.queueName(), /meta "tenant"/);
});

Deno.test("Message envelope setters accept strings, addresses and arrays", () => {
  const msg = make();
  assert.equal((msg.recipient() as { email: string }).email, "b@Example.NET");
  msg.setRecipient(["x@a.test", { user: "y", domain: "b.test", email: "y@b.test" }]);
  const r = msg.recipient();
  assert.ok(Array.isArray(r) && r.length === 2 && r[1].domain === "b.test");
  msg.setRecipient([]);
  assert.equal(msg.recipient(), undefined);
  msg.setSender("");
  assert.deepEqual({ ...msg.sender }, { user: "", domain: "", email: "" });
});

Deno.test("Message header helpers edit data and import meta", () => {
  const msg = make();
  msg.dataDirty = false;
  msg.prependHeader("Received", "from x");
  assert.ok(msg.dataDirty);
  msg.appendHeader("X-Tenant", "shop");
  assert.equal(msg.getFirstNamedHeaderValue("x-tenant"), "shop");
  msg.importXHeaders();
  assert.equal(msg.getMeta("x_campaign_id"), "c1");
  assert.equal(msg.getMeta("x_tenant"), "shop");
  msg.removeXHeaders();
  assert.deepEqual(msg.getAllHeaders().map((h) => h.name), ["Received", "Subject"]);
  msg.removeAllNamedHeaders("received");
  assert.equal(msg.getDataString(), "Subject: hi\r\n\r\nbody\r\n");
  msg.data = null;
  assert.throws(() => msg.getData(), /data is not loaded/);
});

Deno.test("Message.setScheduling() validates the window", () => {
  const msg = make();
  assert.deepEqual(msg.setScheduling({ expires: "2030-01-01T00:00:00Z" }), {
    expires: "2030-01-01T00:00:00Z",
  });
  assert.throws(() => msg.setScheduling({ dow: "Mon" }), /must all be set/);
  assert.throws(() => msg.setScheduling({ bogus: "x" }), /unknown key/);
  assert.equal(msg.setScheduling(null), undefined);
});

Deno.test("Message round-trips through its spool records", () => {
  const msg = make(["b@example.net"]);
  msg.setMeta("tenant", "shop");
  msg.setMeta("nested", { a: [1, 2], b: null });
  msg.setScheduling({ dow: "Mon,Wed", tz: "Europe/Paris", start: "09:00:00", end: "17:00:00" });
  const rec = msg.metaRecord();
  assert.equal(rec.recipient, "b@example.net", "a single recipient is a string");
  const back = Message.fromSpool(msg.id, msg.metaBytes(), msg.data);
  assert.equal(back.id, msg.id);
  assert.deepEqual(back.sender, msg.sender);
  assert.deepEqual(back.recipients, msg.recipients);
  assert.deepEqual(back.meta, msg.meta);
  assert.deepEqual(back.scheduling, msg.scheduling);
  assert.equal(back.getDataString(), DATA);
  assert.equal(back.metaDirty, false);

  const multi = new Message({
    sender: "",
    recipients: ["a@x.test", "postmaster"],
    data: null,
  });
  const json = JSON.parse(new TextDecoder().decode(multi.metaBytes()));
  assert.deepEqual(json, { sender: "", recipient: ["a@x.test", "postmaster"], meta: {} });
  const back2 = Message.fromSpool(multi.id, JSON.stringify(json), null);
  assert.equal(back2.sender.email, "");
  assert.deepEqual(back2.recipients.map((r) => r.email), ["a@x.test", "postmaster"]);
  assert.equal(back2.data, null);
  assert.throws(() => Message.fromSpool(multi.id, "{}", null), SyntaxError);
  assert.throws(() => Message.fromSpool(multi.id, "not json", null), SyntaxError);
});
