/**
 * Delivery behaviours beyond the happy path, at the QueueManager level with
 * a real policy engine, spools, DNS server and SMTP sinks on 127.0.0.x:
 * an unplumbed source address, "too many recipients", failed TLS handshakes
 * and their fall-backs, Delayed records (throttle_insert_ready_queue,
 * max_message_rate longer than idle_timeout) and the bulk delay after
 * consecutive connection failures.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import { policyText, startHarness } from "./support/queue_harness.ts";

const ZONES = {
  "dest.test": { MX: [{ pref: 10, host: "mx1.dest.test" }] },
  "mx1.dest.test": { A: ["127.0.0.2"] },
};

Deno.test("an unplumbed source address is a TransientFailure, not a crash", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  const extra = `
kumo.on('get_egress_pool', function(name)
  return kumo.make_egress_pool { name = name, entries = { { name = 'nowhere' } } }
end)
kumo.on('get_egress_source', function(name)
  -- TEST-NET-1: not configured on this host, so bind() fails (no packet is sent)
  return kumo.make_egress_source { name = name, source_address = '192.0.2.1' }
end)`;
  await using h = await startHarness(
    policyText({ dns: dns.address, port: sink.port, queue: "egress_pool = 'p'", extra }),
  );
  await h.inject("s@src.test", "r@dest.test");
  const [rec] = await h.logs.waitFor("TransientFailure", 1);
  assert.equal(rec.response.code, 400);
  assert.match(
    rec.response.content,
    /^KumoMTA internal: failed to connect to any candidate hosts: .*(EADDRNOTAVAIL|assign|bind)/i,
  );
  assert.equal(rec.site, "nowhere->mx1.dest.test@smtp_client");
  assert.equal(rec.egress_source, "nowhere");
  assert.equal(rec.num_attempts, 0);
  assert.equal(sink.messages.length, 0);
});

Deno.test("'too many recipients' replies are retried at once on the same connection", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  let inTxn = 0;
  await using sink = await startSmtpSink({
    addresses: ["127.0.0.2"],
    replies(stage) {
      if (stage === "mail") inTxn = 0;
      if (stage !== "rcpt") return undefined;
      return ++inTxn > 2 ? { code: 452, text: "Too many recipients" } : undefined;
    },
  });
  await using h = await startHarness(policyText({ dns: dns.address, port: sink.port }));
  const rcpts = ["a", "b", "c", "d", "e"].map((x) => `${x}@dest.test`);
  await h.inject("s@src.test", rcpts);
  const recs = await h.logs.waitFor("Delivery", 3);
  await sink.waitFor(3);
  assert.deepEqual(sink.messages.map((m) => m.rcptTo), [["a@dest.test", "b@dest.test"], [
    "c@dest.test",
    "d@dest.test",
  ], ["e@dest.test"]]);
  assert.equal(new Set(sink.messages.map((m) => m.connectionId)).size, 1);
  assert.equal(h.logs.of("TransientFailure").length, 0);
  assert.deepEqual(recs.flatMap((r) => r.recipient).sort(), rcpts);
});

Deno.test("a failed TLS handshake: error, clear-text reconnect, remember_broken_tls", async (t) => {
  await using dns = await startDnsServer({ zones: ZONES });
  // A self-signed certificate: validation fails under Opportunistic.
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"], starttls: true });
  if (!sink.tlsAvailable) {
    console.log("TLS scenario skipped: openssl is not available for the sink's certificate");
    return;
  }
  await t.step("Opportunistic: the handshake failure is a connection error", async () => {
    await using h = await startHarness(
      policyText({
        dns: dns.address,
        port: sink.port,
        path: "enable_tls = 'Opportunistic'",
      }).replace("enable_tls = 'Disabled',", ""),
    );
    await h.inject("s@src.test", "r@dest.test");
    const [rec] = await h.logs.waitFor("TransientFailure", 1);
    assert.match(rec.response.content, /TLS handshake with 127\.0\.0\.2 failed/);
  });
  await t.step(
    "opportunistic_tls_reconnect_on_failed_handshake delivers in clear text",
    async () => {
      const before = sink.messages.length;
      await using h = await startHarness(
        policyText({
          dns: dns.address,
          port: sink.port,
          path:
            "opportunistic_tls_reconnect_on_failed_handshake = true, remember_broken_tls = '1h'",
        }).replace("enable_tls = 'Disabled',", ""),
      );
      await h.inject("s@src.test", "r1@dest.test");
      await h.logs.waitFor("Delivery", 1);
      assert.equal(sink.messages[before].tls, false);
      const conns = sink.connections.length;
      await h.inject("s@src.test", "r2@dest.test");
      await h.logs.waitFor("Delivery", 2);
      // remember_broken_tls: no further STARTTLS attempt (one connection, clear text).
      const later = sink.connections.slice(conns);
      assert.ok(later.length <= 1 && later.every((c) => !c.tls), JSON.stringify(later));
    },
  );
  await t.step("OpportunisticInsecure uses TLS without validation", async () => {
    await using h = await startHarness(
      policyText({
        dns: dns.address,
        port: sink.port,
        path: "enable_tls = 'OpportunisticInsecure'",
      }).replace("enable_tls = 'Disabled',", ""),
    );
    const before = sink.messages.length;
    await h.inject("s@src.test", "r@dest.test");
    const [rec] = await h.logs.waitFor("Delivery", 1);
    assert.equal(sink.messages[before].tls, true);
    assert.ok(rec.tls_protocol_version);
  });
});

Deno.test("throttle_insert_ready_queue delays with a Delayed record and requeue_message context", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  const extra = `
kumo.on('throttle_insert_ready_queue', function(msg)
  if msg:get_meta('throttled') == nil then
    msg:set_meta('throttled', true)
    msg:set_due(os.date('!%Y-%m-%dT%H:%M:%SZ', os.time() + 3600))
  end
end)
kumo.on('requeue_message', function(msg, response, context, increment, delay)
  msg:set_meta('requeue_context', context[1])
  msg:set_meta('requeue_increment', increment)
end)`;
  await using h = await startHarness(policyText({ dns: dns.address, port: sink.port, extra }));
  const msg = await h.inject("s@src.test", "r@dest.test");
  const [rec] = await h.logs.waitFor("Delayed", 1);
  assert.equal(rec.response.code, 400);
  assert.equal(rec.response.enhanced_code, null);
  assert.match(
    rec.response.content,
    /^Context: ThrottledByThrottleInsertReadyQueue\. Next due in .* at \d{4}-/,
  );
  assert.equal(rec.num_attempts, 0);
  assert.equal(msg.meta.requeue_context, "ThrottledByThrottleInsertReadyQueue");
  assert.equal(msg.meta.requeue_increment, false);
  assert.equal(sink.messages.length, 0);
  assert.ok(msg.due > Date.now());
});

Deno.test("max_message_rate longer than idle_timeout delays instead of waiting", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: sink.port,
    path: "max_message_rate = '1/min', idle_timeout = '1s'",
  }));
  await h.inject("s@src.test", "a@dest.test");
  await h.inject("s@src.test", "b@dest.test");
  const [d] = await h.logs.waitFor("Delayed", 1);
  assert.match(
    d.response.content,
    /^Context: ready queue .* max_message_rate throttled\. Next due in/,
  );
  assert.equal(h.logs.of("Delivery").length, 1);
  assert.equal(sink.messages.length, 1);
});

Deno.test("consecutive_connection_failures_before_delay bulk-delays the ready queue", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: 9, // nothing listens: every plan fails
    path: "consecutive_connection_failures_before_delay = 0",
  }));
  await h.inject("s@src.test", "r@dest.test");
  const [rec] = await h.logs.waitFor("TransientFailure", 1);
  assert.equal(rec.response.code, 451);
  assert.deepEqual(rec.response.enhanced_code, { class: 4, subject: 4, detail: 1 });
  assert.match(rec.response.content, /bulk delay of ready queue .*No answer from any hosts/);
});
