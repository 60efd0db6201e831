/**
 * policy-extras.log_hooks at the engine level: what `log_hooks:new`
 * registers (configure_log_hook in pre_init, should_enqueue_log_record,
 * the `<name>.log_hook` custom_lua queue config, the constructor event).
 * Delivery of log-hook messages is not wired in kumo-edge yet (README), so
 * this checks the helper's half only.
 */
import assert from "node:assert/strict";
import { loadPolicy } from "./support/policy_engine.ts";
import { Message } from "../src/message/message.ts";
import { expectConfig } from "../src/policy/config_object.ts";
import { parseQueueConfig } from "../src/policy/config/queue_config.ts";
import { PolicyError } from "../src/policy/policy_error.ts";

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
