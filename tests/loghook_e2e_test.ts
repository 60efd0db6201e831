/**
 * Log hooks end to end through the real program (logs §6, examples §13):
 * `policy-extras.log_hooks` (`log_hooks:new`) → configure_log_hook →
 * every record becomes a log message → should_enqueue_log_record → the
 * `<name>.log_hook` custom_lua queue → the Lua `send`, whose return value
 * is observable as the log message's own Delivery record. Also: the raw
 * `kumo.configure_log_hook` API with per_record and deferred_spool, and
 * the duplicate-name error.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { readLogRecords, startKumo } from "./support/kumo_process.ts";
import { injectWithSmtplib, waitForLogs } from "./support/deliver_e2e.ts";

type Rec = Record<string, unknown>;
const content = (r: Rec) => (r.response as { content: string }).content;
const code = (r: Rec) => (r.response as { code: number }).code;

function init(dir: string, dns: string, extra = ""): string {
  return `
local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns}' } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'kumo.test' }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs', max_segment_duration = '300ms' }
  ${extra}
end)
`;
}

Deno.test("log_hooks:new delivers every record to the Lua send (helper + custom_lua)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-loghook-" });
  await using dns = await startDnsServer({ zones: {} });
  const policy = init(dir, dns.address) + `
local log_hooks = require 'policy-extras.log_hooks'
log_hooks:new {
  name = 'webhook',
  log_parameters = { headers = { 'Subject' } },
  constructor = function(domain, tenant, campaign)
    local c = {}
    function c:send(m)
      local r = kumo.json_parse(m:get_data())
      if r.type == 'Bounce' then kumo.reject(500, 'refused') end
      return 'accepted ' .. r.type .. ' ' .. r.id .. ' ' .. tostring(r.headers.Subject) .. ' via ' .. domain
    end
    return c
  end,
}
kumo.on('get_queue_config', function(domain)
  if domain == 'ok.test' then
    return kumo.make_queue_config { protocol = { maildir_path = '${dir}/maildir' } }
  end
  if domain == 'bad.test' then
    return kumo.make_queue_config { protocol = { custom_lua = { constructor = 'make.refuser' } } }
  end
end)
kumo.on('make.refuser', function()
  return { send = function(self, m) kumo.reject(550, '5.1.1 nobody here') end }
end)
`;
  await using kumo = await startKumo(dir, policy);
  await injectWithSmtplib(kumo.port, [
    { rcpt: "u@ok.test", subject: "hello" },
    { rcpt: "v@bad.test", subject: "nope" },
  ]);
  const hooked = (r: Rec[]) => r.filter((x) => x.queue === "webhook.log_hook");
  await waitForLogs(
    `${dir}/logs`,
    (r) => hooked(r).length >= 4,
    "4 outcomes of log-hook messages",
  );
  // Give a wrongly fed-back record time to show up before stopping.
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(await kumo.stop(), 0);
  const all = readLogRecords(`${dir}/logs`);
  const main = all.filter((x) => x.queue !== "webhook.log_hook");
  const okRx = main.find((x) => x.type === "Reception" && x.recipient === "u@ok.test")!;
  const okDel = main.find((x) => x.type === "Delivery" && x.recipient === "u@ok.test")!;
  const badRx = main.find((x) => x.type === "Reception" && x.recipient === "v@bad.test")!;
  const badBounce = main.find((x) => x.type === "Bounce" && x.recipient === "v@bad.test")!;
  assert.ok(okRx && okDel && badRx && badBounce, JSON.stringify(main, null, 1));

  const logMsgs = hooked(all);
  assert.equal(logMsgs.length, 4, JSON.stringify(logMsgs, null, 1));
  for (const r of logMsgs) {
    assert.equal(r.delivery_protocol, "Lua");
    assert.equal(r.reception_protocol, "LogRecord");
    assert.equal(r.site, "unspecified->webhook.log_hook@lua:make.webhook.log_hook");
  }
  const deliveries = logMsgs.filter((r) => r.type === "Delivery").map(content).sort();
  assert.deepEqual(
    deliveries,
    [
      `accepted Delivery ${okDel.id} hello via webhook.log_hook`,
      `accepted Reception ${badRx.id} nope via webhook.log_hook`,
      `accepted Reception ${okRx.id} hello via webhook.log_hook`,
    ].sort(),
  );
  // The log message of the Bounce record is itself bounced (500), not retried.
  const refused = logMsgs.filter((r) => r.type === "Bounce");
  assert.equal(refused.length, 1);
  assert.equal(code(refused[0]), 500);
  assert.equal(content(refused[0]), "refused");
  // Each log message carries the original envelope.
  assert.ok(logMsgs.some((r) => r.recipient === "v@bad.test"));
  // Nothing left in the spool: every log message reached a final outcome.
  assert.deepEqual(spoolFiles(`${dir}/spool/meta`), []);
});

Deno.test("configure_log_hook: own should_enqueue_log_record, per_record, deferred_spool, template", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-loghook-raw-" });
  await using dns = await startDnsServer({ zones: {} });
  const policy = init(
    dir,
    dns.address,
    `kumo.configure_log_hook { name = 'hook', deferred_spool = true, meta = { 'tag' },
      per_record = { Reception = { enable = false },
                     Delivery = { template = 'D {{ id }} {{ meta.tag }} {{ log_record.type }}' } } }`,
  ) + `
kumo.on('smtp_server_message_received', function(msg) msg:set_meta('tag', 'T1') end)
kumo.on('should_enqueue_log_record', function(msg, hook_name)
  -- no filter on log-hook messages here: the engine itself never feeds them back
  if hook_name ~= 'hook' then return false end
  msg:set_meta('queue', 'webhook')
  return true
end)
kumo.on('get_queue_config', function(domain)
  if domain == 'webhook' then
    return kumo.make_queue_config { protocol = { custom_lua = { constructor = 'make.hook' } } }
  end
  return kumo.make_queue_config { protocol = { maildir_path = '${dir}/maildir' } }
end)
kumo.on('make.hook', function(domain, tenant, campaign)
  local conn = {}
  function conn:send(m)
    return 'got [' .. m:get_data():gsub('\\n$', '') .. '] tag=' .. tostring(m:get_meta('tag'))
  end
  return conn
end)
`;
  await using kumo = await startKumo(dir, policy);
  await injectWithSmtplib(kumo.port, [{ rcpt: "w@fine.test", subject: "x" }]);
  await waitForLogs(
    `${dir}/logs`,
    (r) => r.some((x) => x.queue === "webhook" && x.type === "Delivery"),
    "the hooked Delivery",
  );
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await kumo.stop(), 0);
  const all = readLogRecords(`${dir}/logs`);
  const del = all.find((x) => x.type === "Delivery" && x.queue !== "webhook")!;
  const hooked = all.filter((x) => x.queue === "webhook");
  // Reception disabled for the hook: only the Delivery record became a log message.
  assert.equal(hooked.length, 1, JSON.stringify(hooked, null, 1));
  assert.equal(content(hooked[0]), `got [D ${del.id} T1 Delivery] tag=T1`);
  assert.equal(hooked[0].reception_protocol, "LogRecord");
});

Deno.test("configure_log_hook refuses a duplicate or missing name at start-up", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-loghook-dup-" });
  await using dns = await startDnsServer({ zones: {} });
  for (
    const [extra, want] of [
      [
        `kumo.configure_log_hook { name = 'a' } kumo.configure_log_hook { name = 'a' }`,
        /log hook "a" is already defined/,
      ],
      [`kumo.configure_log_hook { back_pressure = 10 }`, /missing field `name`/],
    ] as const
  ) {
    await Deno.writeTextFile(`${dir}/init.lua`, init(dir, dns.address, extra));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "mod.ts", "--policy", `${dir}/init.lua`],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "null",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    assert.equal(out.code, 1);
    assert.match(new TextDecoder().decode(out.stderr), want);
  }
});

function spoolFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      if (e.isDirectory) walk(`${d}/${e.name}`);
      else if (/^[0-9a-f]+$/.test(e.name) && d.includes("/data/")) out.push(e.name);
    }
  };
  try {
    walk(dir);
  } catch { /* no spool */ }
  return out;
}
