import assert from "node:assert/strict";
import { parseProxyHeader } from "./proxy_header.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function v2(cmd: number, fam: number, body: number[]): Uint8Array {
  return new Uint8Array([
    0x0d,
    0x0a,
    0x0d,
    0x0a,
    0x00,
    0x0d,
    0x0a,
    0x51,
    0x55,
    0x49,
    0x54,
    0x0a,
    0x20 | cmd,
    fam,
    body.length >> 8,
    body.length & 0xff,
    ...body,
  ]);
}

Deno.test("parseProxyHeader() reads v1 TCP4, TCP6 and UNKNOWN lines", () => {
  const line = "PROXY TCP4 192.0.2.7 127.0.0.1 40000 25\r\n";
  assert.deepEqual(parseProxyHeader(enc(line + "EHLO x\r\n")), {
    kind: "ok",
    consumed: line.length,
    source: { ip: "192.0.2.7", port: 40000 },
    dest: { ip: "127.0.0.1", port: 25 },
  });
  const r6 = parseProxyHeader(enc("PROXY TCP6 2001:DB8::1 ::1 1 2\r\n"));
  assert.equal(r6.kind === "ok" && r6.source?.ip, "2001:db8::1");
  assert.deepEqual(parseProxyHeader(enc("PROXY UNKNOWN\r\n")), { kind: "ok", consumed: 15 });
  assert.deepEqual(parseProxyHeader(enc("PROXY TCP4 192.0.2.7")), { kind: "incomplete" });
  assert.deepEqual(parseProxyHeader(enc("PRO")), { kind: "incomplete" });
});

Deno.test("parseProxyHeader() refuses malformed v1 headers", () => {
  for (
    const bad of [
      "EHLO x\r\n",
      "PROXY TCP4 999.0.0.1 127.0.0.1 1 2\r\n",
      "PROXY TCP4 192.0.2.1 127.0.0.1 70000 2\r\n",
      "PROXY UDP4 192.0.2.1 127.0.0.1 1 2\r\n",
      "PROXY TCP4 192.0.2.1 127.0.0.1 1\r\n",
      "PROXY " + "x".repeat(120),
    ]
  ) assert.equal(parseProxyHeader(enc(bad)).kind, "error", bad);
});

Deno.test("parseProxyHeader() reads v2 PROXY and LOCAL headers", () => {
  const h4 = v2(1, 0x11, [192, 0, 2, 9, 127, 0, 0, 1, 0x9c, 0x40, 0, 25]);
  assert.deepEqual(parseProxyHeader(new Uint8Array([...h4, 0x45])), {
    kind: "ok",
    consumed: 28,
    source: { ip: "192.0.2.9", port: 40000 },
    dest: { ip: "127.0.0.1", port: 25 },
  });
  const addr6 = [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1];
  const loop6 = [...Array(15).fill(0), 1];
  const h6 = v2(1, 0x21, [...addr6, ...loop6, 0, 1, 0, 2]);
  const r6 = parseProxyHeader(h6);
  assert.equal(r6.kind === "ok" && r6.source?.ip, "2001:db8::1");
  assert.equal(r6.kind === "ok" && r6.dest?.ip, "::1");
  assert.deepEqual(parseProxyHeader(v2(0, 0, [])), { kind: "ok", consumed: 16 });
  assert.deepEqual(parseProxyHeader(h4.subarray(0, 20)), { kind: "incomplete" });
  assert.equal(parseProxyHeader(v2(1, 0x31, [1, 2])).kind, "error");
});
