/**
 * Unit tests for the Resolver (src/dns/resolver.ts): MX/A/TXT/PTR lookups,
 * NXDOMAIN vs no data, SERVFAIL, timeouts and caching, against the loopback
 * test DNS server. Place on the path: beside it, serving egress and policy.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "../../tests/support/dns_server.ts";
import { DnsError, DnsNxDomainError, DnsTimeoutError, Resolver, reverseName } from "./resolver.ts";

const ZONES = {
  "example.test": {
    MX: [
      { pref: 20, host: "mx3.example.test" },
      { pref: 10, host: "MX2.example.test" },
      { pref: 10, host: "mx1.example.test" },
    ],
    A: ["127.0.0.2"],
    TXT: ["v=spf1 -all", ["part one ", "part two"]],
    ttl: 60,
  },
  "mx1.example.test": { A: ["127.0.0.3", "127.0.0.4"], AAAA: ["2001:db8:0:0:0:0:0:1"] },
  "null.test": { MX: [{ pref: 0, host: "." }] },
  "10.2.0.192.in-addr.arpa": { PTR: ["Host.Example.Test"] },
  "big.test": { A: ["127.0.0.9"] },
};

function resolverFor(port: number, extra: ConstructorParameters<typeof Resolver>[0] = {}) {
  return new Resolver({ nameServers: [{ ip: "127.0.0.1", port }], ...extra });
}

Deno.test("Resolver.lookupMx() orders by preference then name, lower-cased with trailing dot", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  const mx = await resolverFor(dns.port).lookupMx("Example.TEST");
  assert.deepEqual(mx, [
    { preference: 10, exchange: "mx1.example.test." },
    { preference: 10, exchange: "mx2.example.test." },
    { preference: 20, exchange: "mx3.example.test." },
  ]);
});

Deno.test("Resolver distinguishes NXDOMAIN from no data", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  const r = resolverFor(dns.port);
  assert.deepEqual(await r.lookupMx("mx1.example.test"), []);
  assert.deepEqual(await r.lookupAaaa("example.test"), []);
  await assert.rejects(r.lookupMx("nowhere.test"), (err: unknown) => {
    assert.ok(err instanceof DnsNxDomainError);
    assert.equal(err.code, "NXDOMAIN");
    assert.equal(err.certain, true);
    assert.match(err.message, /nowhere\.test/);
    return true;
  });
});

Deno.test("Resolver reports SERVFAIL as a DnsError that is not NXDOMAIN", async () => {
  await using dns = await startDnsServer({ zones: ZONES, servfail: ["broken.test"] });
  await assert.rejects(resolverFor(dns.port).lookupA("broken.test"), (err: unknown) => {
    assert.ok(err instanceof DnsError);
    assert.ok(!(err instanceof DnsNxDomainError));
    assert.equal(err.code, "SERVFAIL");
    return true;
  });
});

Deno.test("Resolver times out on a silent server", async () => {
  await using dns = await startDnsServer({ zones: ZONES, drop: ["slow.test"] });
  const started = Date.now();
  await assert.rejects(
    resolverFor(dns.port, { timeoutMs: 300 }).lookupA("slow.test"),
    DnsTimeoutError,
  );
  const took = Date.now() - started;
  assert.ok(took >= 250 && took < 2000, `took ${took} ms`);
});

Deno.test("Resolver decodes A, AAAA, TXT and PTR", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  const r = resolverFor(dns.port);
  assert.deepEqual(await r.lookupA("mx1.example.test"), ["127.0.0.3", "127.0.0.4"]);
  assert.deepEqual(await r.lookupAaaa("mx1.example.test"), ["2001:db8::1"]);
  assert.deepEqual(await r.lookupAddr("mx1.example.test"), [
    "127.0.0.3",
    "127.0.0.4",
    "2001:db8::1",
  ]);
  assert.deepEqual(await r.lookupTxt("example.test"), ["v=spf1 -all", "part one part two"]);
  assert.deepEqual(await r.lookupPtr("192.0.2.10"), ["host.example.test."]);
  assert.deepEqual(await r.lookupMx("null.test"), [{ preference: 0, exchange: "." }]);
});

Deno.test("reverseName() builds in-addr.arpa and ip6.arpa names", () => {
  assert.equal(reverseName("192.0.2.10"), "10.2.0.192.in-addr.arpa");
  assert.equal(
    reverseName("2001:db8::1"),
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
  );
});

Deno.test("Resolver caches answers for the record TTL and failures for the negative TTL", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  let now = 1_000_000;
  const r = resolverFor(dns.port, { now: () => now, negativeTtlMs: 10_000 });
  const count = (name: string, type: string) =>
    dns.queries.filter((q) => q.name === name && q.type === type).length;

  await r.lookupMx("example.test");
  await r.lookupMx("example.test");
  assert.equal(count("example.test", "MX"), 1);
  now += 59_000;
  await r.lookupMx("example.test");
  assert.equal(count("example.test", "MX"), 1);
  now += 2_000; // past the 60 s TTL
  await r.lookupMx("example.test");
  assert.equal(count("example.test", "MX"), 2);

  await assert.rejects(r.lookupA("gone.test"), DnsNxDomainError);
  dns.setZone("gone.test", { A: ["127.0.0.5"] });
  await assert.rejects(r.lookupA("gone.test"), DnsNxDomainError); // still cached
  assert.equal(count("gone.test", "A"), 1);
  now += 10_001;
  assert.deepEqual(await r.lookupA("gone.test"), ["127.0.0.5"]);
});

Deno.test("Resolver coalesces identical lookups in flight", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  const r = resolverFor(dns.port);
  const answers = await Promise.all([
    r.lookupA("big.test"),
    r.lookupA("BIG.test."),
    r.lookupA("big.test"),
  ]);
  assert.deepEqual(answers, [["127.0.0.9"], ["127.0.0.9"], ["127.0.0.9"]]);
  assert.equal(dns.queries.filter((q) => q.name === "big.test").length, 1);
});

Deno.test("Resolver keeps at most `concurrency` lookups in flight", async () => {
  await using dns = await startDnsServer({
    zones: ZONES,
    drop: ["d1.test", "d2.test", "d3.test", "d4.test"],
  });
  const r = resolverFor(dns.port, { concurrency: 2, timeoutMs: 400 });
  const all = ["d1.test", "d2.test", "d3.test", "d4.test"].map((n) => r.lookupA(n).catch((e) => e));
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal(new Set(dns.queries.map((q) => q.name)).size, 2);
  const results = await Promise.all(all);
  assert.ok(results.every((e) => e instanceof DnsTimeoutError));
  assert.equal(new Set(dns.queries.map((q) => q.name)).size, 4);
});

Deno.test("Resolver retries over TCP when the UDP answer is truncated", async () => {
  await using dns = await startDnsServer({ zones: ZONES, truncate: ["big.test"] });
  assert.ok(dns.tcp, "TCP listener expected on the same port");
  assert.deepEqual(await resolverFor(dns.port).lookupA("big.test"), ["127.0.0.9"]);
  assert.deepEqual(dns.queries.map((q) => q.transport), ["udp", "tcp"]);
});

Deno.test("Resolver falls through to the next name server when the first is silent", async () => {
  await using good = await startDnsServer({ zones: ZONES });
  await using silent = await startDnsServer({ zones: ZONES, drop: ["big.test"] });
  const r = new Resolver({
    timeoutMs: 600,
    nameServers: [{ ip: "127.0.0.1", port: silent.port }, { ip: "127.0.0.1", port: good.port }],
  });
  const started = Date.now();
  assert.deepEqual(await r.lookupA("big.test"), ["127.0.0.9"]);
  assert.ok(Date.now() - started >= 250, "the first server had its share of the budget");
  assert.equal(silent.queries.length >= 1, true);
  assert.equal(good.queries.length, 1);
});
