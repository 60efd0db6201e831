import assert from "node:assert/strict";
import { checkConformance, checkFixConformance, parseConformanceFlags } from "./conformance.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const latin1 = (b: Uint8Array) => String.fromCharCode(...b);
const GOOD = "Date: Sun, 1 Mar 2026 10:00:00 +0000\r\nMessage-ID: <a@b.test>\r\n" +
  "MIME-Version: 1.0\r\nSubject: hi\r\n\r\nbody\r\n";
const ctx = { id: "abc123", hostname: "mx.test", nowMs: Date.UTC(2026, 2, 1, 10, 0, 0) };

Deno.test("parseConformanceFlags() takes A|B lists and refuses unknown names", () => {
  assert.deepEqual(
    [...parseConformanceFlags(" LINE_TOO_LONG | MISSING_DATE_HEADER")],
    ["LINE_TOO_LONG", "MISSING_DATE_HEADER"],
  );
  assert.equal(parseConformanceFlags("").size, 0);
  assert.throws(() => parseConformanceFlags("LINE_TOO_LONG|BOGUS"), /flag "BOGUS"/);
});

Deno.test("checkConformance() finds each issue", () => {
  assert.deepEqual([...checkConformance(enc(GOOD))], []);
  const bad = "Subject : x\nNo colon here\r\n\r\n" + "y".repeat(1000) + "\r\ncaf\xe9\r\n";
  const bytes = Uint8Array.from(bad, (c) => c.charCodeAt(0));
  assert.deepEqual([...checkConformance(bytes)].sort(), [
    "LINE_TOO_LONG",
    "MISSING_COLON_VALUE",
    "MISSING_DATE_HEADER",
    "MISSING_MESSAGE_ID_HEADER",
    "MISSING_MIME_VERSION",
    "NAME_ENDS_WITH_SPACE",
    "NEEDS_TRANSFER_ENCODING",
    "NON_CANONICAL_LINE_ENDINGS",
  ]);
  // A folded continuation line is not a missing colon; 8-bit under 8bit CTE is fine.
  const ok8 = "Date: x\r\nMessage-ID: <a@b>\r\nMIME-Version: 1.0\r\nSubject: a\r\n b\r\n" +
    "Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9\r\n";
  assert.deepEqual([...checkConformance(Uint8Array.from(ok8, (c) => c.charCodeAt(0)))], []);
});

Deno.test("checkFixConformance() fixes what it is asked to and reports the rest", () => {
  const none = checkFixConformance(
    enc(GOOD),
    parseConformanceFlags("LINE_TOO_LONG"),
    new Set(),
    ctx,
  );
  assert.deepEqual(none, {});

  const r = checkFixConformance(
    enc("Subject : hi\nX: y\n\nbody\n"),
    parseConformanceFlags("MISSING_COLON_VALUE|NAME_ENDS_WITH_SPACE|MISSING_DATE_HEADER"),
    parseConformanceFlags(
      "NON_CANONICAL_LINE_ENDINGS|NAME_ENDS_WITH_SPACE|MISSING_DATE_HEADER|MISSING_MESSAGE_ID_HEADER|MISSING_MIME_VERSION",
    ),
    ctx,
  );
  assert.equal(r.error, undefined);
  assert.equal(
    latin1(r.data!),
    "Subject: hi\r\nX: y\r\nDate: Sun, 01 Mar 2026 10:00:00 +0000\r\n" +
      "Message-ID: <abc123@mx.test>\r\nMIME-Version: 1.0\r\n\r\nbody\r\n",
  );

  const unfixable = checkFixConformance(
    enc("Subject: a\r\nbroken\r\n\r\nx\r\n"),
    parseConformanceFlags("MISSING_COLON_VALUE|MISSING_DATE_HEADER"),
    parseConformanceFlags("MISSING_COLON_VALUE"),
    ctx,
  );
  assert.equal(
    unfixable.error,
    "Message has conformance issues: MISSING_COLON_VALUE|MISSING_DATE_HEADER",
  );
  assert.equal(unfixable.data, undefined, "nothing changed");
});

Deno.test("checkFixConformance() re-encodes a long or 8-bit single-part body as quoted-printable", () => {
  const src = GOOD.replace("body\r\n", "caf\xe9 " + "z".repeat(1200) + "\r\n");
  const r = checkFixConformance(
    Uint8Array.from(src, (c) => c.charCodeAt(0)),
    parseConformanceFlags("LINE_TOO_LONG|NEEDS_TRANSFER_ENCODING"),
    parseConformanceFlags("LINE_TOO_LONG|NEEDS_TRANSFER_ENCODING"),
    ctx,
  );
  assert.equal(r.error, undefined);
  const out = latin1(r.data!);
  assert.match(out, /\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 z+=\r\n/);
  assert.ok(out.split("\r\n").every((l) => l.length <= 76));
  assert.deepEqual([...checkConformance(r.data!)], []);
});
