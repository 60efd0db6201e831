/**
 * Reply classification through a real sink (queues-and-delivery §5.1, §5.3,
 * §4.1): a 5xx banner or EHLO is a connection error (TransientFailure, not
 * Bounce), 503 and 3xx at RCPT are transient, NXDOMAIN retries and never
 * bounces, a null MX bounces with 556 5.1.10. Real policy engine, spools,
 * the test's DNS server and SMTP sinks on 127.0.0.x.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { type SinkStage, startSmtpSink } from "./support/smtp_sink.ts";
import { policyText, startHarness } from "./support/queue_harness.ts";

const ZONES = {
  "dest.test": { MX: [{ pref: 10, host: "mx1.dest.test" }] },
  "mx1.dest.test": { A: ["127.0.0.2"] },
  "nullmx.test": { MX: [{ pref: 0, host: "." }] },
};

/** A sink answering `stage` with `code text`; everything else normal. */
async function refusingAt(stage: SinkStage, code: number, text: string) {
  return await startSmtpSink({
    addresses: ["127.0.0.2"],
    replies: (s) => s === stage ? { code, text } : undefined,
  });
}

for (
  const [stage, code, text, want] of [
    ["connect", 554, "5.7.1 no service for you", /Unexpected banner from 127\.0\.0\.2: 554/],
    ["ehlo", 550, "5.7.1 go away", /EHLO rejected by 127\.0\.0\.2: 550/],
  ] as const
) {
  Deno.test(`a ${code} ${stage === "connect" ? "banner" : "EHLO reply"} is a TransientFailure, not a Bounce`, async () => {
    await using dns = await startDnsServer({ zones: ZONES });
    await using sink = await refusingAt(stage, code, text);
    await using h = await startHarness(policyText({ dns: dns.address, port: sink.port }));
    const msg = await h.inject("s@src.test", "r@dest.test");
    const [tf] = await h.logs.waitFor("TransientFailure", 1);
    assert.equal(tf.id, msg.id);
    assert.equal(tf.response.code, 400);
    assert.equal(tf.response.enhanced_code, null);
    assert.match(
      tf.response.content,
      /^KumoMTA internal: failed to connect to any candidate hosts: /,
    );
    assert.match(tf.response.content, want);
    assert.equal(tf.peer_address, null);
    assert.equal(tf.site, "unspecified->mx1.dest.test@smtp_client");
    assert.equal(tf.num_attempts, 0);
    // It is retried (retry_interval 1 s), never bounced.
    const [, again] = await h.logs.waitFor("TransientFailure", 2, 5000);
    assert.equal(again.num_attempts, 1);
    assert.equal(h.logs.of("Bounce").length, 0);
    assert.equal(sink.messages.length, 0);
    assert.ok(sink.connections.length >= 2);
    assert.equal(await h.spooled(), 1);
  });
}

for (
  const [code, text] of [
    [503, "5.5.1 bad sequence of commands"],
    [354, "odd intermediate reply"],
  ] as const
) {
  Deno.test(`RCPT answered ${code} is a TransientFailure (retried, not bounced)`, async () => {
    await using dns = await startDnsServer({ zones: ZONES });
    await using sink = await refusingAt("rcpt", code, text);
    await using h = await startHarness(policyText({ dns: dns.address, port: sink.port }));
    await h.inject("s@src.test", "r@dest.test");
    const [tf] = await h.logs.waitFor("TransientFailure", 1);
    assert.equal(tf.response.code, code);
    assert.equal(tf.response.command, "RCPT TO:<r@dest.test>\r\n");
    assert.deepEqual(tf.peer_address, { name: "mx1.dest.test.", addr: "127.0.0.2" });
    assert.equal(tf.delivery_protocol, "ESMTP");
    const [, again] = await h.logs.waitFor("TransientFailure", 2, 5000);
    assert.equal(again.num_attempts, 1);
    assert.equal(h.logs.of("Bounce").length, 0);
    assert.equal(sink.messages.length, 0);
    assert.equal(await h.spooled(), 1);
  });
}

Deno.test("a 5xx other than 503 at RCPT bounces (control for the cases above)", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await refusingAt("rcpt", 550, "5.1.1 no such user");
  await using h = await startHarness(policyText({ dns: dns.address, port: sink.port }));
  await h.inject("s@src.test", "r@dest.test");
  const [b] = await h.logs.waitFor("Bounce", 1);
  assert.equal(b.response.code, 550);
  assert.deepEqual(b.response.enhanced_code, { class: 5, subject: 1, detail: 1 });
  assert.equal(h.logs.of("TransientFailure").length, 0);
});

Deno.test("NXDOMAIN is a TransientFailure that retries and never bounces", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using h = await startHarness(policyText({ dns: dns.address, port: 9 }));
  const msg = await h.inject("s@src.test", "r@missing.test");
  const tfs = await h.logs.waitFor("TransientFailure", 2, 8000);
  for (const [i, tf] of tfs.slice(0, 2).entries()) {
    assert.equal(tf.id, msg.id);
    assert.equal(tf.num_attempts, i);
    assert.equal(tf.response.code, 451);
    assert.deepEqual(tf.response.enhanced_code, { class: 4, subject: 4, detail: 4 });
    assert.match(tf.response.content, /^failed to resolve queue missing\.test: /);
    assert.equal(tf.peer_address, null);
  }
  const gap = Date.parse(tfs[1].event_time) - Date.parse(tfs[0].event_time);
  assert.ok(gap >= 900, `retried after ${gap} ms (retry_interval 1 s)`);
  assert.equal(h.logs.of("Bounce").length, 0);
  assert.equal(h.logs.of("Expiration").length, 0);
  assert.equal(await h.spooled(), 1);
  // The DNS server really answered NXDOMAIN (no system resolver involved).
  assert.ok(dns.queries.some((q) => q.name === "missing.test" && q.type === "MX"));
});

Deno.test("a null MX bounces with 556 5.1.10 and is not retried", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using h = await startHarness(policyText({ dns: dns.address, port: 9 }));
  const msg = await h.inject("s@src.test", "r@nullmx.test");
  const [b] = await h.logs.waitFor("Bounce", 1);
  assert.equal(b.id, msg.id);
  assert.deepEqual(b.response, {
    code: 556,
    enhanced_code: { class: 5, subject: 1, detail: 10 },
    content: "Recipient address has a null MX",
    command: null,
  });
  // Null MX → site name "" (§4.2).
  assert.equal(b.site, "unspecified->@smtp_client");
  assert.equal(h.logs.of("TransientFailure").length, 0);
  const deadline = Date.now() + 5000;
  while ((await h.spooled()) !== 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(await h.spooled(), 0);
});
