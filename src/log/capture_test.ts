/**
 * Unit tests for meta/header capture of the local logs (src/log/capture.ts).
 * Place on the path: beside it, when a record is written.
 */
import assert from "node:assert/strict";
import { captureHeaders, captureMeta, compileCapture, type HeaderField } from "./capture.ts";

const META = {
  tenant: "shop",
  campaign: "spring",
  x_one: 1,
  x_two: "two",
  x_null: null,
  y: { nested: true },
};

Deno.test("captureMeta() copies exact keys present and not null", () => {
  const spec = compileCapture(["tenant", "missing", "x_null"]);
  assert.deepEqual(captureMeta(spec, META), { tenant: "shop" });
});

Deno.test("captureMeta() prefix wildcard is case-sensitive", () => {
  assert.deepEqual(captureMeta(compileCapture(["x_*"]), META), { x_one: 1, x_two: "two" });
  assert.deepEqual(captureMeta(compileCapture(["X_*"]), META), {});
});

Deno.test("captureMeta() '*' copies every non-null key, exact entries first", () => {
  const out = captureMeta(compileCapture(["y", "*"]), META);
  assert.deepEqual(Object.keys(out), ["y", "tenant", "campaign", "x_one", "x_two"]);
});

Deno.test("captureMeta() with an empty list returns {}", () => {
  assert.deepEqual(captureMeta(compileCapture([]), META), {});
});

const HEADERS: HeaderField[] = [
  { name: "Subject", value: "hello" },
  { name: "X-Mailer", value: "m1" },
  { name: "Received", value: "r1" },
  { name: "x-campaign", value: "c1" },
  { name: "RECEIVED", value: "r2" },
  { name: "From", value: "a@b.example" },
];

Deno.test("captureHeaders() matches case-insensitively and keeps original spelling", () => {
  const out = captureHeaders(compileCapture(["subject", "FROM"], true), () => HEADERS);
  assert.deepEqual(out, { Subject: "hello", From: "a@b.example" });
});

Deno.test("captureHeaders() turns repeated headers into an array", () => {
  const out = captureHeaders(compileCapture(["Received"], true), () => HEADERS);
  assert.deepEqual(out, { Received: ["r1", "r2"] });
});

Deno.test("captureHeaders() prefix wildcard", () => {
  const out = captureHeaders(compileCapture(["X-*"], true), () => HEADERS);
  assert.deepEqual(out, { "X-Mailer": "m1", "x-campaign": "c1" });
  const all = captureHeaders(compileCapture(["*"], true), () => HEADERS);
  assert.equal(Object.keys(all).length, 5);
});

Deno.test("captureHeaders() does not fetch headers for an empty list", () => {
  let calls = 0;
  const out = captureHeaders(compileCapture([], true), () => {
    calls++;
    return HEADERS;
  });
  assert.deepEqual(out, {});
  assert.equal(calls, 0);
});
