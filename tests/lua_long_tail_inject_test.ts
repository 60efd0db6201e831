/**
 * The real program: a policy that, on reception, injects a second message
 * with `kumo.make_message` + `kumo.inject_message` and makes an admin bounce
 * rule with `kumo.api.admin.bounce.bounce`; the copy is delivered to the
 * sink, and later mail for the bounced domain is logged as AdminBounce.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import { readLogRecords, startKumo } from "./support/kumo_process.ts";

async function sendMail(port: number, rcpt: string, subject: string): Promise<void> {
  const py = await new Deno.Command("python3", {
    args: [
      "-c",
      `import smtplib\ns=smtplib.SMTP('127.0.0.1', ${port})\ns.sendmail('a@src.test', ['${rcpt}'], 'Subject: ${subject}\\r\\n\\r\\nbody\\r\\n')\ns.quit()`,
    ],
    signal: AbortSignal.timeout(20_000),
  }).output();
  assert.ok(py.success, new TextDecoder().decode(py.stderr));
}

Deno.test("kumo.inject_message and kumo.api.admin.bounce work in the running server", async () => {
  await using dns = await startDnsServer({
    zones: {
      "dest.test": { MX: [{ pref: 10, host: "mx1.dest.test" }] },
      "gone.test": { MX: [{ pref: 10, host: "mx1.dest.test" }] },
      "mx1.dest.test": { A: ["127.0.0.2"] },
    },
  });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  const dir = await Deno.makeTempDir({ prefix: "kumo-longtail-e2e-" });
  try {
    const policy = `
local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', relay_hosts = { '127.0.0.1' } }
  kumo.define_spool { name = 'data', path = '${dir}/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs', max_segment_duration = '1s' }
  local ok, err = pcall(kumo.inject_message, kumo.make_message('a@src.test', 'b@dest.test', 'x'))
  assert(not ok and tostring(err):find('not running'), 'unbound during init: ' .. tostring(err))
end)
kumo.on('smtp_server_message_received', function(msg)
  if msg:get_first_named_header_value('Subject') == 'original' then
    local copy = kumo.make_message('copies@src.test', 'copy@dest.test',
      'Subject: copy of ' .. msg:id() .. '\\r\\n\\r\\ncopied\\r\\n')
    copy:set_meta('tenant', 'copies')
    kumo.inject_message(copy)
    local r = kumo.api.admin.bounce.bounce { reason = 'from lua', domain = 'gone.test', duration = '1m' }
    assert(#kumo.api.admin.bounce.list() == 1 and r.id, 'bounce rule listed')
  end
end)
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path { smtp_port = ${sink.port}, prohibited_hosts = {}, enable_tls = 'Disabled' }
end)
kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1s' } end)
`;
    await using kumo = await startKumo(dir, policy);
    await sendMail(kumo.port, "b@dest.test", "original");
    const got = await sink.waitFor(2, 15_000);
    const rcpts = got.map((m) => m.rcptTo[0]).sort();
    assert.deepEqual(rcpts, ["b@dest.test", "copy@dest.test"]);
    const copy = got.find((m) => m.rcptTo[0] === "copy@dest.test")!;
    assert.equal(copy.mailFrom, "copies@src.test");

    await sendMail(kumo.port, "x@gone.test", "later");
    let recs: Record<string, unknown>[] = [];
    for (let i = 0; i < 100; i++) {
      recs = readLogRecords(`${dir}/logs`);
      if (recs.some((r) => r.type === "AdminBounce")) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await kumo.stop(), 0);
    recs = readLogRecords(`${dir}/logs`);
    const ab = recs.find((r) => r.type === "AdminBounce");
    assert.ok(ab, `no AdminBounce in ${JSON.stringify(recs.map((r) => r.type))}\n${kumo.stderr()}`);
    assert.equal(ab.recipient, "x@gone.test");
    assert.equal(sink.messages.length, 2, "the bounced message was not delivered");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
