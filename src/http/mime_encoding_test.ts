/**
 * Unit tests for the MIME encoders of the inject builder
 * (src/http/mime_encoding.ts). Place on the path: HTTP injection, before
 * the message is spooled.
 */
import assert from "node:assert/strict";
import { base64Lines, encodeBody, formatMailbox } from "./mime_encoding.ts";

const enc = new TextEncoder();

Deno.test("encodeBody() keeps short ASCII as 7bit and picks the smaller of QP and base64", () => {
  assert.deepEqual(encodeBody(enc.encode("hello\r\n"), true), { cte: "7bit", text: "hello\r\n" });
  assert.deepEqual(encodeBody(enc.encode("no newline"), true), {
    cte: "7bit",
    text: "no newline\r\n",
  });
  assert.equal(encodeBody(enc.encode("café au lait\r\n"), true).cte, "quoted-printable");
  assert.equal(encodeBody(enc.encode("日本語のテキスト"), true).cte, "base64");
  assert.equal(encodeBody(new Uint8Array([0, 1, 2]), false).cte, "base64");
  assert.equal(encodeBody(enc.encode("x".repeat(1200)), true).cte, "quoted-printable");
});

Deno.test("base64Lines() wraps at 76 characters", () => {
  const out = base64Lines(new Uint8Array(100));
  assert.deepEqual(out.split("\r\n").map((l) => l.length), [76, 60, 0]);
});

Deno.test("formatMailbox() quotes ASCII names and encodes others", () => {
  assert.equal(formatMailbox("To", null, "a@b.test"), "a@b.test");
  assert.equal(formatMailbox("To", 'A "B"', "a@b.test"), '"A \\"B\\"" <a@b.test>');
  assert.equal(formatMailbox("To", "Zoë", "a@b.test"), "=?UTF-8?B?Wm/Dqw==?= <a@b.test>");
});
