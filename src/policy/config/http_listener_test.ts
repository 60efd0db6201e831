/**
 * Unit tests for parseHttpListener() (`kumo.start_http_listener`). Place on
 * the path: policy configuration, read by the HTTP listener.
 */
import assert from "node:assert/strict";
import { httpListenerToJSON, parseHttpListener } from "./http_listener.ts";

Deno.test("parseHttpListener() defaults", () => {
  const h = parseHttpListener({});
  assert.equal(h.listen, "127.0.0.1:8000");
  assert.equal(h.useTls, false);
  assert.deepEqual(h.trustedHosts.toJSON(), ["127.0.0.1", "::1"]);
  assert.equal(h.requestBodyLimit, 2 * 1024 * 1024);
  assert.equal(typeof h.hostname, "string");
  assert.deepEqual(httpListenerToJSON(h).trusted_hosts, ["127.0.0.1", "::1"]);
});

Deno.test("parseHttpListener() reads keys and rejects unknown ones", () => {
  const h = parseHttpListener({
    listen: "[::1]:8443",
    use_tls: true,
    tls_certificate: "/etc/cert.pem",
    tls_private_key: { key_data: "KEY" },
    trusted_hosts: ["10.0.0.0/8"],
  });
  assert.deepEqual(h.tlsCertificate, { kind: "file", path: "/etc/cert.pem" });
  assert.ok(h.trustedHosts.contains("10.1.1.1"));
  assert.throws(
    () => parseHttpListener({ use_ssl: true }),
    /unknown field `use_ssl`, expected one of `listen`, `hostname`, `use_tls`, `tls_certificate`, `tls_private_key`, `trusted_hosts`, `request_body_limit`/,
  );
  assert.throws(
    () => parseHttpListener({ use_tls: "true" }),
    /invalid type: string "true", expected a boolean/,
  );
});
