import assert from "node:assert/strict";
import { receivedHeaderValue, supplementalHeaderValue } from "./trace_headers.ts";
import { rfc2822Date } from "../../util/calendar.ts";

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

Deno.test("supplementalHeaderValue() puts 75 base64 characters on every line and decodes back", () => {
  const rcpts = ["a-rather-long-recipient-name@example.com", "another-recipient@example.net"];
  const v = supplementalHeaderValue(rcpts, { tenant: "t1", x: 1 }, ["tenant", "missing"]);
  const lines = v.split("\r\n\t");
  assert.ok(lines.length > 1);
  for (const l of lines.slice(0, -1)) assert.equal(l.length, 75, l);
  assert.ok(lines.at(-1)!.length <= 75);
  assert.deepEqual(JSON.parse(atob(v.replace(/\s/g, ""))), {
    "_@_": "\\_/",
    recipient: rcpts,
    tenant: "t1",
  });
  assert.equal(
    atob(supplementalHeaderValue(["a@b.c"], {}, [])),
    '{"_@_":"\\\\_/","recipient":"a@b.c"}',
  );
});

Deno.test("supplementalHeaderValue() matches upstream: sorted keys, 75-character lines", () => {
  // The values of upstream's apply_supplemental_trace_header test.
  assert.equal(
    supplementalHeaderValue(["recip@example.com"], {}, []),
    "eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoicmVjaXBAZXhhbXBsZS5jb20ifQ==",
  );
  assert.equal(
    supplementalHeaderValue(["recip@example.com"], { woot: "woot" }, ["woot"]),
    "eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoicmVjaXBAZXhhbXBsZS5jb20iLCJ3b290Ijoid29\r\n\tvdCJ9",
  );
  const big = supplementalHeaderValue(["recip@example.com"], { big: "B".repeat(800) }, ["big"]);
  const lines = big.split("\r\n\t");
  assert.deepEqual(lines.map((l) => l.length), [...Array(15).fill(75), 15]);
  assert.ok(lines[0].startsWith("eyJfQF8iOiJcXF8vIiwiYmlnIjoiQkJCQkJC"), lines[0]);
  assert.equal(
    lines.at(-2),
    "JCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkIiLCJyZWNpcGllbnQiOiJyZWNpcEBle",
  );
  assert.equal(lines.at(-1), "GFtcGxlLmNvbSJ9");
  // Every object is sorted, nested ones too; "Z" < "_" < "a" byte-wise.
  assert.equal(
    atob(
      supplementalHeaderValue(["r@x.test"], { Zed: 1, nest: { b: 2, a: [{ d: 1, c: 2 }] } }, [
        "nest",
        "Zed",
      ]).replace(/\s/g, ""),
    ),
    '{"Zed":1,"_@_":"\\\\_/","nest":{"a":[{"c":2,"d":1}],"b":2},"recipient":"r@x.test"}',
  );
});
