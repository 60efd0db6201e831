/**
 * Unit tests for parseDnsResolver() (`kumo.dns.configure_resolver`).
 * Place on the path: policy configuration, read by the DNS stage.
 */
import assert from "node:assert/strict";
import { dnsResolverToJSON, parseDnsResolver } from "./dns_resolver.ts";

Deno.test("parseDnsResolver() accepts ip:port strings and socket_addr tables", () => {
  const r = parseDnsResolver({
    name_servers: ["127.0.0.1:5353", { socket_addr: "[::1]:53", protocol: "Tcp" }, "10.0.0.1"],
    domain: "local",
    search: ["example.com"],
    options: { timeout: 5 },
  });
  assert.deepEqual(r.nameServers, [
    { ip: "127.0.0.1", port: 5353, protocol: "udp" },
    { ip: "::1", port: 53, protocol: "tcp" },
    { ip: "10.0.0.1", port: 53, protocol: "udp" },
  ]);
  assert.equal(r.domain, "local");
  assert.deepEqual(r.search, ["example.com"]);
  assert.deepEqual(r.options, { timeout: 5 });
  assert.deepEqual(dnsResolverToJSON(r).name_servers, [
    { socket_addr: "127.0.0.1:5353", protocol: "udp" },
    { socket_addr: "[::1]:53", protocol: "tcp" },
    { socket_addr: "10.0.0.1:53", protocol: "udp" },
  ]);
});

Deno.test("parseDnsResolver() rejects bad servers and unknown keys", () => {
  assert.throws(
    () => parseDnsResolver({ name_servers: ["dns.example:53"] }),
    /expected a socket address/,
  );
  assert.throws(
    () => parseDnsResolver({ name_servers: [], nameservers: [] }),
    /unknown field `nameservers`/,
  );
  assert.throws(() => parseDnsResolver({}), /missing field `name_servers`/);
  assert.deepEqual(parseDnsResolver({ Test: { zones: [] } }).test, { zones: [] });
});
