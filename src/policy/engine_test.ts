import assert from "node:assert/strict";
import { PolicyEngine } from "./engine.ts";
import { buildCatalogue } from "./catalogue.ts";
import { newServerConfig, type ServerConfig } from "./server_config.ts";
import { offlineResolver } from "../../tests/support/offline_resolver.ts";
import { PolicyError, PolicyReject } from "./policy_error.ts";
import { isConfigObject } from "./config_object.ts";
import { findModule } from "./module_finder.ts";
import { diag } from "../log/diag.ts";
import { formatDuration } from "../util/duration.ts";
import { formatLimitSpec } from "../util/limit_spec.ts";
import {
  DURATION_INVALID_STRINGS,
  DURATION_INVALID_VALUES,
  DURATION_VALID,
  LIMIT_INVALID,
  LIMIT_VALID,
  THROTTLE_INVALID_STRINGS,
  THROTTLE_INVALID_VALUES,
  THROTTLE_VALID,
} from "../util/scalar_cases.ts";

/** Options of {@linkcode load}. */
interface LoadOptions {
  validating?: boolean;
  /** Extra files, relative to the policy's directory. */
  files?: Record<string, string>;
  /** Extra `kumo.<name>` functions: the test's window on what Lua did. */
  host?: Record<string, (...args: never[]) => unknown>;
}

async function load(
  source: string,
  opts: LoadOptions = {},
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
  const catalogue = buildCatalogue(() => engine, cfg, offlineResolver());
  Object.assign(catalogue.syncFunctions, opts.host ?? {});
  engine = await PolicyEngine.load({
    policyPath: path,
    validating: opts.validating,
    version: "test",
    catalogue,
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
      catalogue: buildCatalogue(() => undefined, newServerConfig(), offlineResolver()),
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

Deno.test("pre_init and init run once, in the first context, however many contexts follow", async () => {
  const events: string[] = [];
  const { engine } = await load(
    `
kumo.test_record('load')
kumo.on('pre_init', function() seen_in_pre_init = 'yes'; kumo.test_record('pre_init') end)
kumo.on('pre_init', function() kumo.test_record('pre_init#2') end)
kumo.on('init', function() kumo.test_record('init:' .. tostring(seen_in_pre_init)) end)
kumo.on('t', function() kumo.test_record('t:' .. tostring(seen_in_pre_init)) end)
`,
    { host: { test_record: ((what: string) => void events.push(what)) as never } },
  );
  engine.maxContextUses = 1; // every dispatch after init gets a fresh context
  await engine.runInit();
  for (let i = 0; i < 4; i++) await engine.callOrThrow("t", "", []);
  assert.deepEqual(events, [
    "load",
    "pre_init",
    "pre_init#2",
    "init:yes", // same context: the global pre_init set is visible
    ...Array.from({ length: 4 }, () => ["load", "t:nil"]).flat(),
  ]);
  assert.equal(events.filter((e) => e.startsWith("init")).length, 1);
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

Deno.test("memoize caches across contexts, copies values, honours capacity", async () => {
  const { engine } = await load(`
ctx_id = kumo.uuid.new_v4().simple -- one per context
local f = kumo.memoize(function(x)
  return { v = x, id = kumo.uuid.new_v4().simple }
end, { name = 'm1', ttl = '1h', capacity = 2 })
kumo.on('get', function(x)
  local r = f(x)
  local id = r.id
  r.v = 'mutated' -- must not affect the cache
  return ctx_id .. ' ' .. id
end)
kumo.on('peek', function(x) return f(x).v end)
kumo.on('bad', function() return kumo.memoize(function() end, { name = 'x', ttl = '1s' }) end)
`);
  engine.maxContextUses = 1; // each dispatch in its own, freshly loaded context
  const get = async (x: string) =>
    (await engine.callOrThrow("get", "", [x]) as string).split(" ") as [string, string];
  const [ctx1, a1] = await get("a");
  const [ctx2, a2] = await get("a");
  assert.notEqual(ctx1, ctx2, "two different Lua contexts");
  assert.equal(a2, a1, "the second context got the first one's cached value");
  assert.equal(await engine.callOrThrow("peek", "", ["a"]), "a"); // a copy, not the mutated one
  const [, b1] = await get("b");
  const [, c1] = await get("c"); // capacity 2: evicts a, the least recently used
  assert.equal((await get("c"))[1], c1);
  assert.equal((await get("b"))[1], b1);
  assert.notEqual((await get("a"))[1], a1, "a was evicted and computed again");
  const bad = await engine.call("bad", "", []);
  assert.match((bad as { message: string }).message, /missing field `capacity`/);
  engine.close();
});

Deno.test("memoize invalidate_with_epoch drops entries on a config epoch bump", async () => {
  const { engine } = await load(`
local e = kumo.memoize(function() return kumo.uuid.new_v4().simple end,
  { name = 'ep', ttl = '1h', capacity = 4, invalidate_with_epoch = true })
local k = kumo.memoize(function() return kumo.uuid.new_v4().simple end,
  { name = 'keep', ttl = '1h', capacity = 4 })
kumo.on('get', function() return e() .. ' ' .. k() end)
`);
  const [e1, k1] = (await engine.callOrThrow("get", "", []) as string).split(" ");
  assert.deepEqual((await engine.callOrThrow("get", "", []) as string).split(" "), [e1, k1]);
  engine.bumpEpoch();
  const [e2, k2] = (await engine.callOrThrow("get", "", []) as string).split(" ");
  assert.notEqual(e2, e1, "invalidate_with_epoch: recomputed after the bump");
  assert.equal(k2, k1, "without invalidate_with_epoch: kept");
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

Deno.test("durations, rates and limits through make_* in Lua: every shared case, valid and invalid", async () => {
  const { engine } = await load(`
kumo.on('dur', function(v) return kumo.make_queue_config { retry_interval = v }.retry_interval end)
kumo.on('dur_path', function(v) return kumo.make_egress_path { idle_timeout = v }.idle_timeout end)
kumo.on('rate', function(v) return kumo.make_egress_path { max_message_rate = v }.max_message_rate end)
kumo.on('qrate', function(v) return kumo.make_queue_config { max_message_rate = v }.max_message_rate end)
kumo.on('limit', function(v) return kumo.make_egress_path { connection_limit = v }.connection_limit end)
`);
  const refused = async (event: string, v: unknown) => {
    const r = await engine.call(event, "", [v]);
    assert.equal(r.kind, "error", `${event} ${String(v)} must be refused: ${JSON.stringify(r)}`);
    const msg = (r as { message: string }).message;
    assert.match(msg, /init\.lua:\d+: /, msg);
    if (typeof v === "string") assert.ok(msg.includes(`"${v}"`), msg);
  };
  // nil in a Lua table is an absent key (the default applies), not a value
  const asLua = (vs: readonly unknown[]) => vs.filter((v) => v !== null && v !== undefined);

  for (const [v, ms] of DURATION_VALID) {
    for (const event of ["dur", "dur_path"]) {
      assert.equal(await engine.callOrThrow(event, "", [v]), formatDuration(ms), `${event} ${v}`);
    }
  }
  for (const v of [...DURATION_INVALID_STRINGS, ...asLua(DURATION_INVALID_VALUES)]) {
    await refused("dur", v);
    await refused("dur_path", v);
  }
  for (const [v, want] of THROTTLE_VALID) {
    assert.equal(await engine.callOrThrow("rate", "", [v]), want.text, `rate ${v}`);
    assert.equal(await engine.callOrThrow("qrate", "", [v]), want.text, `queue rate ${v}`);
  }
  for (const v of [...THROTTLE_INVALID_STRINGS, ...THROTTLE_INVALID_VALUES]) {
    await refused("rate", v);
    await refused("qrate", v);
  }
  for (const [v, want] of LIMIT_VALID) {
    assert.equal(await engine.callOrThrow("limit", "", [v]), formatLimitSpec(want), `limit ${v}`);
  }
  for (const v of asLua(LIMIT_INVALID)) await refused("limit", v);
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

Deno.test("math.random differs between contexts and between runs", async () => {
  const policy = `
kumo.on('r', function()
  return tostring(math.random(0, 0x7fffffffffff)) .. ' ' .. tostring(math.random(0, 0x7fffffffffff))
end)
`;
  const a = await load(policy);
  const b = await load(policy);
  a.engine.maxContextUses = 1; // each call in a new context
  const seen = new Set<unknown>();
  for (let i = 0; i < 3; i++) seen.add(await a.engine.callOrThrow("r", "", []));
  seen.add(await b.engine.callOrThrow("r", "", [])); // another engine: another "run"
  assert.equal(seen.size, 4, [...seen].join(" | "));
  a.engine.close();
  b.engine.close();
});

Deno.test("a policy that no longer loads after an epoch bump: call() reports it, never throws", async () => {
  const good = "kumo.on('t', function() return 'ok' end)\n";
  const { engine, dir } = await load(good);
  assert.equal(await engine.callOrThrow("t", "", []), "ok");
  await Deno.writeTextFile(`${dir}/init.lua`, good + "local x = = 1\n");
  engine.bumpEpoch(); // pooled contexts dropped: the next call re-runs the edited file
  const r = await engine.call("t", "", []);
  assert.equal(r.kind, "error");
  assert.match(
    (r as { message: string }).message,
    /^Error evaluating policy file ".*init\.lua": .*init\.lua:2: /,
  );
  await assert.rejects(engine.callOrThrow("t", "", []), PolicyError);
  assert.equal(engine.activeContexts, 0, "the failed borrow released its slot");
  await Deno.writeTextFile(`${dir}/init.lua`, good);
  assert.equal(await engine.callOrThrow("t", "", []), "ok", "fixed file: dispatch works again");
  engine.close();
});

Deno.test("a policy that no longer loads after an epoch bump: session() reports it, never throws", async () => {
  const good =
    "kumo.on('make.conn', function(d) return { send = function() return 'sent ' .. d end } end)\n";
  const { engine, dir } = await load(good);
  await Deno.writeTextFile(`${dir}/init.lua`, good + "local x = = 1\n");
  engine.bumpEpoch(); // pooled contexts dropped: the next session re-runs the edited file
  const s = await engine.session();
  assert.equal(s.kind, "error");
  assert.match(
    (s as { message: string }).message,
    /^Error evaluating policy file ".*init\.lua": .*init\.lua:2: /,
  );
  assert.equal(engine.activeContexts, 0, "the failed borrow released its slot");
  await Deno.writeTextFile(`${dir}/init.lua`, good);
  const ok = await engine.session();
  assert.equal(ok.kind, "session", "fixed file: a session can be had again");
  if (ok.kind !== "session") throw new Error("unreachable");
  const h = await ok.hold("make.conn", "s", ["d.test"]);
  assert.equal(h.kind, "held");
  const key = (h as { key: number }).key;
  assert.deepEqual(await ok.call(key, "send", "", []), { kind: "ok", values: ["sent d.test"] });
  ok.release();
  engine.close();
});

Deno.test("package.path is upstream's four prefixes, then the policy's directory", async () => {
  const { engine, dir } = await load("kumo.on('t', function() return package.path end)");
  assert.equal(
    await engine.callOrThrow("t", "", []),
    "/opt/kumomta/share/?.lua;/opt/kumomta/share/?/init.lua;" +
      "/opt/kumomta/etc/policy/?.lua;/opt/kumomta/etc/policy/?/init.lua;" +
      `${dir}/?.lua;${dir}/?/init.lua`,
  );
  engine.close();
});

Deno.test("require: first package.path match wins; a miss lists each entry once", async () => {
  const extra = await Deno.makeTempDir({ prefix: "kumo-extra-" });
  await Deno.mkdir(`${extra}/lib`);
  await Deno.writeTextFile(`${extra}/lib/dup.lua`, "return 'prepended'\n");
  const { engine, dir } = await load(
    `
package.path = '${extra}/?.lua;' .. package.path
local dup = require 'lib.dup'
local both = require 'lib.both'
local utils = require 'policy-extras.policy_utils'
kumo.on('t', function() return dup .. ' ' .. both .. ' ' .. type(utils) end)
kumo.on('missing', function() require 'does.not.exist' end)
`,
    {
      files: {
        "lib/dup.lua": "return 'policy-dir'\n",
        "lib/both.lua": "return 'file'\n",
        "lib/both/init.lua": "return 'init'\n",
      },
    },
  );
  assert.equal(await engine.callOrThrow("t", "", []), "prepended file table");
  const r = await engine.call("missing", "", []);
  const msg = (r as { message: string }).message;
  assert.match(msg, /init\.lua:7: module 'does\.not\.exist' not found:/);
  const noFile = [...msg.matchAll(/no file '([^']+)'/g)].map((m) => m[1]);
  assert.deepEqual(noFile, [
    `${extra}/does/not/exist.lua`,
    "/opt/kumomta/share/does/not/exist.lua",
    "/opt/kumomta/share/does/not/exist/init.lua",
    "/opt/kumomta/etc/policy/does/not/exist.lua",
    "/opt/kumomta/etc/policy/does/not/exist/init.lua",
    `${dir}/does/not/exist.lua`,
    `${dir}/does/not/exist/init.lua`,
  ]);
  engine.close();
});

Deno.test("findModule: first template wins, then bundled policy-extras, else Lua's explanation", async () => {
  const a = await Deno.makeTempDir();
  const b = await Deno.makeTempDir();
  await Deno.mkdir(`${a}/m`);
  await Deno.mkdir(`${b}/m`);
  await Deno.writeTextFile(`${b}/m/x.lua`, "return 'b'");
  await Deno.writeTextFile(`${a}/m/x.lua`, "return 'a'");
  assert.deepEqual(findModule("m.x", `${a}/?.lua;${b}/?.lua`), [`${a}/m/x.lua`, "return 'a'"]);
  assert.deepEqual(findModule("m.x", `${b}/?.lua;${a}/?.lua`), [`${b}/m/x.lua`, "return 'b'"]);
  const [path, src] = findModule("policy-extras.policy_utils", `${a}/?.lua`);
  assert.equal(path, "/opt/kumomta/share/policy-extras/policy_utils.lua");
  assert.match(src, /function/);
  assert.deepEqual(findModule("m.y", `${a}/?.lua;;${b}/?/init.lua`), [
    undefined,
    `no file '${a}/m/y.lua'\n\tno file '${b}/m/y/init.lua'`,
  ]);
});

Deno.test("context recycling: upstream defaults, and the kumo.set_max_* setters", async () => {
  const { engine } = await load(`
counter = counter or 0
kumo.on('init', function()
  kumo.set_max_lua_context_use_count(3)
  kumo.set_max_lua_context_age(120)
  kumo.set_max_spare_lua_contexts(2)
end)
kumo.on('t', function() counter = counter + 1; return counter end)
kumo.on('slow', function() kumo.sleep(0.02) end)
kumo.on('bad', function(v) kumo.set_max_lua_context_use_count(v) end)
`);
  assert.equal(engine.maxContextAgeMs, 300_000);
  assert.equal(engine.maxContextUses, 1024);
  assert.equal(engine.maxSpareContexts, 8192);
  await engine.runInit();
  assert.equal(engine.maxContextAgeMs, 120_000);
  assert.equal(engine.maxContextUses, 3);
  assert.equal(engine.maxSpareContexts, 2);
  // the init context has one use; it serves two more, then a fresh one
  const seen = [];
  for (let i = 0; i < 5; i++) seen.push(await engine.callOrThrow("t", "", []));
  assert.deepEqual(seen, [1, 2, 1, 2, 3]);
  await Promise.all(Array.from({ length: 6 }, () => engine.callOrThrow("slow", "", [])));
  assert.equal(engine.idleContexts, 2, "at most 2 spare contexts kept");
  for (const v of ["soon", -1, 1.5]) {
    const r = await engine.call("bad", "", [v]);
    assert.match(
      (r as { message: string }).message,
      /init\.lua:10: kumo\.set_max_lua_context_use_count: invalid argument .*: expected a non-negative integer/,
    );
  }
  engine.close();
});

Deno.test("kumo.set_diagnostic_log_filter changes what the diagnostic log shows", async () => {
  const { engine } = await load(`
kumo.on('t', function(spec, text)
  kumo.set_diagnostic_log_filter(spec)
  kumo.log_debug('debug:' .. text)
  kumo.log_warn('warn:' .. text)
end)
kumo.on('bad', function() kumo.set_diagnostic_log_filter('lua=loud') end)
`);
  const before = diag.filterSpec;
  let out = "";
  diag.setWriter((t) => void (out += t));
  try {
    await engine.callOrThrow("t", "", ["lua=debug", "one"]);
    diag.flush();
    assert.match(out, /DEBUG lua: .*init\.lua:4: debug:one/);
    assert.match(out, /WARN lua: .*warn:one/);
    await engine.callOrThrow("t", "", ["lua=warn", "two"]);
    diag.flush();
    assert.doesNotMatch(out, /debug:two/);
    assert.match(out, /warn:two/);
    assert.equal(diag.filterSpec, "lua=warn");
    const r = await engine.call("bad", "", []);
    assert.match((r as { message: string }).message, /init\.lua:7: .*unknown level "loud"/);
    assert.equal(diag.filterSpec, "lua=warn", "a bad filter leaves the old one in force");
  } finally {
    diag.setFilter(before);
    diag.setWriter((t) => void Deno.stderr.writeSync(new TextEncoder().encode(t)));
    engine.close();
  }
});

Deno.test("the Lua-side config cache keys floats exactly: values past 14 digits get their own object", async () => {
  const { engine } = await load(`
kumo.on('same', function()
  local a = kumo.make_queue_config { retry_interval = 1.0000000000000002 }
  local b = kumo.make_queue_config { retry_interval = 1.0000000000000002 }
  return rawequal(a, b)
end)
kumo.on('distinct', function()
  local a = kumo.make_queue_config { retry_interval = 1.0000000000000002 }
  local b = kumo.make_queue_config { retry_interval = 1.0000000000000004 }
  return rawequal(a, b)
end)
`);
  try {
    assert.equal(await engine.callOrThrow("same", "", []), true);
    assert.equal(await engine.callOrThrow("distinct", "", []), false);
  } finally {
    engine.close();
  }
});

Deno.test("contexts loaded from cached bytecode keep file:line in errors and see the same policy", async () => {
  const { engine, dir } = await load(`
local n = 0
kumo.on('count', function() n = n + 1 return n end)
kumo.on('boom', function()
  error('kaput')
end)
`);
  try {
    engine.maxContextUses = 1; // every call gets a fresh context: the first compiles, the rest load bytecode
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await engine.callOrThrow("count", "", []), 1);
      const r = await engine.call("boom", "", []);
      assert.equal(r.kind, "error");
      assert.match((r as { message: string }).message, new RegExp(`${dir}/init\\.lua:5: kaput`));
    }
  } finally {
    engine.close();
  }
});

Deno.test("the recent-table config cache: repeats hit, any difference (value, key, subtype, nesting) misses", async () => {
  const { engine } = await load(`
local function cfg(t) return kumo.make_egress_path(t) end
kumo.on('t', function()
  local out = {}
  -- twice through the content cache, then from the recent copies
  local a = cfg { connection_limit = 3, enable_tls = 'Disabled' }
  for _ = 1, 3 do assert(rawequal(a, cfg { connection_limit = 3, enable_tls = 'Disabled' })) end
  out[#out + 1] = tostring(rawequal(a, cfg { connection_limit = 4, enable_tls = 'Disabled' }))
  out[#out + 1] = tostring(rawequal(a, cfg { connection_limit = 3 }))
  out[#out + 1] = tostring(rawequal(a, cfg { connection_limit = 3, enable_tls = 'Disabled', idle_timeout = '5s' }))
  out[#out + 1] = tostring(rawequal(a, cfg { connection_limit = 3.0, enable_tls = 'Disabled' }))
  out[#out + 1] = cfg { connection_limit = 4, enable_tls = 'Disabled' }.connection_limit
  -- a repeating table among many others still gets its own object back
  for i = 1, 20 do cfg { connection_limit = i } end
  out[#out + 1] = tostring(rawequal(a, cfg { connection_limit = 3, enable_tls = 'Disabled' }))
  -- nested values never come from the recent copies
  local s1 = kumo.make_egress_path { connection_limit = 2, smtp_auth_plain_password = { key_data = 'x' } }
  local s2 = kumo.make_egress_path { connection_limit = 2, smtp_auth_plain_password = { key_data = 'y' } }
  out[#out + 1] = tostring(rawequal(s1, s2))
  -- an invalid table is refused every time, not remembered
  out[#out + 1] = tostring(pcall(cfg, { connection_limit = 0 }))
  out[#out + 1] = tostring(pcall(cfg, { connection_limit = 0 }))
  return table.concat(out, ',')
end)
`);
  try {
    assert.equal(
      await engine.callOrThrow("t", "", []),
      "false,false,false,false,4,true,false,false,false",
    );
  } finally {
    engine.close();
  }
});
