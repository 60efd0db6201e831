import assert from "node:assert/strict";
import { receivedHeaderValue, rfc2822Date, supplementalHeaderValue } from "./trace_headers.ts";

Deno.test("rfc2822Date() pads time but not the day", () => {
  assert.equal(rfc2822Date(Date.UTC(2026, 0, 2, 3, 4, 5)), "Fri, 2 Jan 2026 03:04:05 +0000");
});

Deno.test("receivedHeaderValue() matches the upstream layout byte for byte", () => {
  const base = {
    ehlo: "client.example",
    peerIp: "198.51.100.7",
    hostname: "mta1.test",
    localIp: "192.0.2.25",
    authenticated: false,
    id: "0f3ca1",
    recipient: "ana@customer.test",
    epochMs: Date.UTC(2026, 0, 2, 3, 4, 5),
  };
  assert.equal(
    receivedHeaderValue(base),
    "from client.example (198.51.100.7)\r\n  by mta1.test (KumoMTA 192.0.2.25) \r\n" +
      "  with ESMTP id 0f3ca1 for <ana@customer.test>;\r\n  Fri, 2 Jan 2026 03:04:05 +0000",
  );
  const tls = receivedHeaderValue({
    ...base,
    ehlo: undefined,
    tlsVersion: "TLSv1.3",
    tlsCipher: "TLS_AES_256_GCM_SHA384",
    authenticated: true,
  });
  assert.ok(tls.startsWith("from unspecified (198.51.100.7)\r\n"));
  assert.ok(tls.includes("  with ESMTPSA (TLSv1.3:TLS_AES_256_GCM_SHA384)  id 0f3ca1 for"));
  // AUTH without TLS stays plain ESMTP.
  assert.ok(receivedHeaderValue({ ...base, authenticated: true }).includes("with ESMTP id"));
});

Deno.test("supplementalHeaderValue() folds at 75 columns and decodes back", () => {
  const rcpts = ["a-rather-long-recipient-name@example.com", "another-recipient@example.net"];
  const v = supplementalHeaderValue("X-KumoRef", rcpts, { tenant: "t1", x: 1 }, [
    "tenant",
    "missing",
  ]);
  const lines = ("X-KumoRef: " + v).split("\r\n");
  assert.ok(lines.length > 1);
  for (const l of lines) assert.ok(l.length <= 75, l);
  assert.deepEqual(JSON.parse(atob(v.replace(/\s/g, ""))), {
    "_@_": "\\_/",
    recipient: rcpts,
    tenant: "t1",
  });
  assert.equal(
    atob(supplementalHeaderValue("X-KumoRef", ["a@b.c"], {}, [])),
    '{"_@_":"\\\\_/","recipient":"a@b.c"}',
  );
});
