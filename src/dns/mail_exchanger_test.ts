/**
 * Unit tests for resolveMailExchanger(), resolveMxList() and the connection
 * plan (src/dns/mail_exchanger.ts), against the loopback test DNS server.
 * Place on the path: the DNS step between the ready queue and the SMTP client.
 */
import assert from "node:assert/strict";
import { startDnsServer, type Zones } from "../../tests/support/dns_server.ts";
import { DnsError, DnsNxDomainError, Resolver } from "./resolver.ts";
import {
  buildConnectionPlan,
  type ConnectionTarget,
  resolveMailExchanger,
  resolveMxList,
} from "./mail_exchanger.ts";

const ZONES: Zones = {
  "example.test": {
    MX: [
      { pref: 20, host: "backup.example.test" },
      { pref: 10, host: "mx2.mail.example.test" },
      { pref: 10, host: "mx1.mail.example.test" },
    ],
  },
  "mx1.mail.example.test": { A: ["127.0.0.11", "127.0.0.12"], AAAA: ["::1"] },
  "mx2.mail.example.test": { A: ["127.0.0.21"], AAAA: ["fd00::21"] },
  "backup.example.test": { A: ["127.0.0.31"] },
  "implicit.test": { A: ["127.0.0.41"], TXT: ["hello"] },
  "txtonly.test": { TXT: ["no mail here"] },
  "null.test": { MX: [{ pref: 0, host: "." }] },
  "halfbroken.test": {
    MX: [{ pref: 5, host: "gone.halfbroken.test" }, { pref: 5, host: "ok.halfbroken.test" }],
  },
  "ok.halfbroken.test": { A: ["127.0.0.51"] },
  "v6only.test": { AAAA: ["fd00::61"] },
  "relay.test": { A: ["127.0.0.71"], AAAA: ["fd00::71"] },
};

async function setup() {
  const dns = await startDnsServer({ zones: ZONES });
  const resolver = new Resolver({ nameServers: [{ ip: "127.0.0.1", port: dns.port }] });
  return { dns, resolver, [Symbol.asyncDispose]: () => dns.close() };
}

Deno.test("resolveMailExchanger() orders MX hosts and derives the site name", async () => {
  await using t = await setup();
  const mx = await resolveMailExchanger("Example.Test", t.resolver);
  assert.equal(mx.domainName, "example.test.");
  assert.deepEqual(mx.hosts, [
    "mx1.mail.example.test.",
    "mx2.mail.example.test.",
    "backup.example.test.",
  ]);
  assert.deepEqual([...mx.byPref], [
    [10, ["mx1.mail.example.test.", "mx2.mail.example.test."]],
    [20, ["backup.example.test."]],
  ]);
  assert.equal(mx.siteName, "(mx1|mx2)?.(mail|backup).example.test");
  assert.equal(mx.isMx, true);
  assert.equal(mx.isNullMx, false);
  assert.equal(mx.isDomainLiteral, false);
  assert.equal(mx.port, undefined);
});

Deno.test("resolveMailExchanger() site name follows §4.2 on real MX data", async () => {
  await using t = await setup();
  t.dns.setZone("site.test", {
    MX: [{ pref: 10, host: "mx2.mail.site.test" }, { pref: 10, host: "mx1.mail.site.test" }],
  });
  const mx = await resolveMailExchanger("site.test", t.resolver);
  assert.equal(mx.siteName, "(mx1|mx2).mail.site.test");
  const withPort = await resolveMailExchanger("site.test:2525", t.resolver);
  assert.equal(withPort.siteName, "(mx1|mx2).mail.site.test:2525");
  assert.equal(withPort.port, 2525);
  assert.deepEqual(withPort.hosts, mx.hosts);
});

Deno.test("resolveMailExchanger() uses the domain itself when it has no MX", async () => {
  await using t = await setup();
  const mx = await resolveMailExchanger("implicit.test", t.resolver);
  assert.deepEqual(mx.hosts, ["implicit.test."]);
  assert.deepEqual([...mx.byPref], [[1, ["implicit.test."]]]);
  assert.equal(mx.isMx, false);
  assert.equal(mx.siteName, "implicit.test");
  const plan = await buildConnectionPlan(mx, t.resolver);
  assert.deepEqual(plan, [{ name: "implicit.test.", addr: "127.0.0.41", port: 25 }]);
  // An existing domain without MX or addresses: implicit MX, then an empty plan (451 for the caller).
  const bare = await resolveMailExchanger("txtonly.test", t.resolver);
  assert.deepEqual(bare.hosts, ["txtonly.test."]);
  assert.deepEqual(await buildConnectionPlan(bare, t.resolver), []);
});

Deno.test("resolveMailExchanger() raises NXDOMAIN for an unknown domain", async () => {
  await using t = await setup();
  await assert.rejects(resolveMailExchanger("missing.test", t.resolver), DnsNxDomainError);
});

Deno.test("resolveMailExchanger() raises a non-NXDOMAIN error on SERVFAIL", async () => {
  await using t = await setup();
  t.dns.setServfail("example.test", true);
  await assert.rejects(resolveMailExchanger("example.test", t.resolver), (err: unknown) => {
    assert.ok(err instanceof DnsError && !(err instanceof DnsNxDomainError));
    return true;
  });
});

Deno.test("resolveMailExchanger() recognises a null MX", async () => {
  await using t = await setup();
  const mx = await resolveMailExchanger("null.test", t.resolver);
  assert.equal(mx.isNullMx, true);
  assert.deepEqual(mx.hosts, []);
  assert.equal(mx.siteName, "");
  assert.deepEqual(await buildConnectionPlan(mx, t.resolver), []);
});

Deno.test("resolveMailExchanger() takes address literals without DNS", async () => {
  await using t = await setup();
  const cases: [string, string, number | undefined, string][] = [
    ["[192.0.2.10]", "192.0.2.10", undefined, "192.0.2.10"],
    ["[192.0.2.10]:2525", "192.0.2.10", 2525, "192.0.2.10:2525"],
    ["[192.0.2.10:2525]", "192.0.2.10", 2525, "192.0.2.10:2525"],
    ["[IPv6:2001:db8::1]", "2001:db8::1", undefined, "2001:db8::1"],
    ["[ipv6:2001:DB8:0::1]:26", "2001:db8::1", 26, "[2001:db8::1]:26"],
    ["[2001:db8::1]", "2001:db8::1", undefined, "2001:db8::1"],
  ];
  for (const [input, ip, port, site] of cases) {
    const mx = await resolveMailExchanger(input, t.resolver);
    assert.equal(mx.isDomainLiteral, true, input);
    assert.deepEqual(mx.hosts, [ip], input);
    assert.equal(mx.port, port, input);
    assert.equal(mx.siteName, site, input);
    const plan = await buildConnectionPlan(mx, t.resolver, { port: 2500 });
    assert.deepEqual(plan, [{ name: ip, addr: ip, port: port ?? 2500 }], input);
  }
  assert.equal(t.dns.queries.length, 0);
});

Deno.test("resolveMailExchanger() rejects malformed literals and ports", async () => {
  await using t = await setup();
  for (
    const bad of [
      "[192.0.2.10:25]:26",
      "[not-an-ip]",
      "[192.0.2.10",
      "example.test:0",
      "example.test:x",
    ]
  ) {
    await assert.rejects(resolveMailExchanger(bad, t.resolver), RangeError, bad);
  }
});

Deno.test("resolveMxList() keeps entry order, ports and the mx_list site name", async () => {
  await using t = await setup();
  const mx = resolveMxList([
    "[127.0.0.1]:2526",
    "relay.test:2600",
    "backup.example.test",
    { name: "fixed", addr: "127.0.0.99:2700" },
    { name: "fixed6", addr: "::1" },
  ]);
  assert.equal(
    mx.siteName,
    "mx_list:[127.0.0.1]:2526,relay.test:2600,backup.example.test,fixed,fixed6",
  );
  assert.equal(resolveMxList(["[127.0.0.1]:2526"]).siteName, "mx_list:[127.0.0.1]:2526");
  const plan = await buildConnectionPlan(mx, t.resolver, { ipLookupStrategy: "Ipv4Only" });
  assert.deepEqual(plan, [
    { name: "127.0.0.1", addr: "127.0.0.1", port: 2526 },
    { name: "relay.test.", addr: "127.0.0.71", port: 2600 },
    { name: "backup.example.test.", addr: "127.0.0.31", port: 25 },
    { name: "fixed", addr: "127.0.0.99", port: 2700 },
    { name: "fixed6", addr: "::1", port: 25 },
  ]);
  const overridden = await buildConnectionPlan(mx, t.resolver, { remotePort: 10025 });
  assert.ok(overridden.every((p) => p.port === 10025));
});

Deno.test("buildConnectionPlan() shuffles within a preference group only", async () => {
  await using t = await setup();
  const mx = await resolveMailExchanger("example.test", t.resolver);
  const firstGroup = new Set(["127.0.0.11", "127.0.0.12", "::1", "127.0.0.21", "fd00::21"]);
  const orders = new Set<string>();
  for (let i = 0; i < 40; i++) {
    const plan = await buildConnectionPlan(mx, t.resolver);
    assert.equal(plan.length, 6);
    assert.deepEqual(new Set(plan.slice(0, 5).map((p) => p.addr)), firstGroup);
    assert.deepEqual(plan[5], { name: "backup.example.test.", addr: "127.0.0.31", port: 25 });
    for (const p of plan) {
      const owner = p.addr.endsWith("21")
        ? "mx2.mail.example.test."
        : p.addr === "127.0.0.31"
        ? "backup.example.test."
        : "mx1.mail.example.test.";
      assert.equal(p.name, owner);
    }
    orders.add(plan.slice(0, 5).map((p) => p.addr).join(","));
  }
  assert.ok(orders.size > 1, "40 plans should not all share one order");
});

Deno.test("buildConnectionPlan() honours ip_lookup_strategy", async () => {
  await using t = await setup();
  const noShuffle = () => 0.999999; // Fisher–Yates with j = i keeps the order
  const addrs = async (domain: string, strategy: Parameters<typeof buildConnectionPlan>[2]) =>
    (await buildConnectionPlan(await resolveMailExchanger(domain, t.resolver), t.resolver, {
      random: noShuffle,
      ...strategy,
    })).map((p: ConnectionTarget) => p.addr);

  assert.deepEqual(await addrs("relay.test", {}), ["127.0.0.71", "fd00::71"]);
  assert.deepEqual(await addrs("relay.test", { ipLookupStrategy: "Ipv4AndIpv6" }), [
    "127.0.0.71",
    "fd00::71",
  ]);
  assert.deepEqual(await addrs("relay.test", { ipLookupStrategy: "Ipv4Only" }), ["127.0.0.71"]);
  assert.deepEqual(await addrs("relay.test", { ipLookupStrategy: "Ipv6Only" }), ["fd00::71"]);
  assert.deepEqual(await addrs("relay.test", { ipLookupStrategy: "Ipv4ThenIpv6" }), ["127.0.0.71"]);
  assert.deepEqual(await addrs("relay.test", { ipLookupStrategy: "Ipv6ThenIpv4" }), ["fd00::71"]);
  assert.deepEqual(await addrs("v6only.test", { ipLookupStrategy: "Ipv4ThenIpv6" }), ["fd00::61"]);
  assert.deepEqual(await addrs("v6only.test", { ipLookupStrategy: "Ipv4Only" }), []);
  assert.deepEqual(await addrs("implicit.test", { ipLookupStrategy: "Ipv6ThenIpv4" }), [
    "127.0.0.41",
  ]);
});

Deno.test("buildConnectionPlan() skips a host whose lookup fails", async () => {
  await using t = await setup();
  const mx = await resolveMailExchanger("halfbroken.test", t.resolver);
  const skipped: string[] = [];
  const plan = await buildConnectionPlan(mx, t.resolver, {
    port: 2525,
    onSkip: (host, err) => {
      assert.ok(err instanceof DnsNxDomainError);
      skipped.push(host);
    },
  });
  assert.deepEqual(plan, [{ name: "ok.halfbroken.test.", addr: "127.0.0.51", port: 2525 }]);
  assert.deepEqual(skipped, ["gone.halfbroken.test."]);
});

Deno.test("buildConnectionPlan() port precedence: remote_port, routing domain, smtp_port", async () => {
  await using t = await setup();
  const mx = await resolveMailExchanger("implicit.test:2600", t.resolver);
  assert.equal((await buildConnectionPlan(mx, t.resolver, { port: 2525 }))[0].port, 2600);
  assert.equal((await buildConnectionPlan(mx, t.resolver, { remotePort: 10025 }))[0].port, 10025);
  const plain = await resolveMailExchanger("implicit.test", t.resolver);
  assert.equal((await buildConnectionPlan(plain, t.resolver, { port: 2525 }))[0].port, 2525);
  assert.equal((await buildConnectionPlan(plain, t.resolver))[0].port, 25);
});
