/**
 * Unit tests for header scanning and editing (src/message/headers.ts).
 * Place on the path: the Message, from reception to delivery.
 */
import assert from "node:assert/strict";
import {
  appendHeader,
  decodeEncodedWords,
  findBodyStart,
  findHeaderEnd,
  getAllHeaders,
  getAllNamedHeaderValues,
  getFirstNamedHeaderValue,
  importXHeaders,
  prependHeader,
  removeAllNamedHeaders,
  removeXHeaders,
  scanHeaders,
} from "./headers.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

const MSG = "Subject: hello\r\n" +
  "X-Campaign-ID: c1\r\n" +
  "To: a@example.com,\r\n" +
  "\tb@example.com\r\n" +
  "x-tenant: shop\r\n" +
  "Received: one\r\n" +
  "Received: two\r\n" +
  "\r\n" +
  "Body: not a header\r\n";

Deno.test("findHeaderEnd() locates the blank line and -1 without one", () => {
  const data = enc(MSG);
  assert.equal(findHeaderEnd(data), MSG.indexOf("\r\n\r\n") + 2);
  assert.equal(findBodyStart(data), MSG.indexOf("Body:"));
  assert.equal(findHeaderEnd(enc("A: b\r\nC: d\r\n")), -1);
  assert.equal(findHeaderEnd(enc("\r\nbody")), 0);
  assert.equal(findHeaderEnd(enc("A: b\n\nbody")), 5);
});

Deno.test("scanHeaders() joins folded lines into one field and stops at the body", () => {
  const spans = scanHeaders(enc(MSG));
  assert.equal(spans.length, 6);
  const to = spans[2];
  assert.equal(MSG.slice(to.start, to.end), "To: a@example.com,\r\n\tb@example.com\r\n");
});

Deno.test("getFirstNamedHeaderValue() is case-insensitive and unfolds", () => {
  const data = enc(MSG);
  assert.equal(getFirstNamedHeaderValue(data, "SUBJECT"), "hello");
  assert.equal(getFirstNamedHeaderValue(data, "to"), "a@example.com,\tb@example.com");
  assert.equal(getFirstNamedHeaderValue(data, "received"), "one");
  assert.equal(getFirstNamedHeaderValue(data, "Body"), undefined);
  assert.equal(getFirstNamedHeaderValue(data, "missing"), undefined);
});

Deno.test("getAllNamedHeaderValues() and getAllHeaders() list in order", () => {
  const data = enc(MSG);
  assert.deepEqual(getAllNamedHeaderValues(data, "Received"), ["one", "two"]);
  assert.deepEqual(getAllNamedHeaderValues(data, "nope"), []);
  const all = getAllHeaders(data);
  assert.deepEqual(all.map((h) => h.name), [
    "Subject",
    "X-Campaign-ID",
    "To",
    "x-tenant",
    "Received",
    "Received",
  ]);
  assert.equal(all[1].value, "c1");
});

Deno.test("decodeEncodedWords() handles B and Q in several charsets", () => {
  assert.equal(decodeEncodedWords("=?UTF-8?Q?caf=C3=A9_au?= lait"), "café au lait");
  assert.equal(decodeEncodedWords("=?utf-8?B?w6l0w6k=?="), "été");
  assert.equal(decodeEncodedWords("=?ISO-8859-1?Q?Andr=E9?= Pirard"), "André Pirard");
  assert.equal(decodeEncodedWords("=?US-ASCII?Q?Keith_Moore?="), "Keith Moore");
  // whitespace between adjacent encoded words is dropped
  assert.equal(decodeEncodedWords("=?UTF-8?Q?a?= \r\n =?UTF-8?Q?b?="), "ab");
  // a UTF-8 character split across two words
  assert.equal(decodeEncodedWords("=?UTF-8?B?ww==?= =?UTF-8?Q?=A9?="), "é");
  // unknown charset and bad encoding are left as written
  assert.equal(decodeEncodedWords("=?x-nope?Q?a?= b"), "=?x-nope?Q?a?= b");
  assert.equal(decodeEncodedWords("x =?UTF-8?Q?=ZZ?="), "x =?UTF-8?Q?=ZZ?=");
  assert.equal(decodeEncodedWords("plain"), "plain");
  // language suffix (RFC 2231)
  assert.equal(decodeEncodedWords("=?UTF-8*en?Q?hi?="), "hi");
});

Deno.test("getFirstNamedHeaderValue() decodes a folded encoded subject", () => {
  const data = enc("Subject: =?UTF-8?Q?R=C3=A9sum=C3=A9?=\r\n =?UTF-8?Q?_final?=\r\n\r\nx");
  assert.equal(getFirstNamedHeaderValue(data, "subject"), "Résumé final");
});

Deno.test("prependHeader() adds a first header and keeps the body bytes", () => {
  const body = new Uint8Array([0xff, 0xfe, 0x00, 0x80]);
  const data = new Uint8Array([...enc("A: 1\r\n\r\n"), ...body]);
  const out = prependHeader(data, "Received", "from x");
  assert.equal(dec(out.subarray(0, 26)), "Received: from x\r\nA: 1\r\n\r\n");
  assert.deepEqual(out.subarray(26), body);
});

Deno.test("prependHeader() folds long values at 78 columns", () => {
  const words = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");
  const out = dec(prependHeader(enc("\r\n"), "X-Long", words));
  const lines = out.split("\r\n");
  assert.ok(lines.length > 3);
  for (const l of lines) assert.ok(l.length <= 78, l);
  assert.ok(lines[1].startsWith(" "));
  assert.equal(getFirstNamedHeaderValue(enc(out), "x-long"), words);
});

Deno.test("prependHeader() RFC 2047-encodes when asked and round-trips", () => {
  const value = "Grüße aus Köln — ".repeat(8).trim();
  const out = prependHeader(enc("\r\n"), "Subject", value, true);
  const text = dec(out);
  assert.ok(/^[\x20-\x7e\r\n]*$/.test(text), "all ASCII");
  assert.ok(text.includes("=?UTF-8?"));
  for (const l of text.split("\r\n")) assert.ok(l.length <= 78, l);
  assert.equal(getFirstNamedHeaderValue(out, "subject"), value);
  // ASCII values are not encoded even when asked
  assert.equal(dec(prependHeader(enc("\r\n"), "S", "plain", true)), "S: plain\r\n\r\n");
  // non-ASCII without encode is written as UTF-8 (RFC 6532)
  assert.equal(dec(prependHeader(enc("\r\n"), "S", "é")), "S: é\r\n\r\n");
});

Deno.test("prependHeader() rejects header injection and bad names", () => {
  assert.throws(() => prependHeader(enc("\r\n"), "X-A", "v\r\nBcc: evil"), TypeError);
  assert.throws(() => prependHeader(enc("\r\n"), "X A", "v"), TypeError);
  assert.throws(() => prependHeader(enc("\r\n"), "X:A", "v"), TypeError);
  // already-folded values are accepted
  assert.equal(dec(prependHeader(enc("\r\n"), "X-A", "v\r\n w")), "X-A: v\r\n w\r\n\r\n");
});

Deno.test("appendHeader() inserts before the blank line, errors without one", () => {
  const out = appendHeader(enc(MSG), "X-New", "yes");
  const text = dec(out);
  assert.ok(text.includes("Received: two\r\nX-New: yes\r\n\r\nBody: not a header\r\n"));
  assert.throws(
    () => appendHeader(enc("A: 1\r\nB: 2\r\n"), "X-New", "yes"),
    /Cannot append header "X-New": message has no blank line/,
  );
});

Deno.test("removeAllNamedHeaders() removes every match, folded lines included", () => {
  const out = dec(removeAllNamedHeaders(enc(MSG), "received"));
  assert.ok(!out.includes("Received"));
  const out2 = dec(removeAllNamedHeaders(enc(MSG), "TO"));
  assert.ok(!out2.includes("b@example.com"));
  assert.ok(out2.includes("Subject: hello\r\nX-Campaign-ID: c1\r\nx-tenant: shop\r\n"));
  const data = enc(MSG);
  assert.equal(removeAllNamedHeaders(data, "nope"), data, "unchanged input is returned as is");
});

Deno.test("removeXHeaders() removes all X-* or just the named ones", () => {
  const all = dec(removeXHeaders(enc(MSG)));
  assert.ok(!all.includes("X-Campaign") && !all.includes("x-tenant"));
  assert.ok(all.includes("Subject: hello") && all.endsWith("\r\n\r\nBody: not a header\r\n"));
  const named = dec(removeXHeaders(enc(MSG), ["X-TENANT", "subject"]));
  assert.ok(!named.includes("x-tenant") && !named.includes("Subject"));
  assert.ok(named.includes("X-Campaign-ID: c1"));
});

Deno.test("importXHeaders() maps names to meta keys", () => {
  assert.deepEqual(importXHeaders(enc(MSG)), [["x_campaign_id", "c1"], ["x_tenant", "shop"]]);
  assert.deepEqual(importXHeaders(enc(MSG), ["Subject"]), [["subject", "hello"]]);
});
