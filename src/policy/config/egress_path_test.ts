/**
 * Unit tests for parseEgressPath() (`kumo.make_egress_path`). Place on the
 * path: policy configuration, read by the ready queues and SMTP client.
 */
import assert from "node:assert/strict";
import { egressPathToJSON, parseEgressPath } from "./egress_path.ts";

Deno.test("parseEgressPath() defaults", () => {
  const p = parseEgressPath({});
  assert.deepEqual(p.connectionLimit, { limit: 32, local: false });
  assert.deepEqual(p.additionalConnectionLimits, {});
  assert.equal(p.maxDeliveriesPerConnection, 1024);
  assert.equal(p.maxRecipientsPerBatch, 100);
  assert.equal(p.maxReady, 1024);
  assert.equal(p.enableTls, "Opportunistic");
  assert.equal(p.enableMtaSts, true);
  assert.equal(p.enableDane, false);
  assert.equal(p.enablePipelining, true);
  assert.equal(p.enableRset, true);
  assert.equal(p.smtpPort, 25);
  assert.equal(p.ipLookupStrategy, "Ipv4AndIpv6");
  assert.equal(p.consecutiveConnectionFailuresBeforeDelay, 100);
  assert.equal(p.reconnectStrategy, "ConnectNextHost");
  assert.equal(p.useLmtp, false);
  assert.equal(p.connectTimeout, 60_000);
  assert.equal(p.bannerTimeout, 60_000);
  assert.equal(p.ehloTimeout, 300_000);
  assert.equal(p.mailFromTimeout, 300_000);
  assert.equal(p.rcptToTimeout, 300_000);
  assert.equal(p.dataTimeout, 300_000);
  assert.equal(p.dataDotTimeout, 300_000);
  assert.equal(p.rsetTimeout, 5_000);
  assert.equal(p.idleTimeout, 5_000);
  assert.equal(p.starttlsTimeout, 5_000);
  assert.equal(p.authTimeout, 60_000);
  assert.equal(p.refreshInterval, 60_000);
  assert.equal(p.refreshStrategy, "Ttl");
  assert.deepEqual(p.prohibitedHosts.toJSON(), ["127.0.0.0/8", "::1", "0.0.0.0", "::"]);
  assert.ok(p.prohibitedHosts.contains("127.0.0.1"));
  assert.ok(!p.prohibitedHosts.contains("0.0.0.1"));
  assert.ok(!p.prohibitedHosts.contains("::2"));
  assert.equal(p.skipHosts.size, 0);
  const j = egressPathToJSON(p);
  assert.equal(j.connection_limit, 32);
  assert.equal(j.idle_timeout, "5s");
  assert.equal(j.ehlo_timeout, "5m");
  assert.deepEqual(j.prohibited_hosts, ["127.0.0.0/8", "::1", "0.0.0.0", "::"]);
  assert.equal("max_message_rate" in j, false);
});

Deno.test("parseEgressPath() reads rates, limits and lists", () => {
  const p = parseEgressPath({
    connection_limit: "local:10",
    additional_connection_limits: { shared: 100 },
    max_connection_rate: "60/min,max_burst=1",
    max_message_rate: "10,000/h",
    additional_message_rate_throttles: { big: "local:100/s" },
    source_selection_rate: "20/30min",
    enable_tls: "Required",
    prohibited_hosts: {},
    skip_hosts: ["10.0.0.0/8"],
    smtp_auth_plain_password: { key_data: "pw" },
    rustls_cipher_suites: "TLS13_AES_128_GCM_SHA256",
    low_memory_reduction_policy: "ShrinkData",
    idle_timeout: 60,
  });
  assert.deepEqual(p.connectionLimit, { limit: 10, local: true });
  assert.equal(p.maxMessageRate!.limit, 10000);
  assert.equal(p.additionalMessageRateThrottles.big.local, true);
  assert.equal(p.prohibitedHosts.size, 0);
  assert.ok(p.skipHosts.contains("10.2.3.4"));
  assert.deepEqual(p.rustlsCipherSuites, ["TLS13_AES_128_GCM_SHA256"]);
  const j = egressPathToJSON(p);
  assert.equal(j.connection_limit, "local:10");
  assert.equal(j.max_connection_rate, "60/m,max_burst=1");
  assert.equal(j.max_message_rate, "10000/h");
  assert.equal(j.source_selection_rate, "20/30m");
  assert.deepEqual(j.additional_message_rate_throttles, { big: "local:100/s" });
  assert.equal(j.idle_timeout, "1m");
});

Deno.test("parseEgressPath() rejects bad input in serde wording", () => {
  assert.throws(
    () => parseEgressPath({ enable_tls: "opportunistic" }),
    /unknown variant `opportunistic`, expected one of `Opportunistic`, `OpportunisticInsecure`, `Required`, `RequiredInsecure`, `Disabled`/,
  );
  assert.throws(
    () => parseEgressPath({ max_conection_rate: "1/s" }),
    /deserialize error: unknown field `max_conection_rate`, expected one of `connection_limit`, .*, while processing/,
  );
  assert.throws(
    () => parseEgressPath({ max_message_rate: "10,000 per hour" }),
    /"10,000 per hour"/,
  );
  assert.throws(() => parseEgressPath({ max_message_rate: "100/hours" }), /"100\/hours"/);
  assert.throws(() => parseEgressPath({ connection_limit: 0 }), /limit/);
  assert.throws(
    () => parseEgressPath({ prohibited_hosts: ["192.168.1.1/24"] }),
    /host bits set. Did you mean "192.168.1.0\/24"\?/,
  );
  assert.throws(
    () => parseEgressPath({ ip_lookup_strategy: "ipv4only" }),
    /unknown variant `ipv4only`/,
  );
  assert.throws(
    () => parseEgressPath({ enable_dane: "yes" }),
    /invalid type: string "yes", expected a boolean/,
  );
});
