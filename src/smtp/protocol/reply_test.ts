// Golden tables for reply formatting, SmtpError and the incremental ReplyParser.
import assert from "node:assert/strict";
import {
  formatReply,
  formatSmtpReply,
  parseEnhancedCode,
  ReplyParser,
  ReplySyntaxError,
  SmtpError,
  type SmtpReply,
} from "./reply.ts";

const enc = new TextEncoder();

Deno.test("formatReply() renders single and multi-line replies", () => {
  assert.equal(formatReply(250, "OK"), "250 OK\r\n");
  assert.equal(formatReply(334, ""), "334 \r\n");
  assert.equal(
    formatReply(250, "mx.test Aloha c.test\nPIPELINING\nENHANCEDSTATUSCODES"),
    "250-mx.test Aloha c.test\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n",
  );
  assert.equal(formatReply(250, "a\r\nb"), "250-a\r\n250 b\r\n");
});

Deno.test("formatSmtpReply() puts the enhanced code on every line", () => {
  assert.equal(
    formatSmtpReply({
      code: 552,
      enhanced: { class: 5, subject: 3, detail: 4 },
      text: "message too big",
    }),
    "552 5.3.4 message too big\r\n",
  );
  assert.equal(
    formatSmtpReply({ code: 550, enhanced: { class: 5, subject: 7, detail: 1 }, text: "a\nb" }),
    "550-5.7.1 a\r\n550 5.7.1 b\r\n",
  );
});

Deno.test("parseEnhancedCode() follows logs.md §1.1", () => {
  const table: [string, ReturnType<typeof parseEnhancedCode>][] = [
    ["5.7.1 denied", { class: 5, subject: 7, detail: 1 }],
    ["2.0.0 ok", { class: 2, subject: 0, detail: 0 }],
    ["4.4.123 x", { class: 4, subject: 4, detail: 123 }],
    ["3.1.1 x", null],
    ["5.7.1", null],
    ["5.7 x", null],
    ["5.7.1234 x", null],
    ["denied 5.7.1 x", null],
    ["", null],
  ];
  for (const [text, want] of table) assert.deepEqual(parseEnhancedCode(text), want, text);
});

Deno.test("SmtpError carries its own reply in both constructor forms", () => {
  const a = new SmtpError(550, "5.7.1 relaying not permitted");
  assert.deepEqual(a.reply, {
    code: 550,
    enhanced: { class: 5, subject: 7, detail: 1 },
    text: "relaying not permitted",
  });
  assert.equal(a.toWire(), "550 5.7.1 relaying not permitted\r\n");
  assert.equal(a.closesConnection, false);
  assert.ok(a instanceof Error);
  const b = new SmtpError(421, "4.3.2", "mx.test shutting down");
  assert.equal(b.toWire(), "421 4.3.2 mx.test shutting down\r\n");
  assert.equal(b.closesConnection, true);
  assert.equal(b.code, 421);
  assert.equal(new SmtpError(250, "OK ids=1").toWire(), "250 OK ids=1\r\n");
});

/** Feed chunks in order; collect every reply. */
function feedAll(chunks: (string | Uint8Array)[]): SmtpReply[] {
  const p = new ReplyParser();
  const out: SmtpReply[] = [];
  for (const c of chunks) out.push(...p.feed(c));
  assert.equal(p.pending, false);
  return out;
}

Deno.test("ReplyParser handles pipelined, multi-line and split replies", () => {
  const table: [string, (string | Uint8Array)[], SmtpReply[]][] = [
    ["single", ["220 mx.test ESMTP\r\n"], [{ code: 220, text: "mx.test ESMTP" }]],
    [
      "multi-line in one chunk",
      ["250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"],
      [{ code: 250, text: "mx.test\nPIPELINING\n8BITMIME" }],
    ],
    [
      "pipelined replies in one chunk",
      ["250 2.1.0 ok\r\n550 5.1.1 no such user\r\n250 2.1.5 ok\r\n354 go\r\n"],
      [
        { code: 250, enhanced: { class: 2, subject: 1, detail: 0 }, text: "ok" },
        { code: 550, enhanced: { class: 5, subject: 1, detail: 1 }, text: "no such user" },
        { code: 250, enhanced: { class: 2, subject: 1, detail: 5 }, text: "ok" },
        { code: 354, text: "go" },
      ],
    ],
    [
      "split mid-line and mid-CRLF",
      ["25", "0 O", "K\r", "\n", "221 b", "ye\r\n"],
      [{ code: 250, text: "OK" }, { code: 221, text: "bye" }],
    ],
    [
      "multi-line split between lines",
      ["250-a\r\n", "250-b\r\n250", " c\r\n"],
      [{ code: 250, text: "a\nb\nc" }],
    ],
    [
      "enhanced code repeated on continuation lines",
      ["550-5.7.1 first\r\n550-5.7.1 second\r\n550 third\r\n"],
      [{ code: 550, enhanced: { class: 5, subject: 7, detail: 1 }, text: "first\nsecond\nthird" }],
    ],
    ["bare code and bare LF", ["250\n", "354 \n"], [{ code: 250, text: "" }, {
      code: 354,
      text: "",
    }]],
    [
      "UTF-8 split across byte chunks",
      [enc.encode("550 ü").subarray(0, 5), enc.encode("550 ü\r\n").subarray(5)],
      [{ code: 550, text: "ü" }],
    ],
    ["no enhanced code without trailing space", ["250 2.0.0\r\n"], [{ code: 250, text: "2.0.0" }]],
  ];
  for (const [name, chunks, want] of table) assert.deepEqual(feedAll(chunks), want, name);
});

Deno.test("ReplyParser reports pending partial replies", () => {
  const p = new ReplyParser();
  assert.deepEqual(p.feed("250-a\r\n"), []);
  assert.equal(p.pending, true);
  assert.deepEqual(p.feed(enc.encode("250 b\r\n")), [{ code: 250, text: "a\nb" }]);
  assert.equal(p.pending, false);
});

Deno.test("ReplyParser rejects lines that are not replies", () => {
  for (const bad of ["hello\r\n", "25\r\n", "250_x\r\n", "600 x\r\n", "1xx\r\n"]) {
    assert.throws(() => new ReplyParser().feed(bad), ReplySyntaxError, bad);
  }
  const p = new ReplyParser({ maxLength: 10 });
  assert.throws(() => p.feed("250 " + "x".repeat(20)), /line too long/);
  const q = new ReplyParser({ maxLength: 10 });
  assert.throws(() => q.feed("250-abcdef\r\n250-ghijkl\r\n"), /multi-line reply too long/);
});
