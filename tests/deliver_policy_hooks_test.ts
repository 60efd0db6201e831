/**
 * Policy hooks on the delivery path, at the QueueManager level with a real
 * policy engine, spools, DNS server and SMTP sink on 127.0.0.x:
 * `smtp_client_rewrite_delivery_status` turning a remote 5xx into a 4xx
 * (and its arguments), and `requeue_message` re-routing a transiently
 * failed message to another queue or bouncing it with `kumo.reject`.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import { policyText, startHarness } from "./support/queue_harness.ts";

const ZONES = {
  "dest.test": { MX: [{ pref: 10, host: "mx1.dest.test" }] },
  "other.test": { MX: [{ pref: 10, host: "mx2.other.test" }] },
  "mx1.dest.test": { A: ["127.0.0.2"] },
  "mx2.other.test": { A: ["127.0.0.3"] },
};

Deno.test("smtp_client_rewrite_delivery_status turns a 550 into a retried 451", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  let attempts = 0;
  await using sink = await startSmtpSink({
    addresses: ["127.0.0.2"],
    replies(stage) {
      if (stage === "rcpt" && ++attempts === 1) {
        return { code: 550, text: "5.7.1 greylisted, really" };
      }
      return undefined;
    },
  });
  const extra = `
kumo.on('smtp_client_rewrite_delivery_status', function(response, domain, tenant, campaign, routing_domain)
  assert(domain == 'dest.test', 'domain ' .. tostring(domain))
  assert(routing_domain == 'dest.test', 'routing_domain falls back to the domain')
  if response:find('greylisted') then return 451 end
end)`;
  await using h = await startHarness(policyText({ dns: dns.address, port: sink.port, extra }));
  await h.inject("s@src.test", "r@dest.test");
  const [tf] = await h.logs.waitFor("TransientFailure", 1);
  assert.equal(tf.response.code, 451);
  assert.match(
    tf.response.content,
    /greylisted, really \(kumomta: status was rewritten from 550 -> 451\)$/,
  );
  const [d] = await h.logs.waitFor("Delivery", 1);
  assert.equal(d.num_attempts, 1);
  assert.equal(h.logs.of("Bounce").length, 0);
});

Deno.test("requeue_message can move a message to another queue or bounce it", async (t) => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({
    addresses: ["127.0.0.2", "127.0.0.3"],
    replies(stage, _arg, session) {
      // the primary MX always defers; the fallback accepts
      if (stage === "rcpt" && session.localAddress === "127.0.0.2") {
        return { code: 451, text: "4.3.0 try elsewhere" };
      }
      return undefined;
    },
  });

  await t.step("re-route to the fallback domain's queue", async () => {
    const extra = `
kumo.on('requeue_message', function(msg, response, context, increment_attempts, delay)
  assert(response:find('try elsewhere'), 'response passed: ' .. tostring(response))
  msg:set_meta('queue', 'other.test')
end)`;
    await using h = await startHarness(policyText({ dns: dns.address, port: sink.port, extra }));
    await h.inject("s@src.test", "r@dest.test");
    const [d] = await h.logs.waitFor("Delivery", 1);
    assert.equal(d.queue, "other.test");
    assert.match(d.site, /mx2\.other\.test/);
  });

  await t.step("kumo.reject in requeue_message bounces the message", async () => {
    const extra = `
kumo.on('requeue_message', function(msg)
  kumo.reject(550, '5.7.1 not worth retrying')
end)`;
    await using h = await startHarness(policyText({ dns: dns.address, port: sink.port, extra }));
    await h.inject("s@src.test", "r@dest.test");
    const [b] = await h.logs.waitFor("Bounce", 1);
    assert.equal(b.response.code, 550);
    assert.match(b.response.content, /not worth retrying/);
  });
});
