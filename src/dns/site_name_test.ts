/**
 * Unit tests for siteName() (src/dns/site_name.ts), the ready-queue site
 * name built from a domain's MX hosts. Place on the path: egress routing.
 */
import assert from "node:assert/strict";
import { siteName } from "./site_name.ts";

Deno.test("siteName() factors differing first labels", () => {
  assert.equal(
    siteName(["mx1.mail.example.net", "mx2.mail.example.net"]),
    "(mx1|mx2).mail.example.net",
  );
});

Deno.test("siteName() marks a label some names lack with ?", () => {
  assert.equal(siteName(["in.mx.test", "b.in.mx.test", "c.in.mx.test"]), "(b|c)?.in.mx.test");
});

Deno.test("siteName() ignores case and trailing dots, keeps first-seen order", () => {
  assert.equal(siteName(["MX2.Example.NET.", "mx1.example.net."]), "(mx2|mx1).example.net");
  assert.equal(siteName(["a.x.test", "b.x.test", "a.x.test"]), "(a|b).x.test");
});

Deno.test("siteName() of a single host is the host", () => {
  assert.equal(siteName(["mx.example.net."]), "mx.example.net");
});

Deno.test("siteName() glues the port to the last label", () => {
  assert.equal(
    siteName(["mx1.example.net.", "mx2.example.net."], 2525),
    "(mx1|mx2).example.net:2525",
  );
});

Deno.test("siteName() of no hosts (null MX) is empty", () => {
  assert.equal(siteName([]), "");
  assert.equal(siteName(["."]), "");
});

Deno.test("siteName() renders differing TLDs", () => {
  assert.equal(siteName(["mx.a.com", "mx.b.org"]), "mx.(a|b).(com|org)");
});
