/**
 * Egress sources, pools and routing (queues-and-delivery §2, §4; examples
 * §8): an IPv6 source address over ::1, ttl caching of get_egress_pool /
 * get_egress_source, the empty pool, and `mx_list` routes (site name
 * `mx_list:<entries>` passed to get_egress_path_config, ready queue
 * `<source>->mx_list:…@smtp_client`, list order). Real policy engine,
 * spools, the test's DNS server and SMTP sinks on loopback. The policy
 * counts its own event calls by appending to a file (kumo.fs.open), since
 * Lua globals are per context.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import { startHarness } from "./support/queue_harness.ts";

/**
 * A policy whose pool/source/path handlers note each call in `<dir>/calls`
 * (`pool <name>`, `source <name>`, `path <domain>|<source>|<site>`).
 * `pools`/`sources`/`queues` are Lua table bodies keyed by name/domain.
 */
function policy(opts: {
  dns: string;
  dir: string;
  port: number;
  pools?: string;
  sources?: string;
  queues?: string;
}): string {
  return `
local kumo = require 'kumo'
kumo.dns.configure_resolver { name_servers = { '${opts.dns}' } }
kumo.on('init', function() end)
local function note(line)
  local f = kumo.fs.open('${opts.dir}/calls', 'a')
  f:write(line .. '\\n')
  f:close()
end
local POOLS = { ${opts.pools ?? ""} }
local SOURCES = { ${opts.sources ?? ""} }
local QUEUES = { ${opts.queues ?? ""} }
kumo.on('get_egress_pool', function(name)
  note('pool ' .. name)
  local p = POOLS[name]
  return kumo.make_egress_pool { name = name, entries = p.entries, ttl = p.ttl }
end)
kumo.on('get_egress_source', function(name)
  note('source ' .. name)
  local s = { name = name }
  for k, v in pairs(SOURCES[name] or {}) do s[k] = v end
  return kumo.make_egress_source(s)
end)
kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
  local q = { retry_interval = '1s' }
  for k, v in pairs(QUEUES[domain] or {}) do q[k] = v end
  return kumo.make_queue_config(q)
end)
kumo.on('get_egress_path_config', function(domain, source, site)
  note('path ' .. domain .. '|' .. source .. '|' .. site)
  return kumo.make_egress_path {
    smtp_port = ${opts.port}, prohibited_hosts = {}, enable_tls = 'Disabled',
    connect_timeout = '2s',
  }
end)
`;
}

/** The noted calls so far. */
function calls(dir: string): string[] {
  try {
    return Deno.readTextFileSync(`${dir}/calls`).split("\n").filter((l) => l !== "");
  } catch {
    return [];
  }
}
const count = (dir: string, line: string) => calls(dir).filter((l) => l === line).length;

Deno.test("an IPv6 source_address delivers over ::1 to an AAAA-only MX", async () => {
  await using dns = await startDnsServer({
    zones: {
      "v6.test": { MX: [{ pref: 10, host: "mx.v6.test" }] },
      "mx.v6.test": { AAAA: ["::1"] },
    },
  });
  await using sink = await startSmtpSink({ addresses: ["::1"] });
  const dir = await Deno.makeTempDir({ prefix: "kumo-sources-" });
  await using h = await startHarness(
    policy({
      dns: dns.address,
      dir,
      port: sink.port,
      pools: "v6 = { entries = { { name = 'six' } } }",
      sources: "six = { source_address = '::1', ehlo_domain = 'six.out.test' }",
      queues: "['v6.test'] = { egress_pool = 'v6' }",
    }),
    dir,
  );
  await h.inject("s@src.test", "r@v6.test");
  const [d] = await h.logs.waitFor("Delivery", 1);
  const [m] = await sink.waitFor(1);
  assert.equal(m.localAddress, "::1");
  assert.equal(m.remoteAddress, "::1");
  assert.equal(m.ehlo, "six.out.test");
  assert.deepEqual(d.peer_address, { name: "mx.v6.test.", addr: "::1" });
  // A socket address as upstream prints it: IPv6 in brackets.
  assert.match(d.source_address!.address, /^\[::1\]:\d+$/);
  assert.equal(d.egress_source, "six");
  assert.equal(d.egress_pool, "v6");
  assert.equal(d.site, "six->mx.v6.test@smtp_client");
});

Deno.test("pools and sources are cached for their ttl", async () => {
  await using dns = await startDnsServer({
    zones: {
      "short.test": { MX: [{ pref: 10, host: "mx.short.test" }] },
      "mx.short.test": { A: ["127.0.0.2"] },
      "long.test": { MX: [{ pref: 10, host: "mx.long.test" }] },
      "mx.long.test": { A: ["127.0.0.2"] },
    },
  });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  const dir = await Deno.makeTempDir({ prefix: "kumo-sources-" });
  await using h = await startHarness(
    policy({
      dns: dns.address,
      dir,
      port: sink.port,
      pools: `short = { entries = { { name = 'fast' } }, ttl = '1s' },
              long = { entries = { { name = 'slow' } } }`,
      sources: "fast = { ttl = '1s' }, slow = {}",
      queues: `['short.test'] = { egress_pool = 'short' },
               ['long.test'] = { egress_pool = 'long' }`,
    }),
    dir,
  );
  const send = async (n: number) => {
    await h.inject("s@src.test", `r${n}@short.test`);
    await h.inject("s@src.test", `r${n}@long.test`);
    await h.logs.waitFor("Delivery", 2 * n);
  };
  await send(1);
  await send(2);
  const first = calls(dir);
  assert.equal(count(dir, "pool short"), 1, JSON.stringify(first));
  assert.equal(count(dir, "source fast"), 1, JSON.stringify(first));
  await new Promise((r) => setTimeout(r, 1300));
  await send(3);
  const all = calls(dir);
  // ttl 1 s: asked again after it ran out; default ttl (60 s): never again.
  assert.equal(count(dir, "pool short"), 2, JSON.stringify(all));
  assert.equal(count(dir, "source fast"), 2, JSON.stringify(all));
  assert.equal(count(dir, "pool long"), 1, JSON.stringify(all));
  assert.equal(count(dir, "source slow"), 1, JSON.stringify(all));
  assert.equal(sink.messages.length, 6);
});

Deno.test("an empty pool is 451 4.4.4 no sources available, retried", async () => {
  await using dns = await startDnsServer({
    zones: {
      "dest.test": { MX: [{ pref: 10, host: "mx.dest.test" }] },
      "mx.dest.test": { A: ["127.0.0.2"] },
    },
  });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  const dir = await Deno.makeTempDir({ prefix: "kumo-sources-" });
  await using h = await startHarness(
    policy({
      dns: dns.address,
      dir,
      port: sink.port,
      pools: "warm = { entries = {} }",
      queues: "['dest.test'] = { egress_pool = 'warm' }",
    }),
    dir,
  );
  const msg = await h.inject("s@src.test", "r@dest.test");
  const tfs = await h.logs.waitFor("TransientFailure", 2, 6000);
  for (const [i, tf] of tfs.slice(0, 2).entries()) {
    assert.equal(tf.id, msg.id);
    assert.equal(tf.num_attempts, i);
    assert.deepEqual(tf.response, {
      code: 451,
      enhanced_code: { class: 4, subject: 4, detail: 4 },
      content: "KumoMTA internal: no sources available for dest.test pool=`warm`",
      command: null,
    });
    assert.equal(tf.egress_pool, "warm");
  }
  assert.equal(sink.connections.length, 0);
  assert.equal(h.logs.of("Bounce").length, 0);
});

Deno.test("mx_list routes: site name, path config arguments, ready queue, list order", async (t) => {
  await using dns = await startDnsServer({
    zones: {
      "first.list.test": { A: ["127.0.0.9"] }, // nothing listens there
      "second.list.test": { A: ["127.0.0.3"] },
    },
  });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2", "127.0.0.3"] });
  const dir = await Deno.makeTempDir({ prefix: "kumo-sources-" });
  const literal = `[127.0.0.2]:${sink.port}`;
  await using h = await startHarness(
    policy({
      dns: dns.address,
      dir,
      port: sink.port,
      pools: "warm = { entries = { { name = 'mta-a' } } }",
      sources: "['mta-a'] = { ehlo_domain = 'a.test' }",
      queues: `['lit.test'] = { egress_pool = 'warm',
                 protocol = { smtp = { mx_list = { '${literal}' } } } },
               ['names.test'] = {
                 protocol = { smtp = { mx_list = { 'first.list.test', 'second.list.test' } } } }`,
    }),
    dir,
  );
  await t.step("a literal with port", async () => {
    await h.inject("s@src.test", "r@lit.test");
    const [d] = await h.logs.waitFor("Delivery", 1);
    const site = `mx_list:${literal}`;
    assert.equal(d.site, `mta-a->${site}@smtp_client`);
    assert.ok(h.qm.readyQueues().includes(`mta-a->${site}@smtp_client`), `${h.qm.readyQueues()}`);
    assert.ok(
      calls(dir).includes(`path lit.test|mta-a|${site}`),
      `get_egress_path_config calls: ${calls(dir)}`,
    );
    // The port was part of the route, so it is in peer_address.addr (logs §1.2).
    assert.equal(d.peer_address?.addr, `127.0.0.2:${sink.port}`);
    assert.equal(sink.messages[0].localAddress, "127.0.0.2");
    assert.equal(sink.messages[0].ehlo, "a.test");
    // No MX lookup for the routed domain.
    assert.ok(!dns.queries.some((q) => q.name === "lit.test"), JSON.stringify(dns.queries));
  });
  await t.step("host names, tried in list order", async () => {
    await h.inject("s@src.test", "r@names.test");
    const [, d] = await h.logs.waitFor("Delivery", 2);
    const site = "mx_list:first.list.test,second.list.test";
    assert.equal(d.site, `unspecified->${site}@smtp_client`);
    assert.ok(calls(dir).includes(`path names.test|unspecified|${site}`), `${calls(dir)}`);
    assert.equal(d.peer_address?.addr, "127.0.0.3");
    assert.match(d.peer_address?.name ?? "", /^second\.list\.test\.?$/);
    assert.equal(sink.messages[1].localAddress, "127.0.0.3");
    assert.equal(h.logs.of("TransientFailure").length, 0);
  });
});
