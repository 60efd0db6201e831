/**
 * policy-extras.sources through the real program: the operator guide's
 * sources.toml (IPs moved to 127.0.0.x) plus a JSON file adding a weight-0
 * entry, messages in over SMTP, delivered from the pool's sources to a
 * loopback sink in the 2:1 ratio; bad files stop start-up with exit 1.
 */
import assert from "node:assert/strict";
import { basePolicy, RawSmtp, startKumo } from "./support/kumo_process.ts";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import { policyStartupError } from "./support/policy_startup_error.ts";

// The operator guide's file, verbatim except 10.0.0.x → 127.0.0.1x.
const SEED_SOURCES_TOML = `[source."ip-1"]
source_address = "127.0.0.11"
ehlo_domain = 'mta1.examplecorp.com'

[source."ip-2"]
source_address = "127.0.0.12"
ehlo_domain = 'mta2.examplecorp.com'

[source."ip-3"]
source_address = "127.0.0.13"
ehlo_domain = 'mta3.examplecorp.com'

# Pool containing just ip-1, which has weight=1
[pool."pool-1"]
[pool."pool-1"."ip-1"]

# Pool with multiple ips
[pool."pool-2"]

[pool."pool-2"."ip-2"]
weight = 2

# We're warming up ip-3, so use it less frequently than ip-2
[pool."pool-2"."ip-3"]
weight = 1
`;

// A second file, JSON with a comment: pool-2 gains ip-1 with weight 0.
const EXTRA_JSON = `{
  // parked: never chosen
  "pool": { "pool-2": { "ip-1": { "weight": 0 } } }
}`;

Deno.test("sources helper: seed TOML + JSON, weights 2:1 and 0 seen at the sink", async () => {
  await using dns = await startDnsServer({
    zones: {
      "two.test": { MX: [{ pref: 10, host: "mx.sink.test" }] },
      "one.test": { MX: [{ pref: 10, host: "mx.sink.test" }] },
      "mx.sink.test": { A: ["127.0.0.5"] },
    },
  });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.5"] });
  const dir = await Deno.makeTempDir({ prefix: "kumo-sources-" });
  await Deno.writeTextFile(`${dir}/sources.toml`, SEED_SOURCES_TOML);
  await Deno.writeTextFile(`${dir}/extra.json`, EXTRA_JSON);
  const policy = basePolicy(
    dir,
    "",
    `kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }`,
    `
local sources = require 'policy-extras.sources'
sources:setup { '${dir}/sources.toml', '${dir}/extra.json' }
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
