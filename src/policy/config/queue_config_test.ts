/**
 * Unit tests for parseQueueConfig() (`kumo.make_queue_config`). Place on
 * the path: policy configuration, read by the scheduled queues.
 */
import assert from "node:assert/strict";
import { effectiveTickInterval, parseQueueConfig, queueConfigToJSON } from "./queue_config.ts";

Deno.test("parseQueueConfig() defaults", () => {
  const q = parseQueueConfig({});
  assert.equal(q.retryInterval, 1_200_000);
  assert.equal(q.maxAge, 604_800_000);
  assert.equal(q.reapInterval, 600_000);
  assert.equal(q.refreshInterval, 60_000);
  assert.equal(q.strategy, "SingletonTimerWheel");
  assert.equal(q.refreshStrategy, "Ttl");
  assert.equal(q.egressPool, undefined);
  assert.equal(q.maxRetryInterval, undefined);
  assert.deepEqual(q.protocol, { kind: "smtp", mxList: [], treatMxListAsSecure: false });
  assert.deepEqual(q.shrinkPolicy, []);
  assert.equal(effectiveTickInterval(q), 60_000);
  assert.deepEqual(queueConfigToJSON(q), {
    retry_interval: "20m",
    max_age: "7days",
    protocol: { smtp: { mx_list: [], treat_mx_list_as_secure: false } },
    reap_interval: "10m",
    refresh_interval: "1m",
    strategy: "SingletonTimerWheel",
    refresh_strategy: "Ttl",
    shrink_policy: [],
  });
});

Deno.test("parseQueueConfig() reads every key", () => {
  const q = parseQueueConfig({
    egress_pool: "warm",
    retry_interval: 10,
    max_retry_interval: "1h",
    max_age: "2 days",
    max_message_rate: "100/s",
    reap_interval: "1m",
    refresh_interval: 5,
    refresh_strategy: "Epoch",
    strategy: "SkipList",
    timerwheel_tick_interval: "2s",
    provider_name: "big",
    shrink_policy: [{ interval: "1m", policy: "ShrinkData" }],
  });
  assert.equal(q.maxMessageRate!.limit, 100);
  assert.equal(effectiveTickInterval(q), 2000);
  assert.equal(effectiveTickInterval({ ...q, timerwheelTickInterval: undefined }), 1000);
  assert.deepEqual(q.shrinkPolicy, [{ interval: 60_000, policy: "ShrinkData" }]);
  const j = queueConfigToJSON(q);
  assert.equal(j.max_message_rate, "100/s");
  assert.equal(j.max_age, "2days");
});

Deno.test("parseQueueConfig() protocol variants", () => {
  const smtp = parseQueueConfig({
    protocol: {
      smtp: {
        mx_list: ["[10.0.0.1]:2525", { name: "a", addr: "10.0.0.2" }],
        treat_mx_list_as_secure: true,
      },
    },
  }).protocol;
  assert.deepEqual(smtp, {
    kind: "smtp",
    mxList: ["[10.0.0.1]:2525", { name: "a", addr: "10.0.0.2" }],
    treatMxListAsSecure: true,
  });
  const md = parseQueueConfig({
    protocol: { maildir_path: "/tmp/{{domain_part}}", dir_mode: 0o755 },
  });
  assert.deepEqual(md.protocol, {
    kind: "maildir",
    maildirPath: "/tmp/{{domain_part}}",
    dirMode: 0o755,
    fileMode: undefined,
  });
  assert.deepEqual(queueConfigToJSON(md).protocol, {
    maildir_path: "/tmp/{{domain_part}}",
    dir_mode: 0o755,
  });
  const lua = parseQueueConfig({ protocol: { custom_lua: { constructor: "make.sink" } } });
  assert.deepEqual(lua.protocol, {
    kind: "lua",
    constructorEvent: "make.sink",
    batchSize: 1,
    minBatchSize: 1,
    maxBatchLatency: 0,
  });
  assert.deepEqual(queueConfigToJSON(lua).protocol, {
    custom_lua: {
      constructor: "make.sink",
      batch_size: 1,
      min_batch_size: 1,
      max_batch_latency: "0s",
    },
  });
  assert.throws(
    () => parseQueueConfig({ protocol: { smtp: { mx: [] } } }),
    /unknown field `mx`, expected `mx_list` or `treat_mx_list_as_secure`/,
  );
  assert.throws(
    () => parseQueueConfig({ protocol: { ftp: {} } }),
    /did not match any variant of untagged enum DeliveryProto/,
  );
  assert.throws(
    () => parseQueueConfig({ protocol: { smtp: { mx_list: [5] } } }),
    /invalid type: integer `5`/,
  );
  assert.throws(
    () => parseQueueConfig({ protocol: { custom_lua: {} } }),
    /missing field `constructor`/,
  );
});

Deno.test("parseQueueConfig() rejects unknown keys, bad enums and bad values", () => {
  assert.throws(
    () => parseQueueConfig({ retry: "1m" }),
    /^ConfigError: deserialize error: unknown field `retry`, expected one of `retry_interval`, `max_retry_interval`, `max_age`, `egress_pool`, .*, while processing \{"retry":"1m"\}$/,
  );
  assert.throws(
    () => parseQueueConfig({ refresh_strategy: "ttl" }),
    /unknown variant `ttl`, expected `Ttl` or `Epoch`/,
  );
  assert.throws(() => parseQueueConfig({ strategy: "timerwheel" }), /unknown variant `timerwheel`/);
  assert.throws(() => parseQueueConfig({ retry_interval: "1.5h" }), /"1.5h"/);
  assert.throws(() => parseQueueConfig({ max_message_rate: "10 per hour" }), /"10 per hour"/);
  assert.throws(
    () => parseQueueConfig({ shrink_policy: [{ interval: "1m", policy: "shrinkdata" }] }),
    /unknown variant `shrinkdata`/,
  );
});
