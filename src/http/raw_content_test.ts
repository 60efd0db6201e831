/**
 * Unit tests for the raw-content rebuild of the inject API
 * (src/http/raw_content.ts, src/http/mime_parse.ts; http-api.md §3.2):
 * leaves decoded and re-encoded, Content-Type first, headers kept in order,
 * MIME-Version added, multipart trees walked, parse failures thrown.
 * Results are read back with postal-mime.
 */
import assert from "node:assert/strict";
import PostalMime from "postal-mime";
import { prepareRawMessage } from "./raw_content.ts";
import { decodeQuotedPrintableBody, parseContentType, splitMultipart } from "./mime_parse.ts";

const dec = new TextDecoder();
const text = (s: string) => dec.decode(prepareRawMessage(s));

Deno.test("prepareRawMessage() re-encodes an 8-bit body as quoted-printable UTF-8", () => {
  assert.equal(
    text("From: a@x.test\nSubject: hi\n\ncafé crème\n"),
    'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n' +
      "From: a@x.test\r\nSubject: hi\r\nMIME-Version: 1.0\r\n\r\ncaf=C3=A9 cr=C3=A8me\r\n",
  );
});

Deno.test("prepareRawMessage() keeps ASCII 7bit and puts Content-Type before the other fields", () => {
  assert.equal(
    text(
      "Subject: x\r\nContent-Transfer-Encoding: 8bit\r\nMIME-Version: 1.0\r\n" +
        "Content-Type: text/plain; format=flowed; charset=iso-8859-1\r\n\r\nplain\r\n",
    ),
    'Content-Type: text/plain; charset="us-ascii"; format=flowed\r\n' +
      "Subject: x\r\nMIME-Version: 1.0\r\n\r\nplain\r\n",
  );
});

Deno.test("prepareRawMessage() encodes non-ASCII header text as RFC 2047 words", () => {
  const out = text("Subject: Grüße\n\nx\n");
  assert.match(out, /\r\nSubject: =\?UTF-8\?[BQ]\?[^\r]+\?=\r\n/);
});

Deno.test("prepareRawMessage() walks multiparts: decodes base64/QP/latin-1, keeps boundary and Content-ID", async () => {
  const png = new Uint8Array(300).map((_, i) => (i * 7) & 0xff);
  const pngB64 = btoa(String.fromCharCode(...png)).replace(/.{60}/g, "$&\n");
  const raw = [
    "From: shop@x.test",
    "Subject: multi",
    'Content-Type: multipart/related; boundary="outer"',
    "",
    "This is a preamble.",
    "--outer",
    "Content-Type: multipart/alternative; boundary=inner",
    "",
    "--inner",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: base64",
    "",
    btoa(String.fromCharCode(...new TextEncoder().encode("Grüß dich\n"))),
    "--inner",
    "Content-Type: text/html; charset=iso-8859-1",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "<p>Gr=FC=DF dich, this line is long enough to need a soft break in QP =",
    "encoding</p>",
    "--inner--",
    "--outer",
    "Content-Type: image/png; name=logo.png",
    "Content-Transfer-Encoding: base64",
    "Content-ID: <logo@x.test>",
    "Content-Disposition: inline",
    "",
    pngB64,
    "--outer--",
    "epilogue",
    "",
  ].join("\n");
  const out = text(raw);
  assert.ok(out.startsWith('Content-Type: multipart/related; boundary="outer"\r\nFrom: '), out);
  assert.ok(!out.includes("preamble") && !out.includes("epilogue"), out);
  assert.match(out, /\r\n--inner\r\nContent-Type: text\/plain; charset="utf-8"\r\n/);
  assert.match(out, /Content-Type: text\/html; charset="utf-8"\r\n/);
  assert.match(
    out,
    /Content-Type: image\/png; name=logo\.png\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <logo@x\.test>\r\nContent-Disposition: inline\r\n/,
  );
  for (const line of out.split("\r\n")) assert.ok(line.length <= 78, line);
  const parsed = await PostalMime.parse(prepareRawMessage(raw));
  assert.equal(parsed.text, "Grüß dich\n");
  assert.equal(
    parsed.html,
    "<p>Grüß dich, this line is long enough to need a soft break in QP encoding</p>",
  );
  assert.equal(parsed.attachments.length, 1);
  assert.equal(parsed.attachments[0].contentId, "<logo@x.test>");
  assert.deepEqual(new Uint8Array(parsed.attachments[0].content as ArrayBuffer), png);
});

Deno.test("prepareRawMessage() rebuilds a message/rfc822 part and keeps an unknown encoding", () => {
  const out = text(
    'Subject: fwd\nContent-Type: multipart/mixed; boundary="b"\n\n--b\n' +
      "Content-Type: message/rfc822\n\nSubject: inner\n\nnaïve text body\n--b\n" +
      "Content-Type: application/octet-stream\nContent-Transfer-Encoding: x-uuencode\n\n" +
      "begin 644 x\n--b--\n",
  );
  assert.match(
    out,
    /--b\r\nContent-Type: message\/rfc822\r\n\r\nContent-Type: text\/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\nSubject: inner\r\n\r\nna=C3=AFve text body=\r\n--b\r\n/,
  );
  assert.match(out, /Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n--b--\r\n$/);
});

Deno.test("prepareRawMessage() throws for text that is not a message", () => {
  assert.throws(() => prepareRawMessage("no header here\n\nbody"), SyntaxError);
  assert.throws(() => prepareRawMessage("\nbody only"), /no headers/);
  assert.throws(
    () => prepareRawMessage("Content-Type: multipart/mixed\n\n--x\n\nhi\n--x--\n"),
    /without a boundary/,
  );
  assert.throws(
    () => prepareRawMessage('Content-Type: multipart/mixed; boundary="b"\n\nno parts\n'),
    /boundary "b" not found/,
  );
});

Deno.test("mime_parse helpers: content-type params, multipart split, QP decode", () => {
  const ct = parseContentType(`Text/Plain; Charset="utf-8"; name*=utf-8''%C3%BC.txt`)!;
  assert.equal(ct.type, "text");
  assert.equal(ct.params.get("charset"), "utf-8");
  assert.equal(ct.params.get("name"), "ü.txt");
  assert.deepEqual(splitMultipart("pre\r\n--b\r\nA\r\n--b \r\nB\r\n--b--\r\nend", "b"), ["A", "B"]);
  assert.equal(dec.decode(decodeQuotedPrintableBody("a=3Db  \r\nc=\r\nd")), "a=b\r\ncd");
});
