/**
 * policy-extras.policy_utils and policy-extras.typing, loaded with
 * `require` from a policy in a temp dir (the bundled copies are served when
 * /opt/kumomta/share/policy-extras does not hold them).
 */
import assert from "node:assert/strict";
import { loadPolicy } from "./support/policy_engine.ts";

Deno.test("require 'policy-extras.policy_utils' from a temp-dir policy runs its self-test", async () => {
  using p = await loadPolicy(
    `
local utils = require 'policy-extras.policy_utils'
local typing = require 'policy-extras.typing'
kumo.on('t', function()
  return utils:test() and typing:test()
end)
kumo.on('split', function(s) return table.pack(utils.split_ip_port(s)) end)
kumo.on('load', function(name) return utils.load_json_or_toml_file(name) end)
`,
    {
      "d.toml": 'a = 1\n[b]\nc = "x"\n',
      "d.json": '{ "a": 2, // comment\n "b": {"c": "y"} }',
    },
  );
  assert.equal(await p.engine.callOrThrow("t", "", []), true);
  assert.deepEqual(await p.engine.callOrThrow("split", "s", ["[::1]:25"]), {
    1: "::1",
    2: 25,
    n: 2,
  });
  assert.deepEqual(await p.engine.callOrThrow("load", "s", [`${p.dir}/d.toml`]), {
    a: 1,
    b: { c: "x" },
  });
  assert.deepEqual(await p.engine.callOrThrow("load", "s", [`${p.dir}/d.json`]), {
    a: 2,
    b: { c: "y" },
  });
});

Deno.test("typing: record, map, list and enum errors use upstream's wording", async () => {
  using p = await loadPolicy(`
local typing = require 'policy-extras.typing'
local Color = typing.enum('Color', { 'Red', 'Green' })
local R = typing.record('Thing', {
  name = typing.string,
  tags = typing.option(typing.list(typing.string)),
  color = typing.default(Color, 'Red'),
  _dynamic = typing.constructor_validator(kumo.make_listener_domain, {}),
})
local M = typing.map(typing.string, R)
kumo.on('check', function(v)
  local ok, err = M:validate(v)
  if ok then return v end
  return err
end)
`);
  const check = (v: unknown) => p.engine.callOrThrow("check", "t", [v]);
  assert.deepEqual(await check({ a: { name: "x", relay_to: true } }), {
    a: { name: "x", relay_to: true, color: "Red" },
  });
  assert.equal(
    await check({ a: { name: 1 } }),
    "map<string,Thing>: invalid value for key 'a'\nThing: invalid value for field 'name'\nExpected 'string', got 'number' 1",
  );
  assert.equal(
    await check({ a: { name: "x", bogus: 1 } }),
    "map<string,Thing>: invalid value for key 'a'\nThing: unknown field 'bogus'",
  );
  assert.equal(
    await check({ a: { name: "x", relay_to: "yes" } }),
    "map<string,Thing>: invalid value for key 'a'\nThing: invalid value for field 'relay_to'\ninvalid type: string \"yes\", expected a boolean",
  );
  assert.equal(
    await check({ a: {} }),
    "map<string,Thing>: invalid value for key 'a'\nThing: missing value for field 'name' of type 'string'",
  );
  assert.equal(
    await check({ a: { name: "x", color: "Blue" } }),
    "map<string,Thing>: invalid value for key 'a'\nThing: invalid value for field 'color'\nUnexpected 'Color' value 'Blue', expected one of 'Red', 'Green'",
  );
  assert.equal(
    await check({ a: { name: "x", tags: ["a", 2] } }),
    "map<string,Thing>: invalid value for key 'a'\nThing: invalid value for field 'tags'\nlist<string>: invalid value for idx 2\nExpected 'string', got 'number' 2",
  );
});
