import assert from "node:assert/strict";
import { PolicyEngine } from "./engine.ts";
import { buildCatalogue } from "./catalogue.ts";
import { newServerConfig, type ServerConfig } from "./server_config.ts";
import { Resolver } from "../dns/resolver.ts";
import { PolicyError, PolicyReject } from "./policy_error.ts";
import { isConfigObject } from "./config_object.ts";

async function load(
  source: string,
  opts: { validating?: boolean; files?: Record<string, string> } = {},
): Promise<{ engine: PolicyEngine; cfg: ServerConfig; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-policy-" });
  const path = `${dir}/init.lua`;
  await Deno.writeTextFile(path, source);
  for (const [name, text] of Object.entries(opts.files ?? {})) {
    await Deno.mkdir(`${dir}/${name}`.replace(/\/[^/]*$/, ""), { recursive: true });
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  const cfg = newServerConfig();
  // assigned once; the catalogue's closure reads it after load
  // deno-lint-ignore prefer-const
  let engine: PolicyEngine | undefined;
  engine = await PolicyEngine.load({
    policyPath: path,
    validating: opts.validating,
    version: "test",
    catalogue: buildCatalogue(() => engine, cfg, new Resolver()),
  });
  return { engine, cfg, dir };
}

async function loadError(source: string): Promise<string> {
  try {
    const { engine } = await load(source);
    engine.close();
  } catch (e) {
    assert.ok(e instanceof PolicyError, String(e));
    return e.message;
  }
  throw new Error("policy loaded without error");
}

Deno.test("require 'kumo' and the kumo global are the same module", async () => {
  const { engine } = await load(`
    local k = require 'kumo'
    assert(k == kumo)
    kumo.on('t', function() return k.version end)
  `);
  assert.equal(await engine.callOrThrow("t", "", []), "test");
  engine.close();
});

Deno.test("a syntax error names the file and line", async () => {
  const msg = await loadError("local x = = 1\n");
  assert.match(msg, /^Error evaluating policy file ".*init\.lua": .*init\.lua:1:/);
});

Deno.test("a runtime error at top level names the file and line", async () => {
  const msg = await loadError("local a = 1\nerror('boom')\n");
  assert.match(msg, /init\.lua:2: boom/);
});

Deno.test("a missing policy file is reported", async () => {
  await assert.rejects(
    PolicyEngine.load({
      policyPath: "/nonexistent/init.lua",
      version: "t",
      catalogue: buildCatalogue(() => undefined, newServerConfig(), new Resolver()),
    }),
    /Error evaluating policy file "\/nonexistent\/init.lua"/,
  );
});

Deno.test("a second handler for a single-handler event is an error naming the first", async () => {
  const msg = await loadError(`
kumo.on('smtp_server_ehlo', function() end)
kumo.on('smtp_server_ehlo', function() end)
`);
  assert.match(
    msg,
    /init\.lua:3: smtp_server_ehlo event already has a handler defined at .*init\.lua:2/,
  );
});

Deno.test("multi-handler events chain until a handler returns a value", async () => {
  const { engine } = await load(`
kumo.on('get_queue_config', function(domain) if domain == 'a' then return 'first' end end)
kumo.on('get_queue_config', function(domain) if domain == 'b' then return nil end end)
kumo.on('get_queue_config', function(domain) return 'last:' .. domain end)
`);
  assert.equal(await engine.callOrThrow("get_queue_config", "", ["a"]), "first");
  const rb = await engine.call("get_queue_config", "", ["b"]);
  assert.deepEqual(rb, { kind: "ok", values: [undefined] });
  assert.equal(await engine.callOrThrow("get_queue_config", "", ["c"]), "last:c");
  engine.close();
});

Deno.test("multi handlers that all return nothing behave as unregistered", async () => {
  const { engine } = await load(`
kumo.on('requeue_message', function() end)
kumo.on('requeue_message', function() return end)
`);
  assert.deepEqual(await engine.call("requeue_message", "", []), { kind: "none" });
  engine.close();
});

Deno.test("kumo.on inside a handler raises the upstream error", async () => {
  const { engine } = await load(`
kumo.on('init', function() kumo.on('x', function() end) end)
`);
  await assert.rejects(
    engine.runInit(),
    (e: Error) =>
      /init\.lua:2: Attempting to register an event handler via `kumo\.on\('x', \.\.\.\)` from within the event handler 'init'/
        .test(e.message),
  );
  engine.close();
});

Deno.test("kumo.reject carries code and message; other errors carry file:line", async () => {
  const { engine } = await load(`
kumo.on('smtp_server_mail_from', function() kumo.reject(550, '5.7.1 no thanks') end)
kumo.on('smtp_server_rcpt_to', function()
  local t = nil
  return t.x
end)
kumo.on('smtp_server_data', function() kumo.disconnect(451, 'bye', 'FollowWith421') end)
`);
  const r = await engine.call("smtp_server_mail_from", "", []);
  assert.deepEqual(r, { kind: "reject", code: 550, message: "5.7.1 no thanks", how: "reject" });
  await assert.rejects(engine.callOrThrow("smtp_server_mail_from", "", []), (e) => {
    assert.ok(e instanceof PolicyReject);
    assert.equal(e.disconnect, false);
    return true;
  });
  const e = await engine.call("smtp_server_rcpt_to", "", []);
  assert.equal(e.kind, "error");
  assert.match((e as { message: string }).message, /init\.lua:5: attempt to index a nil value/);
  await assert.rejects(engine.callOrThrow("smtp_server_data", "", []), (e) => {
    assert.ok(e instanceof PolicyReject);
    assert.equal(e.how, "FollowWith421");
    assert.equal(e.disconnect, true);
    return true;
  });
  engine.close();
});

Deno.test("pre_init and init run once; init-only functions are refused at top level", async () => {
  const { engine, cfg } = await load(`
kumo.on('pre_init', function() end)
kumo.on('init', function()
  kumo.define_spool { name = 'data', path = '/tmp/x/data' }
  kumo.define_spool { name = 'meta', path = '/tmp/x/meta', kind = 'RocksDB' }
end)
kumo.on('t', function() kumo.define_spool { name = 'data', path = '/x' } end)
`);
  await engine.runInit();
  assert.equal(cfg.spools.size, 2);
  const r = await engine.call("t", "", []);
  assert.equal(r.kind, "error");
  assert.match(
    (r as { message: string }).message,
    /init\.lua:7: kumo\.define_spool may only be called from the init event/,
  );
  engine.close();
});

Deno.test("make_* rejects unknown keys with the serde wording and returns readable objects", async () => {
  const { engine } = await load(`
kumo.on('bad', function() return kumo.make_queue_config { retry_intervall = '1m' } end)
kumo.on('bad2', function()
  local c = kumo.make_egress_path { enable_tls = 'opportunistic' }
  return c
end)
kumo.on('good', function()
  local c = kumo.make_queue_config { retry_interval = '5m', egress_pool = 'p' }
  assert(c.egress_pool == 'p', 'egress_pool readable')
  local n = 0
  for k, v in pairs(c) do n = n + 1 end
  assert(n > 3, 'pairs works')
  return c
end)
`);
  const bad = await engine.call("bad", "", []);
  assert.equal(bad.kind, "error");
  assert.match(
    (bad as { message: string }).message,
    /init\.lua:2: in the 'bad' event handler: deserialize error: unknown field `retry_intervall`, expected one of .*`retry_interval`/,
  );
  const bad2 = await engine.call("bad2", "", []);
  assert.match((bad2 as { message: string }).message, /init\.lua:4: .*opportunistic/);
  const good = await engine.callOrThrow("get_queue_config_missing", "", []);
  assert.equal(good, undefined);
  const v = await engine.callOrThrow("good", "", []);
  assert.ok(isConfigObject(v));
  assert.equal((v.value as { retryInterval: number }).retryInterval, 300_000);
  engine.close();
});

Deno.test("200 concurrent dispatches each await a host promise", async () => {
  const { engine } = await load(`
kumo.on('slow', function(i)
  kumo.sleep(0.05)
  local t = kumo.json_parse('{"i": ' .. i .. '}')
  kumo.sleep(0.01)
  return t.i * 2
end)
`);
  const results = await Promise.all(
    Array.from({ length: 250 }, (_, i) => engine.callOrThrow("slow", "", [i])),
  );
  assert.deepEqual(results, Array.from({ length: 250 }, (_, i) => i * 2));
  // all 250 were in flight at once, each in its own Lua context
  assert.equal(engine.peakConcurrency, 250);
  engine.close();
});

Deno.test("require finds modules next to the policy and bundled policy-extras", async () => {
  const { engine } = await load(
    `
local helper = require 'lib.helper'
kumo.on('t', function() return helper.twice(21) end)
`,
    {
      files: { "lib/helper.lua": "local M = {}\nfunction M.twice(x) return x * 2 end\nreturn M\n" },
    },
  );
  assert.equal(await engine.callOrThrow("t", "", []), 42);
  engine.close();
  const missing = await loadError("require 'does.not.exist'\n");
  assert.match(missing, /module 'does\.not\.exist' not found/);
});

Deno.test("memoize caches across contexts with ttl and capacity", async () => {
  const { engine } = await load(`
local calls = 0
local f = kumo.memoize(function(x)
  calls = calls + 1
  return { v = x, n = kumo.json_encode({ x }) }
end, { name = 'm1', ttl = '1s', capacity = 2 })
kumo.on('get', function(x)
  local r = f(x)
  r.v = 'mutated' -- must not affect the cache
  return calls
end)
kumo.on('peek', function(x) return f(x).v end)
kumo.on('bad', function() return kumo.memoize(function() end, { name = 'x', ttl = '1s' }) end)
`);
  assert.equal(await engine.callOrThrow("get", "", ["a"]), 1);
  assert.equal(await engine.callOrThrow("get", "", ["a"]), 1); // hit
  assert.equal(await engine.callOrThrow("peek", "", ["a"]), "a"); // copy, not the mutated one
  await engine.callOrThrow("get", "", ["b"]);
  await engine.callOrThrow("get", "", ["c"]); // evicts a (capacity 2)
  const before = await engine.callOrThrow("get", "", ["c"]) as number;
  const after = await engine.callOrThrow("get", "", ["a"]) as number;
  assert.equal(after, before + 1);
  const bad = await engine.call("bad", "", []);
  assert.match((bad as { message: string }).message, /missing field `capacity`/);
  engine.close();
});

Deno.test("memoize ttl expires entries", async () => {
  const { engine } = await load(`
local n = 0
local f = kumo.memoize(function() n = n + 1; return n end, { name = 'ttl', ttl = '100ms', capacity = 10 })
kumo.on('get', function() return f() end)
`);
  const a = await engine.callOrThrow("get", "", []);
  assert.equal(await engine.callOrThrow("get", "", []), a);
  await new Promise((r) => setTimeout(r, 150));
  assert.notEqual(await engine.callOrThrow("get", "", []), a);
  engine.close();
});

Deno.test("contexts are recycled after max uses and on epoch bump", async () => {
  const { engine } = await load(`
counter = counter or 0
kumo.on('t', function() counter = counter + 1; return counter end)
kumo.on('bump', function() kumo.bump_config_epoch() end)
`);
  engine.maxContextUses = 3;
  const seen = [];
  for (let i = 0; i < 5; i++) seen.push(await engine.callOrThrow("t", "", []));
  assert.deepEqual(seen, [1, 2, 3, 1, 2]);
  await engine.callOrThrow("bump", "", []);
  assert.equal(await engine.callOrThrow("t", "", []), 1);
  engine.close();
});

Deno.test("json/toml helpers: comments, null, encoding", async () => {
  const { engine } = await load(`
kumo.on('t', function()
  local j = kumo.json_parse('{"a": 1, // c\\n "b": null, "c": [1,2] # x\\n}')
  assert(j.a == 1 and j.b == nil and j.c[2] == 2)
  assert(kumo.json_encode({}) == '{}')
  assert(kumo.json_encode({1,2}) == '[1,2]')
  local t = kumo.toml_parse('[x]\\ny = "z"\\n')
  assert(t.x.y == 'z')
  assert(kumo.serde.json_encode({a=true}) == '{"a":true}')
  assert(kumo.string.split('a,b', ',')[2] == 'b')
  assert(kumo.string.trim('  x ') == 'x')
  assert(kumo.available_parallelism() >= 1)
  return 'ok'
end)
`);
  assert.equal(await engine.callOrThrow("t", "", []), "ok");
  engine.close();
});

Deno.test("toml_load errors name the file and line", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/bad.toml`, "[a]\nb = \n");
  const { engine } = await load(
    `kumo.on('t', function() return kumo.toml_load('${dir}/bad.toml') end)`,
  );
  const r = await engine.call("t", "", []);
  assert.match((r as { message: string }).message, /bad\.toml/);
  engine.close();
});

Deno.test("domain_map wildcard rules", async () => {
  const { engine } = await load(`
kumo.on('t', function(name)
  local m = kumo.domain_map.new { ['example.com'] = 'exact', ['*.example.com'] = 'wild', ['b.a.example.com'] = 'deep' }
  return m[name] or 'none'
end)
`);
  assert.equal(await engine.callOrThrow("t", "", ["example.com"]), "exact");
  assert.equal(await engine.callOrThrow("t", "", ["x.example.com"]), "wild");
  assert.equal(await engine.callOrThrow("t", "", ["x.y.example.com"]), "wild");
  assert.equal(await engine.callOrThrow("t", "", ["b.a.example.com"]), "deep");
  assert.equal(await engine.callOrThrow("t", "", ["x.a.example.com"]), "none");
  engine.close();
});

Deno.test("validating sets _VALIDATING_CONFIG and validation_failed is recorded", async () => {
  const { engine } = await load(
    `
kumo.on('validate_config', function()
  if _VALIDATING_CONFIG then kumo.validation_failed() end
end)
`,
    { validating: true },
  );
  await engine.runInit();
  assert.equal(engine.validationFailed, true);
  engine.close();
});

Deno.test("identical make_* tables share one config object; different ones do not", async () => {
  const { engine } = await load(`
kumo.on('t', function(a, b)
  local x = kumo.make_egress_path { connection_limit = a }
  local y = kumo.make_egress_path { connection_limit = b }
  return tostring(rawequal(x, y)) .. ':' .. tostring(x.connection_limit) .. ':' .. tostring(y.connection_limit)
end)
`);
  assert.equal(await engine.callOrThrow("t", "", [3, 3]), "true:3:3");
  assert.equal(await engine.callOrThrow("t", "", [3, 4]), "false:3:4");
  const bad = await engine.call("t", "", [3, 0]);
  assert.equal(bad.kind, "error");
  engine.close();
});

Deno.test("durations and rates through make_* in Lua: every spec form, valid and invalid", async () => {
  const { engine } = await load(`
kumo.on('dur', function(v) return kumo.make_queue_config { retry_interval = v }.retry_interval end)
kumo.on('rate', function(v) return kumo.make_egress_path { max_message_rate = v }.max_message_rate end)
kumo.on('limit', function(v) return kumo.make_egress_path { connection_limit = v }.connection_limit end)
`);
  const validDur: [unknown, string][] = [
    [30, "30s"],
    [1.5, "1s 500ms"],
    ["5 minutes", "5m"],
    ["1h", "1h"],
    ["10s", "10s"],
    ["2h 30m", "2h 30m"],
    ["1h30m", "1h 30m"],
    ["0", "0s"],
    ["1day", "1day"],
    ["2 weeks", "14days"],
    ["500ms", "500ms"],
  ];
  for (const [v, want] of validDur) {
    assert.equal(await engine.callOrThrow("dur", "", [v]), want, `duration ${v}`);
  }
  for (const v of ["1.5h", "-1s", "5 parsecs", "10 MINUTES", "", "h", "1 h 2"]) {
    const r = await engine.call("dur", "", [v]);
    assert.equal(r.kind, "error", `duration ${JSON.stringify(v)} must be rejected`);
  }
  for (
    const v of ["100/s", "10,000/h", "1_000/hr", "20/30min", "local:5/s,max_burst=10", "5/day"]
  ) {
    const r = await engine.call("rate", "", [v]);
    assert.equal(r.kind, "ok", `rate ${v}: ${JSON.stringify(r)}`);
  }
  for (const v of ["10,000 per hour", "100/hours", "100 / s", "0/s", "10/mins", "abc"]) {
    const r = await engine.call("rate", "", [v]);
    assert.equal(r.kind, "error", `rate ${v} must be rejected`);
  }
  assert.equal(await engine.callOrThrow("limit", "", [5]), 5);
  assert.equal(await engine.callOrThrow("limit", "", ["local:1_000"]), "local:1000");
  assert.equal((await engine.call("limit", "", [0])).kind, "error");
  engine.close();
});

Deno.test("contexts are retired after their maximum age", async () => {
  const { engine } = await load(`
counter = counter or 0
kumo.on('t', function() counter = counter + 1; return counter end)
`);
  engine.maxContextAgeMs = 50;
  assert.equal(await engine.callOrThrow("t", "", []), 1);
  assert.equal(await engine.callOrThrow("t", "", []), 2);
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(await engine.callOrThrow("t", "", []), 1);
  engine.close();
});

Deno.test("kumo.serde yaml and kumo.string.eval_template", async () => {
  const { engine } = await load(`
kumo.on('t', function()
  local y = kumo.serde.yaml_parse('a: 1\\nb:\\n  - x\\n  - y\\n')
  assert(y.a == 1 and y.b[2] == 'y', 'yaml parse')
  assert(kumo.serde.yaml_encode({ k = 'v' }) == 'k: v\\n', 'yaml encode')
  return kumo.string.eval_template('t', 'Hi {{ name }}{% if n > 1 %}s{% endif %}', { name = 'Ana', n = 2 })
end)
`);
  assert.equal(await engine.callOrThrow("t", "", []), "Hi Anas");
  engine.close();
});
