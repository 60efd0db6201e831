/**
 * Unit tests for normalizeSmtpResponse() (src/util/normalize_smtp_response.ts):
 * the tokens of KumoMTA's normalizer on typical response lines.
 */
import assert from "node:assert/strict";
import { loadNormalizerDictionary, normalizeSmtpResponse } from "./normalize_smtp_response.ts";

Deno.test("normalizeSmtpResponse() tokenizes per-transaction words", async () => {
  await loadNormalizerDictionary();
  const cases: [string, string][] = [
    ["250 OK ids=8a5475ccbbc611eda12250ebf67f93bd", "250 OK ids={uuid}"],
    ["421 4.1.0 192.0.2.7 throttled, try later", "421 4.1.0 {ipaddr} throttled, try later"],
    ["451 from [2001:db8::1]:25 deferred", "451 from {ipaddr} 25 deferred"],
    ["550 5.1.1 <ana@example.test>: unknown", "550 5.1.1 <ana@example.test>: unknown"],
    ["550 mailbox ana.b@example.test is full", "550 mailbox {email} is full"],
    ["retry at 2026-01-02T03:04:05.123Z please", "retry at {timestamp} please"],
    ["queued as 1f0e2d3c-4b5a-4978-8c6d-5e4f3a2b1c0d", "queued as {uuid}"],
    ["token dGVzdGluZzEy and dGVzdA==", "token {base64} and {base64}"],
    ["ref a640c23a62f3a-ab67626ed70.465 - gsmtp", "ref {hash} - gsmtp"],
    ["next due in 4m 59s 998ms at noon", "next due in {duration} at noon"],
    ["window P1DT2H over", "window {duration} over"],
    ["this mail user text", "this mail user text"],
    ["rejected (see RFC5322) now", "rejected see RFC5322 now"],
    ["  many   spaces\r\n here ", "many spaces here"],
  ];
  const wrong = cases.filter(([i, w]) => normalizeSmtpResponse(i) !== w).map(([i, w]) =>
    `${i} => ${normalizeSmtpResponse(i)} (want ${w})`
  );
  assert.deepEqual(wrong, []);
});
