/**
 * Unit tests for authentication results (src/message/auth_results.ts):
 * validation of policy tables and upstream's header layout.
 */
import assert from "node:assert/strict";
import { formatAuthenticationResults, parseAuthenticationResults } from "./auth_results.ts";

Deno.test("authentication results are validated with a clear error", () => {
  const bad: [unknown, RegExp][] = [
    ["dkim=pass", /expected an array of results/],
    [[{ method: "dkim", result: "pass", extra: 1 }], /result 1: unknown field "extra"/],
    [[{ method: "", result: "pass" }], /"method" must be a non-empty string/],
    [
      [{ method: "dkim", result: "pass", reason: "a\r\nX-Injected: 1" }],
      /"reason" contains a line break/,
    ],
    [
      [{ method: "dkim", result: "pass", props: { "bad name": "x" } }],
      /invalid property name "bad name"/,
    ],
    [[{ method: "dkim", result: "pass", props: { d: 1 } }], /property "d" must be a string/],
    [[{ method: "spf", result: "pass", method_version: 1.5 }], /"method_version" must be/],
  ];
  for (const [input, re] of bad) assert.throws(() => parseAuthenticationResults(input), re);
  assert.deepEqual(parseAuthenticationResults({}), [], "an empty Lua table");
});

Deno.test("Authentication-Results layout: one folded line per result and property, quoting", () => {
  const results = parseAuthenticationResults([
    { method: "dkim", result: "pass", props: { "header.s": "s1", "header.d": "a.test" } },
    {
      method: "x-custom",
      result: "pass",
      reason: 'say "hi"',
      props: { "smtp.mailfrom": "a@b.test" },
    },
  ]);
  assert.equal(
    formatAuthenticationResults("mx.test", results),
    "mx.test;\r\n\tdkim=pass\r\n\theader.d=a.test\r\n\theader.s=s1;\r\n" +
      '\tx-custom=pass reason="say \\"hi\\""\r\n\tsmtp.mailfrom=a@b.test',
  );
  assert.equal(formatAuthenticationResults("mx.test", []), "mx.test; none");
  assert.throws(() => formatAuthenticationResults("a\r\nb", []), /Cannot use authserv-id/);
});
