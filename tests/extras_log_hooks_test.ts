/**
 * policy-extras.log_hooks: what `log_hooks:new` registers at the engine
 * level (configure_log_hook in pre_init, should_enqueue_log_record, the
 * `<name>.log_hook` custom_lua queue config, the constructor event), and
 * `new_json` / `new_disposition_hook` end to end through the real program:
 * every record of a message becomes a log-hook message, `new_json` POSTs it
 * as JSON to a loopback HTTP server (2xx delivers; any other status is a
 * `kumo.reject(500, …)`, so that log message bounces), and the disposition
 * hook's function sees each record. The general log-hook machinery is
 * covered in tests/loghook_e2e_test.ts.
 */
import assert from "node:assert/strict";
import { loadPolicy } from "./support/policy_engine.ts";
import { Message } from "../src/message/message.ts";
import { expectConfig } from "../src/policy/config_object.ts";
import { parseQueueConfig } from "../src/policy/config/queue_config.ts";
import { PolicyError } from "../src/policy/policy_error.ts";
import { readLogRecords, startKumo } from "./support/kumo_process.ts";
import { startDnsServer } from "./support/dns_server.ts";
import { injectWithSmtplib, waitForLogs } from "./support/deliver_e2e.ts";

const POLICY = `
local log_hooks = require 'policy-extras.log_hooks'
kumo.on('init', function() end)
log_hooks:new {
  name = 'webhook',
  log_parameters = { headers = { 'Subject' } },
  queue_config = { max_age = '1 hour' },
  batch_size = 10,
  filter = function(msg, hook) return msg:get_meta('skip') == true end,
  constructor = function(domain, tenant, campaign)
    local c = {}
    function c:send(message) return 'sent ' .. domain end
    function c:close() end
    return c
  end,
}
`;

function logMessage(meta: Record<string, unknown>): Message {
  return new Message({
    sender: "a@x.test",
    recipients: ["b@y.test"],
    data: new TextEncoder().encode("{}"),
    meta: { log_record: { type: "Delivery", reception_protocol: "ESMTP" }, ...meta },
  });
}

Deno.test("log_hooks:new registers configure_log_hook, routing, queue config and constructor", async () => {
  using p = await loadPolicy(POLICY);
  await p.engine.runInit();
  assert.deepEqual(p.cfg.logHooks, [{ name: "webhook", headers: ["Subject"] }]);

  const msg = logMessage({});
  assert.equal(
    await p.engine.callOrThrow("should_enqueue_log_record", "ms", [msg, "webhook"]),
    true,
  );
  assert.equal(msg.getMeta("queue"), "webhook.log_hook");
  const other = logMessage({});
  assert.deepEqual(await p.engine.call("should_enqueue_log_record", "ms", [other, "other"]), {
    kind: "none",
  });
  const skipped = logMessage({ skip: true });
  assert.equal(
    await p.engine.callOrThrow("should_enqueue_log_record", "ms", [skipped, "webhook"]),
    false,
  );
  const loop = logMessage({ log_record: { type: "Delivery", reception_protocol: "LogRecord" } });
  assert.equal(
    await p.engine.callOrThrow("should_enqueue_log_record", "ms", [loop, "webhook"]),
    false,
  );

  const ret = await p.engine.callOrThrow("get_queue_config", "ssss", [
    "webhook.log_hook",
    "",
    "",
    "",
  ]);
  const qc = expectConfig(ret, "QueueConfig", parseQueueConfig, "get_queue_config");
  assert.deepEqual(qc.protocol, {
    kind: "lua",
    constructorEvent: "make.webhook.log_hook",
    batchSize: 10,
    minBatchSize: 1,
    maxBatchLatency: 0,
  });
  assert.equal(qc.maxAge, 3_600_000);
  assert.equal(qc.retryInterval, 60_000);
  assert.deepEqual(await p.engine.call("get_queue_config", "ssss", ["example.test", "", "", ""]), {
    kind: "none",
  });
  assert.ok(p.engine.hasHandler("make.webhook.log_hook"));
});

Deno.test("log_hooks: duplicate names are errors; new_json registers with kumo.http", async () => {
  await assert.rejects(
    loadPolicy(`
local log_hooks = require 'policy-extras.log_hooks'
local c = function() return {} end
log_hooks:new { name = 'a', constructor = c }
log_hooks:new { name = 'a', constructor = c }
`),
    (e) =>
      e instanceof PolicyError && /init\.lua:5: log hook 'a' is already defined/.test(e.message),
  );
  // kumo.http.build_client exists now (src/policy/host/http_client.ts)
  using j = await loadPolicy(`
local log_hooks = require 'policy-extras.log_hooks'
log_hooks:new_json { name = 'j', url = 'http://127.0.0.1:1/hook' }
`);
  assert.ok(j.engine.hasHandler("make.j.log_hook"));
});

interface Posted {
  path: string;
  method: string;
  contentType: string | null;
  body: string;
}

Deno.test("log_hooks:new_json POSTs each record (non-2xx bounces it); new_disposition_hook sees every record", async () => {
  const posted: Posted[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.text();
    const path = new URL(req.url).pathname;
    posted.push({ path, method: req.method, contentType: req.headers.get("content-type"), body });
    if (path === "/hook" && JSON.parse(body).type === "Delivery") {
      return new Response("not today", { status: 422 });
    }
    return new Response("ok");
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  const dir = await Deno.makeTempDir({ prefix: "kumo-loghook-json-" });
  try {
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
local log_hooks = require 'policy-extras.log_hooks'
log_hooks:new_json { name = 'webhook', url = '${base}/hook' }
log_hooks:new_disposition_hook {
  name = 'disp',
  hook = function(msg, record)
    local client = kumo.http.build_client {}
    client:post('${base}/disp'):body(record.type .. ' ' .. record.id .. ' ' .. msg:recipient().email):send()
  end,
}
kumo.on('get_queue_config', function(domain)
  if domain == 'ok.test' then
    return kumo.make_queue_config { protocol = { maildir_path = '${dir}/maildir' } }
  end
end)
`;
    await using kumo = await startKumo(dir, policy);
    await injectWithSmtplib(kumo.port, [{ rcpt: "u@ok.test", subject: "hello" }]);
    const ofHook = (r: Record<string, unknown>[], q: string) => r.filter((x) => x.queue === q);
    await waitForLogs(
      `${dir}/logs`,
      (r) => ofHook(r, "webhook.log_hook").length >= 2 && ofHook(r, "disp.log_hook").length >= 2,
      "the outcomes of both hooks' log messages",
    );
    assert.equal(await kumo.stop(), 0);
    const all = readLogRecords(`${dir}/logs`);
    const reception = all.find((x) => x.type === "Reception" && x.recipient === "u@ok.test")!;
    const delivery = all.find((x) =>
      x.type === "Delivery" && x.recipient === "u@ok.test" && x.queue === "ok.test"
    )!;
    assert.ok(reception && delivery, JSON.stringify(all, null, 1));

    // new_json: one POST per record, the record as JSON
    const hook = posted.filter((p) => p.path === "/hook");
    assert.equal(hook.length, 2, JSON.stringify(hook));
    for (const p of hook) {
      assert.equal(p.method, "POST");
      assert.equal(p.contentType, "application/json");
    }
    const sent = hook.map((p) => JSON.parse(p.body));
    assert.deepEqual(sent.map((r) => `${r.type} ${r.id}`).sort(), [
      `Delivery ${delivery.id}`,
      `Reception ${reception.id}`,
    ]);
    // 2xx: the log message is delivered; 422: rejected with 500, bounced
    const outcomes = ofHook(all, "webhook.log_hook");
    const delivered = outcomes.filter((r) => r.type === "Delivery");
    const bounced = outcomes.filter((r) => r.type === "Bounce");
    assert.equal(delivered.length, 1, JSON.stringify(outcomes));
    assert.equal(bounced.length, 1, JSON.stringify(outcomes));
    assert.deepEqual(
      { code: (bounced[0].response as { code: number }).code },
      { code: 500 },
    );
    assert.match(
      (bounced[0].response as { content: string }).content,
      /^422 Unprocessable Entity: not today$/,
    );

    // new_disposition_hook: the hook function got each record and the log message
    const disp = posted.filter((p) => p.path === "/disp").map((p) => p.body).sort();
    assert.deepEqual(disp, [
      `Delivery ${delivery.id} u@ok.test`,
      `Reception ${reception.id} u@ok.test`,
    ]);
    assert.equal(
      ofHook(all, "disp.log_hook").filter((r) => r.type === "Delivery").length,
      2,
    );
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
