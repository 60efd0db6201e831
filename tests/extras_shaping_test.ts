/**
 * policy-extras.shaping: precedence of default < provider < provider source
 * < site < domain < site source < domain source, the bundled default file,
 * load errors naming file and key, automation-rule validation — through the
 * policy engine in-process — and the effective egress path observed at a
 * loopback sink through the real program (EHLO name, deliveries per
 * connection).
 */
import assert from "node:assert/strict";
import { PolicyEngine } from "../src/policy/engine.ts";
import { buildCatalogue } from "../src/policy/catalogue.ts";
import { newServerConfig } from "../src/policy/server_config.ts";
import { offlineResolver } from "./support/offline_resolver.ts";
import { isConfigObject } from "../src/policy/config_object.ts";
import { type DnsServer, startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import { basePolicy, run, startKumo } from "./support/kumo_process.ts";

const ZONES = {
  "rolled.test": { MX: [{ pref: 10, host: "mx1.bigmx.test" }] },
  "routed.test": { MX: [{ pref: 10, host: "mx2.bigmx.test" }] },
  "other.test": { MX: [{ pref: 10, host: "mx.other.test" }] },
  "suffix.test": { MX: [{ pref: 10, host: "mx.other.test" }] },
};

const SHAPING = `
["default"]
connection_limit = 1
max_deliveries_per_connection = 1
ehlo_domain = "default.test"

[provider."big"]
match = [{ MXSuffix = ".bigmx.test" }]
max_deliveries_per_connection = 2
provider_connection_limit = 7
ehlo_domain = "provider.test"

[provider."big".sources."s1"]
max_deliveries_per_connection = 3
provider_source_selection_rate = "5/s"

[provider."bysuffix"]
match = [{ DomainSuffix = "suffix.test" }]
max_deliveries_per_connection = 9

["rolled.test"]
max_deliveries_per_connection = 4
connection_limit = 4

["routed.test"]
mx_rollup = false
max_deliveries_per_connection = 5

["rolled.test".sources."s1"]
max_deliveries_per_connection = 6

["routed.test".sources."s1"]
max_deliveries_per_connection = 7

[["rolled.test".automation]]
regex = "421 .*try again later"
action = [{ SetConfig = { name = "connection_limit", value = 1 } }, "Suspend"]
trigger = { Threshold = "3/hr" }
duration = "1 hour"
`;

async function loadEngine(
  dns: DnsServer,
  setup: string,
  files: Record<string, string>,
): Promise<{ engine: PolicyEngine; dir: string; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-extras-shaping-" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  const policy = `
local kumo = require 'kumo'
kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
local shaping = require 'policy-extras.shaping'
${setup.replaceAll("$DIR", dir)}
kumo.on('path', function(domain, source, site_of)
  local site = kumo.dns.lookup_mx(site_of or domain).site_name
  return kumo.invoke_get_egress_path_config(domain, source, site)
end)
`;
  await Deno.writeTextFile(`${dir}/init.lua`, policy);
  const cfg = newServerConfig();
  // deno-lint-ignore prefer-const
  let engine: PolicyEngine | undefined;
  engine = await PolicyEngine.load({
    policyPath: `${dir}/init.lua`,
    version: "test",
    catalogue: buildCatalogue(() => engine, cfg, offlineResolver()),
  });
  const e = engine;
  return {
    engine: e,
    dir,
    async [Symbol.asyncDispose]() {
      e.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

type View = Record<string, unknown>;

Deno.test("shaping: precedence default < provider < provider source < site < domain < site source < domain source", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using t = await loadEngine(
    dns,
    `kumo.on('get_egress_path_config', shaping:setup { '$DIR/shaping.toml' })`,
    { "shaping.toml": SHAPING },
  );
  const path = async (d: string, s: string, siteOf?: string) =>
    await t.engine.callOrThrow("path", "sss", [d, s, siteOf ?? null]) as View;
  // every layer: routed.test (provider big via MX) with rolled.test's site, source s1
  assert.equal((await path("routed.test", "s1", "rolled.test")).max_deliveries_per_connection, 7);
  assert.equal((await path("routed.test", "s2", "rolled.test")).max_deliveries_per_connection, 5);
  assert.equal((await path("rolled.test", "s1")).max_deliveries_per_connection, 6);
  assert.equal((await path("rolled.test", "s2")).max_deliveries_per_connection, 4);
  const ps = await path("routed.test", "s1");
  assert.equal(ps.max_deliveries_per_connection, 7);
  const p = await path("routed.test", "s2", "other.test");
  assert.equal(p.max_deliveries_per_connection, 5);
  assert.equal(p.ehlo_domain, "provider.test");
  assert.equal(p.provider_name, "big");
  assert.equal(p.connection_limit, 1);
  assert.deepEqual(p.additional_connection_limits, { "shaping-provider-big-s2-limit": 7 });
  assert.equal(p.refresh_strategy, "Epoch");
  const r = await path("rolled.test", "s1");
  assert.equal(r.connection_limit, 4);
  assert.deepEqual(r.additional_source_selection_rates, {
    "shaping-provider-big-s1-selection-rate": "5/s",
  });
  const o = await path("other.test", "s1");
  assert.equal(o.max_deliveries_per_connection, 1);
  assert.equal(o.ehlo_domain, "default.test");
  assert.equal(o.provider_name, undefined);
  assert.equal((await path("suffix.test", "s1")).max_deliveries_per_connection, 9);
  // the bundled default file is loaded first: its keys show through
  assert.equal(o.data_timeout, "30s");
  assert.equal(o.remember_broken_tls, "3days");
});

Deno.test("shaping: no_default_files leaves only the given files; setup twice is refused", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using t = await loadEngine(
    dns,
    `local s = shaping:setup_with_automation { extra_files = { '$DIR/shaping.toml' }, no_default_files = true }
     kumo.on('get_egress_path_config', s.get_egress_path_config)
     kumo.on('twice', function() return select(2, pcall(shaping.setup, shaping, {})) end)
     kumo.on('sources', function() return s.load_shaping_data():get_referenced_sources() end)`,
    { "shaping.toml": SHAPING },
  );
  const o = await t.engine.callOrThrow("path", "sss", ["other.test", "s1", null]) as View;
  assert.equal(o.data_timeout, "5m");
  assert.equal(o.max_deliveries_per_connection, 1);
  assert.match(
    await t.engine.callOrThrow("twice", "", []) as string,
    /shaping module has already been configured/,
  );
  assert.deepEqual(await t.engine.callOrThrow("sources", "", []), ["s1"]);
});

Deno.test("shaping: bad data fails every lookup with the file and the key named", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  const cases: [string, RegExp][] = [
    [
      `["lab.test"]\nmx_rollup = false\nbogus_key = 1\n`,
      /shaping\.toml.*interpreting domain 'lab\.test' params .* as EgressPathConfig: .*unknown field `bogus_key`/,
    ],
    [
      `["ok.test"]\nmx_rollup = false\nconnection_limit = 1\n["bad.test"\nx = 1\n`,
      /Cannot parse shaping file ".*shaping\.toml" at line 4, column \d+: /,
    ],
    [
      `[provider."p"]\nmatch = [{ MXSuffix = ".x.test" }]\nprovider_connection_limit = "lots"\n`,
      /shaping\.toml.*provider 'p'.*provider_connection_limit/,
    ],
    [
      `[["default".automation]]\nregex = "x"\naction = "Explode"\nduration = "1h"\n`,
      /shaping\.toml.*automation\[0\]: unknown action "Explode"/,
    ],
    [
      `[["default".automation]]\nregex = "x"\naction = { SetConfig = { name = "connection_limit", value = "many" } }\nduration = "1h"\n`,
      /shaping\.toml.*SetConfig.*many/,
    ],
    [`[["default".automation]]\nregex = "x"\naction = "Suspend"\n`, /missing field `duration`/],
  ];
  for (const [toml, re] of cases) {
    await using t = await loadEngine(
      dns,
      `kumo.on('get_egress_path_config', shaping:setup({ '$DIR/shaping.toml' }, { no_default_files = true }))`,
      { "shaping.toml": toml },
    );
    const r = await t.engine.call("get_egress_path_config", "sss", ["any.test", "s", "site"]);
    assert.equal(r.kind, "error", toml);
    assert.match((r as { message: string }).message, re);
  }
});

Deno.test("shaping: a missing file is logged, not fatal; DNS failures drop only that block", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using t = await loadEngine(
    dns,
    `local s = shaping:setup_with_automation { extra_files = { '$DIR/missing.toml', '$DIR/shaping.toml' }, no_default_files = true }
     kumo.on('get_egress_path_config', s.get_egress_path_config)
     kumo.on('errors', function() return s.load_shaping_data():get_errors() end)`,
    {
      "shaping.toml":
        `["default"]\nconnection_limit = 3\n["nxdomain.test"]\nconnection_limit = 9\n`,
    },
  );
  const cfg = await t.engine.callOrThrow("get_egress_path_config", "sss", ["x.test", "s", "x"]);
  assert.ok(isConfigObject(cfg));
  assert.equal(cfg.view.connection_limit, 3);
  const errors = await t.engine.callOrThrow("errors", "", []) as string[];
  assert.equal(errors.length, 1);
  assert.match(errors[0], /Cannot read shaping file ".*missing\.toml"/);
});

Deno.test("shaping: --validate reports load problems", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  const dir = await Deno.makeTempDir({ prefix: "kumo-extras-shaping-validate-" });
  await Deno.writeTextFile(`${dir}/shaping.toml`, `["nxdomain.test"]\nconnection_limit = 9\n`);
  await Deno.writeTextFile(
    `${dir}/init.lua`,
    `local kumo = require 'kumo'
kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
local shaping = require 'policy-extras.shaping'
kumo.on('get_egress_path_config', shaping:setup({ '${dir}/shaping.toml', '${dir}/absent.toml' }))
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
  assert.match(out.stdout, /shaping error: Cannot read shaping file ".*absent\.toml"/);
  assert.match(out.stdout, /shaping warning: MX lookup for domain 'nxdomain\.test' failed/);
});

Deno.test("real program: shaped egress path seen at the sink (EHLO name, deliveries per connection)", async () => {
  await using dns = await startDnsServer({
    zones: {
      "dest.test": { MX: [{ pref: 10, host: "mx.dest.test" }] },
      "mx.dest.test": { A: ["127.0.0.2"] },
      "plain.test": { MX: [{ pref: 10, host: "mx.plain.test" }] },
      "mx.plain.test": { A: ["127.0.0.3"] },
    },
  });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2", "127.0.0.3"] });
  const dir = await Deno.makeTempDir({ prefix: "kumo-extras-shaping-e2e-" });
  await Deno.writeTextFile(
    `${dir}/shaping.toml`,
    `["default"]
prohibited_hosts = []
enable_tls = "Disabled"
smtp_port = ${sink.port}
connection_limit = 1
ehlo_domain = "default.test"

["dest.test"]
ehlo_domain = "dest-site.test"
max_deliveries_per_connection = 2
`,
  );
  const policy = basePolicy(
    dir,
    "",
    "",
    `
kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
local shaping = require 'policy-extras.shaping'
kumo.on('get_egress_path_config', shaping:setup { '${dir}/shaping.toml' })
kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1s' } end)
`,
  );
  const kumo = await startKumo(dir, policy);
  try {
    const py = await run("python3", [
      "-c",
      `import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)
for i in range(4):
    s.sendmail('a@src.test', ['u%d@dest.test' % i], 'Subject: %d\\r\\n\\r\\nbody\\r\\n' % i)
s.sendmail('a@src.test', ['p@plain.test'], 'Subject: p\\r\\n\\r\\nbody\\r\\n')
s.quit()`,
      String(kumo.port),
    ]);
    assert.equal(py.code, 0, py.stderr);
    const got = await sink.waitFor(5, 15_000);
    const dest = got.filter((m) => m.rcptTo[0].endsWith("@dest.test"));
    const plain = got.filter((m) => m.rcptTo[0].endsWith("@plain.test"));
    assert.equal(dest.length, 4);
    assert.ok(
      dest.every((m) => m.ehlo === "dest-site.test"),
      JSON.stringify(dest.map((m) => m.ehlo)),
    );
    assert.equal(plain[0].ehlo, "default.test");
    const perConn = new Map<number, number>();
    for (const m of dest) perConn.set(m.connectionId, (perConn.get(m.connectionId) ?? 0) + 1);
    assert.ok([...perConn.values()].every((n) => n <= 2), JSON.stringify([...perConn]));
  } finally {
    assert.equal(await kumo.stop(), 0, kumo.stderr());
  }
  await Deno.remove(dir, { recursive: true });
});

const MORE_ZONES = {
  ...ZONES,
  "a.shared.test": { MX: [{ pref: 10, host: "mx.shared.test" }] },
  "b.shared.test": { MX: [{ pref: 10, host: "mx.shared.test" }] },
  "nullmx.test": { MX: [{ pref: 0, host: "." }] },
  "hostname.test": { MX: [{ pref: 10, host: "mx.exact.test" }] },
  "hostname2.test": { MX: [{ pref: 10, host: "mx2.exact.test" }] },
  "mixed.test": {
    MX: [{ pref: 10, host: "mx1.bigmx.test" }, { pref: 20, host: "mx.other.test" }],
  },
  "allbig.test": {
    MX: [{ pref: 10, host: "mx1.bigmx.test" }, { pref: 20, host: "mx3.bigmx.test" }],
  },
  "gmail.test": {
    MX: [{ pref: 5, host: "gmail-smtp-in.l.google.com" }, {
      pref: 10,
      host: "alt1.gmail-smtp-in.l.google.com",
    }],
  },
  "yahoo.test": { MX: [{ pref: 1, host: "mta5.am0.yahoodns.net" }] },
  "apple.test": { MX: [{ pref: 10, host: "mx01.mail.icloud.com" }] },
  "orange.test": { MX: [{ pref: 10, host: "smtp-in.orange.fr" }] },
  "mimecast.test": { MX: [{ pref: 10, host: "za-smtp-inbound-1.mimecast.co.za" }] },
};

const ONLY_FILES = (files: string[], extra = "") =>
  `local s = shaping:setup_with_automation { extra_files = { ${
    files.map((f) => `'$DIR/${f}'`).join(", ")
  } }, no_default_files = true, ${extra} }
   kumo.on('get_egress_path_config', s.get_egress_path_config)
   kumo.on('warnings', function() return s.load_shaping_data():get_warnings() end)`;

Deno.test("shaping: two domain blocks on one MX site merge into the site block, with an aliased_site warning", async () => {
  await using dns = await startDnsServer({ zones: MORE_ZONES });
  await using t = await loadEngine(
    dns,
    ONLY_FILES(["shaping.toml"], `load_validation_options = { aliased_site = 'Warn' }`),
    {
      "shaping.toml": `["a.shared.test"]
connection_limit = 2
max_deliveries_per_connection = 3

["a.shared.test".sources."s1"]
idle_timeout = "7s"

["b.shared.test"]
connection_limit = 4

["b.shared.test".sources."s1"]
data_timeout = "8s"
`,
    },
  );
  for (const d of ["a.shared.test", "b.shared.test"]) {
    // before the fix every lookup failed: "Cannot read properties of undefined (reading 'push')"
    const v = await t.engine.callOrThrow("path", "sss", [d, "s1", null]) as View;
    assert.equal(v.connection_limit, 4, d); // the later block wins key by key
    assert.equal(v.max_deliveries_per_connection, 3, d);
    assert.equal(v.idle_timeout, "7s", d);
    assert.equal(v.data_timeout, "8s", d);
  }
  const warnings = await t.engine.callOrThrow("warnings", "", []) as string[];
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.match(
    warnings[0],
    /^domains 'a\.shared\.test', 'b\.shared\.test' share MX site 'mx\.shared\.test'; their blocks are merged$/,
  );
});

Deno.test("shaping: a site source block beats the domain block; additional_* maps merge across layers; files merge key by key", async () => {
  await using dns = await startDnsServer({ zones: MORE_ZONES });
  await using t = await loadEngine(dns, ONLY_FILES(["shaping.toml", "more.toml"]), {
    "shaping.toml": SHAPING,
    "more.toml": `["routed.test"]
mx_rollup = false
idle_timeout = "5s"

["plainrouted.test"]
mx_rollup = false
max_deliveries_per_connection = 5
additional_connection_limits = { "domain-extra" = 2 }

["rolled.test"]
additional_connection_limits = { "site-extra" = 3 }
`,
  });
  const path = async (d: string, s: string, siteOf?: string) =>
    await t.engine.callOrThrow("path", "sss", [d, s, siteOf ?? null]) as View;
  // step 6 (site source) overlays step 5 (domain block): 6, not the domain's 5
  const ps = await path("plainrouted.test", "s1", "rolled.test");
  assert.equal(ps.max_deliveries_per_connection, 6);
  assert.deepEqual(ps.additional_connection_limits, { "site-extra": 3, "domain-extra": 2 });
  assert.equal(
    (await path("plainrouted.test", "s2", "rolled.test")).max_deliveries_per_connection,
    5,
  );
  // provider implied limit + site map: merged entry by entry
  const r = await path("routed.test", "s1", "rolled.test");
  assert.deepEqual(r.additional_connection_limits, {
    "shaping-provider-big-s1-limit": 7,
    "site-extra": 3,
  });
  // routed.test from both files: the second file adds a key, the first file's keys stay
  assert.equal(r.idle_timeout, "5s");
  assert.equal(r.max_deliveries_per_connection, 7);
  assert.equal((await path("routed.test", "s2", "other.test")).max_deliveries_per_connection, 5);
});

Deno.test("shaping: replace_base discards earlier files' block; provider blocks of one name merge match lists", async () => {
  await using dns = await startDnsServer({ zones: MORE_ZONES });
  await using t = await loadEngine(dns, ONLY_FILES(["one.toml", "two.toml"]), {
    "one.toml": `["default"]
max_deliveries_per_connection = 1

["lab.test"]
mx_rollup = false
max_deliveries_per_connection = 5
connection_limit = 3

["lab.test".sources."s1"]
max_deliveries_per_connection = 7

[provider."p"]
match = [{ DomainSuffix = "one.test" }]
max_deliveries_per_connection = 11
`,
    "two.toml": `["lab.test"]
mx_rollup = false
replace_base = true
connection_limit = 8

[provider."p"]
match = [{ DomainSuffix = "two.test" }]
connection_limit = 12
`,
  });
  const path = async (d: string, s: string) =>
    await t.engine.callOrThrow("path", "sss", [d, s, "other.test"]) as View;
  const lab = await path("lab.test", "s1");
  assert.equal(lab.connection_limit, 8);
  assert.equal(lab.max_deliveries_per_connection, 1, "file one's block and source block are gone");
  for (const d of ["x.one.test", "x.two.test"]) {
    const v = await path(d, "s1");
    assert.equal(v.provider_name, "p", d);
    assert.equal(v.max_deliveries_per_connection, 11, d);
    assert.equal(v.connection_limit, 12, d);
  }
});

Deno.test("shaping: NULL MX blocks are dropped, HostName rules, every MX must match, no providers for [ip] routes", async () => {
  await using dns = await startDnsServer({ zones: MORE_ZONES });
  await using t = await loadEngine(
    dns,
    ONLY_FILES(["shaping.toml"], `load_validation_options = { null_mx = 'Warn' }`),
    {
      "shaping.toml": `["default"]
connection_limit = 1

["nullmx.test"]
connection_limit = 9

["[127.0.0.1]"]
mx_rollup = false
smtp_port = 2626

[provider."exact"]
match = [{ HostName = "mx.exact.test" }]
connection_limit = 21

[provider."big"]
match = [{ MXSuffix = ".bigmx.test" }]
connection_limit = 22

[provider."iplit"]
match = [{ DomainSuffix = "0.1]" }]
connection_limit = 23
`,
    },
  );
  const path = async (d: string, siteOf?: string) =>
    await t.engine.callOrThrow("path", "sss", [d, "s1", siteOf ?? null]) as View;
  const hn = await path("hostname.test");
  assert.equal(hn.provider_name, "exact");
  assert.equal(hn.connection_limit, 21);
  const hn2 = await path("hostname2.test");
  assert.equal(hn2.provider_name, undefined, "HostName is an exact host, not a suffix");
  assert.equal(hn2.connection_limit, 1);
  const mixed = await path("mixed.test");
  assert.equal(mixed.provider_name, undefined, "one MX host outside .bigmx.test");
  assert.equal(mixed.connection_limit, 1);
  const all = await path("allbig.test");
  assert.equal(all.provider_name, "big");
  assert.equal(all.connection_limit, 22);
  const ip = await path("[127.0.0.1]", "other.test");
  assert.equal(ip.provider_name, undefined, "providers are skipped for an IP literal");
  assert.equal(ip.connection_limit, 1);
  assert.equal(ip.smtp_port, 2626);
  const nm = await path("nullmx.test", "other.test");
  assert.equal(nm.connection_limit, 1, "a NULL MX block has no site to apply to");
  const warnings = await t.engine.callOrThrow("warnings", "", []) as string[];
  assert.deepEqual(warnings, [
    "domain 'nullmx.test' has a NULL MX; its shaping block is ignored",
  ]);
});

Deno.test("shaping: the bundled file's providers apply by MX host", async () => {
  await using dns = await startDnsServer({ zones: MORE_ZONES });
  await using t = await loadEngine(
    dns,
    `kumo.on('get_egress_path_config', shaping:setup {})`,
    {},
  );
  const path = async (d: string, s = "s1", siteOf?: string) =>
    await t.engine.callOrThrow("path", "sss", [d, s, siteOf ?? null]) as View;
  const g = await path("gmail.test");
  assert.equal(g.provider_name, "google");
  assert.equal(g.enable_tls, "Required");
  assert.equal(g.max_deliveries_per_connection, 50);
  assert.equal(g.consecutive_connection_failures_before_delay, 5);
  assert.deepEqual(g.additional_connection_limits, { "shaping-provider-google-s1-limit": 5 });
  const y = await path("yahoo.test");
  assert.equal(y.provider_name, "yahoo");
  assert.equal(y.max_deliveries_per_connection, 20);
  assert.equal(y.enable_tls, "Opportunistic");
  const a = await path("apple.test");
  assert.equal(a.provider_name, "apple");
  assert.equal(a.max_deliveries_per_connection, 5);
  assert.deepEqual(a.additional_connection_limits, { "shaping-provider-apple-s1-limit": 10 });
  const o = await path("orange.test");
  assert.equal(o.provider_name, "orange");
  assert.equal(o.enable_tls, "Required");
  assert.deepEqual(o.additional_connection_limits, { "shaping-provider-orange-s1-limit": 2 });
  const m = await path("mimecast.test");
  assert.equal(m.provider_name, "mimecast");
  assert.equal(m.connection_limit, 10);
  assert.equal(m.max_deliveries_per_connection, 100);
  // the bundled mx_rollup=false entry for example.com and its source block
  const ex = await path("example.com", "my source name", "other.test");
  assert.equal(ex.connection_limit, 5);
  assert.equal(ex.max_deliveries_per_connection, 100);
  assert.equal((await path("example.com", "s1", "other.test")).connection_limit, 3);
  const plain = await path("other.test");
  assert.equal(plain.provider_name, undefined);
  assert.equal(plain.connection_limit, 10);
  assert.equal(plain.max_message_rate, "100/s");
});

Deno.test("shaping: --validate names sources missing from the sources helper and provider overlaps", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  const dir = await Deno.makeTempDir({ prefix: "kumo-extras-shaping-validate2-" });
  await Deno.writeTextFile(
    `${dir}/shaping.toml`,
    `["rolled.test"]
connection_limit = 2

["rolled.test".sources."known"]
connection_limit = 3

["lab.test"]
mx_rollup = false

["lab.test".sources."ghost"]
connection_limit = 4

[provider."big"]
match = [{ MXSuffix = ".bigmx.test" }]
`,
  );
  await Deno.writeTextFile(
    `${dir}/sources.toml`,
    `[source."known"]\n[pool."p"]\n[pool."p"."known"]\n`,
  );
  await Deno.writeTextFile(
    `${dir}/init.lua`,
    `local kumo = require 'kumo'
kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
local shaping = require 'policy-extras.shaping'
local sources = require 'policy-extras.sources'
kumo.on('get_egress_path_config', shaping:setup { '${dir}/shaping.toml' })
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
  assert.match(
    out.stdout,
    /shaping error: source 'ghost' is named in the shaping data but is not defined by the sources helper/,
  );
  assert.doesNotMatch(out.stdout, /source 'known' is named/);
  // the bundled default file's sample source is not the operator's concern
  assert.doesNotMatch(out.stdout, /source 'my source name'/);
  assert.match(
    out.stdout,
    /shaping warning: domain 'rolled\.test' is also matched by provider 'big'/,
  );
});
