/**
 * Unit tests for parseEsmtpListener() and per-peer/via parameters
 * (`kumo.start_esmtp_listener`). Place on the path: policy configuration,
 * read by the ESMTP server.
 */
import assert from "node:assert/strict";
import {
  esmtpListenerToJSON,
  machineHostname,
  mergeDynamicParams,
  parseEsmtpListener,
  resolveListenerParams,
} from "./esmtp_listener.ts";

Deno.test("parseEsmtpListener() defaults", () => {
  const l = parseEsmtpListener({});
  assert.equal(l.listen, "127.0.0.1:2025");
  assert.equal(l.maxConnections, 32768);
  assert.equal(l.hostname, machineHostname());
  assert.equal(l.banner, "KumoMTA");
  assert.deepEqual(l.relayHosts.toJSON(), ["127.0.0.1", "::1"]);
  assert.equal(l.maxMessageSize, 20 * 1024 * 1024);
  assert.equal(l.maxRecipientsPerMessage, 1024);
  assert.equal(l.maxMessagesPerConnection, 10000);
  assert.equal(l.clientTimeout, 60_000);
  assert.equal(l.dataProcessingTimeout, 300_000);
  assert.equal(l.dataBufferSize, 131072);
  assert.equal(l.lineLengthHardLimit, 998);
  assert.equal(l.invalidLineEndings, "Deny");
  assert.equal(l.batchHandling, "BifurcateAlways");
  assert.equal(l.deferredSpool, false);
  assert.equal(l.deferredQueue, false);
  assert.equal(l.allowXclient, false);
  assert.equal(l.requireProxyProtocol, false);
  assert.deepEqual(l.traceHeaders, {
    receivedHeader: true,
    supplementalHeader: true,
    headerName: "X-KumoRef",
    includeMetaNames: [],
  });
  assert.deepEqual(l.meta, {});
  assert.equal(l.peer, undefined);
  const j = esmtpListenerToJSON(l);
  assert.equal(j.client_timeout, "1m");
  assert.equal(j.data_processing_timeout, "5m");
  assert.deepEqual(j.trace_headers, {
    received_header: true,
    supplemental_header: true,
    header_name: "X-KumoRef",
    include_meta_names: [],
  });
});

Deno.test("parseEsmtpListener() rejects unknown keys and bad enums", () => {
  assert.throws(
    () => parseEsmtpListener({ listen: "0:25", bannner: "x" }),
    /deserialize error: unknown field `bannner`, expected one of `listen`, `max_connections`, `hostname`, `banner`, .*, while processing \{"listen":"0:25","bannner":"x"\}/,
  );
  assert.throws(
    () => parseEsmtpListener({ invalid_line_endings: "deny" }),
    /unknown variant `deny`, expected one of `Deny`, `Allow`, `Fix`/,
  );
  assert.throws(
    () => parseEsmtpListener({ batch_handling: "batchbydomain" }),
    /unknown variant `batchbydomain`/,
  );
  assert.throws(
    () => parseEsmtpListener({ trace_headers: { recieved_header: false } }),
    /unknown field `recieved_header`/,
  );
  assert.throws(() => parseEsmtpListener({ listen: "localhost" }), /expected a host:port string/);
  assert.throws(() => parseEsmtpListener({ peer: { "10.0.0.1/8": {} } }), /host bits set/);
  assert.throws(
    () => parseEsmtpListener({ peer: { "10.0.0.0/8": { listen: "x:1" } } }),
    /unknown field `listen`/,
  );
});

Deno.test("resolveListenerParams() applies peer then via, merging meta", () => {
  const l = parseEsmtpListener({
    banner: "base",
    meta: { a: 1, b: 1 },
    relay_hosts: {},
    peer: {
      "10.0.0.0/8": { banner: "peer-wide", meta: { b: 2 } },
      "10.1.0.0/16": { banner: "peer-narrow", max_message_size: 100, relay_hosts: ["10.0.0.0/8"] },
    },
    via: { "127.0.0.2": { banner: "via", meta: { c: 3 } } },
  });
  assert.equal(resolveListenerParams(l, "192.0.2.1", "127.0.0.1").banner, "base");
  const wide = resolveListenerParams(l, "10.9.0.1", "127.0.0.1");
  assert.equal(wide.banner, "peer-wide");
  assert.deepEqual(wide.meta, { a: 1, b: 2 });
  const narrow = resolveListenerParams(l, "::ffff:10.1.0.1", "127.0.0.1");
  assert.equal(narrow.banner, "peer-narrow");
  assert.equal(narrow.maxMessageSize, 100);
  assert.ok(narrow.relayHosts.contains("10.5.5.5"));
  assert.equal(narrow.clientTimeout, 60_000, "untouched keys keep the base");
  const both = resolveListenerParams(l, "10.9.0.1", "127.0.0.2");
  assert.equal(both.banner, "via");
  assert.deepEqual(both.meta, { a: 1, b: 2, c: 3 });
  assert.equal(l.banner, "base", "base is not mutated");
  assert.deepEqual(l.meta, { a: 1, b: 1 });
  assert.deepEqual(esmtpListenerToJSON(l).peer, {
    "10.0.0.0/8": { banner: "peer-wide", meta: { b: 2 } },
    "10.1.0.0/16": { banner: "peer-narrow", max_message_size: 100, relay_hosts: ["10.0.0.0/8"] },
  });
});

Deno.test("mergeDynamicParams() overrides keys and rejects unknown ones", () => {
  const l = parseEsmtpListener({ meta: { x: 1 } });
  const m = mergeDynamicParams(l, { banner: "dyn", client_timeout: "10s", meta: { y: 2 } });
  assert.equal(m.banner, "dyn");
  assert.equal(m.clientTimeout, 10_000);
  assert.deepEqual(m.meta, { x: 1, y: 2 });
  assert.equal(mergeDynamicParams(l, {}).banner, "KumoMTA");
  assert.throws(() => mergeDynamicParams(l, { nope: 1 }), /unknown field `nope`/);
});

Deno.test("parseEsmtpListener() refuses half a TLS identity, naming the missing key", () => {
  assert.throws(
    () => parseEsmtpListener({ listen: "127.0.0.1:25", tls_private_key: "/k.pem" }),
    /^ConfigError: Cannot start ESMTP listener "127\.0\.0\.1:25": tls_private_key is set but tls_certificate is missing$/,
  );
  assert.throws(
    () => parseEsmtpListener({ via: { "10.0.0.0/8": { tls_certificate: "/c2.pem" } } }),
    /via\.10\.0\.0\.0\/8\.tls_certificate is set but via\.10\.0\.0\.0\/8\.tls_private_key is missing$/,
  );
  // An override may replace one half when the base has both.
  parseEsmtpListener({
    tls_certificate: "/c.pem",
    tls_private_key: "/k.pem",
    via: { "10.0.0.0/8": { tls_certificate: "/c2.pem" } },
  });
  const ok = parseEsmtpListener({
    peer: { "10.0.0.0/8": { tls_certificate: "/c.pem", tls_private_key: "/k.pem" } },
  });
  assert.equal(ok.tlsCertificate, undefined);
});
