import assert from "node:assert/strict";
import { startDnsServer } from "../../../tests/support/dns_server.ts";
import { loadPolicy } from "../../../tests/support/policy_engine.ts";

Deno.test("kumo.dns.lookup_mx() returns every field, integer by_pref keys, raises on NXDOMAIN, honours a named resolver", async () => {
  await using main = await startDnsServer({
    zones: {
      "multi.test": {
        MX: [{ pref: 10, host: "mx1.multi.test" }, { pref: 20, host: "MX2.multi.test" }, {
          pref: 10,
          host: "mx0.multi.test",
        }],
      },
      "plain.test": { A: ["127.0.0.5"] },
    },
  });
  await using other = await startDnsServer({
    zones: { "multi.test": { MX: [{ pref: 5, host: "elsewhere.other.test" }] } },
  });
  using p = await loadPolicy(`
local kumo = require 'kumo'
kumo.dns.configure_resolver { name_servers = { '${main.address}' } }
kumo.dns.define_resolver('other', { name_servers = { '${other.address}' } })
kumo.on('probe', function(domain, resolver)
  local ok, mx = pcall(kumo.dns.lookup_mx, domain, resolver)
  if not ok then return { error = tostring(mx) } end
  local key_types = {}
  for k, _ in pairs(mx.by_pref) do table.insert(key_types, math.type(k)) end
  return {
    domain_name = mx.domain_name, hosts = mx.hosts, site_name = mx.site_name,
    pref10 = mx.by_pref[10], pref20 = mx.by_pref[20], pref5 = mx.by_pref[5],
    key_types = key_types, is_domain_literal = mx.is_domain_literal,
    is_secure = mx.is_secure, is_mx = mx.is_mx, has_mta_sts = mx.mta_sts ~= nil,
  }
end)
`);
  const probe = (domain: string, resolver?: string) =>
    p.engine.callOrThrow("probe", "ss", [domain, resolver ?? null]) as Promise<
      Record<string, unknown>
    >;

  const r = await probe("multi.test");
  assert.equal(r.domain_name, "multi.test.");
  assert.deepEqual(r.hosts, ["mx0.multi.test.", "mx1.multi.test.", "mx2.multi.test."]);
  assert.equal(r.site_name, "(mx0|mx1|mx2).multi.test");
  assert.deepEqual(r.pref10, ["mx0.multi.test.", "mx1.multi.test."]);
  assert.deepEqual(r.pref20, ["mx2.multi.test."]);
  assert.deepEqual(r.key_types, ["integer", "integer"]);
  assert.equal(r.is_domain_literal, false);
  assert.equal(r.is_secure, false);
  assert.equal(r.is_mx, true);
  assert.equal(r.has_mta_sts, false);

  const implicit = await probe("plain.test");
  assert.equal(implicit.is_mx, false);
  assert.deepEqual(implicit.hosts, ["plain.test."]);

  const nx = await probe("missing.test");
  assert.match(String(nx.error), /NXDOMAIN/);

  const named = await probe("multi.test", "other");
  assert.deepEqual(named.hosts, ["elsewhere.other.test."]);
  assert.deepEqual(named.pref5, ["elsewhere.other.test."]);
  assert.ok(other.queries.some((q) => q.name.startsWith("multi.test") && q.type === "MX"));

  const undef = await probe("multi.test", "nope");
  assert.match(String(undef.error), /Cannot use resolver "nope": it was not defined/);
});
