/**
 * Restart mid-queue through the real program: mail is injected with
 * smtplib, kumo is stopped (SIGTERM) while most of it is still queued for a
 * slow sink, then started again on the same spool; every message must reach
 * the sink exactly once, and the spool must end up empty. A message whose
 * data record is deleted while kumo is stopped is logged as an Expiration
 * after the restart, and only then is its meta removed.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { type SinkMessage, startSmtpSink } from "./support/smtp_sink.ts";
import { readSpool, spoolPath, startKumo } from "./support/kumo_process.ts";
import {
  freePort,
  type Injection,
  injectWithSmtplib,
  readLogsNow,
  waitForLogs,
} from "./support/deliver_e2e.ts";

const subjectOf = (m: SinkMessage) =>
  /^Subject: (.*)$/m.exec(new TextDecoder().decode(m.data))?.[1] ?? "";

Deno.test("restart mid-queue delivers every message exactly once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-deliver-restart-" });
  await using dns = await startDnsServer({
    zones: {
      "restart.test": { MX: [{ pref: 10, host: "mx.restart.test" }] },
      "mx.restart.test": { A: ["127.0.0.2"] },
    },
  });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"], delayMs: 20 });
  const policy = `
local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'kumo.test' }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs', max_segment_duration = '1s' }
end)
kumo.on('get_queue_config', function()
  return kumo.make_queue_config { retry_interval = '1s' }
end)
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path { smtp_port = ${sink.port}, prohibited_hosts = {},
    enable_tls = 'Disabled', connection_limit = 1 }
end)
`;
  const N = 40;
  const mails: Injection[] = [];
  for (let i = 0; i < N; i++) mails.push({ rcpt: `r${i}@restart.test`, subject: `restart ${i}` });
  {
    await using kumo = await startKumo(dir, policy);
    await injectWithSmtplib(kumo.port, mails);
    await sink.waitFor(3, 20_000);
    const code = await kumo.stop();
    assert.equal(code, 0, kumo.stderr());
  }
  const before = sink.messages.length;
  assert.ok(before < N, `everything was delivered before the restart (${before})`);
  {
    await using kumo = await startKumo(dir, policy);
    await sink.waitFor(N, 30_000);
    // Give duplicates (if any) a chance to show up.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await kumo.stop(), 0, kumo.stderr());
  }
  const seen = new Map<string, number>();
  for (const m of sink.messages) seen.set(subjectOf(m), (seen.get(subjectOf(m)) ?? 0) + 1);
  assert.equal(seen.size, N);
  assert.deepEqual([...seen.values()].filter((n) => n !== 1), [], "duplicates");
  assert.equal(sink.messages.length, N);
  const deliveries = readLogsNow(`${dir}/logs`).filter((r) => r.type === "Delivery");
  assert.equal(deliveries.length, N);
  let left = 0;
  for await (const e of Deno.readDir(`${dir}/spool/meta`)) if (e.name === "data") left++;
  const remaining: string[] = [];
  const walk = async (p: string) => {
    for await (const e of Deno.readDir(p)) {
      if (e.isDirectory) await walk(`${p}/${e.name}`);
      else remaining.push(`${p}/${e.name}`);
    }
  };
  if (left) await walk(`${dir}/spool/meta/data`);
  assert.deepEqual(remaining, [], "meta spool is empty");
  await Deno.remove(dir, { recursive: true }).catch(() => {});
});

Deno.test("restart: a message whose data record is gone is logged as Expiration before its meta is removed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-deliver-lost-data-" });
  await using dns = await startDnsServer({
    zones: {
      "gone.test": { MX: [{ pref: 10, host: "mx.gone.test" }] },
      "mx.gone.test": { A: ["127.0.0.2"] },
    },
  });
  // Nothing listens there: the first attempt fails and the message waits an hour.
  const deadPort = await freePort();
  const policy = `
local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'kumo.test' }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs', max_segment_duration = '300ms' }
end)
kumo.on('get_queue_config', function()
  return kumo.make_queue_config { retry_interval = '1h' }
end)
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path { smtp_port = ${deadPort}, prohibited_hosts = {},
    enable_tls = 'Disabled', connect_timeout = '2s' }
end)
`;
  let id = "";
  {
    await using kumo = await startKumo(dir, policy);
    await injectWithSmtplib(kumo.port, [{ rcpt: "lost@gone.test", subject: "lost data" }]);
    const recs = await waitForLogs(
      `${dir}/logs`,
      (r) => r.some((x) => x.type === "TransientFailure"),
      "the first attempt to fail",
    );
    id = String(recs.find((r) => r.type === "Reception")?.id);
    assert.equal(await kumo.stop(), 0, kumo.stderr());
  }
  // While kumo is stopped the data record disappears; the meta stays.
  assert.ok(readSpool(`${dir}/spool/meta`, id), "meta spooled");
  await Deno.remove(spoolPath(`${dir}/spool/data`, id));
  {
    await using kumo = await startKumo(dir, policy);
    const recs = await waitForLogs(
      `${dir}/logs`,
      (r) => r.some((x) => x.type === "Expiration" && x.id === id),
      "the Expiration of the message without data",
    );
    const e = recs.find((x) => x.type === "Expiration" && x.id === id)!;
    assert.equal(e.sender, "s@src.test");
    assert.equal(e.recipient, "lost@gone.test");
    assert.equal(e.queue, "gone.test");
    assert.deepEqual(e.response, {
      code: 551,
      enhanced_code: { class: 5, subject: 1, detail: 3 },
      content: `Failed to load message data: no record of "${id}" in the data spool`,
      command: null,
    });
    const end = Date.now() + 10_000;
    while (readSpool(`${dir}/spool/meta`, id) !== null && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(readSpool(`${dir}/spool/meta`, id), null, "meta removed after the record");
    assert.equal(await kumo.stop(), 0, kumo.stderr());
    assert.match(kumo.stderr(), /Cannot load data of message ".*": missing from the data spool/);
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
});
