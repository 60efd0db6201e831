/**
 * The non-SMTP delivery protocols through the real program (lua-api §6.3,
 * §3): `custom_lua` (connection object kept for the session, send_batch,
 * kumo.reject 4xx/5xx, Lua errors) and `maildir_path` (templated path,
 * modes), plus the egress_pool of two pools sharing one source (the
 * message's own pool is logged, not the ready queue's first one).
 *
 * Mail goes in over SMTP (Python smtplib); outcomes are read from the live
 * log segments and the maildir on disk.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { startKumo } from "./support/kumo_process.ts";
import { injectWithSmtplib, waitForLogs } from "./support/deliver_e2e.ts";

type Rec = Record<string, unknown>;
const rcptOf = (r: Rec) => (Array.isArray(r.recipient) ? r.recipient : [r.recipient]) as string[];
const of = (recs: Rec[], type: string, d: string) =>
  recs.filter((r) => r.type === type && rcptOf(r).some((x) => x.endsWith(`@${d}`)));
const content = (r: Rec) => (r.response as { content: string }).content;
const code = (r: Rec) => (r.response as { code: number }).code;

Deno.test("custom_lua and maildir delivery through the real program", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-protocols-" });
  await using dns = await startDnsServer({ zones: {} });
  const policy = `
local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'kumo.test' }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs', max_segment_duration = '300ms' }
end)
kumo.on('smtp_server_message_received', function(msg)
  local d = msg:recipient().domain
  if d == 'pool-a.test' or d == 'pool-b.test' then msg:set_meta('routing_domain', 'same.test') end
end)
kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
  local base = { retry_interval = '1h' }
  if domain == 'batch.lua.test' then
    base.protocol = { custom_lua = { constructor = 'make.conn', batch_size = 3,
      min_batch_size = 3, max_batch_latency = '10s' } }
  elseif domain:find('%.lua%.test$') then
    base.protocol = { custom_lua = { constructor = 'make.conn' } }
  elseif domain == 'maildir.test' then
    base.protocol = { maildir_path = '${dir}/maildir/{{ domain_part }}/{{ local_part }}',
      dir_mode = tonumber('750', 8), file_mode = tonumber('640', 8) }
  elseif domain == 'pool-a.test' or domain == 'pool-b.test' then
    base.protocol = { maildir_path = '${dir}/pools/{{ meta.pool_tag }}' }
    base.egress_pool = domain == 'pool-a.test' and 'pa' or 'pb'
  end
  return kumo.make_queue_config(base)
end)
kumo.on('get_egress_pool', function(name)
  return kumo.make_egress_pool { name = name, entries = { { name = 'shared' } } }
end)
kumo.on('get_egress_source', function(name)
  return kumo.make_egress_source { name = name }
end)
kumo.on('get_egress_path_config', function(domain, source, site)
  return kumo.make_egress_path { connection_limit = 1 }
end)
kumo.on('make.conn', function(domain, tenant, campaign)
  local conn = { n = 0 }
  function conn:send(msg)
    local s = msg:get_first_named_header_value('Subject')
    if s == 'tempfail' then kumo.reject(451, '4.1.1 later') end
    if s == 'permfail' then kumo.reject(550, 'no way') end
    if s == 'boom' then error('kaboom') end
    self.n = self.n + 1
    return 'sent ' .. self.n .. ' to ' .. domain
  end
  function conn:send_batch(msgs)
    return 'batch of ' .. #msgs .. ' first ' .. msgs[1]:get_first_named_header_value('Subject')
  end
  return conn
end)
`;
  await using kumo = await startKumo(dir, policy);
  await injectWithSmtplib(kumo.port, [
    { rcpt: "a@count.lua.test", subject: "one" },
    { rcpt: "b@count.lua.test", subject: "two" },
    { rcpt: "c@count.lua.test", subject: "three" },
    { rcpt: "t@fail.lua.test", subject: "tempfail" },
    { rcpt: "p@fail.lua.test", subject: "permfail" },
    { rcpt: "x@boom.lua.test", subject: "boom" },
    { rcpt: "b1@batch.lua.test", subject: "b1" },
    { rcpt: "b2@batch.lua.test", subject: "b2" },
    { rcpt: "b3@batch.lua.test", subject: "b3" },
    { rcpt: "alice@maildir.test", subject: "to alice" },
    { rcpt: "bob@maildir.test", subject: "to bob" },
    { rcpt: "x@pool-a.test", subject: "pa" },
    { rcpt: "y@pool-b.test", subject: "pb" },
  ]);
  const recs = await waitForLogs(
    `${dir}/logs`,
    (r) =>
      of(r, "Delivery", "count.lua.test").length === 3 &&
      of(r, "TransientFailure", "fail.lua.test").length === 1 &&
      of(r, "Bounce", "fail.lua.test").length === 1 &&
      of(r, "TransientFailure", "boom.lua.test").length === 1 &&
      of(r, "Delivery", "batch.lua.test").length === 3 &&
      of(r, "Delivery", "maildir.test").length === 2 &&
      of(r, "Delivery", "pool-a.test").length === 1 &&
      of(r, "Delivery", "pool-b.test").length === 1,
    "all protocol outcomes",
  );

  // custom_lua: one connection object per session, kept between messages.
  const counted = of(recs, "Delivery", "count.lua.test");
  assert.deepEqual(counted.map(content).sort(), [
    "sent 1 to count.lua.test",
    "sent 2 to count.lua.test",
    "sent 3 to count.lua.test",
  ]);
  for (const r of counted) {
    assert.equal(r.delivery_protocol, "Lua");
    assert.equal(code(r), 200);
    assert.equal(r.site, "unspecified->count.lua.test@lua:make.conn");
    assert.deepEqual(r.peer_address, { name: "Lua via make.conn", addr: "0.0.0.0" });
    assert.equal(r.egress_source, "unspecified");
  }
  // kumo.reject: 4xx → TransientFailure, 5xx → Bounce, text as given.
  const temp = of(recs, "TransientFailure", "fail.lua.test")[0];
  assert.equal(code(temp), 451);
  assert.equal(content(temp), "4.1.1 later");
  assert.equal(temp.delivery_protocol, "Lua");
  const bounce = of(recs, "Bounce", "fail.lua.test")[0];
  assert.equal(code(bounce), 550);
  assert.equal(content(bounce), "no way");
  // Any other Lua error: transient, with the error text.
  const boom = of(recs, "TransientFailure", "boom.lua.test")[0];
  assert.equal(code(boom), 400);
  assert.match(content(boom), /^KumoMTA internal: failed to send message: .*kaboom/);
  // send_batch: min_batch_size waits for all three.
  const batch = of(recs, "Delivery", "batch.lua.test");
  for (const r of batch) assert.match(content(r), /^batch of 3 first b\d$/);

  // maildir: templated path, new/ file with the message, modes applied.
  const md = of(recs, "Delivery", "maildir.test");
  for (const r of md) {
    assert.equal(r.delivery_protocol, "Maildir");
    assert.equal(
      r.site,
      `unspecified->maildir.test@maildir:${dir}/maildir/{{ domain_part }}/{{ local_part }}`,
    );
  }
  for (const who of ["alice", "bob"]) {
    const box = `${dir}/maildir/maildir.test/${who}`;
    const files = [...Deno.readDirSync(`${box}/new`)].map((e) => e.name);
    assert.equal(files.length, 1, `one message for ${who}`);
    assert.equal([...Deno.readDirSync(`${box}/tmp`)].length, 0);
    const text = Deno.readTextFileSync(`${box}/new/${files[0]}`);
    assert.match(text, new RegExp(`Subject: to ${who}\\r\\n`));
    assert.equal(Deno.statSync(`${box}/new/${files[0]}`).mode! & 0o777, 0o640);
    assert.equal(Deno.statSync(`${box}/new`).mode! & 0o777, 0o750);
  }

  // Two pools sharing source `shared` and one ready queue: each record names its own pool.
  const pa = of(recs, "Delivery", "pool-a.test")[0];
  const pb = of(recs, "Delivery", "pool-b.test")[0];
  assert.equal(pa.site, pb.site);
  assert.equal(pa.egress_pool, "pa");
  assert.equal(pb.egress_pool, "pb");
  assert.equal(pa.egress_source, "shared");
  assert.equal(await kumo.stop(), 0);
});
