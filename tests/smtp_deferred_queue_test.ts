/**
 * `deferred_queue = true` against the real program (lua-api.md §4.3, §5.1):
 * the listener answers 250 without running smtp_server_message_received,
 * logs Reception into `deferred_smtp_inject.kumomta.internal`, and the
 * internal queue then runs smtp_server_message_deferred_inject: success →
 * DeferredInjectionRebind and normal delivery (to a loopback sink); a 5xx
 * reject → Bounce, removed from the spool; a 4xx reject → TransientFailure,
 * kept and retried — here after a restart, through spool-in.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import { idsOf, RawSmtp, readSpool, startKumo } from "./support/kumo_process.ts";
import { readLogsNow, waitForLogs } from "./support/deliver_e2e.ts";

function policy(dir: string, dns: string, sinkPort: number, refuseLater: boolean): string {
  return `local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns}' } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'mx.test', deferred_queue = true }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs', max_segment_duration = '1s', meta = { 'x_deferred' } }
end)
kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1h' } end)
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path { smtp_port = ${sinkPort}, prohibited_hosts = {}, enable_tls = 'Disabled' }
end)
kumo.on('smtp_server_message_received', function(msg)
  msg:prepend_header('X-Rx', 'called')
end)
kumo.on('smtp_server_message_deferred_inject', function(msg, conn_meta)
  local user = msg:recipient().user
  if user == 'bounce' then kumo.reject(550, '5.7.1 not for us') end
  if user == 'later' and ${refuseLater} then kumo.reject(451, '4.3.0 try later') end
  -- conn_meta is made from the message meta.
  local queue = msg:get_meta('queue')
  msg:prepend_header('X-Deferred', conn_meta:get_meta('hostname') .. ' ' .. tostring(queue))
  msg:set_meta('x_deferred', 'yes')
  msg:set_meta('routing_domain', '[127.0.0.1]')
end)
`;
}

type Rec = Record<string, unknown>;
const byType = (recs: Rec[], type: string) => recs.filter((r) => r.type === type);

Deno.test("deferred_queue: 250 first, then the deferred inject event decides", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-deferredq-" });
  await using dns = await startDnsServer({});
  await using sink = await startSmtpSink();
  const ids: string[] = [];
  {
    await using kumo = await startKumo(dir, policy(dir, dns.address, sink.port, true));
    await using c = await RawSmtp.connect(kumo.port);
    await c.reply();
    c.send(
      "MAIL FROM:<s@src.test>\r\nRCPT TO:<ok@dest.test>\r\nRCPT TO:<bounce@dest.test>\r\n" +
        "RCPT TO:<later@dest.test>\r\nDATA\r\nSubject: deferred\r\n\r\nhello\r\n.\r\n",
    );
    for (let i = 0; i < 5; i++) assert.match((await c.reply())!, /^(250|354) /);
    ids.push(...idsOf(await c.reply()));
    assert.equal(ids.length, 3);
    const [got] = await sink.waitFor(1, 20_000);
    const text = new TextDecoder().decode(got.data);
    assert.match(text, /^X-Deferred: mx\.test nil\r\n/, "event ran, meta queue already cleared");
    assert.match(text, /\r\nReceived: from unspecified \(127\.0\.0\.1\)\r\n/);
    assert.doesNotMatch(text, /X-Rx/, "smtp_server_message_received is not called");
    assert.deepEqual(got.rcptTo, ["ok@dest.test"]);
    await waitForLogs(
      `${dir}/logs`,
      (r) => byType(r, "Delivery").length === 1 && byType(r, "TransientFailure").length === 1,
      "Delivery and TransientFailure",
    );
    assert.equal(await kumo.stop(), 0);
  }
  const [ok, bounce, later] = ids;
  const recs = readLogsNow(`${dir}/logs`);
  assert.deepEqual(
    byType(recs, "Reception").map((r) => [r.id, r.queue]),
    ids.map((id) => [id, "deferred_smtp_inject.kumomta.internal"]),
  );
  const site = "unspecified->deferred_smtp_inject.kumomta.internal@defersmtpinject";
  const outcomes = recs.filter((r) => r.delivery_protocol === "DeferredSmtpInjection")
    .sort((a, b) => ids.indexOf(a.id as string) - ids.indexOf(b.id as string));
  assert.deepEqual(
    outcomes.map((r) => [r.type, r.id, r.queue, r.site, (r.response as Rec).code]),
    [
      ["DeferredInjectionRebind", ok, "dest.test![127.0.0.1]", site, 250],
      ["Bounce", bounce, "dest.test", site, 550],
      ["TransientFailure", later, "dest.test", site, 451],
    ],
  );
  assert.equal((byType(recs, "Bounce")[0].response as Rec).content, "5.7.1 not for us");
  const delivery = byType(recs, "Delivery")[0];
  assert.equal(delivery.id, ok);
  assert.deepEqual(delivery.meta, { x_deferred: "yes" });
  // Delivered and bounced messages are gone; the deferred one waits in the spool.
  assert.equal(readSpool(`${dir}/spool/meta`, ok), null);
  assert.equal(readSpool(`${dir}/spool/meta`, bounce), null);
  const kept = JSON.parse(new TextDecoder().decode(readSpool(`${dir}/spool/meta`, later)!));
  assert.equal(kept.meta.queue, "deferred_smtp_inject.kumomta.internal");

  // Restart with a policy that accepts it: spool-in hands it to the internal queue again.
  {
    await using kumo = await startKumo(dir, policy(dir, dns.address, sink.port, false));
    const [, second] = await sink.waitFor(2, 20_000);
    assert.deepEqual(second.rcptTo, ["later@dest.test"]);
    assert.match(new TextDecoder().decode(second.data), /^X-Deferred: mx\.test nil\r\n/);
    await waitForLogs(
      `${dir}/logs`,
      (r) => byType(r, "Delivery").some((d) => d.id === later),
      "Delivery of the deferred message",
    );
    assert.equal(await kumo.stop(), 0);
  }
  assert.equal(readSpool(`${dir}/spool/meta`, later), null);
  await Deno.remove(dir, { recursive: true });
});
