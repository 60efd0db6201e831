/**
 * `GET /metrics`, `/metrics.json`, `kcli queue-summary` and
 * `--dump-metric-metadata` against the real program (http-api.md §5,
 * cli.md §4): mail sent over SMTP and HTTP is delivered to a loopback sink
 * while a suspended queue holds two tenant/campaign messages; the Prometheus
 * text is parsed strictly and the counters and gauges are checked —
 * received per listener, delivered per protocol / ready queue / provider,
 * ready_count back to 0, scheduled_count of the held queue and its roll-ups;
 * the `esmtp_listener:<addr>` series, per-listener rejections, the smtpsrv
 * and log_submit histograms, message, thread-pool and memory gauges.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import { idsOf, RawSmtp, startKumo } from "./support/kumo_process.ts";
import { postJson, startHttpRig } from "./support/http_rig.ts";
import { waitUntil } from "./support/admin_kumo.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const HELD = "spring:acme@held.test";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const SAMPLE_RE = new RegExp(
  `^(${NAME})(?:\\{(${LABEL}(?:,${LABEL})*)?\\})? ([-+]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][-+]?[0-9]+)?|NaN|[+-]Inf)$`,
);

/**
 * Parse the text exposition format 0.0.4 strictly: every line is a HELP or
 * TYPE comment, a sample or empty; each family has HELP and TYPE before its
 * samples; sample names belong to the family (histogram suffixes); no
 * series twice.
 */
function parseStrict(text: string): { samples: Sample[]; types: Map<string, string> } {
  assert.ok(text.endsWith("\n"), "the exposition ends with a newline");
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const seen = new Set<string>();
  const samples: Sample[] = [];
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "") continue;
    let m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line);
    if (m) {
      assert.ok(!helps.has(m[1]), `HELP twice for ${m[1]}`);
      helps.add(m[1]);
      continue;
    }
    m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
    if (m) {
      assert.ok(helps.has(m[1]), `HELP before TYPE for ${m[1]}`);
      assert.ok(!types.has(m[1]), `TYPE twice for ${m[1]}`);
      types.set(m[1], m[2]);
      continue;
    }
    m = SAMPLE_RE.exec(line);
    assert.ok(m, `not an exposition line: ${JSON.stringify(line)}`);
    const name = m[1];
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, "");
    assert.ok(types.has(family), `sample before its TYPE: ${line}`);
    if (family !== name) assert.equal(types.get(family), "histogram", line);
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    for (let l = re.exec(m[2] ?? ""); l; l = re.exec(m[2] ?? "")) {
      assert.ok(!(l[1] in labels), `label twice: ${line}`);
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    const key = name + JSON.stringify(Object.entries(labels).sort());
    assert.ok(!seen.has(key), `series twice: ${line}`);
    seen.add(key);
    samples.push({ name, labels, value: Number(m[3]) });
  }
  return { samples, types };
}

/** The value of one series, or undefined. */
function value(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return samples.find((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) &&
    Object.keys(s.labels).length === Object.keys(labels).length
  )?.value;
}

async function kcli(endpoint: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}mod.ts`, "kcli", "--endpoint", endpoint, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("metrics: /metrics and /metrics.json follow deliveries, held queues and kcli", async () => {
  await using dns = await startDnsServer({
    zones: {
      "dest.test": { MX: [{ pref: 10, host: "mx.dest.test" }] },
      "held.test": { MX: [{ pref: 10, host: "mx.dest.test" }] },
      "mx.dest.test": { A: ["127.0.0.1"] },
    },
  });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.1"] });
  const dir = await Deno.makeTempDir({ prefix: "kumo-metrics-" });
  await using kumo = await startKumo(
    dir,
    `local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'mx.test' }
  kumo.start_http_listener { listen = '127.0.0.1:0' }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs' }
end)
kumo.on('smtp_server_message_received', function(msg)
  if tostring(msg:recipient_list()[1]):find('held%.test') then
    msg:set_meta('tenant', 'acme')
    msg:set_meta('campaign', 'spring')
  end
end)
kumo.on('get_queue_config', function()
  return kumo.make_queue_config { retry_interval = '1s', provider_name = 'sinkprov' }
end)
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path {
    smtp_port = ${sink.port}, prohibited_hosts = {}, enable_tls = 'Disabled',
    provider_name = 'sinkprov',
  }
end)
`,
  );
  const m = /http listener on 127\.0\.0\.1:(\d+)/.exec(kumo.stderr());
  assert.ok(m, kumo.stderr());
  const base = `http://127.0.0.1:${m[1]}`;
  const scrape = async () => {
    const r = await fetch(`${base}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/plain/);
    return parseStrict(await r.text());
  };

  const sus = await postJson(`${base}/api/admin/suspend/v1`, {
    reason: "hold for metrics",
    domain: "held.test",
    duration: "10m",
  });
  assert.equal(sus.status, 200, sus.text);

  // Over SMTP: two deliverable, two held, and one out-of-order command (a Rejection).
  {
    await using c = await RawSmtp.connect(kumo.port);
    await c.reply();
    await c.cmd("EHLO client.test");
    assert.match(await c.cmd("RCPT TO:<early@dest.test>") ?? "", /^503 /);
    for (const rcpt of ["a@dest.test", "b@dest.test", "h1@held.test", "h2@held.test"]) {
      await c.cmd("MAIL FROM:<sender@src.test>");
      await c.cmd(`RCPT TO:<${rcpt}>`);
      await c.cmd("DATA");
      assert.equal(idsOf(await c.cmd(`Subject: m\r\n\r\nhello ${rcpt}\r\n.`)).length, 1);
    }
    await c.cmd("QUIT");
  }
  // Over HTTP: one more deliverable.
  const inj = await postJson(`${base}/api/inject/v1`, {
    envelope_sender: "sender@src.test",
    recipients: [{ email: "c@dest.test" }],
    content: "Subject: via http\n\nhello\n",
  });
  assert.equal(inj.status, 200, inj.text);
  await sink.waitFor(3, 20_000);

  let s: Sample[] = [];
  let types = new Map<string, string>();
  await waitUntil(
    async () => {
      ({ samples: s, types } = await scrape());
      return value(s, "total_messages_delivered", { service: "smtp_client" }) === 3 &&
        value(s, "scheduled_count", { queue: HELD }) === 2 &&
        value(s, "connection_count", { service: "esmtp_listener" }) === 0 &&
        s.filter((x) => x.name === "ready_count").every((x) => x.value === 0);
    },
    20_000,
    "3 deliveries, 2 held, ready queues drained",
  );
  assert.equal(sink.messages.length, 3);

  // Types of the spec's families.
  for (
    const [name, type] of [
      ["total_messages_received", "counter"],
      ["total_messages_delivered", "counter"],
      ["total_messages_transfail", "counter"],
      ["total_messages_fail", "counter"],
      ["total_messages_delivered_by_provider", "counter"],
      ["total_messages_delivered_by_provider_and_source", "counter"],
      ["connection_count", "gauge"],
      ["total_connection_count", "counter"],
      ["ready_count", "gauge"],
      ["scheduled_count", "gauge"],
      ["scheduled_count_total", "gauge"],
      ["scheduled_by_tenant_campaign", "gauge"],
      ["queued_count_by_provider", "gauge"],
      ["smtp_server_rejections", "counter"],
      ["lua_event_latency", "histogram"],
      ["dns_mx_resolve_status_ok", "counter"],
      ["memory_usage", "gauge"],
    ]
  ) assert.equal(types.get(name), type, name);

  // Reception per listener; outcomes per protocol, ready queue and provider.
  assert.equal(value(s, "total_messages_received", { service: "esmtp_listener" }), 4);
  assert.equal(value(s, "total_messages_received", { service: "http_listener" }), 1);
  const rqSeries = s.find((x) =>
    x.name === "total_messages_delivered" && x.labels.service.startsWith("smtp_client:")
  );
  assert.ok(rqSeries, "a per ready queue delivered series");
  assert.match(
    rqSeries.labels.service,
    /^smtp_client:unspecified->.*mx\.dest\.test.*@smtp_client$/,
  );
  assert.equal(rqSeries.value, 3);
  const rqService = rqSeries.labels.service;
  assert.equal(value(s, "ready_count", { service: rqService }), 0);
  assert.equal(value(s, "connection_count", { service: rqService }) !== undefined, true);
  assert.equal(value(s, "total_messages_delivered_by_provider", { provider: "sinkprov" }), 3);
  const bps = s.find((x) => x.name === "total_messages_delivered_by_provider_and_source");
  assert.deepEqual(bps?.labels, {
    provider: "sinkprov",
    source: "unspecified",
    pool: "unspecified",
  });
  assert.equal(bps?.value, 3);
  assert.equal(value(s, "total_messages_fail", { service: "smtp_client" }), undefined);
  // Held messages count as transient failures of the roll-up only (no ready queue).
  assert.ok(
    s.filter((x) => x.name === "total_messages_transfail").every((x) =>
      x.labels.service === "smtp_client" || x.labels.service.startsWith("smtp_client:")
    ),
  );

  // Connections: in and out.
  assert.equal(value(s, "total_connection_count", { service: "esmtp_listener" }), 1);
  assert.ok((value(s, "total_connection_count", { service: "smtp_client" }) ?? 0) >= 1);
  assert.ok((value(s, "total_connection_count", { service: rqService }) ?? 0) >= 1);

  // The held queue and its roll-ups; the drained queue's gauge went back to 0.
  assert.equal(value(s, "scheduled_by_domain", { domain: "held.test" }), 2);
  assert.equal(value(s, "scheduled_by_tenant", { tenant: "acme" }), 2);
  assert.equal(
    value(s, "scheduled_by_tenant_campaign", { tenant: "acme", campaign: "spring" }),
    2,
  );
  assert.equal(value(s, "scheduled_count", { queue: "dest.test" }) ?? 0, 0);
  assert.equal(value(s, "scheduled_count_total"), 2);
  assert.equal(value(s, "queued_count_by_provider", { provider: "sinkprov" }), 2);

  // Rejections, DNS, Lua, process gauges.
  assert.equal(value(s, "smtp_server_rejections", { service: "total" }), 1);
  assert.ok((value(s, "dns_mx_resolve_status_ok") ?? 0) >= 1);
  assert.equal(value(s, "dns_mx_resolve_in_progress"), 0);
  assert.ok((value(s, "lua_event_started", { event: "get_queue_config" }) ?? 0) >= 1);
  assert.ok((value(s, "lua_event_latency_count", { event: "get_egress_path_config" }) ?? 0) >= 1);
  assert.equal(
    value(s, "lua_event_latency_bucket", { event: "get_egress_path_config", le: "+Inf" }),
    value(s, "lua_event_latency_count", { event: "get_egress_path_config" }),
  );
  assert.ok((value(s, "memory_usage") ?? 0) > 0);
  assert.ok((value(s, "disk_free_bytes", { name: "data spool" }) ?? 0) > 0);
  assert.ok((value(s, "lua_count") ?? 0) >= 1);

  // ?prefix= renames every family.
  const prefixed = parseStrict(await (await fetch(`${base}/metrics?prefix=kumo_`)).text());
  assert.ok(prefixed.samples.every((x) => x.name.startsWith("kumo_")));
  assert.equal(value(prefixed.samples, "kumo_scheduled_count", { queue: HELD }), 2);

  // /metrics.json: the same registry in kumod's JSON shape.
  const jr = await fetch(`${base}/metrics.json`);
  assert.match(jr.headers.get("content-type") ?? "", /^application\/json/);
  const json = await jr.json();
  assert.deepEqual(json.scheduled_count.value.queue[HELD], 2);
  assert.equal(json.scheduled_count.type, "gauge");
  assert.equal(typeof json.scheduled_count.help, "string");
  assert.equal(json.total_messages_received.value.service.http_listener, 1);
  assert.equal(typeof json.memory_usage.value, "number");
  assert.deepEqual(json.total_messages_delivered_by_provider_and_source.value, [
    { provider: "sinkprov", source: "unspecified", pool: "unspecified", "@": 3 },
  ]);
  assert.equal(json.total_messages_fail_by_provider.value, null);
  const lat = json.lua_event_latency.value.event.get_queue_config;
  assert.equal(lat.bucket.length, 11);
  assert.deepEqual(lat.bucket[0].length, 2);
  assert.ok(lat.count >= 1 && lat.avg === lat.sum / lat.count);

  // kcli queue-summary reads the ready queue and the scheduled queue from /metrics.
  const sum = await kcli(base, "queue-summary");
  assert.equal(sum.code, 0, sum.stderr);
  assert.match(sum.stdout, /mx\.dest\.test\s+unspecified\s+smtp_client\s+3\s+0\s+\d+\s+0/);
  assert.match(sum.stdout, /spring:acme@held\.test\s+2/);

  await Deno.remove(dir, { recursive: true }).catch(() => {});
});

Deno.test("metrics: kumo --dump-metric-metadata prints the catalogue", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}mod.ts`, "--dump-metric-metadata"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const list = JSON.parse(new TextDecoder().decode(out.stdout)) as Record<string, unknown>[];
  const by = new Map(list.map((e) => [e.name, e]));
  assert.deepEqual(by.get("scheduled_count"), {
    name: "scheduled_count",
    help: "number of messages in the scheduled queue",
    doc: null,
    metric_type: "Gauge",
    label_names: ["queue"],
    buckets: [],
    pruning: "Pruning",
  });
  assert.equal(by.get("total_messages_delivered")?.metric_type, "Counter");
  assert.deepEqual(by.get("lua_event_latency")?.buckets, [
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
  ]);
  assert.deepEqual(
    by.get("total_messages_delivered_by_provider_and_source")?.label_names,
    ["provider", "source", "pool"],
  );
});

Deno.test("metrics: per-listener series, smtpsrv and log_submit histograms, message and memory gauges", async () => {
  await using rig = await startHttpRig({
    queueConfig:
      "kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1h' } end)",
    sinkReplies: (stage) => stage === "rcpt" ? { code: 451, text: "4.3.0 later" } : undefined,
  });
  const listener = /smtp listener on (127\.0\.0\.1:\d+)/.exec(rig.kumo.stderr())![1];
  const service = `esmtp_listener:${listener}`;
  {
    await using c = await RawSmtp.connect(rig.kumo.port);
    await c.reply();
    await c.cmd("EHLO client.test");
    assert.match(await c.cmd("DATA") ?? "", /^503 /); // a Rejection
    for (const rcpt of ["a@dest.test", "b@dest.test"]) {
      await c.cmd("MAIL FROM:<sender@src.test>");
      await c.cmd(`RCPT TO:<${rcpt}>`);
      await c.cmd("DATA");
      assert.equal(idsOf(await c.cmd(`Subject: m\r\n\r\nhello ${rcpt}\r\n.`)).length, 1);
    }
    await c.cmd("QUIT");
  }
  let s: Sample[] = [];
  let types = new Map<string, string>();
  await waitUntil(
    async () => {
      ({ samples: s, types } = parseStrict(await (await fetch(`${rig.base}/metrics`)).text()));
      return value(s, "total_messages_transfail", { service: "smtp_client" }) === 2 &&
        value(s, "connection_count", { service }) === 0;
    },
    20_000,
    "two transient failures, the session closed",
  );

  assert.equal(value(s, "total_messages_received", { service }), 2);
  assert.equal(value(s, "total_messages_received", { service: "esmtp_listener" }), 2);
  assert.equal(value(s, "total_connection_count", { service }), 1);
  assert.equal(value(s, "smtp_server_rejections", { service: listener }), 1);
  assert.equal(value(s, "smtp_server_rejections", { service: "total" }), 1);
  for (const h of ["read_data", "process_data", "transaction"]) {
    const name = `smtpsrv_${h}_duration`;
    assert.equal(types.get(name), "histogram", name);
    assert.equal(value(s, `${name}_count`), 2, name);
    assert.equal(value(s, `${name}_bucket`, { le: "+Inf" }), 2, name);
  }
  const logger = `dir-${rig.dir}/logs`;
  assert.equal(types.get("log_submit_latency"), "histogram");
  // 2 Reception + 1 Rejection + 2 TransientFailure records so far.
  assert.ok((value(s, "log_submit_latency_count", { logger }) ?? 0) >= 5, logger);
  assert.equal(value(s, "thread_pool_size", { pool: "main" }), 1);
  assert.equal(value(s, "thread_pool_parked", { pool: "main" }), 0);
  assert.equal(value(s, "message_count"), 2);
  assert.equal(value(s, "message_meta_resident_count"), 2);
  const resident = value(s, "message_data_resident_count")!;
  assert.ok(resident >= 0 && resident <= 2, String(resident));
  const limit = value(s, "memory_limit")!;
  assert.ok(limit > 0, String(limit));
  assert.equal(value(s, "memory_low_thresh"), Math.floor(limit * 0.8));
  const json = await (await fetch(`${rig.base}/metrics.json`)).json();
  assert.equal(json.memory_limit.value, limit);
  assert.equal(json.total_messages_received.value.service[service], 2);
  assert.equal(rig.sink.messages.length, 0);
});
