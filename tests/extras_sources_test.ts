/**
 * policy-extras.sources through the real program: the operator guide's
 * sources.toml loaded verbatim (tests/fixtures/seeds/sources.toml, its
 * 10.0.0.x sources inspected with kumo.invoke_get_egress_source, never
 * connected to), then with a loopback overlay file (later file wins key by
 * key) plus a JSON file adding a weight-0 entry: messages in over SMTP,
 * delivered from the pool's sources to a loopback sink in the 2:1 ratio. An
 * empty pool fails messages with 451 "no sources available"; --validate
 * names pools that reference undefined sources; bad files stop start-up
 * with exit 1.
 */
import assert from "node:assert/strict";
import { basePolicy, RawSmtp, run, startKumo } from "./support/kumo_process.ts";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import { policyStartupError } from "./support/policy_startup_error.ts";
import { loadPolicy } from "./support/policy_engine.ts";
import { startHarness } from "./support/queue_harness.ts";

/** The operator guide's sources.toml, byte for byte (seeds 000/001). */
const SEED_SOURCES = new URL("./fixtures/seeds/sources.toml", import.meta.url).pathname;
/** Moves only source_address to 127.0.0.1x. */
const LOOPBACK_OVERLAY = new URL("./fixtures/sources_loopback.toml", import.meta.url).pathname;

Deno.test("sources helper: the guide's sources.toml verbatim gives its 10.0.0.x sources and weighted pools", async () => {
  using p = await loadPolicy(`
local kumo = require 'kumo'
local sources = require 'policy-extras.sources'
sources:setup { '${SEED_SOURCES}' }
kumo.on('show', function()
  local out = {}
  for _, n in ipairs { 'ip-1', 'ip-2', 'ip-3' } do
    local s = kumo.invoke_get_egress_source(n)
    out[#out + 1] = string.format('%s %s %s', s.name, s.source_address, s.ehlo_domain)
  end
  for _, n in ipairs { 'pool-1', 'pool-2' } do
    local pool = kumo.invoke_get_egress_pool(n)
    for _, e in ipairs(pool.entries) do
      out[#out + 1] = string.format('%s %s %s', pool.name, e.name, tostring(e.weight))
    end
  end
  return table.concat(out, '\\n')
end)
`);
  assert.deepEqual((await p.engine.callOrThrow("show", "", []) as string).split("\n"), [
    "ip-1 10.0.0.1 mta1.examplecorp.com",
    "ip-2 10.0.0.2 mta2.examplecorp.com",
    "ip-3 10.0.0.3 mta3.examplecorp.com",
    "pool-1 ip-1 1",
    "pool-2 ip-2 2",
    "pool-2 ip-3 1",
  ]);
});

// A second file, JSON with a comment: pool-2 gains ip-1 with weight 0.
const EXTRA_JSON = `{
  // parked: never chosen
  "pool": { "pool-2": { "ip-1": { "weight": 0 } } }
}`;

Deno.test("sources helper: seed TOML + loopback overlay + JSON, weights 2:1 and 0 seen at the sink", async () => {
  await using dns = await startDnsServer({
    zones: {
      "two.test": { MX: [{ pref: 10, host: "mx.sink.test" }] },
      "one.test": { MX: [{ pref: 10, host: "mx.sink.test" }] },
      "mx.sink.test": { A: ["127.0.0.5"] },
    },
  });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.5"] });
  const dir = await Deno.makeTempDir({ prefix: "kumo-sources-" });
  await Deno.writeTextFile(`${dir}/extra.json`, EXTRA_JSON);
  const policy = basePolicy(
    dir,
    "",
    `kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }`,
    `
local sources = require 'policy-extras.sources'
sources:setup { '${SEED_SOURCES}', '${LOOPBACK_OVERLAY}', '${dir}/extra.json' }
kumo.on('get_queue_config', function(domain)
  local pool = domain == 'two.test' and 'pool-2' or 'pool-1'
  return kumo.make_queue_config { egress_pool = pool, retry_interval = '1s' }
end)
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path {
    smtp_port = ${sink.port}, prohibited_hosts = {}, enable_tls = 'Disabled',
    max_deliveries_per_connection = 1,
  }
end)
`,
  );
  await using kumo = await startKumo(dir, policy);
  await using c = await RawSmtp.connect(kumo.port);
  assert.match((await c.reply())!, /^220 /);
  assert.match((await c.cmd("EHLO client.test"))!, /^250/);
  const send = async (to: string) => {
    assert.match((await c.cmd("MAIL FROM:<a@src.test>"))!, /^250/);
    assert.match((await c.cmd(`RCPT TO:<${to}>`))!, /^250/);
    assert.match((await c.cmd("DATA"))!, /^354/);
    assert.match((await c.cmd("Subject: s\r\n\r\nbody\r\n."))!, /^250 OK ids=/);
  };
  for (let i = 0; i < 30; i++) await send(`u${i}@two.test`);
  for (let i = 0; i < 3; i++) await send(`u${i}@one.test`);
  const got = await sink.waitFor(33, 30_000);
  const count = (rcptDomain: string, addr: string, ehlo: string) =>
    got.filter((m) =>
      m.rcptTo[0].endsWith(`@${rcptDomain}`) && m.remoteAddress === addr && m.ehlo === ehlo
    ).length;
  assert.equal(count("two.test", "127.0.0.12", "mta2.examplecorp.com"), 20);
  assert.equal(count("two.test", "127.0.0.13", "mta3.examplecorp.com"), 10);
  assert.equal(count("two.test", "127.0.0.11", "mta1.examplecorp.com"), 0);
  assert.equal(count("one.test", "127.0.0.11", "mta1.examplecorp.com"), 3);
  await c.cmd("QUIT");
  assert.equal(await kumo.stop(), 0);
  await Deno.remove(dir, { recursive: true });
});

async function startupError(files: Record<string, string>, setup: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-sources-bad-" });
  for (const [n, t] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${n}`, t);
  await Deno.writeTextFile(
    `${dir}/init.lua`,
    basePolicy(dir, "", "", setup.replaceAll("$DIR", dir)),
  );
  const stderr = await policyStartupError(dir);
  assert.doesNotMatch(stderr, /initialization complete/);
  return stderr;
}

Deno.test("sources helper: a TOML syntax error stops start-up naming file, line and key", async () => {
  const err = await startupError(
    { "sources.toml": '[source."ip-1"]\nsource_address = "127.0.0.11\nehlo_domain = "x.test"\n' },
    "local sources = require 'policy-extras.sources'\nsources:setup { '$DIR/sources.toml' }",
  );
  assert.match(
    err,
    /Error: Error evaluating policy file "\$DIR\/init\.lua": \$DIR\/init\.lua:\d+: /,
  );
  assert.match(
    err,
    /cannot load "\$DIR\/sources\.toml": Cannot parse \$DIR\/sources\.toml at line 2, column \d+/,
  );
  assert.match(err, /2: {2}source_address = "127\.0\.0\.11/);
});

Deno.test("sources helper: unknown keys and bad values are rejected with the file and key", async () => {
  const setup =
    "local sources = require 'policy-extras.sources'\nsources:setup { '$DIR/sources.toml' }";
  let err = await startupError(
    { "sources.toml": '[source."ip-1"]\nsource_address = "127.0.0.11"\nehlo_domian = "x.test"\n' },
    setup,
  );
  assert.match(
    err,
    /invalid data in "\$DIR\/sources\.toml": SourcesHelperConfig: invalid value for field 'source'\nmap<string,EgressSource>: invalid value for key 'ip-1'\nEgressSource: unknown field 'ehlo_domian'/,
  );
  err = await startupError({ "sources.toml": '[sourcez."ip-1"]\nehlo_domain = "x.test"\n' }, setup);
  assert.match(err, /"\$DIR\/sources\.toml": SourcesHelperConfig: unknown field 'sourcez'/);
  err = await startupError(
    { "sources.toml": '[source."ip-1"]\nsource_address = "127.0.0.x"\n' },
    setup,
  );
  assert.match(
    err,
    /EgressSource: invalid value for field 'source_address'\ninvalid value: string "127\.0\.0\.x", expected an IP address/,
  );
  err = await startupError(
    { "sources.toml": '[pool."p"."ip-1"]\nweight = 1\nttl = "5m"\n' },
    setup,
  );
  assert.match(err, /PoolEntry: unknown field 'ttl'/);
  err = await startupError(
    { "sources.toml": "" },
    `${setup}\nsources:setup { '$DIR/sources.toml' }`,
  );
  assert.match(err, /sources module has already been configured/);
});

Deno.test("sources helper: an empty pool fails every message with 451 no sources available", async () => {
  await using dns = await startDnsServer({
    zones: { "dest.test": { MX: [{ pref: 10, host: "mx.dest.test" }] } },
  });
  await using h = await startHarness(`
local kumo = require 'kumo'
kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
kumo.on('init', function() end)
local sources = require 'policy-extras.sources'
sources:setup { { source = { ['ip-1'] = { ehlo_domain = 'one.test' } },
  pool = { parked = {}, live = { ['ip-1'] = {} } } } }
kumo.on('get_queue_config', function()
  return kumo.make_queue_config { egress_pool = 'parked', retry_interval = '1h' }
end)
`);
  const msg = await h.inject("a@src.test", "b@dest.test");
  const [tf] = await h.logs.waitFor("TransientFailure", 1);
  assert.equal(tf.id, msg.id);
  assert.equal(tf.response.code, 451);
  assert.equal(
    tf.response.content,
    "KumoMTA internal: no sources available for dest.test pool=`parked`",
  );
  assert.equal(h.logs.of("Delivery").length, 0);
  assert.equal(await h.spooled(), 1, "the message waits in its queue");
});

Deno.test("sources helper: --validate names pools that reference undefined sources", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-sources-validate-" });
  await Deno.writeTextFile(
    `${dir}/sources.toml`,
    `[source."ip-1"]\nehlo_domain = "one.test"\n\n[pool."p"."ip-1"]\n[pool."p"."ghost"]\nweight = 2\n`,
  );
  await Deno.writeTextFile(
    `${dir}/init.lua`,
    `local sources = require 'policy-extras.sources'
sources:setup { '${dir}/sources.toml' }
kumo.on('init', function() end)
`,
  );
  const out = await run(Deno.execPath(), [
    "run",
    "-A",
    new URL("../mod.ts", import.meta.url).pathname,
    "--validate",
    "--policy",
    `${dir}/init.lua`,
  ], 30_000);
  await Deno.remove(dir, { recursive: true });
  assert.equal(out.code, 1, out.stdout + out.stderr);
  assert.match(out.stdout, /^pool 'p' references source 'ghost' which is not defined$/m);
  assert.doesNotMatch(out.stdout, /source 'ip-1' which/);
});
