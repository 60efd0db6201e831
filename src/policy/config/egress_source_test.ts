/**
 * Unit tests for parseEgressSource() (`kumo.make_egress_source`). Place on
 * the path: policy configuration, read by egress connection set-up.
 */
import assert from "node:assert/strict";
import { egressSourceToJSON, parseEgressSource } from "./egress_source.ts";

Deno.test("parseEgressSource() defaults", () => {
  const s = parseEgressSource({ name: "ip-1" });
  assert.equal(s.name, "ip-1");
  assert.equal(s.ttl, 60_000);
  assert.equal(s.sourceAddress, undefined);
  assert.deepEqual(egressSourceToJSON(s), { name: "ip-1", ttl: "1m" });
});

Deno.test("parseEgressSource() reads every key", () => {
  const s = parseEgressSource({
    name: "p",
    source_address: "10.0.0.1",
    ehlo_domain: "mta.example",
    remote_port: 2525,
    ha_proxy_server: "10.0.0.9:5000",
    ha_proxy_source_address: "192.0.2.1",
    socks5_proxy_server: "[::1]:1080",
    socks5_proxy_source_address: "2001:db8::1",
    socks5_proxy_username: "u",
    socks5_proxy_password: { key_data: "pw" },
    suspend_when_unplumbed: { duration: "5m" },
    suspend_when_proxy_unhealthy: { trigger: { Threshold: "3/hr" }, duration: 60 },
    ttl: "5m",
  });
  assert.equal(s.remotePort, 2525);
  assert.deepEqual(s.suspendWhenUnplumbed, { trigger: "Immediate", duration: 300_000 });
  const t = s.suspendWhenProxyUnhealthy!.trigger;
  assert.ok(t !== "Immediate" && t.threshold.limit === 3 && t.threshold.periodMs === 3_600_000);
  assert.deepEqual(egressSourceToJSON(s).suspend_when_proxy_unhealthy, {
    trigger: { Threshold: "3/h" },
    duration: "1m",
  });
});

Deno.test("parseEgressSource() rejects unknown keys, bad IPs and missing name", () => {
  assert.throws(
    () => parseEgressSource({ name: "x", source_addr: "10.0.0.1" }),
    /deserialize error: unknown field `source_addr`, expected one of `name`, `ehlo_domain`, `source_address`, .*, while processing \{"name":"x","source_addr":"10.0.0.1"\}/,
  );
  assert.throws(() => parseEgressSource({}), /missing field `name`/);
  assert.throws(
    () => parseEgressSource({ name: "x", source_address: "nope" }),
    /expected an IP address/,
  );
  assert.throws(() => parseEgressSource({ name: "x", remote_port: 70000 }), /expected u16/);
  assert.throws(
    () =>
      parseEgressSource({
        name: "x",
        suspend_when_unplumbed: { trigger: "immediate", duration: 1 },
      }),
    /unknown variant `immediate`/,
  );
});
