/**
 * Unit tests for the config schema combinators (src/policy/config/schema.ts)
 * and their serde-worded errors. Place on the path: under every policy
 * config parser.
 */
import assert from "node:assert/strict";
import {
  array,
  bool,
  cidrMap,
  convert,
  dflt,
  duration,
  enumOf,
  int,
  keySource,
  map,
  object,
  oneOf,
  opt,
  partial,
  req,
  string,
} from "./schema.ts";
import { ConfigError } from "../../util/config_error.ts";

const T = object({
  name: req(string()),
  count: dflt(int({ min: 1, name: "usize" }), 3),
  on: opt(bool()),
  wait: dflt(duration(), 60_000),
  mode: dflt(enumOf(["Fast", "Slow"] as const), "Fast"),
  tags: dflt(array(string()), () => []),
  labels: dflt(map(string()), () => ({})),
}, { name: "T" });

Deno.test("object() fills defaults and camelCases keys", () => {
  assert.deepEqual(convert(T, { name: "a" }), {
    name: "a",
    count: 3,
    on: undefined,
    wait: 60_000,
    mode: "Fast",
    tags: [],
    labels: {},
  });
});

Deno.test("object() rejects unknown keys in serde wording", () => {
  assert.throws(() => convert(T, { name: "a", bogus: 1 }), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(
      e.message,
      'deserialize error: unknown field `bogus`, expected one of `name`, `count`, `on`, `wait`, `mode`, `tags`, `labels`, while processing {"name":"a","bogus":1}',
    );
    return true;
  });
  const two = object({ a: opt(string()), b: opt(string()) });
  assert.throws(() => convert(two, { c: 1 }), /unknown field `c`, expected `a` or `b`,/);
  assert.throws(() => convert(object({}), { c: 1 }), /unknown field `c`, there are no fields/);
});

Deno.test("object() reports missing fields and wrong types", () => {
  assert.throws(
    () => convert(T, {}),
    /^ConfigError: deserialize error: missing field `name`, while processing \{\}$/,
  );
  assert.throws(
    () => convert(T, { name: 5 }),
    /deserialize error: invalid type: integer `5`, expected a string, while processing/,
  );
  assert.throws(
    () => convert(T, { name: "a", count: 1.5 }),
    /invalid type: floating point `1.5`, expected usize/,
  );
  assert.throws(
    () => convert(T, { name: "a", count: 0 }),
    /invalid value: integer `0`, expected usize/,
  );
  assert.throws(
    () => convert(T, { name: "a", on: "yes" }),
    /invalid type: string "yes", expected a boolean/,
  );
  assert.throws(
    () => convert(T, { name: "a", tags: "x" }),
    /invalid type: string "x", expected a sequence/,
  );
  assert.throws(
    () => convert(T, { name: "a", labels: ["x"] }),
    /invalid type: sequence, expected a map/,
  );
  assert.throws(() => convert(T, ["x"]), /invalid type: sequence, expected struct T/);
  assert.throws(
    () => convert(T, { name: "a", wait: "5 parsecs" }),
    /deserialize error: .*"5 parsecs".*while processing/,
  );
});

Deno.test("object() error carries the dotted key", () => {
  const outer = object({ inner: req(object({ x: req(int()) })) });
  try {
    convert(outer, { inner: { x: "no" } });
    assert.fail("expected an error");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.key, "inner.x");
  }
});

Deno.test("enums are case-sensitive", () => {
  assert.throws(
    () => convert(T, { name: "a", mode: "fast" }),
    /unknown variant `fast`, expected `Fast` or `Slow`/,
  );
  assert.equal(convert(T, { name: "a", mode: "Slow" }).mode, "Slow");
});

Deno.test("empty Lua tables arrive as {} or [] for lists, maps and structs", () => {
  const x = convert(T, { name: "a", tags: {}, labels: [] });
  assert.deepEqual(x.tags, []);
  assert.deepEqual(x.labels, {});
  assert.deepEqual(convert(T, { name: "a", tags: { "1": "p", "2": "q" } }).tags, ["p", "q"]);
  assert.deepEqual(convert(object({ a: dflt(int(), 1) }), []), { a: 1 });
});

Deno.test("toJSON() gives snake_case keys and humantime durations", () => {
  const x = convert(T, { name: "a", wait: 5400 });
  assert.deepEqual(T.toJSON(x), {
    name: "a",
    count: 3,
    wait: "1h 30m",
    mode: "Fast",
    tags: [],
    labels: {},
  });
});

Deno.test("keySource() accepts the four shapes", () => {
  const K = object({ k: req(keySource()) });
  assert.deepEqual(convert(K, { k: "/etc/key.pem" }).k, { kind: "file", path: "/etc/key.pem" });
  assert.deepEqual(convert(K, { k: { key_data: "PEM" } }).k, { kind: "data", data: "PEM" });
  assert.deepEqual(convert(K, { k: { vault_mount: "secret", vault_path: "dkim/x" } }).k, {
    kind: "vault",
    mount: "secret",
    path: "dkim/x",
    key: "key",
    address: undefined,
    token: undefined,
  });
  assert.deepEqual(convert(K, { k: { event_name: "get_key", event_args: ["a", 1] } }).k, {
    kind: "event",
    eventName: "get_key",
    eventArgs: ["a", 1],
  });
  assert.throws(
    () => convert(K, { k: { foo: 1 } }),
    /did not match any variant of untagged enum KeySource/,
  );
  assert.throws(() => convert(K, { k: { key_data: "x", extra: 1 } }), /unknown field `extra`/);
  const src = { k: { vault_mount: "m", vault_path: "p", vault_key: "v", vault_token: "t" } };
  assert.deepEqual(K.toJSON(convert(K, src)), src);
});

Deno.test("cidrMap() with partial structs", () => {
  const P = object({ banner: dflt(string(), "x"), n: dflt(int(), 1) });
  const M = object({ peer: opt(cidrMap(partial(P))) });
  const m = convert(M, { peer: { "10.0.0.0/8": { banner: "b" } } }).peer!;
  assert.deepEqual(m.get("10.2.3.4"), { banner: "b", n: undefined });
  assert.throws(
    () => convert(M, { peer: { "10.0.0.0/8": { bogus: 1 } } }),
    /unknown field `bogus`, expected `banner` or `n`/,
  );
});

Deno.test("oneOf() follows serde", () => {
  assert.equal(oneOf(["a"]), "`a`");
  assert.equal(oneOf(["a", "b"]), "`a` or `b`");
  assert.equal(oneOf(["a", "b", "c"]), "one of `a`, `b`, `c`");
});
