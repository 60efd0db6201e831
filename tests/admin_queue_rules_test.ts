/**
 * Admin rules on live queues at the QueueManager level (http-api §6,
 * queues-and-delivery §7): suspension holds and releases after the
 * back-off, admin bounce sweeps and checks at insert, rebind moves queues,
 * ready-queue suspension leaves no eligible source, inspection shapes.
 * Real policy engine, spools, loopback DNS server and SMTP sink.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import { policyText, startHarness } from "./support/queue_harness.ts";
import { parseSuspendRequest } from "../src/queue/suspension.ts";
import { parseBounceRequest } from "../src/queue/admin_bounce.ts";
import { parseRebindRequest } from "../src/queue/rebind.ts";

const ZONES = {
  "dest.test": { MX: [{ pref: 10, host: "mx1.dest.test" }] },
  "other.test": { MX: [{ pref: 10, host: "mx1.dest.test" }] },
  "mx1.dest.test": { A: ["127.0.0.2"] },
};

async function waitUntil(fn: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("suspension: TransientFailure 451 4.4.4 per due message, delivery resumes after cancel and back-off", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  await using h = await startHarness(policyText({ dns: dns.address, port: sink.port }));
  const id = h.qm.admin.suspend(
    parseSuspendRequest({ reason: "maintenance", domain: "dest.test" }),
  );
  await h.inject("s@src.test", "a@dest.test");
  await h.inject("s@src.test", "b@other.test"); // not suspended
  const [tf] = await h.logs.waitFor("TransientFailure", 1);
  assert.equal(tf.response.code, 451);
  assert.deepEqual(tf.response.enhanced_code, { class: 4, subject: 4, detail: 4 });
  assert.equal(tf.response.content, "KumoMTA internal: scheduled queue is suspended: maintenance");
  assert.equal(tf.site, "dest.test");
  assert.equal(tf.num_attempts, 0);
  await h.logs.waitFor("Delivery", 1);
  assert.equal(sink.messages.length, 1);
  assert.equal(sink.messages[0].rcptTo[0], "b@other.test");
  const listed = h.qm.admin.listSuspensions();
  assert.equal(listed.length, 1);
  assert.equal(listed[0].id, id);
  assert.equal(listed[0].domain, "dest.test");
  const view = await h.qm.admin.inspectScheduledQueue("dest.test", false, 5);
  assert.ok(view);
  assert.equal(view.num_scheduled, 1);
  const [m] = view.messages as { message: { num_attempts: number; recipient: string } }[];
  assert.equal(m.message.recipient, "a@dest.test");
  assert.equal(m.message.num_attempts, 1);
  assert.equal(await h.qm.admin.inspectScheduledQueue("nope.test", false), undefined);
  assert.equal(h.qm.admin.cancelSuspension(id), true);
  assert.equal(h.qm.admin.cancelSuspension(id), false);
  const [, d] = await h.logs.waitFor("Delivery", 2);
  assert.equal(d.recipient, "a@dest.test");
  assert.ok(d.num_attempts >= 1);
});

Deno.test("admin bounce: sweeps queued messages, bounces new ones at insert, keeps counts", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  await using h = await startHarness(policyText({ dns: dns.address, port: sink.port }));
  h.qm.admin.suspend(parseSuspendRequest({ reason: "hold", domain: "dest.test" }));
  const m1 = await h.inject("s@src.test", "a@dest.test", { tenant: "shop" });
  await h.inject("s@src.test", "b@dest.test", { tenant: "shop" });
  await h.logs.waitFor("TransientFailure", 2);
  const id = h.qm.admin.bounce(parseBounceRequest({ reason: "bad list", tenant: "shop" }));
  const recs = await h.logs.waitFor("AdminBounce", 2);
  const r = recs.find((x) => x.id === m1.id)!;
  assert.equal(r.response.code, 551);
  assert.deepEqual(r.response.enhanced_code, { class: 5, subject: 7, detail: 1 });
  assert.equal(r.response.content, "Administrator bounced with reason: bad list");
  assert.equal(r.site, "localhost");
  assert.equal(r.queue, "shop@dest.test");
  await h.inject("s@src.test", "c@dest.test", { tenant: "shop" });
  await h.logs.waitFor("AdminBounce", 3);
  await waitUntil(async () => (await h.spooled()) === 0);
  const [listed] = h.qm.admin.listBounces();
  assert.equal(listed.id, id);
  assert.equal(listed.total_bounced, 3);
  assert.deepEqual(listed.bounced, { "shop@dest.test": 3 });
  assert.equal(listed.tenant, "shop");
  assert.equal(listed.campaign, null);
  assert.equal(sink.messages.length, 0);
  assert.equal(h.qm.admin.cancelBounce(id), true);
  assert.deepEqual(h.qm.admin.listBounces(), []);
});

Deno.test("rebind: meta change moves the queue, AdminRebind logged, message due at once", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  await using h = await startHarness(policyText({ dns: dns.address, port: sink.port }));
  h.qm.admin.suspend(parseSuspendRequest({ reason: "hold", queue_names: ["dest.test"] }));
  const msg = await h.inject("s@src.test", "a@dest.test");
  await h.logs.waitFor("TransientFailure", 1);
  await h.qm.admin.rebind(parseRebindRequest({ reason: "move", data: { tenant: "t2" } }));
  const [rb] = await h.logs.waitFor("AdminRebind", 1);
  assert.equal(rb.id, msg.id);
  assert.equal(rb.response.code, 250);
  assert.equal(rb.response.content, "Rebound from dest.test to t2@dest.test: move");
  const [d] = await h.logs.waitFor("Delivery", 1);
  assert.equal(d.queue, "t2@dest.test");
  await waitUntil(async () => (await h.spools.meta.load(msg.id)) === null);
});

Deno.test("ready-queue suspension: no eligible source is a 451 TransientFailure", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  await using h = await startHarness(policyText({ dns: dns.address, port: sink.port }));
  h.qm.admin.suspendReadyQueue({
    name: "unspecified->mx1.dest.test@smtp_client",
    reason: "slow",
    expires: Date.now() + 60_000,
  });
  const [s] = h.qm.admin.listReadySuspensions();
  assert.equal(s.name, "unspecified->mx1.dest.test@smtp_client");
  await h.inject("s@src.test", "a@dest.test");
  const [tf] = await h.logs.waitFor("TransientFailure", 1);
  assert.equal(
    tf.response.content,
    "KumoMTA internal: no sources for dest.test pool=`unspecified` are eligible for selection at this time",
  );
  assert.equal(sink.messages.length, 0);
  assert.equal(h.qm.admin.cancelReadySuspension(s.id as string), true);
  await h.logs.waitFor("Delivery", 1);
});
