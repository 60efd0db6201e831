/**
 * The `__host` table: every JS function the Lua prelude builds the `kumo`
 * module from.
 *
 * Place on the path: policy. Bindings stay thin: turn the Lua value into a
 * typed value (config parsers), then call a service the engine was handed.
 * Functions listed in `sync_functions` / `async_functions` /
 * `config_functions` become `kumo.<dotted name>`; the rest are internals of
 * the prelude.
 *
 * @module
 */

import { byRef, multi, toLua } from "./lua_context.ts";
import { findModule } from "./module_finder.ts";
import { MAP_FUNCTIONS } from "./host/maps.ts";
import {
  jsonEncode,
  jsonLoad,
  jsonParse,
  tomlEncode,
  tomlLoad,
  tomlParseText,
  yamlEncode,
  yamlLoad,
  yamlParse,
} from "./host/serde.ts";
import { STRING_FUNCTIONS } from "./host/strings.ts";
import { type ConfigObject, makeConfigObject } from "./config_object.ts";
import type { MemoCache } from "./memoize_cache.ts";
import type { PolicyEngine } from "./engine.ts";

/** A `kumo.make_*` constructor: parse a Lua table into a typed value. */
export interface ConfigConstructor {
  kind: string;
  parse(input: unknown): unknown;
  view(value: unknown): Record<string, unknown>;
}

/** Methods of a host object exposed to Lua (`msg:x()`, `conn_meta:x()`). */
export type MethodTable<T> = Record<string, (self: T, ...args: never[]) => unknown>;

/** What the host functions need from the rest of the program. */
export interface HostCatalogue {
  /** `kumo.make_*` constructors by dotted name (`make_queue_config`). */
  configConstructors: Record<string, ConfigConstructor>;
  /** Other synchronous functions by dotted name (`start_esmtp_listener`). */
  syncFunctions: Record<string, (...args: never[]) => unknown>;
  /** Asynchronous functions by dotted name (`dns.lookup_mx`). */
  asyncFunctions: Record<string, (...args: never[]) => Promise<unknown>>;
  /** `msg:method(...)` implementations. */
  messageMethods: MethodTable<unknown>;
  /** `conn_meta:method(...)` implementations. */
  connMethods: MethodTable<unknown>;
}

const wrapValue = toLua;

type AnyFn = (...args: never[]) => unknown;

function syncLua(f: AnyFn): AnyFn {
  return (...args) => toLua(f(...args));
}

function asyncLua(f: (...args: never[]) => Promise<unknown>): AnyFn {
  return async (...args) => toLua(await f(...args));
}

function mapValues(o: Record<string, unknown>, f: (v: AnyFn) => AnyFn): Record<string, AnyFn> {
  const out: Record<string, AnyFn> = {};
  for (const k in o) out[k] = f(o[k] as AnyFn);
  return out;
}

/** A `usize` argument (seconds or a count), as upstream's setters take. */
function count(fn: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new Error(
      `${fn}: invalid argument ${
        typeof v === "string" ? `"${v}"` : String(v ?? "nil")
      }: expected a non-negative integer`,
    );
  }
  return v;
}

/**
 * `kumo.available_parallelism()`: `KUMO_AVAILABLE_PARALLELISM` when set
 * (a positive integer, else an error, as upstream), else the CPU count.
 */
export function availableParallelism(): number {
  const env = Deno.env.get("KUMO_AVAILABLE_PARALLELISM");
  if (env === undefined) return navigator.hardwareConcurrency;
  if (!/^[0-9]+$/.test(env) || Number(env) < 1) {
    throw new Error(
      `Cannot read KUMO_AVAILABLE_PARALLELISM "${env}": expected a positive integer`,
    );
  }
  return Number(env);
}

/** Builds the `__host` table for one Lua context. */
export function buildHost(engine: PolicyEngine, cat: HostCatalogue): Record<string, unknown> {
  const configFunctions: Record<string, (input: unknown) => unknown> = {};
  for (const [name, ctor] of Object.entries(cat.configConstructors)) {
    // Parsed configs are immutable, so identical tables share one parse:
    // handlers typically return the same literal table on every call.
    const cache = new Map<string, ConfigObject>();
    configFunctions[name] = (input: unknown) => {
      const key = JSON.stringify(input);
      let obj = cache.get(key);
      if (!obj) {
        const value = ctor.parse(input);
        obj = makeConfigObject(ctor.kind, value, () => ctor.view(value));
        if (cache.size >= 1024) cache.clear();
        cache.set(key, obj);
      }
      return byRef(obj);
    };
  }
  const syncFunctions: Record<string, unknown> = {
    json_load: (path: string) => jsonLoad(path),
    json_parse: (text: string) => jsonParse(text),
    json_encode: (v: unknown) => jsonEncode(v),
    json_encode_pretty: (v: unknown) => jsonEncode(v, true),
    toml_load: (path: string) => tomlLoad(path),
    toml_parse: (text: string) => tomlParseText(text),
    toml_encode: (v: unknown) => tomlEncode(v),
    toml_encode_pretty: (v: unknown) => tomlEncode(v),
    "serde.toml_encode_pretty_compact": (v: unknown) => tomlEncode(v),
    "serde.yaml_load": (path: string) => yamlLoad(path),
    "serde.yaml_parse": (text: string) => yamlParse(text),
    "serde.yaml_encode": (v: unknown) => yamlEncode(v),
    ...STRING_FUNCTIONS,
    available_parallelism: () => availableParallelism(),
    bump_config_epoch: () => engine.bumpEpoch(),
    set_max_lua_context_age: (secs: unknown) => {
      engine.maxContextAgeMs = count("kumo.set_max_lua_context_age", secs) * 1000;
    },
    set_max_lua_context_use_count: (n: unknown) => {
      engine.maxContextUses = count("kumo.set_max_lua_context_use_count", n);
    },
    set_max_spare_lua_contexts: (n: unknown) => {
      engine.maxSpareContexts = count("kumo.set_max_spare_lua_contexts", n);
    },
    validation_failed: () => {
      engine.validationFailed = true;
    },
    ...cat.syncFunctions,
  };
  const asyncFunctions: Record<string, unknown> = {
    sleep: (secs: number) => new Promise((r) => setTimeout(r, Math.max(0, Number(secs) * 1000))),
    ...cat.asyncFunctions,
  };

  const sync: Record<string, unknown> = mapValues(syncFunctions, syncLua);
  const async: Record<string, unknown> = mapValues(
    asyncFunctions,
    (f) => asyncLua(f as () => Promise<unknown>),
  );
  return {
    version: engine.version,
    policy_dir: engine.policyDir,
    // Two 32-bit seeds for math.randomseed, fresh for every context.
    random_seed: () => multi(...crypto.getRandomValues(new Uint32Array(2))),
    find_module: (name: string, path: string) => multi(...findModule(name, path)),
    json_encode: (v: unknown) => jsonEncode(v),
    memo_define: (params: unknown) => byRef(engine.defineMemo(params)),
    memo_get: (cache: MemoCache, key: string) => {
      const [found, value] = cache.get(key, engine.epoch);
      return found ? multi(true, value) : false;
    },
    memo_put: (cache: MemoCache, key: string, value: unknown) => {
      cache.put(key, value ?? null, engine.epoch);
    },
    msg_call: (msg: unknown, method: string, ...args: never[]) => {
      const f = cat.messageMethods[method];
      if (!f) throw new Error(`Message has no method named "${method}"`);
      return wrapValue(f(msg, ...args));
    },
    conn_call: (conn: unknown, method: string, ...args: never[]) => {
      const f = cat.connMethods[method];
      if (!f) throw new Error(`conn_meta has no method named "${method}"`);
      return wrapValue(f(conn, ...args));
    },
    cfg_get: (o: ConfigObject, key: string) => o.view[key],
    cfg_view: (o: ConfigObject) => o.view,
    cfg_json: (o: ConfigObject) => JSON.stringify(o.view),
    lua_log: (level: string, where: string, ...args: unknown[]) =>
      engine.luaLog(level, where, args.map((a) => String(a ?? "nil")).join(" ")),
    ...mapValues(MAP_FUNCTIONS, syncLua),
    // Handed to Lua by name: the prelude fetches each function the first
    // time a context uses it (get_function), since pushing hundreds of
    // functions into every new Lua state was most of its start-up cost.
    sync_names: Object.keys(sync),
    async_names: Object.keys(async),
    config_names: Object.keys(configFunctions),
    get_function: (kind: string, name: string) =>
      (kind === "sync" ? sync : kind === "async" ? async : configFunctions)[name],
  };
}
