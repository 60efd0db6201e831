/**
 * Unit tests for `msg:import_headers` specs (src/message/import_headers.ts):
 * validation, key transforms, match modes, first-spec-wins and removal.
 */
import assert from "node:assert/strict";
import { importHeaders, metaKeyFor, parseImportHeaderSpecs } from "./import_headers.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("import_headers specs are validated with a clear error", () => {
  const bad: [unknown, RegExp][] = [
    ["X-*", /expected an array of specs/],
    [[{}], /spec 1: "name" must be a non-empty string/],
    [[{ name: "*" }], /spec 1: name "\*": only one trailing "\*"/],
    [[{ name: "*-Id" }], /only one trailing/],
    [[{ name: "X-*-Y" }], /only one trailing/],
    [[{ name: "A" }, { name: "B", match: "middle" }], /spec 2: match "middle"/],
    [[{ name: "A", transform: "UPPER" }], /transform "UPPER"/],
    [[{ name: "X-*", target: "t" }], /target "t": not allowed with the wildcard name "X-\*"/],
    [[{ name: "A", remove: "yes" }], /"remove" must be a boolean/],
    [[{ name: "A", extra: 1 }], /unknown field "extra"/],
  ];
  for (const [input, re] of bad) assert.throws(() => parseImportHeaderSpecs(input), re);
  assert.deepEqual(parseImportHeaderSpecs({}), [], "an empty Lua table");
});

Deno.test("import_headers key transforms follow the header name as written", () => {
  assert.equal(metaKeyFor("X-Campaign-Id", "snake_case"), "x_campaign_id");
  assert.equal(metaKeyFor("X-Campaign-Id", "kebab_case"), "x-campaign-id");
  assert.equal(metaKeyFor("X-Campaign-Id", "camel_case"), "xCampaignId");
  assert.equal(metaKeyFor("X-Campaign-Id", "pascal_case"), "XCampaignId");
  assert.equal(metaKeyFor("MESSAGE-ID", "camel_case"), "messageId");
});

Deno.test("import_headers: match modes, first spec wins, remove, nothing for no match", () => {
  const data = enc("A: 1\r\nX-B: 2\r\nA: 3\r\nX-C: 4\r\nX-B: 5\r\n\r\nbody\r\n");
  const r = importHeaders(
    data,
    parseImportHeaderSpecs([
      { name: "a", match: "first" },
      { name: "X-B", match: "all", target: "bees" },
      { name: "x-*", remove: true },
      { name: "Missing", match: "all" },
    ]),
  );
  assert.deepEqual(r.meta, [["a", "1"], ["bees", ["2", "5"]], ["x_c", "4"]]);
  assert.equal(dec(r.data), "A: 1\r\nX-B: 2\r\nA: 3\r\nX-B: 5\r\n\r\nbody\r\n");
  const last = importHeaders(data, parseImportHeaderSpecs([{ name: "A" }]));
  assert.deepEqual(last.meta, [["a", "3"]], "match defaults to last");
  assert.equal(last.data, data, "nothing removed: the same bytes");
});
