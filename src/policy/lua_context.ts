/**
 * One Lua context: a wasmoon Lua 5.4 state that has run the prelude and the
 * operator's policy file, and dispatches events to the handlers the policy
 * registered.
 *
 * Place on the path: policy. Contexts are pooled by engine.ts; each dispatch
 * borrows one exclusively (KumoMTA's model), so Lua globals are never touched
 * by two dispatches at once. Handlers run inside a Lua thread anchored in the
 * registry (never on the main stack: platform.md), so they may await host
 * promises (DNS, sleep) while other contexts run.
 *
 * Never call into a context from inside one of its own dispatches: nested
 * dispatch goes through the engine, which borrows another context.
 *
 * @module
 */

import {
  decorateUserdata,
  Decoration,
  LUA_REGISTRYINDEX,
  type LuaEngine,
  LuaFactory,
  LuaMultiReturn,
  LuaReturn,
  type LuaThread,
  LuaType,
} from "wasmoon";
import { PRELUDE_LUA } from "./prelude_lua.ts";
import { FastTableExtension } from "./lua_tables.ts";
import { captureWasmInstances, loadChunk, type RawLua, rawLua } from "./lua_raw.ts";
import { FastFunctionExtension, pushHostObject } from "./lua_host_calls.ts";

/** What a dispatch produced. */
export type DispatchResult =
  | { kind: "none" }
  | { kind: "ok"; values: unknown[] }
  | { kind: "reject"; code: number; message: string; how: string }
  | { kind: "error"; message: string; traceback: string };

let sharedFactory: LuaFactory | undefined;
function factory(): LuaFactory {
  if (sharedFactory === undefined) {
    const done = captureWasmInstances();
    sharedFactory = new LuaFactory();
    // Restore on failure too; the failure itself surfaces at createEngine.
    sharedFactory.getLuaModule().then(done, done);
  }
  return sharedFactory;
}

/** Marks a JS object to be passed to Lua by reference (as a userdata). */
export function byRef<T>(value: T): unknown {
  return decorateUserdata(value);
}

/** Options for {@linkcode LuaContext.create}. */
export interface LuaContextOptions {
  /** Policy file to run (absolute path). */
  policyPath: string;
  /** Policy source; read from policyPath when omitted. */
  policySource?: string;
  /** The `__host` table handed to the prelude. */
  host: Record<string, unknown>;
  /** Sets `_VALIDATING_CONFIG = true` before the policy runs. */
  validating: boolean;
  /** Config epoch the context was created in. */
  epoch: number;
}

/** Several return values for Lua (`return a, b`). */
export function multi(...values: unknown[]): unknown {
  return LuaMultiReturn.from(values.map(toLua));
}

/**
 * Converts a JS value into something wasmoon can push: no nulls anywhere,
 * bytes as strings, class instances (host objects) by reference. A `Map`
 * becomes a table keyed by its keys as they are (numbers stay numbers, so
 * `by_pref[10]` works in Lua), where a plain object's keys are strings.
 */
export function toLua(value: unknown): unknown {
  if (value === null) return undefined;
  if (typeof value !== "object") return value;
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  if (value instanceof Decoration || value instanceof LuaMultiReturn) return value;
  if (Array.isArray(value)) return value.map(toLua);
  if (value instanceof Map) {
    const m = new Map<unknown, unknown>();
    for (const [k, v] of value) if (v !== null && v !== undefined) m.set(k, toLua(v));
    return m;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return decorateUserdata(value);
  const out: Record<string, unknown> = {};
  for (const k in value as Record<string, unknown>) {
    const v = (value as Record<string, unknown>)[k];
    if (v !== null && v !== undefined) out[k] = toLua(v);
  }
  return out;
}

/** Pushes one dispatch argument; scalars straight through {@link RawLua}. */
function pushArg(t: LuaThread, raw: RawLua, a: unknown): void {
  switch (typeof a) {
    case "string":
      raw.pushString(a);
      return;
    case "undefined":
      raw.pushNil();
      return;
    case "boolean":
      raw.pushBoolean(a);
      return;
    case "number":
      raw.pushNumber(a);
      return;
    default:
      if (a === null) raw.pushNil();
      else if (isHostObject(a)) pushHostObject(t, a);
      else t.pushValue(toLua(a));
  }
}

/** A class instance (Message, ConnMeta, config objects…): passed to Lua by reference. */
function isHostObject(a: unknown): a is object {
  if (typeof a !== "object" || a === null || Array.isArray(a)) return false;
  if (a instanceof Uint8Array || a instanceof Map) return false;
  if (a instanceof Decoration || a instanceof LuaMultiReturn) return false;
  const proto = Object.getPrototypeOf(a);
  return proto !== Object.prototype && proto !== null;
}

/** Reads one result; host objects (js_userdata) straight from the registry. */
function readValue(t: LuaThread, raw: RawLua, i: number): unknown {
  switch (raw.type(i)) {
    case LuaType.Nil:
      return undefined;
    case LuaType.Number:
      return raw.toNumber(i);
    case LuaType.String:
      return raw.toString(i);
    case LuaType.Boolean:
      return raw.toBoolean(i);
    case LuaType.Userdata: {
      const ref = raw.jsRef(i);
      return ref >= 0 ? t.lua.getRef(ref) : t.getValue(i);
    }
    default:
      return t.getValue(i);
  }
}

/** A Lua state that has loaded the policy. */
export class LuaContext {
  readonly createdAt = Date.now();
  readonly epoch: number;
  uses = 0;
  #engine: LuaEngine;
  #thread: LuaThread;
  #threadRef: number;
  #dispatchRef: number;
  #dispatchRefBig: bigint;
  /** Direct calls for the dispatch hot path. */
  #raw: RawLua;
  #handlers: Set<string>;
  #sessionRef = 0; // [session]

  private constructor(
    engine: LuaEngine,
    thread: LuaThread,
    threadRef: number,
    dispatchRef: number,
    handlers: Set<string>,
    epoch: number,
  ) {
    this.#engine = engine;
    this.#thread = thread;
    this.#threadRef = threadRef;
    this.#dispatchRef = dispatchRef;
    this.#dispatchRefBig = BigInt(dispatchRef);
    this.#raw = rawLua(thread);
    this.#handlers = handlers;
    this.epoch = epoch;
  }

  /**
   * Creates a context: runs the prelude, then the policy file.
   * Throws an Error whose message names the file and line on any failure.
   */
  static async create(opts: LuaContextOptions): Promise<LuaContext> {
    const engine = await factory().createEngine({ injectObjects: false, enableProxy: false });
    const g = engine.global;
    const lua = g.lua;
    const tables = new FastTableExtension(g);
    g.registerTypeExtension(10, tables);
    g.registerTypeExtension(9, new FastFunctionExtension(g, tables));
    try {
      if (opts.validating) g.set("_VALIDATING_CONFIG", true);
      const thread = g.newThread();
      const threadRef = lua.luaL_ref(g.address, LUA_REGISTRYINDEX);

      loadChunk(thread, PRELUDE_LUA, "=kumo");
      thread.pushValue(opts.host);
      await thread.run(1);
      thread.setTop(0);

      lua.lua_getglobal(thread.address, "__kumo_dispatch");
      const dispatchRef = lua.luaL_ref(thread.address, LUA_REGISTRYINDEX);
      lua.lua_pushnil(thread.address);
      lua.lua_setglobal(thread.address, "__kumo_dispatch");
      // [session] the held-object helper (sessionOp), hidden the same way.
      lua.lua_getglobal(thread.address, "__kumo_session");
      const sessionRef = lua.luaL_ref(thread.address, LUA_REGISTRYINDEX);
      lua.lua_pushnil(thread.address);
      lua.lua_setglobal(thread.address, "__kumo_session");

      const source = opts.policySource ?? await Deno.readTextFile(opts.policyPath);
      loadChunk(thread, source, "@" + opts.policyPath);
      await thread.run(0);
      thread.setTop(0);

      const names = thread.call("__kumo_handler_names");
      thread.setTop(0);
      const list = names[0];
      const handlers = new Set<string>(Array.isArray(list) ? list as string[] : []);
      const ctx = new LuaContext(engine, thread, threadRef, dispatchRef, handlers, opts.epoch);
      ctx.#sessionRef = sessionRef; // [session]
      return ctx;
    } catch (e) {
      g.close();
      throw e;
    }
  }

  /** True when the policy registered at least one handler for `event`. */
  hasHandler(event: string): boolean {
    return this.#handlers.has(event);
  }

  /** The events the policy registered handlers for. */
  get handlerNames(): ReadonlySet<string> {
    return this.#handlers;
  }

  /**
   * Runs the handler(s) for `event`. `kinds` has one letter per argument
   * telling the prelude how to wrap it: `m` Message, `c` conn_meta,
   * `g` config object, anything else passed as is.
   */
  async dispatch(event: string, kinds: string, args: readonly unknown[]): Promise<DispatchResult> {
    this.uses++;
    const t = this.#thread;
    const raw = this.#raw;
    raw.settop(0);
    raw.rawgeti(LUA_REGISTRYINDEX, this.#dispatchRefBig);
    raw.pushString(event);
    raw.pushString(kinds);
    for (const a of args) pushArg(t, raw, a);
    let r: unknown[];
    try {
      r = await this.#resume(2 + args.length);
    } catch (e) {
      t.lua.lua_resetthread(t.address);
      raw.settop(0);
      const message = e instanceof Error ? e.message : String(e);
      return { kind: "error", message, traceback: message };
    }
    raw.settop(0);
    return resultOf(r);
  }

  /**
   * [session] Runs the prelude's held-object helper (engine.ts
   * PolicySession): `hold` fires event `target` and keeps its first value
   * in this context (the result's value is its key); `call` runs
   * `obj:method(...)` on held object `target` (kinds `M` = one list of
   * messages); `has` tells whether it has `method`; `drop` forgets it
   * (`"*"` = all). Same result shape as {@linkcode dispatch}.
   */
  async sessionOp(
    op: "hold" | "call" | "has" | "drop",
    target: string | number,
    method: string,
    kinds: string,
    args: readonly unknown[],
  ): Promise<DispatchResult> {
    this.uses++;
    const t = this.#thread;
    const lua = t.lua;
    const L = t.address;
    const raw = this.#raw;
    raw.settop(0);
    raw.rawgeti(LUA_REGISTRYINDEX, BigInt(this.#sessionRef));
    raw.pushString(op);
    pushArg(t, raw, target);
    raw.pushString(method);
    raw.pushString(kinds);
    for (const a of args) pushArg(t, raw, a);
    let r: unknown[];
    try {
      r = await this.#resume(4 + args.length);
    } catch (e) {
      lua.lua_resetthread(L);
      lua.lua_settop(L, 0);
      const message = e instanceof Error ? e.message : String(e);
      return { kind: "error", message, traceback: message };
    }
    lua.lua_settop(L, 0);
    return resultOf(r);
  }

  /**
   * Resumes the dispatch thread until it finishes, awaiting each promise
   * it yields (`p:await()` in the prelude). Hot path: a handler that does
   * not await finishes in one resume with no promise machinery.
   */
  async #resume(nargs: number): Promise<unknown[]> {
    const t = this.#thread;
    const raw = this.#raw;
    for (;;) {
      const status = raw.resume(nargs);
      const nres = raw.nres;
      if (status === LuaReturn.Yield) {
        if (nres > 0) {
          const last = t.getValue(-1);
          raw.settop(-nres - 1);
          if (last instanceof Promise) await last;
          else await new Promise((r) => setTimeout(r, 0));
        } else {
          await new Promise((r) => setTimeout(r, 0));
        }
        nargs = 0;
        continue;
      }
      if (status !== LuaReturn.Ok) {
        const msg = raw.type(-1) === LuaType.String ? raw.toString(-1) : String(t.getValue(-1));
        throw new Error(msg);
      }
      const out = new Array<unknown>(nres);
      for (let i = 1; i <= nres; i++) out[i - 1] = readValue(t, raw, i);
      return out;
    }
  }

  /** Releases the Lua state. */
  close(): void {
    try {
      const lua = this.#thread.lua;
      lua.luaL_unref(this.#thread.address, LUA_REGISTRYINDEX, this.#dispatchRef);
      lua.luaL_unref(this.#thread.address, LUA_REGISTRYINDEX, this.#threadRef);
    } finally {
      this.#engine.global.close();
    }
  }
}

/** The prelude's numeric status protocol (`dispatch` in prelude_lua.ts) as a result. */
function resultOf(r: unknown[]): DispatchResult {
  switch (r[0]) {
    case 0:
      return { kind: "none" };
    case 1: {
      const n = r[1] as number;
      const values = n === 0
        ? []
        : n === 1
        ? [r[2] ?? undefined]
        : [r[2] ?? undefined, r[3] ?? undefined];
      return { kind: "ok", values };
    }
    case 2:
      return {
        kind: "reject",
        code: r[1] as number,
        message: String(r[2] ?? ""),
        how: String(r[3] ?? "reject"),
      };
    default:
      return {
        kind: "error",
        message: String(r[1] ?? "unknown error"),
        traceback: String(r[2] ?? r[1] ?? ""),
      };
  }
}
