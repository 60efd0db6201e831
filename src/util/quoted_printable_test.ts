/** Unit tests for quotedPrintable() (src/util/quoted_printable.ts). */
import assert from "node:assert/strict";
import { quotedPrintable } from "./quoted_printable.ts";

const enc = new TextEncoder();

Deno.test("quotedPrintable() encodes '=', trailing blanks and folds at 76 columns", () => {
  assert.equal(quotedPrintable(enc.encode("a=b \r\nc")), "a=3Db=20\r\nc=\r\n");
  const long = quotedPrintable(enc.encode("é".repeat(40)));
  for (const line of long.split("\r\n")) assert.ok(line.length <= 76, line);
  assert.equal(long.replace(/=\r\n/g, ""), "=C3=A9".repeat(40));
});

Deno.test("quotedPrintable() keeps CRLF as hard breaks and encodes a bare CR", () => {
  assert.equal(quotedPrintable(enc.encode("a\r\nb\rc\r\n")), "a\r\nb=0Dc\r\n");
});
