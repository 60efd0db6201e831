/**
 * `msg:set_scheduling` through the real program: a message with a
 * `first_attempt` in the future sits in its scheduled queue (no attempt, no
 * record; its data released from memory meanwhile, by the default
 * shrink_policy) and is delivered whole to the sink once that time has come; a bad
 * schedule is refused by the handler with the key named.
 *
 * Loopback only: smtplib → kumo → loopback DNS → sink on 127.0.0.2.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import { basePolicy, startKumo } from "./support/kumo_process.ts";
import { injectWithSmtplib, readLogsNow } from "./support/deliver_e2e.ts";

Deno.test("set_scheduling first_attempt holds a message until its time, then it is delivered", async () => {
  await using dns = await startDnsServer({
    zones: {
      "dest.test": { MX: [{ pref: 10, host: "mx1.dest.test" }] },
      "mx1.dest.test": { A: ["127.0.0.2"] },
    },
  });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  const dir = await Deno.makeTempDir({ prefix: "kumo-sched-" });
  const firstAttempt = new Date(Date.now() + 4000).toISOString();
  const policy = basePolicy(
    dir,
    "",
    `kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }`,
    `
kumo.on('smtp_server_message_received', function(msg)
  if msg:get_first_named_header_value('Subject') == 'held' then
    msg:set_scheduling { first_attempt = '${firstAttempt}' }
  end
end)
kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1s' } end)
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path { smtp_port = ${sink.port}, prohibited_hosts = {}, enable_tls = 'Disabled' }
end)
`,
  );
  await using kumo = await startKumo(dir, policy);
  await injectWithSmtplib(kumo.port, [
    { rcpt: "a@dest.test", subject: "now" },
    { rcpt: "b@dest.test", subject: "held" },
  ]);
  // The unscheduled message goes at once; the held one must not go with it.
  const [first] = await sink.waitFor(1, 10_000);
  assert.deepEqual(first.rcptTo, ["a@dest.test"]);
  const all = await sink.waitFor(2, 15_000);
  const held = all.find((m) => m.rcptTo[0] === "b@dest.test");
  assert.ok(held, "the held message was never delivered");
  assert.ok(
    held.receivedAt >= Date.parse(firstAttempt),
    `delivered at ${new Date(held.receivedAt).toISOString()}, before first_attempt ${firstAttempt}`,
  );
  // While it waited, the default shrink_policy released its data; the
  // promotion loaded it back from the data spool, whole.
  const text = new TextDecoder().decode(held.data);
  assert.match(text, /\r\nReceived: from client\.test /);
  assert.ok(text.endsWith("\r\nSubject: held\r\n\r\n.leading dot\r\nbody\r\n"), text);
  // Held means held: no TransientFailure while it waited.
  await kumo.stop();
  const recs = readLogsNow(`${dir}/logs`);
  assert.equal(recs.filter((r) => r.type === "TransientFailure").length, 0);
  assert.equal(recs.filter((r) => r.type === "Delivery").length, 2);
  const size = (type: string) =>
    recs.find((r) => r.type === type && r.recipient === "b@dest.test")?.size;
  assert.equal(size("Delivery"), size("Reception"), "size logged as received");
  await Deno.remove(dir, { recursive: true });
});
