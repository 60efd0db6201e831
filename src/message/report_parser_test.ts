/**
 * Unit tests for the RFC 3464 / RFC 5965 report parsers
 * (src/message/report_parser.ts). Place on the path: end of DATA for
 * OOB/ARF listener domains, and `msg:parse_rfc*()`.
 */
import assert from "node:assert/strict";
import { decodeSupplementalTrace, parseRfc3464, parseRfc5965 } from "./report_parser.ts";

const enc = (s: string) => new TextEncoder().encode(s.replace(/\n/g, "\r\n"));

const DSN = `From: MAILER-DAEMON@mx.test
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.remote.test
X-Postfix-Queue-ID: 123

Final-Recipient: rfc822; <ana@remote.test>
Action: Failed
Status: 5.1.1 (no such user)
Remote-MTA: dns; mx2.remote.test
Diagnostic-Code: smtp; 550 5.1.1 user unknown

--b
Content-Type: message/rfc822

From: a@shop.test

hi
--b--
`;

Deno.test("parseRfc3464() reads per-message and per-recipient fields", async () => {
  const r = (await parseRfc3464(enc(DSN)))!;
  assert.deepEqual(r.per_message.reporting_mta, { mta_type: "dns", name: "mx.remote.test" });
  assert.deepEqual(r.per_message.extensions, { "x-postfix-queue-id": ["123"] });
  const e = r.per_recipient[0];
  assert.equal(e.action, "failed");
  assert.deepEqual(e.final_recipient, { recipient_type: "rfc822", recipient: "ana@remote.test" });
  assert.deepEqual(e.status, { class: 5, subject: 1, detail: 1, comment: "(no such user)" });
  assert.deepEqual(e.remote_mta, { mta_type: "dns", name: "mx2.remote.test" });
  assert.equal(e.diagnostic_code?.diagnostic, "550 5.1.1 user unknown");
  assert.equal(r.original_message, "From: a@shop.test\n\nhi\n");
});

Deno.test("parseRfc3464() / parseRfc5965() return null for ordinary mail", async () => {
  const plain = enc("From: a@b.test\nSubject: hi\n\nbody\n");
  assert.equal(await parseRfc3464(plain), null);
  assert.equal(await parseRfc5965(plain), null);
  assert.equal(await parseRfc5965(enc(DSN)), null);
});

Deno.test("parseRfc5965() requires Feedback-Type, User-Agent and Version", async () => {
  const arf = `Content-Type: multipart/report; report-type=feedback-report; boundary="b"

--b
Content-Type: message/feedback-report

Feedback-Type: abuse
Version: 1

--b--
`;
  await assert.rejects(() => parseRfc5965(enc(arf)), /user-agent/);
});

Deno.test("decodeSupplementalTrace() finds the marked X- header", () => {
  const v = btoa(JSON.stringify({ "_@_": "\\_/", recipient: "a@b.test" }));
  const other = btoa(JSON.stringify({ recipient: "nope" }));
  assert.deepEqual(
    decodeSupplementalTrace(`X-Other: ${other}\nX-KumoRef: ${v.slice(0, 10)}\n ${v.slice(10)}\n\n`),
    { recipient: "a@b.test" },
  );
  assert.equal(decodeSupplementalTrace(`X-Other: ${other}\n\n`), null);
});

const ARF_HEAD = `Content-Type: multipart/report; report-type=feedback-report; boundary="b"

--b
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ua/1
Version: 1
Received-Date: Thu, 8 Mar 2026 14:00:00 +0000

--b
Content-Type: message/rfc822

`;

Deno.test("parseRfc5965() takes Received-Date when Arrival-Date is absent", async () => {
  const r = (await parseRfc5965(enc(`${ARF_HEAD}From: a@shop.test\n\nhi\n--b--\n`)))!;
  assert.equal(r.arrival_date, "2026-03-08T14:00:00Z");
  assert.deepEqual(r.extensions, {}, "Received-Date is not an extension");
  assert.equal(r.original_message, "From: a@shop.test\n\nhi\n");
});

Deno.test("parseRfc5965() emits a non-UTF-8 original message as its bytes, CRLF → LF", async () => {
  const head = enc(ARF_HEAD);
  const body = Uint8Array.from([
    ...new TextEncoder().encode("Subject: caf"),
    0xe9, // Latin-1 "é": not UTF-8
    0x0d,
    0x0a,
    0x0d,
    0x0a,
    0x78,
    0x0d,
    0x0a,
    ...new TextEncoder().encode("--b--\r\n"),
  ]);
  const data = new Uint8Array(head.length + body.length);
  data.set(head);
  data.set(body, head.length);
  const r = (await parseRfc5965(data))!;
  assert.deepEqual(r.original_message, [
    ...new TextEncoder().encode("Subject: caf"),
    0xe9,
    0x0a,
    0x0a,
    0x78,
    0x0a,
  ]);
});

Deno.test("parseRfc5965() requires report-type=feedback-report", async () => {
  const other = ARF_HEAD.replace("report-type=feedback-report", "report-type=delivery-status");
  assert.equal(await parseRfc5965(enc(`${other}From: a@shop.test\n\nhi\n--b--\n`)), null);
  const none = ARF_HEAD.replace("report-type=feedback-report; ", "");
  assert.equal(await parseRfc5965(enc(`${none}From: a@shop.test\n\nhi\n--b--\n`)), null);
});

Deno.test("parseRfc3464() is null for other reports, throws for a delivery-status report without its part", async () => {
  assert.equal(await parseRfc3464(enc(`${ARF_HEAD}From: a@shop.test\n\nhi\n--b--\n`)), null);
  const noType = ARF_HEAD.replace("report-type=feedback-report; ", "");
  assert.equal(await parseRfc3464(enc(`${noType}From: a@shop.test\n\nhi\n--b--\n`)), null);
  const broken = ARF_HEAD.replace("report-type=feedback-report", "report-type=delivery-status");
  await assert.rejects(
    () => parseRfc3464(enc(`${broken}From: a@shop.test\n\nhi\n--b--\n`)),
    /delivery-status part missing/,
  );
});
