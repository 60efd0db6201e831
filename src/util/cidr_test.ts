/**
 * Unit tests for CidrSet/CidrMap (src/util/cidr.ts). Place on the path:
 * beside it, relay and peer checks in every stage.
 */
import assert from "node:assert/strict";
import { CidrMap, CidrSet } from "./cidr.ts";
import { ConfigError } from "./config_error.ts";

Deno.test("CidrSet.parse() rejects host bits with a suggestion", () => {
  assert.throws(() => CidrSet.parse(["192.168.1.1/24"]), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(
      e.message,
      '"192.168.1.1/24" is not a valid CIDR: host bits set. Did you mean "192.168.1.0/24"?',
    );
    return true;
  });
  assert.throws(
    () => CidrSet.parse(["2001:db8::1/32"]),
    /"2001:db8::1\/32" is not a valid CIDR: host bits set. Did you mean "2001:db8::\/32"\?/,
  );
});

Deno.test("CidrSet.parse() rejects malformed entries", () => {
  for (
    const bad of [
      "10.0.0.0/33",
      "::/129",
      "10.0.0",
      "host.example",
      "10.0.0.0/",
      "10.0.0.0/-1",
      "1.2.3.4/8x",
    ]
  ) {
    assert.throws(() => CidrSet.parse([bad]), ConfigError, bad);
  }
  assert.throws(() => CidrSet.parse([5]), ConfigError);
  assert.throws(() => CidrSet.parse("10.0.0.0/8"), ConfigError);
});

Deno.test("CidrSet contains() for IPv4, IPv6 and IPv4-mapped peers", () => {
  const s = CidrSet.parse(["127.0.0.0/8", "::1", "0.0.0.0", "::", "10.1.0.0/16", "2001:db8::/32"]);
  assert.ok(s.contains("127.0.0.1"));
  assert.ok(s.contains("127.255.255.255"));
  assert.ok(s.contains("::ffff:127.0.0.5"));
  assert.ok(s.contains("::FFFF:7f00:1"));
  assert.ok(s.contains("::1"));
  assert.ok(s.contains("0.0.0.0"));
  assert.ok(!s.contains("0.0.0.1"), "0.0.0.0 is a /32");
  assert.ok(s.contains("::"));
  assert.ok(!s.contains("::2"), ":: is a /128");
  assert.ok(s.contains("10.1.200.3"));
  assert.ok(!s.contains("10.2.0.1"));
  assert.ok(s.contains("2001:db8:ffff::1"));
  assert.ok(s.contains("[2001:db8::5]"));
  assert.ok(!s.contains("2001:db9::1"));
  assert.ok(!s.contains("not-an-ip"));
  assert.ok(!s.contains("128.0.0.1"));
  assert.deepEqual(s.toJSON(), [
    "127.0.0.0/8",
    "::1",
    "0.0.0.0",
    "::",
    "10.1.0.0/16",
    "2001:db8::/32",
  ]);
});

Deno.test("CidrSet accepts {} as an empty list and 0.0.0.0/0 as everything", () => {
  assert.equal(CidrSet.parse({}).size, 0);
  assert.ok(!CidrSet.parse({}).contains("1.2.3.4"));
  const all = CidrSet.parse(["0.0.0.0/0"]);
  assert.ok(all.contains("1.2.3.4") && all.contains("255.255.255.255"));
  assert.ok(!all.contains("2001:db8::1"));
});

Deno.test("CidrSet IPv4-mapped IPv6 entries match IPv4 peers", () => {
  const s = CidrSet.parse(["::ffff:10.0.0.0/104"]);
  assert.ok(s.contains("10.9.9.9"));
  assert.ok(!s.contains("11.0.0.1"));
});

Deno.test("CidrMap get() returns the longest prefix match", () => {
  const m = CidrMap.parse(
    { "10.0.0.0/8": "wide", "10.1.0.0/16": "narrow", "10.1.2.3": "host", "::/0": "v6" },
    (v) => String(v),
  );
  assert.equal(m.get("10.9.9.9"), "wide");
  assert.equal(m.get("10.1.9.9"), "narrow");
  assert.equal(m.get("10.1.2.3"), "host");
  assert.equal(m.get("::ffff:10.1.2.3"), "host");
  assert.equal(m.get("11.0.0.1"), undefined);
  assert.equal(m.get("2001:db8::1"), "v6");
  assert.deepEqual(m.toObject((v) => v.toUpperCase()), {
    "10.0.0.0/8": "WIDE",
    "10.1.0.0/16": "NARROW",
    "10.1.2.3": "HOST",
    "::/0": "V6",
  });
  assert.equal(JSON.stringify(m), JSON.stringify(m.toJSON()));
  assert.equal(CidrMap.parse([], (v) => v).size, 0);
  assert.throws(() => CidrMap.parse({ "10.0.0.1/8": 1 }, (v) => v), /host bits set/);
});
