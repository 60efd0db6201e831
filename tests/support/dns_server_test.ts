/**
 * Tests of the loopback test DNS server (tests/support/dns_server.ts)
 * through Deno.resolveDns. Test support only, not on the mail's path.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./dns_server.ts";

const ZONES = {
  "Example.Test.": {
    MX: [{ pref: 10, host: "mx1.example.test" }, { pref: 20, host: "MX2.example.test." }],
    A: ["127.0.0.2"],
    TXT: ["v=spf1 -all", ["two", "parts"]],
  },
  "mx1.example.test": { A: ["127.0.0.3"], AAAA: ["2001:db8::3"] },
  "alias.example.test": { CNAME: "mx1.example.test" },
  "null.test": { MX: [{ pref: 0, host: "." }] },
};

Deno.test("dns server answers Deno.resolveDns for MX, A, AAAA, TXT and CNAME", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  const opts = { nameServer: { ipAddr: "127.0.0.1", port: dns.port } };
  const plain = <T>(v: T[]) => v.map((x) => ({ ...x }));
  assert.deepEqual(plain(await Deno.resolveDns("example.test", "MX", opts)), [
    { preference: 10, exchange: "mx1.example.test." },
    { preference: 20, exchange: "MX2.example.test." },
  ]);
  assert.deepEqual(await Deno.resolveDns("EXAMPLE.test", "A", opts), ["127.0.0.2"]);
  assert.deepEqual(await Deno.resolveDns("mx1.example.test", "AAAA", opts), ["2001:db8::3"]);
  assert.deepEqual(await Deno.resolveDns("example.test", "TXT", opts), [["v=spf1 -all"], [
    "two",
    "parts",
  ]]);
  assert.deepEqual(await Deno.resolveDns("alias.example.test", "A", opts), ["127.0.0.3"]);
  assert.deepEqual(plain(await Deno.resolveDns("null.test", "MX", opts)), [{
    preference: 0,
    exchange: ".",
  }]);
  assert.equal(dns.address, `127.0.0.1:${dns.port}`);
});

Deno.test("dns server gives NotFound for unknown names and follows setZone()", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  const opts = { nameServer: { ipAddr: "127.0.0.1", port: dns.port } };
  await assert.rejects(Deno.resolveDns("unknown.test", "A", opts), Deno.errors.NotFound);
  dns.setZone("unknown.test.", { A: ["127.0.0.8"] });
  assert.deepEqual(await Deno.resolveDns("unknown.test", "A", opts), ["127.0.0.8"]);
  dns.setZone("unknown.test", undefined);
  await assert.rejects(Deno.resolveDns("unknown.test", "AAAA", opts), Deno.errors.NotFound);
  assert.deepEqual(
    dns.queries.map((q) => `${q.name} ${q.type}`),
    ["unknown.test A", "unknown.test A", "unknown.test AAAA"],
  );
});

/** Send one raw query over UDP and return the reply's rcode and answer count. */
async function rawQuery(port: number, name: string, qtype: number): Promise<[number, number]> {
  const dgram = await import("node:dgram");
  const sock = dgram.createSocket("udp4");
  const labels = name.split(".").flatMap((l) => [l.length, ...new TextEncoder().encode(l)]);
  const msg = new Uint8Array([
    0x12,
    0x34,
    0x01,
    0x00,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    ...labels,
    0,
    0,
    qtype,
    0,
    1,
  ]);
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no reply")), 2000);
      sock.on("message", (reply: Uint8Array) => {
        clearTimeout(timer);
        assert.equal((reply[0] << 8) | reply[1], 0x1234);
        assert.ok(reply[2] & 0x80, "QR bit set");
        resolve([reply[3] & 0x0f, (reply[6] << 8) | reply[7]]);
      });
      sock.send(msg, port, "127.0.0.1");
    });
  } finally {
    sock.close();
  }
}

Deno.test("dns server rcodes: NXDOMAIN, NOERROR without data, SERVFAIL", async () => {
  await using dns = await startDnsServer({ zones: ZONES, servfail: ["broken.test"] });
  assert.deepEqual(await rawQuery(dns.port, "nope.test", 1), [3, 0]);
  assert.deepEqual(await rawQuery(dns.port, "mx1.example.test", 15), [0, 0]);
  assert.deepEqual(await rawQuery(dns.port, "example.test", 15), [0, 2]);
  assert.deepEqual(await rawQuery(dns.port, "broken.test", 1), [2, 0]);
});
