/**
 * Delivery scenarios at the QueueManager level, without the SMTP receive
 * side (messages are spooled and inserted directly by
 * tests/support/queue_harness.ts; tests/deliver_scenarios_test.ts runs the
 * same paths through the whole program, injected with swaks): real policy
 * engine, spools, DNS server and SMTP sinks on 127.0.0.x.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import { policyText, startHarness } from "./support/queue_harness.ts";

const ZONES = {
  "dest.test": { MX: [{ pref: 10, host: "mx1.dest.test" }, { pref: 20, host: "mx2.dest.test" }] },
  "mx1.dest.test": { A: ["127.0.0.2"] },
  "mx2.dest.test": { A: ["127.0.0.3"] },
};

Deno.test("delivers to the lowest MX with Delivery records carrying every field", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2", "127.0.0.3"] });
  await using h = await startHarness(policyText({ dns: dns.address, port: sink.port }));
  const msg = await h.inject("sender@src.test", "rcpt@dest.test");
  const [rec] = await h.logs.waitFor("Delivery", 1);
  await sink.waitFor(1);
  assert.equal(sink.messages[0].localAddress, "127.0.0.2");
  assert.equal(rec.id, msg.id);
  assert.equal(rec.recipient, "rcpt@dest.test");
  assert.equal(rec.queue, "dest.test");
  assert.equal(rec.site, "unspecified->(mx1|mx2).dest.test@smtp_client");
  // smtp_port is not part of the route: no `:port` (logs §1.2).
  assert.deepEqual(rec.peer_address, { name: "mx1.dest.test.", addr: "127.0.0.2" });
  assert.match(rec.source_address!.address, /^127\.0\.0\.1:\d+$/);
  assert.equal(rec.egress_pool, "unspecified");
  assert.equal(rec.egress_source, "unspecified");
  assert.equal(rec.delivery_protocol, "ESMTP");
  assert.equal(rec.response.code, 250);
  assert.equal(rec.response.command, ".\r\n");
  assert.equal(rec.num_attempts, 0);
  assert.equal(sink.messages[0].ehlo, "host.test");
  await waitUntil(async () => (await h.spooled()) === 0);
});

Deno.test("falls over to the next MX when the lowest does not answer", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.3"] });
  await using h = await startHarness(policyText({ dns: dns.address, port: sink.port }));
  await h.inject("sender@src.test", "rcpt@dest.test");
  const [rec] = await h.logs.waitFor("Delivery", 1);
  assert.equal(rec.peer_address!.name, "mx2.dest.test.");
  assert.equal(sink.messages[0].localAddress, "127.0.0.3");
});

Deno.test("WRR 2:1 over 300 messages with source IP and EHLO per source", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  const extra = `
kumo.on('get_egress_pool', function(name)
  return kumo.make_egress_pool { name = name, entries = {
    { name = 'ip-a', weight = 2 }, { name = 'ip-b', weight = 1 }, { name = 'ip-z', weight = 0 } } }
end)
kumo.on('get_egress_source', function(name)
  local ips = { ['ip-a'] = '127.0.0.11', ['ip-b'] = '127.0.0.12', ['ip-z'] = '127.0.0.13' }
  return kumo.make_egress_source { name = name, source_address = ips[name], ehlo_domain = name .. '.example.test' }
end)`;
  await using h = await startHarness(
    policyText({ dns: dns.address, port: sink.port, queue: "egress_pool = 'pool1'", extra }),
  );
  for (let i = 0; i < 300; i++) await h.inject("s@src.test", `r${i}@dest.test`);
  await sink.waitFor(300, 30_000);
  const by: Record<string, number> = {};
  for (const m of sink.messages) {
    by[m.remoteAddress] = (by[m.remoteAddress] ?? 0) + 1;
    assert.equal(
      m.ehlo,
      m.remoteAddress === "127.0.0.11" ? "ip-a.example.test" : "ip-b.example.test",
    );
  }
  assert.equal(by["127.0.0.13"], undefined);
  // WRR is deterministic per scheduled queue: exactly 2:1 over 300 picks.
  assert.deepEqual(by, { "127.0.0.11": 200, "127.0.0.12": 100 });
  const recs = await h.logs.waitFor("Delivery", 300);
  const bySource: Record<string, number> = {};
  for (const r of recs) bySource[r.egress_source!] = (bySource[r.egress_source!] ?? 0) + 1;
  assert.deepEqual(bySource, { "ip-a": 200, "ip-b": 100 });
  assert.ok(
    recs.some((r) =>
      r.site === "ip-a->(mx1|mx2).dest.test@smtp_client" && r.egress_pool === "pool1"
    ),
  );
});

Deno.test("4xx then success after the retry interval", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  let first = true;
  await using sink = await startSmtpSink({
    addresses: ["127.0.0.2"],
    replies: (stage) => {
      if (stage === "rcpt" && first) {
        first = false;
        return { code: 451, text: "4.7.1 greylisted" };
      }
    },
  });
  await using h = await startHarness(policyText({ dns: dns.address, port: sink.port }));
  await h.inject("s@src.test", "r@dest.test");
  const [tf] = await h.logs.waitFor("TransientFailure", 1);
  const t0 = Date.now();
  assert.equal(tf.response.code, 451);
  assert.deepEqual(tf.response.enhanced_code, { class: 4, subject: 7, detail: 1 });
  assert.equal(tf.response.content, "greylisted");
  assert.equal(tf.num_attempts, 0);
  const [d] = await h.logs.waitFor("Delivery", 1);
  const waited = Date.now() - t0;
  assert.ok(waited >= 800 && waited < 3000, `waited ${waited}`);
  assert.equal(d.num_attempts, 1);
});

Deno.test("5xx produces a Bounce and removes the message from the spool", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({
    addresses: ["127.0.0.2"],
    replies: (stage) => stage === "rcpt" ? { code: 550, text: "5.1.1 no such user" } : undefined,
  });
  await using h = await startHarness(policyText({ dns: dns.address, port: sink.port }));
  await h.inject("s@src.test", "r@dest.test");
  const [b] = await h.logs.waitFor("Bounce", 1);
  assert.equal(b.response.code, 550);
  assert.equal(b.response.command, "RCPT TO:<r@dest.test>\r\n");
  await waitUntil(async () => (await h.spooled()) === 0);
});

Deno.test("max_age leads to an Expiration record", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({
    addresses: ["127.0.0.2"],
    replies: (stage) => stage === "rcpt" ? { code: 421, text: "4.3.2 busy" } : undefined,
  });
  await using h = await startHarness(
    policyText({ dns: dns.address, port: sink.port, queue: "max_age = '2s'" }),
  );
  await h.inject("s@src.test", "r@dest.test");
  const [e] = await h.logs.waitFor("Expiration", 1, 8000);
  assert.equal(e.response.code, 551);
  assert.deepEqual(e.response.enhanced_code, { class: 5, subject: 4, detail: 7 });
  assert.equal(h.logs.of("TransientFailure").length, 2); // at 0 s and 1 s; the next would be past 2 s
  await waitUntil(async () => (await h.spooled()) === 0);
});

Deno.test("connection_limit bounds concurrent connections", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"], delayMs: 5 });
  await using h = await startHarness(
    policyText({ dns: dns.address, port: sink.port, path: "connection_limit = 2" }),
  );
  for (let i = 0; i < 60; i++) await h.inject("s@src.test", `r${i}@dest.test`);
  const t0 = Date.now();
  await sink.waitFor(60, 30_000);
  console.log("connection_limit: 60 messages in", Date.now() - t0, "ms, max", sink.maxConcurrent);
  assert.ok(sink.maxConcurrent <= 2, `maxConcurrent ${sink.maxConcurrent}`);
  assert.ok(sink.maxConcurrent >= 1);
});

Deno.test("enable_tls=Required against a sink without STARTTLS is a TransientFailure", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  await using h = await startHarness(
    policyText({ dns: dns.address, port: sink.port, path: "enable_tls = 'Required'" }).replace(
      "enable_tls = 'Disabled',",
      "",
    ),
  );
  await h.inject("s@src.test", "r@dest.test");
  const [tf] = await h.logs.waitFor("TransientFailure", 1);
  assert.equal(tf.response.code, 400);
  assert.match(tf.response.content, /failed to connect to any candidate hosts: .*STARTTLS/);
  assert.equal(tf.peer_address, null);
  assert.equal(sink.messages.length, 0);
});

Deno.test("NXDOMAIN is a 451 4.4.4 TransientFailure; null MX bounces 556 5.1.10", async () => {
  await using dns = await startDnsServer({
    zones: { ...ZONES, "nullmx.test": { MX: [{ pref: 0, host: "." }] } },
  });
  await using h = await startHarness(policyText({ dns: dns.address, port: 1 }));
  await h.inject("s@src.test", "r@missing.test");
  const [tf] = await h.logs.waitFor("TransientFailure", 1);
  assert.equal(tf.response.code, 451);
  assert.match(tf.response.content, /^failed to resolve queue missing\.test: /);
  await h.inject("s@src.test", "r@nullmx.test");
  const [b] = await h.logs.waitFor("Bounce", 1);
  assert.equal(b.response.code, 556);
  assert.equal(b.response.content, "Recipient address has a null MX");
});

Deno.test("default prohibited_hosts bounce loopback MX with 550 5.4.4", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  const policy = policyText({ dns: dns.address, port: 1 }).replace("prohibited_hosts = {},", "");
  await using h = await startHarness(policy);
  await h.inject("s@src.test", "r@dest.test");
  const [b] = await h.logs.waitFor("Bounce", 1);
  assert.equal(b.response.code, 550);
  assert.match(b.response.content, /is on the list of prohibited_hosts/);
});

Deno.test("restart mid-queue delivers every spooled message exactly once", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  await using h = await startHarness(policyText({ dns: dns.address, port: sink.port }));
  const ids = new Set<string>();
  for (let i = 0; i < 20; i++) ids.add((await h.spoolOnly("s@src.test", `r${i}@dest.test`)).id);
  for (let i = 0; i < 5; i++) ids.add((await h.inject("s@src.test", `x${i}@dest.test`)).id);
  await h.logs.waitFor("Delivery", 5);
  await h.restart();
  await sink.waitFor(25, 10_000);
  await h.logs.waitFor("Delivery", 25);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sink.messages.length, 25);
  const delivered = h.logs.of("Delivery").map((r) => r.id);
  assert.equal(new Set(delivered).size, 25);
  assert.deepEqual(new Set(delivered), ids);
  await waitUntil(async () => (await h.spooled()) === 0);
});

async function waitUntil(fn: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("condition not met in time");
}
