/**
 * policy-extras.queue: tenant/campaign assignment and queue config, first
 * through the policy engine in-process (resolution layers, rejections, data
 * and syntax errors, the registration-order rule, scheduling_header,
 * skip_queue_config_hook, provider_name back-fill, invalidate_with_epoch,
 * validation of pools against the sources helper), through the delivery
 * stage (overall_max_message_rate throttles), then through the real program:
 * meta `queue` in the log, require_authz refusal at end of DATA,
 * routing_domain delivery to a loopback sink, and the operator guide's
 * `[queue.'my.own.hostname']` snippet loaded verbatim (its `[10.0.0.1]`
 * route is checked in the logs; skip_hosts keeps the client from ever
 * connecting there).
 */
import assert from "node:assert/strict";
import { PolicyEngine } from "../src/policy/engine.ts";
import { buildCatalogue } from "../src/policy/catalogue.ts";
import { newServerConfig } from "../src/policy/server_config.ts";
import { offlineResolver } from "./support/offline_resolver.ts";
import { Message } from "../src/message/message.ts";
import { PolicyReject } from "../src/policy/policy_error.ts";
import { isConfigObject } from "../src/policy/config_object.ts";
import {
  basePolicy,
  idsOf,
  RawSmtp,
  readLogRecords,
  run,
  startKumo,
} from "./support/kumo_process.ts";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import { waitForLogs } from "./support/deliver_e2e.ts";
import { policyText, startHarness } from "./support/queue_harness.ts";

const AUTH_PY = `
import smtplib, ssl, sys
for user in ['bob', 'retail-app']:
    s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s.starttls(context=ctx)
    s.auth('PLAIN', lambda challenge=None: user + '\\0' + user + '\\0pw', initial_response_ok=True)
    try:
        s.sendmail('s@src.test', ['r@example.test'], 'X-Tenant: retail\\r\\nSubject: r\\r\\n\\r\\nbody\\r\\n')
        print(user, 250)
    except smtplib.SMTPDataError as e:
        print(user, e.smtp_code, e.smtp_error)
    s.quit()
`;

const QUEUES_TOML = `
tenant_header = "X-Tenant"
remove_tenant_header = true
campaign_header = "X-Campaign"
default_tenant = "house"

[tenant."house"]
[tenant."retail"]
egress_pool = "bulk"
require_authz = ["retail-app"]

[queue.default]
max_age = "2 days"

[queue."example.test"]
retry_interval = "7 mins"

[queue."example.test"."retail"]
max_message_rate = "50/s"

[queue."example.test"."retail"."spring"]
max_age = "12 hours"

[queue."*.wild.test"]
retry_interval = "3 mins"

[queue."lab.test"]
routing_domain = "[127.0.0.1]:2526"
`;

async function loadEngine(
  policy: string,
  files: Record<string, string> = {},
  validating = false,
): Promise<{ engine: PolicyEngine; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-extras-queue-" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.mkdir(`${dir}/${name}`.replace(/\/[^/]*$/, ""), { recursive: true });
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  await Deno.writeTextFile(`${dir}/init.lua`, policy.replaceAll("$DIR", dir));
  const cfg = newServerConfig();
  // deno-lint-ignore prefer-const
  let engine: PolicyEngine | undefined;
  engine = await PolicyEngine.load({
    policyPath: `${dir}/init.lua`,
    version: "test",
    validating,
    catalogue: buildCatalogue(() => engine, cfg, offlineResolver()),
  });
  return { engine, dir };
}

const HELPER = `
local kumo = require 'kumo'
local qmod = require 'policy-extras.queue'
local q = qmod:setup { '$DIR/queues.toml' }
kumo.on('apply', function(msg) q:apply(msg) return msg:queue_name() end)
kumo.on('resolve', function(d, t, c) return kumo.json_encode(q:resolve_config(d, t, c)) end)
`;

function message(headers: string, rcpt = "u@example.test", meta: Record<string, unknown> = {}) {
  return new Message({
    sender: "s@src.test",
    recipients: [rcpt],
    data: new TextEncoder().encode(`${headers}Subject: x\r\n\r\nbody\r\n`),
    meta,
  });
}

async function applyReject(engine: PolicyEngine, msg: Message): Promise<string> {
  try {
    await engine.callOrThrow("apply", "m", [msg]);
  } catch (e) {
    assert.ok(e instanceof PolicyReject, String(e));
    return `${e.code} ${e.text}`;
  }
  throw new Error("apply did not reject");
}

Deno.test("queue helper: get_queue_config layers default < domain < tenant < domain.tenant < campaign", async () => {
  const { engine, dir } = await loadEngine(HELPER, { "queues.toml": QUEUES_TOML });
  try {
    const view = async (d: string, t: string | null, c: string | null) => {
      const cfg = await engine.callOrThrow("get_queue_config", "ssss", [d, t, c, null]);
      assert.ok(isConfigObject(cfg));
      return cfg.view;
    };
    const plain = await view("example.test", null, null);
    assert.equal(plain.retry_interval, "7m");
    assert.equal(plain.max_age, "2days");
    assert.equal(plain.refresh_strategy, "Epoch");
    const retail = await view("example.test", "retail", null);
    assert.equal(retail.egress_pool, "bulk");
    assert.equal(retail.max_message_rate, "50/s");
    const spring = await view("example.test", "retail", "spring");
    assert.equal(spring.max_age, "12h");
    const wild = await view("a.wild.test", "house", null);
    assert.equal(wild.retry_interval, "3m");
    const other = await view("other.test", null, null);
    assert.equal(other.retry_interval, "20m");
    // resolve_config keeps the helper's own keys (routing_domain, require_authz)
    const r = JSON.parse(
      await engine.callOrThrow("resolve", "sss", ["lab.test", "retail", null]) as string,
    );
    assert.equal(r.routing_domain, "[127.0.0.1]:2526");
    assert.deepEqual(r.require_authz, ["retail-app"]);
  } finally {
    engine.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("queue helper: apply assigns tenant, campaign, routing_domain and rejects bad tenants", async () => {
  const { engine, dir } = await loadEngine(HELPER, { "queues.toml": QUEUES_TOML });
  try {
    assert.equal(await engine.callOrThrow("apply", "m", [message("")]), "house@example.test");
    const both = message("X-Tenant: retail\r\nX-Campaign: spring\r\n", "u@example.test", {
      authz_id: "retail-app",
    });
    assert.equal(await engine.callOrThrow("apply", "m", [both]), "spring:retail@example.test");
    assert.equal(both.getFirstNamedHeaderValue("X-Tenant"), undefined, "tenant header removed");
    assert.equal(both.getFirstNamedHeaderValue("X-Campaign"), "spring", "campaign header kept");
    assert.equal(
      await engine.callOrThrow("apply", "m", [message("", "u@lab.test")]),
      "house@lab.test![127.0.0.1]:2526",
    );
    assert.equal(
      await applyReject(engine, message("X-Tenant: nobody\r\n")),
      "500 tenant 'nobody' specified by 'X-Tenant' header is not defined in your queue config",
    );
    assert.equal(
      await applyReject(engine, message("X-Tenant: retail\r\n")),
      "500 tenant 'retail' requires SMTP AUTH",
    );
    assert.equal(
      await applyReject(
        engine,
        message("X-Tenant: retail\r\n", "u@example.test", { authz_id: "bob" }),
      ),
      "500 authz_id 'bob' is not authorized to send as tenant 'retail'",
    );
  } finally {
    engine.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("queue helper: an undefined default_tenant is refused naming the option", async () => {
  const { engine, dir } = await loadEngine(HELPER, {
    "queues.toml": `default_tenant = "ghost"\n[tenant."house"]\n`,
  });
  try {
    assert.equal(
      await applyReject(engine, message("")),
      "500 tenant 'ghost' specified by default_tenant option is not defined in your queue config",
    );
  } finally {
    engine.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("queue helper: data errors name the file and the key", async () => {
  const cases: [string, RegExp][] = [
    [`bogus = 1\n`, /queues\.toml: QueueHelperConfig: unknown field 'bogus'/],
    [
      `[tenant."t"]\nnot_an_option = 1\n`,
      /queues\.toml: TenantConfig: unknown field 'not_an_option'/,
    ],
    [
      `[tenant."t"]\nmax_age = "3 bananas"\n`,
      /queues\.toml: TenantConfig: invalid value for field 'max_age'\n.*bananas/,
    ],
    [
      `[queue."x.test"]\nretry_intervl = "1m"\n`,
      /QueueConfig 'x\.test': unknown field 'retry_intervl'/,
    ],
    [
      `default_tenant = "t"\n[tenant."t"\nmax_age = "1h"\n`,
      /Cannot parse \/.*\/queues\.toml at line 2, column \d+: /,
    ],
  ];
  for (const [toml, re] of cases) {
    const { engine, dir } = await loadEngine(HELPER, { "queues.toml": toml });
    try {
      const r = await engine.call("get_queue_config", "ssss", ["x.test", null, null, null]);
      assert.equal(r.kind, "error", toml);
      assert.match((r as { message: string }).message, re);
    } finally {
      engine.close();
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("queue helper: setup rules (twice, unknown option) and inline tables", async () => {
  const { engine, dir } = await loadEngine(`
    local qmod = require 'policy-extras.queue'
    local q = qmod:setup_with_options { file_names = { { tenant = { a = { egress_pool = 'p' } },
      queue = { default = { max_age = '1 day' } } } } }
    kumo.on('twice', function() return select(2, pcall(qmod.setup, qmod, {})) end)
    kumo.on('opt', function(k, v) return qmod.is_queue_config_option(k, v) end)
  `);
  try {
    assert.match(
      await engine.callOrThrow("twice", "", []) as string,
      /queues module has already been configured/,
    );
    assert.equal(await engine.callOrThrow("opt", "ss", ["max_age", "1 day"]), true);
    assert.equal(await engine.callOrThrow("opt", "ss", ["nope", "1 day"]), false);
    const cfg = await engine.callOrThrow("get_queue_config", "ssss", ["d.test", "a", null, null]);
    assert.ok(isConfigObject(cfg));
    assert.equal(cfg.view.egress_pool, "p");
    assert.equal(cfg.view.max_age, "1day");
  } finally {
    engine.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("queue helper: --validate reports a get_queue_config handler registered after it", async () => {
  // The policy file's own directory is monitored; a subdirectory is not.
  const { engine, dir } = await loadEngine(
    `local printed = {}\nprint = function(...) printed[#printed + 1] = table.concat({ ... }, ' ') end\n` +
      HELPER.replace("$DIR/queues.toml", "$DIR/conf/queues.toml") +
      `kumo.on('get_queue_config', function() return kumo.make_queue_config {} end)\n` +
      `kumo.on('printed', function() return table.concat(printed, '\\n') end)\n`,
    { "conf/queues.toml": QUEUES_TOML },
    true,
  );
  let text: string;
  try {
    await engine.call("validate_config", "", []);
    text = await engine.callOrThrow("printed", "", []) as string;
  } finally {
    engine.close();
    await Deno.remove(dir, { recursive: true });
  }
  assert.ok(engine.validationFailed);
  assert.match(text, /must be the last get_queue_config handler/);
  assert.match(text, /not covered by the config monitor globs/);
});

Deno.test("real program: queue helper names queues, refuses unauthorised tenants, routes lab.test", async () => {
  await using dns = await startDnsServer({
    zones: {
      "example.test": { MX: [{ pref: 10, host: "mx.example.test" }] },
      "mx.example.test": { A: ["127.0.0.2"] },
    },
  });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.1", "127.0.0.2"] });
  const dir = await Deno.makeTempDir({ prefix: "kumo-extras-queue-e2e-" });
  await Deno.writeTextFile(
    `${dir}/queues.toml`,
    QUEUES_TOML.replace("[127.0.0.1]:2526", `[127.0.0.1]:${sink.port}`),
  );
  const policy = basePolicy(
    dir,
    "",
    `kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }`,
    `
local qmod = require 'policy-extras.queue'
local q = qmod:setup { '${dir}/queues.toml' }
kumo.on('smtp_server_auth_plain', function(authz, authc, password, conn_meta)
  return password == 'pw'
end)
kumo.on('get_egress_source', function(name) return kumo.make_egress_source { name = name } end)
kumo.on('get_egress_pool', function(name)
  -- a source of its own: a ready queue (source->site) keeps the pool it was made for
  local src = name == 'bulk' and 'bulk-src' or 'unspecified'
  return kumo.make_egress_pool { name = name, entries = { { name = src } } }
end)
kumo.on('smtp_server_message_received', function(msg) q:apply(msg) end)
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path { prohibited_hosts = {}, enable_tls = 'Disabled', smtp_port = ${sink.port} }
end)
`,
  );
  const kumo = await startKumo(dir, policy);
  try {
    const send = async (c: RawSmtp, rcpt: string, headers: string) => {
      assert.match(await c.cmd("MAIL FROM:<s@src.test>") ?? "", /^250/);
      assert.match(await c.cmd(`RCPT TO:<${rcpt}>`) ?? "", /^250/);
      assert.match(await c.cmd("DATA") ?? "", /^354/);
      return await c.cmd(`${headers}Subject: t\r\n\r\nbody\r\n.`);
    };
    await using c = await RawSmtp.connect(kumo.port);
    await c.reply();
    await c.cmd("EHLO client.test");
    const house = idsOf(await send(c, "a@example.test", ""));
    assert.equal(
      await send(c, "a@example.test", "X-Tenant: retail\r\n"),
      "500 tenant 'retail' requires SMTP AUTH",
    );
    const lab = idsOf(await send(c, "b@lab.test", "X-Campaign: spring\r\n"));
    // AUTH needs TLS: an authorised client over STARTTLS (Python smtplib)
    const py = await run("python3", ["-c", AUTH_PY, String(kumo.port)]);
    assert.equal(py.code, 0, py.stderr);
    assert.deepEqual(py.stdout.trim().split("\n"), [
      "bob 500 b\"authz_id 'bob' is not authorized to send as tenant 'retail'\"",
      "retail-app 250",
    ]);
    const delivered = await sink.waitFor(3, 15_000);
    const byRcpt = new Map(delivered.map((m) => [m.rcptTo[0], m]));
    assert.equal(byRcpt.get("a@example.test")?.localAddress, "127.0.0.2");
    assert.equal(byRcpt.get("b@lab.test")?.localAddress, "127.0.0.1");
    assert.ok(house.length === 1 && lab.length === 1);
    const retail = byRcpt.get("r@example.test");
    assert.ok(retail, "retail message delivered");
    assert.doesNotMatch(
      new TextDecoder().decode(retail.data),
      /X-Tenant/i,
      "tenant header removed",
    );
  } finally {
    assert.equal(await kumo.stop(), 0);
  }
  const recs = readLogRecords(`${dir}/logs`);
  const rec = (type: string, rcpt: string) =>
    recs.find((r) => r.type === type && r.recipient === rcpt);
  assert.equal(rec("Reception", "a@example.test")?.queue, "house@example.test");
  assert.equal(
    rec("Reception", "b@lab.test")?.queue,
    `spring:house@lab.test![127.0.0.1]:${sink.port}`,
  );
  assert.equal(
    rec("Delivery", "b@lab.test")?.queue,
    `spring:house@lab.test![127.0.0.1]:${sink.port}`,
  );
  const retailDelivery = rec("Delivery", "r@example.test");
  assert.equal(retailDelivery?.queue, "retail@example.test");
  assert.equal(retailDelivery?.egress_pool, "bulk", JSON.stringify(retailDelivery));
  assert.equal(retailDelivery?.egress_source, "bulk-src");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue helper: a handler registered before it answers for its own domain; one registered after never runs", async () => {
  const { engine, dir } = await loadEngine(
    `
local kumo = require 'kumo'
local after_calls = 0
kumo.on('get_queue_config', function(domain)
  if domain == 'mine.test' then return kumo.make_queue_config { max_age = '5 mins' } end
end)
local qmod = require 'policy-extras.queue'
local q = qmod:setup { '$DIR/queues.toml' }
kumo.on('get_queue_config', function()
  after_calls = after_calls + 1
  return kumo.make_queue_config { max_age = '1 min' }
end)
kumo.on('after_calls', function() return after_calls end)
`,
    { "queues.toml": QUEUES_TOML },
  );
  try {
    const view = async (d: string) => {
      const cfg = await engine.callOrThrow("get_queue_config", "ssss", [d, null, null, null]);
      assert.ok(isConfigObject(cfg));
      return cfg.view;
    };
    assert.equal((await view("mine.test")).max_age, "5m");
    const other = await view("other.test");
    assert.equal(other.max_age, "2days", "the helper answered");
    assert.equal(other.refresh_strategy, "Epoch");
    assert.equal((await view("example.test")).retry_interval, "7m");
    assert.equal(await engine.callOrThrow("after_calls", "", []), 0);
  } finally {
    engine.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("queue helper: scheduling_header is imported and removed; skip_queue_config_hook leaves get_queue_config alone", async () => {
  const { engine, dir } = await loadEngine(
    `
local kumo = require 'kumo'
local qmod = require 'policy-extras.queue'
local q = qmod:setup_with_options { file_names = { '$DIR/queues.toml' }, skip_queue_config_hook = true }
kumo.on('apply', function(msg) q:apply(msg) return msg:queue_name() end)
kumo.on('resolve', function(d, t, c) return kumo.json_encode(q:resolve_config(d, t, c)) end)
`,
    {
      "queues.toml": `scheduling_header = "X-Schedule"\ndefault_tenant = "house"\n` +
        `[tenant."house"]\nmax_age = "3 hours"\n`,
    },
  );
  try {
    assert.equal(engine.hasHandler("get_queue_config"), false);
    const msg = message(`X-Schedule: {"first_attempt": "2030-01-02T03:04:05Z"}\r\n`);
    assert.equal(await engine.callOrThrow("apply", "m", [msg]), "house@example.test");
    assert.equal(msg.scheduling?.first_attempt, "2030-01-02T03:04:05Z");
    assert.equal(msg.getFirstNamedHeaderValue("X-Schedule"), undefined, "header removed");
    const r = JSON.parse(
      await engine.callOrThrow("resolve", "sss", ["example.test", "house", null]) as string,
    );
    assert.equal(r.max_age, "3 hours");
  } finally {
    engine.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("queue helper: provider_name is back-filled from shaping unless the data sets it", async () => {
  await using dns = await startDnsServer({
    zones: {
      "x.prov.test": { MX: [{ pref: 10, host: "mx.prov.test" }] },
      "set.prov.test": { MX: [{ pref: 10, host: "mx.prov.test" }] },
      "plain.test": { MX: [{ pref: 10, host: "mx.plain.test" }] },
    },
  });
  const { engine, dir } = await loadEngine(
    `
local kumo = require 'kumo'
kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
local shaping = require 'policy-extras.shaping'
kumo.on('get_egress_path_config', shaping:setup({ '$DIR/shaping.toml' }, { no_default_files = true }))
local qmod = require 'policy-extras.queue'
qmod:setup { '$DIR/queues.toml' }
`,
    {
      "shaping.toml": `[provider."bigprov"]\nmatch = [{ DomainSuffix = "prov.test" }]\n`,
      "queues.toml": `[queue."set.prov.test"]\nprovider_name = "mine"\n`,
    },
  );
  try {
    const view = async (d: string) => {
      const cfg = await engine.callOrThrow("get_queue_config", "ssss", [d, null, null, null]);
      assert.ok(isConfigObject(cfg));
      return cfg.view;
    };
    assert.equal((await view("x.prov.test")).provider_name, "bigprov");
    assert.equal((await view("set.prov.test")).provider_name, "mine");
    assert.equal((await view("plain.test")).provider_name ?? null, null);
  } finally {
    engine.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("queue helper: invalidate_with_epoch reloads an edited file on the next epoch bump; the default waits for the TTL", async () => {
  for (const epoch of [true, false]) {
    const { engine, dir } = await loadEngine(
      `
local kumo = require 'kumo'
local qmod = require 'policy-extras.queue'
qmod:setup_with_options { file_names = { '$DIR/queues.toml' }, invalidate_with_epoch = ${epoch} }
kumo.on('bump', function() kumo.bump_config_epoch() end)
`,
      { "queues.toml": `[queue.default]\nmax_age = "1 hour"\n` },
    );
    try {
      const maxAge = async () => {
        const cfg = await engine.callOrThrow("get_queue_config", "ssss", [
          "x.test",
          null,
          null,
          null,
        ]);
        assert.ok(isConfigObject(cfg));
        return cfg.view.max_age;
      };
      assert.equal(await maxAge(), "1h");
      await Deno.writeTextFile(`${dir}/queues.toml`, `[queue.default]\nmax_age = "2 hours"\n`);
      assert.equal(await maxAge(), "1h", "cached until something invalidates it");
      await engine.callOrThrow("bump", "", []);
      assert.equal(await maxAge(), epoch ? "2h" : "1h", `invalidate_with_epoch = ${epoch}`);
    } finally {
      engine.close();
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("queue helper: overall_max_message_rate delays a tenant's second message; the campaign throttle uses the tenant's spec", async () => {
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  await using dns = await startDnsServer({
    zones: {
      "dest.test": { MX: [{ pref: 10, host: "mx.dest.test" }] },
      "mx.dest.test": { A: ["127.0.0.2"] },
    },
  });
  const dir = await Deno.makeTempDir({ prefix: "kumo-extras-queue-rate-" });
  await Deno.writeTextFile(
    `${dir}/queues.toml`,
    `[tenant."solo"]
overall_max_message_rate = "1/h"

[tenant."camp"]
overall_max_message_rate = "1/h"

[tenant."camp".campaigns."spring"]
overall_max_message_rate = "1000/s"

[tenant."free"]

[queue.default]
retry_interval = "1h"
`,
  );
  await using h = await startHarness(
    policyText({
      dns: dns.address,
      port: sink.port,
      extra: `
local qmod = require 'policy-extras.queue'
-- registered after the prelude's own handler: only the throttle hook matters here
qmod:setup_with_options { file_names = { '${dir}/queues.toml' }, skip_queue_config_hook = true }
kumo.on('campaign_throttle', function(spec)
  return kumo.make_throttle('queue-helper-tenant-campaign-overall_max_message_rate-camp-spring', spec):throttle().throttled
end)`,
    }),
  );
  try {
    const solo1 = await h.inject("a@src.test", "u1@dest.test", { tenant: "solo" });
    await sink.waitFor(1, 15_000);
    const solo2 = await h.inject("a@src.test", "u2@dest.test", { tenant: "solo" });
    const [delayed] = await h.logs.waitFor("Delayed", 1, 15_000);
    assert.equal(delayed.id, solo2.id);
    assert.match(delayed.response.content, /^Context: ThrottledByThrottleInsertReadyQueue\. /);
    const camp = await h.inject("a@src.test", "u3@dest.test", {
      tenant: "camp",
      campaign: "spring",
    });
    for (let i = 0; i < 3; i++) await h.inject("a@src.test", `f${i}@dest.test`, { tenant: "free" });
    await sink.waitFor(5, 15_000);
    const delivered = h.logs.of("Delivery").map((r) => r.id);
    assert.ok(delivered.includes(solo1.id) && delivered.includes(camp.id));
    assert.ok(!delivered.includes(solo2.id), "the throttled message waits");
    assert.equal(h.logs.of("TransientFailure").length, 0, "a delay is not an attempt");
    // The campaign throttle exists under its own name with the tenant's 1/h spec,
    // and spring's one message used it up ("1000/s" would start a fresh one).
    assert.equal(await h.engine.callOrThrow("campaign_throttle", "s", ["1/h"]), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("queue helper: --validate reports egress pools the sources helper does not define", async () => {
  const { engine, dir } = await loadEngine(
    `local printed = {}\nprint = function(...) printed[#printed + 1] = table.concat({ ... }, ' ') end
local sources = require 'policy-extras.sources'
sources:setup { { source = { s1 = {} }, pool = { shared = { s1 = {} } } } }
local qmod = require 'policy-extras.queue'
qmod:setup { '$DIR/queues.toml' }
kumo.on('printed', function() return table.concat(printed, '\\n') end)
`,
    {
      "queues.toml": `[tenant."house"]
egress_pool = "shared"

[tenant."retail"]
egress_pool = "bulk"

[queue."x.test"."house"]
egress_pool = "ghost"
`,
    },
    true,
  );
  let text: string;
  try {
    await engine.call("validate_config", "", []);
    text = await engine.callOrThrow("printed", "", []) as string;
  } finally {
    engine.close();
    await Deno.remove(dir, { recursive: true });
  }
  assert.ok(engine.validationFailed);
  assert.match(
    text,
    /^queue helper: tenant 'retail' uses egress_pool 'bulk' which is not defined by the sources helper$/m,
  );
  assert.match(
    text,
    /^queue helper: queue 'x\.test\.house' uses egress_pool 'ghost' which is not defined by the sources helper$/m,
  );
  assert.doesNotMatch(text, /'shared' which/);
});

Deno.test("real program: the guide's [queue.'my.own.hostname'] snippet verbatim routes to [10.0.0.1] (never connected)", async () => {
  await using dns = await startDnsServer();
  const dir = await Deno.makeTempDir({ prefix: "kumo-extras-queue-seed-" });
  const seed = new URL("./fixtures/seeds/queues.toml", import.meta.url).pathname;
  const policy = basePolicy(
    dir,
    "",
    `kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
  kumo.configure_local_logs { log_dir = '${dir}/fastlogs', max_segment_duration = '1 second' }`,
    `
local qmod = require 'policy-extras.queue'
local q = qmod:setup { '${seed}' }
kumo.on('smtp_server_message_received', function(msg) q:apply(msg) end)
kumo.on('get_egress_path_config', function()
  -- 10.0.0.0/8 is skipped: the connection plan ends empty before any connect
  return kumo.make_egress_path { skip_hosts = { '10.0.0.0/8' }, enable_tls = 'Disabled' }
end)
`,
  );
  const kumo = await startKumo(dir, policy);
  let id: string;
  try {
    await using c = await RawSmtp.connect(kumo.port);
    await c.reply();
    await c.cmd("EHLO client.test");
    assert.match(await c.cmd("MAIL FROM:<s@src.test>") ?? "", /^250/);
    assert.match(await c.cmd("RCPT TO:<postmaster@my.own.hostname>") ?? "", /^250/);
    assert.match(await c.cmd("DATA") ?? "", /^354/);
    [id] = idsOf(await c.cmd("Subject: t\r\n\r\nbody\r\n."));
    await waitForLogs(
      `${dir}/fastlogs`,
      (recs) => recs.some((r) => r.id === id && r.type === "TransientFailure"),
      "the TransientFailure of the routed message",
    );
  } finally {
    assert.equal(await kumo.stop(), 0);
  }
  const recs = readLogRecords(`${dir}/logs`).filter((r) => r.id === id);
  assert.deepEqual(recs.map((r) => r.type), ["Reception", "TransientFailure"]);
  assert.equal(recs[0].queue, "my.own.hostname![10.0.0.1]");
  assert.equal(recs[1].queue, "my.own.hostname![10.0.0.1]");
  assert.equal(recs[1].peer_address, null, "no connection was made");
  assert.match(
    JSON.stringify(recs[1].response),
    /"code":451.*MX didn't resolve to any hosts/,
  );
  await Deno.remove(dir, { recursive: true });
});
