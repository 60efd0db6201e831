/**
 * The Lua C API calls that policy dispatch and table conversion make most,
 * called straight on the WASM instance's exports instead of through
 * wasmoon's `cwrap`/`ccall` wrappers, which convert every argument and
 * save/restore the C stack on each call — about a microsecond each, and a
 * dispatch or a table conversion makes dozens. Strings go through one
 * scratch buffer per WASM module.
 *
 * wasmoon's build has emscripten's assertions on: even `module._lua_*` is a
 * wrapper that builds an error message string and checks two assertions
 * before it `apply`s the export. {@linkcode captureWasmInstances} sees the
 * instance being created, and {@linkcode rawModule} then calls its exports
 * directly (falling back to `module._lua_*` when it did not see it).
 *
 * Place on the path: policy engine internals (lua_context.ts, lua_tables.ts).
 * Hot path: no allocation beyond the JS values read back.
 *
 * @module
 */

import type { LuaThread } from "wasmoon";

/** The raw exports used here (emscripten names). */
interface RawModule {
  HEAPU8: Uint8Array;
  HEAPU32: Uint32Array;
  _malloc(n: number): number;
  _free(p: number): void;
  _lua_settop(L: number, idx: number): void;
  _lua_absindex(L: number, idx: number): number;
  _lua_rawgeti(L: number, idx: number, n: bigint): number;
  _lua_rawseti(L: number, idx: number, n: bigint): void;
  _lua_rawset(L: number, idx: number): void;
  _lua_createtable(L: number, narr: number, nrec: number): void;
  _lua_next(L: number, idx: number): number;
  _lua_topointer(L: number, idx: number): number;
  _lua_pushlstring(L: number, s: number, len: number): number;
  _lua_pushnil(L: number): void;
  _lua_pushboolean(L: number, b: number): void;
  _lua_pushinteger(L: number, n: bigint): void;
  _lua_pushnumber(L: number, n: number): void;
  _lua_resume(L: number, from: number, nargs: number, nres: number): number;
  _lua_type(L: number, idx: number): number;
  _lua_tonumberx(L: number, idx: number, isnum: number): number;
  _lua_tolstring(L: number, idx: number, len: number): number;
  _lua_toboolean(L: number, idx: number): number;
  _luaL_testudata(L: number, idx: number, tname: number): number;
  _luaL_loadbufferx(L: number, buf: number, size: number, name: number, mode: number): number;
  _lua_getglobal(L: number, name: number): number;
  _lua_getfield(L: number, idx: number, k: number): number;
  _lua_pushvalue(L: number, idx: number): void;
  _lua_callk(L: number, nargs: number, nresults: number, ctx: number, k: number): void;
  _lua_gettop(L: number): number;
  _lua_touserdata(L: number, idx: number): number;
  _lua_newuserdatauv(L: number, size: number, nuvalue: number): number;
  _lua_setmetatable(L: number, idx: number): number;
  _lua_pushcclosure(L: number, fn: number, n: number): void;
  _lua_error(L: number): number;
  _lua_tothread(L: number, idx: number): number;
  _lua_setfield(L: number, idx: number, k: number): void;
  addFunction(fn: (L: number) => number, sig: string): number;
}

/** Memory shared by every RawLua of one WASM module. */
interface Scratch {
  /** [0]: int out-param (nres); [4]: size_t out-param (string length). */
  out: number;
  buf: number;
  cap: number;
  /** C string "js_userdata": the metatable name wasmoon gives JS objects. */
  jsUserdata: number;
  /** C string "js_function": the metatable of a JS function's upvalue (its `__gc` unrefs). */
  jsFunction: number;
  /** C string "__gc", made on first use. */
  gcName?: number;
  /** One RawLua per Lua thread address. */
  threads: Map<number, RawLua>;
}

/** Lua WASM instances seen being created (see captureWasmInstances). */
const instances: WebAssembly.Instance[] = [];
/** emscripten module → the object whose `_lua_*` are the raw exports. */
const fastModules = new WeakMap<object, RawModule>();

/**
 * Note every WebAssembly instance with Lua's exports created from now until
 * the returned function is called (wrap the creation of a wasmoon
 * `LuaFactory` in it: its module is instantiated asynchronously).
 *
 * @example
 * ```ts
 * const done = captureWasmInstances();
 * const factory = new LuaFactory();
 * factory.getLuaModule().finally(done);
 * ```
 */
export function captureWasmInstances(): () => void {
  const original = WebAssembly.instantiate;
  const note = (r: unknown) => {
    const inst = r instanceof WebAssembly.Instance ? r : (r as { instance?: unknown }).instance;
    if (inst instanceof WebAssembly.Instance && typeof inst.exports.lua_resume === "function") {
      instances.push(inst);
    }
    return r;
  };
  WebAssembly.instantiate = function (this: unknown, ...args: unknown[]) {
    return (original as (...a: unknown[]) => Promise<unknown>).apply(this, args).then(note);
  } as typeof WebAssembly.instantiate;
  return () => {
    WebAssembly.instantiate = original;
  };
}

/** The module with its `_lua*` replaced by the raw exports, when its instance was seen. */
function fastModule(m: RawModule): RawModule {
  let f = fastModules.get(m);
  if (f !== undefined) return f;
  f = m;
  const i = instances.findIndex((inst) =>
    (inst.exports.memory as WebAssembly.Memory | undefined)?.buffer === m.HEAPU8.buffer
  );
  if (i >= 0) {
    const [inst] = instances.splice(i, 1);
    const own: Record<string, unknown> = {};
    const wrappers = m as unknown as Record<string, unknown>;
    for (const [name, fn] of Object.entries(inst.exports)) {
      if (
        /^luaL?_/.test(name) && typeof fn === "function" &&
        typeof wrappers["_" + name] === "function"
      ) {
        own["_" + name] = fn;
      }
    }
    // Everything else (HEAPU8 after a memory growth, _malloc, addFunction)
    // is still read from the emscripten module, through the prototype.
    f = Object.assign(Object.create(m), own) as RawModule;
  }
  fastModules.set(m, f);
  return f;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const scratches = new WeakMap<object, Scratch>();

/**
 * Compiled chunks (`string.dump` output, debug info kept) by chunk name and
 * source text: every new context runs the same prelude and policy, and
 * loading bytecode skips the Lua parser. Bounded; a changed file is a new key.
 */
const bytecode = new Map<string, Uint8Array>();
const BYTECODE_ENTRIES = 32;

/** A NUL-terminated copy of `text` in WASM memory; the caller frees it. */
function cString(m: RawModule, text: string): number {
  const bytes = encoder.encode(text + "\0");
  const p = m._malloc(bytes.length);
  m.HEAPU8.set(bytes, p);
  return p;
}

/**
 * Push the function compiled from `source` (as `thread.loadString` does), from
 * the bytecode cache when this chunk was compiled before in this process.
 * Syntax errors surface exactly as before: the text path is wasmoon's own.
 *
 * @example
 * ```ts
 * loadChunk(thread, PRELUDE_LUA, "=kumo");
 * ```
 */
export function loadChunk(thread: LuaThread, source: string, chunkname: string): void {
  const m = rawModule(thread);
  const L = thread.address;
  const key = chunkname + "\0" + source;
  const code = bytecode.get(key);
  if (code !== undefined) {
    const buf = m._malloc(code.length);
    const name = cString(m, chunkname);
    const mode = cString(m, "b");
    try {
      m.HEAPU8.set(code, buf);
      if (m._luaL_loadbufferx(L, buf, code.length, name, mode) === 0) return;
      m._lua_settop(L, -2); // a rejected cache entry: compile from text below
      bytecode.delete(key);
    } finally {
      m._free(buf);
      m._free(name);
      m._free(mode);
    }
  }
  thread.loadString(source, chunkname);
  // string.dump(f) of the function now on top, kept for the next context.
  const str = cString(m, "string");
  const dump = cString(m, "dump");
  try {
    m._lua_getglobal(L, str);
    m._lua_getfield(L, -1, dump);
    m._lua_pushvalue(L, -3);
    m._lua_callk(L, 1, 1, 0, 0);
    const s = scratchOf(m);
    const p = m._lua_tolstring(L, -1, s.out + 4);
    const len = m.HEAPU32[(s.out + 4) >> 2];
    if (bytecode.size >= BYTECODE_ENTRIES) bytecode.clear();
    bytecode.set(key, m.HEAPU8.slice(p, p + len));
    m._lua_settop(L, -3); // the dump and the string table; the function stays
  } finally {
    m._free(str);
    m._free(dump);
  }
}

function scratchOf(m: RawModule): Scratch {
  let s = scratches.get(m);
  if (s === undefined) {
    s = {
      out: m._malloc(8),
      buf: m._malloc(256),
      cap: 256,
      jsUserdata: cString(m, "js_userdata"),
      jsFunction: cString(m, "js_function"),
      threads: new Map(),
    };
    scratches.set(m, s);
  }
  return s;
}

/**
 * The RawLua of a wasmoon thread (made once per thread address).
 *
 * @example
 * ```ts
 * const raw = rawLua(thread);
 * raw.settop(0);
 * raw.pushString("get_queue_config");
 * ```
 */
export function rawLua(thread: LuaThread): RawLua {
  return rawAt(rawModule(thread), thread.address);
}

/** The {@link RawLua} of Lua state (or coroutine) `L` of module `m`. */
export function rawAt(m: RawModule, L: number): RawLua {
  const s = scratchOf(m);
  let r = s.threads.get(L);
  if (r === undefined) {
    if (s.threads.size >= 4096) s.threads.clear(); // dead coroutines' addresses
    r = new RawLua(m, L, s);
    s.threads.set(L, r);
  }
  return r;
}

/** The raw exports behind a wasmoon thread. */
export function rawModule(thread: LuaThread): RawModule {
  return fastModule(thread.lua.module as unknown as RawModule);
}

export type { RawModule };

/** Direct Lua calls on one thread's state; see {@link rawLua}. */
export class RawLua {
  readonly #m: RawModule;
  readonly #L: number;
  readonly #s: Scratch;

  constructor(m: RawModule, L: number, s: Scratch) {
    this.#m = m;
    this.#L = L;
    this.#s = s;
  }

  settop(idx: number): void {
    this.#m._lua_settop(this.#L, idx);
  }

  absindex(idx: number): number {
    return this.#m._lua_absindex(this.#L, idx);
  }

  rawgeti(idx: number, n: bigint): void {
    this.#m._lua_rawgeti(this.#L, idx, n);
  }

  rawseti(idx: number, n: number): void {
    this.#m._lua_rawseti(this.#L, idx, BigInt(n));
  }

  rawset(idx: number): void {
    this.#m._lua_rawset(this.#L, idx);
  }

  createtable(narr: number, nrec: number): void {
    this.#m._lua_createtable(this.#L, narr, nrec);
  }

  /** `lua_next`: pops a key, pushes the next key and value; 0 at the end. */
  next(idx: number): number {
    return this.#m._lua_next(this.#L, idx);
  }

  topointer(idx: number): number {
    return this.#m._lua_topointer(this.#L, idx);
  }

  pushNil(): void {
    this.#m._lua_pushnil(this.#L);
  }

  pushBoolean(b: boolean): void {
    this.#m._lua_pushboolean(this.#L, b ? 1 : 0);
  }

  /** A JS number as wasmoon pushes it: integers as Lua integers, others as floats. */
  pushNumber(n: number): void {
    if (Number.isInteger(n)) this.#m._lua_pushinteger(this.#L, BigInt(n));
    else this.#m._lua_pushnumber(this.#L, n);
  }

  /** Push a JS string as a Lua string (UTF-8; Lua copies it). */
  pushString(str: string): void {
    const m = this.#m;
    const s = this.#s;
    // UTF-8 needs at most 3 bytes per UTF-16 unit.
    const need = str.length * 3;
    if (need > s.cap) {
      m._free(s.buf);
      s.cap = Math.max(need, s.cap * 2);
      s.buf = m._malloc(s.cap);
    }
    const heap = m.HEAPU8;
    const at = s.buf;
    // Short ASCII (event names, kinds, domains, keys): copy the bytes by
    // hand, an encodeInto op call costs more than the loop.
    if (str.length <= 64) {
      let i = 0;
      for (; i < str.length; i++) {
        const c = str.charCodeAt(i);
        if (c > 0x7f) break;
        heap[at + i] = c;
      }
      if (i === str.length) {
        m._lua_pushlstring(this.#L, at, i);
        return;
      }
    }
    const { written } = encoder.encodeInto(str, heap.subarray(at, at + need));
    m._lua_pushlstring(this.#L, at, written);
  }

  /** `lua_resume`; returns the status, the result count is {@linkcode nres}. */
  resume(nargs: number): number {
    const m = this.#m;
    m.HEAPU32[this.#s.out >> 2] = 0;
    return m._lua_resume(this.#L, 0, nargs, this.#s.out);
  }

  /** Results of the last {@linkcode resume}. */
  get nres(): number {
    return this.#m.HEAPU32[this.#s.out >> 2];
  }

  type(idx: number): number {
    return this.#m._lua_type(this.#L, idx);
  }

  toNumber(idx: number): number {
    return this.#m._lua_tonumberx(this.#L, idx, 0);
  }

  toBoolean(idx: number): boolean {
    return this.#m._lua_toboolean(this.#L, idx) !== 0;
  }

  /** The string at `idx` (it must be a string or a number). */
  toString(idx: number): string {
    const m = this.#m;
    const lenAt = this.#s.out + 4;
    const p = m._lua_tolstring(this.#L, idx, lenAt);
    const len = m.HEAPU32[lenAt >> 2];
    return decoder.decode(m.HEAPU8.subarray(p, p + len));
  }

  /**
   * The registry reference of the JS object at `idx` when it is one of
   * wasmoon's `js_userdata` (host objects), else -1.
   */
  jsRef(idx: number): number {
    const m = this.#m;
    const ud = m._luaL_testudata(this.#L, idx, this.#s.jsUserdata);
    return ud === 0 ? -1 : m.HEAPU32[ud >> 2];
  }

  /** Number of values on the stack. */
  gettop(): number {
    return this.#m._lua_gettop(this.#L);
  }

  /**
   * Push registry reference `ref` (from wasmoon's `lua.ref(obj)`) as the
   * full userdata wasmoon makes for a host object: the same `js_userdata`
   * metatable, whose `__gc` drops the reference.
   */
  pushJsUserdata(ref: number): void {
    this.#pushRefUserdata(ref, this.#s.jsUserdata);
  }

  /**
   * Push registry reference `ref` of a JS function as a C closure over
   * `trampoline`, its one upvalue a `js_function` userdata holding `ref`
   * (wasmoon's layout; that metatable's `__gc` drops the reference).
   */
  pushJsClosure(ref: number, trampoline: number): void {
    this.#pushRefUserdata(ref, this.#s.jsFunction);
    this.#m._lua_pushcclosure(this.#L, trampoline, 1);
  }

  #pushRefUserdata(ref: number, metatableName: number): void {
    const m = this.#m;
    const L = this.#L;
    const ud = m._lua_newuserdatauv(L, 4, 0);
    m.HEAPU32[ud >> 2] = ref;
    m._lua_getfield(L, LUA_REGISTRY, metatableName);
    m._lua_setmetatable(L, -2);
  }

  /**
   * Sets `__gc` of wasmoon's `js_userdata` and `js_function` metatables to
   * C function `gc` (wasmoon's own look each name up through `ccall`).
   */
  replaceRefFinalizers(gc: number): void {
    const m = this.#m;
    const L = this.#L;
    const gcName = this.#s.gcName ??= cString(m, "__gc");
    for (const name of [this.#s.jsUserdata, this.#s.jsFunction]) {
      m._lua_getfield(L, LUA_REGISTRY, name);
      if (m._lua_type(L, -1) === 5 /* table */) {
        m._lua_pushcclosure(L, gc, 0);
        m._lua_setfield(L, -2, gcName);
      }
      m._lua_settop(L, -2);
    }
  }

  /** The reference held by the userdata at stack index 1 (a `__gc` call's argument), or -1. */
  firstUserdataRef(): number {
    const m = this.#m;
    const p = m._lua_touserdata(this.#L, 1);
    return p === 0 ? -1 : m.HEAPU32[p >> 2];
  }

  /** The registry reference held by the upvalue userdata of the running C closure. */
  upvalueRef(): number {
    const m = this.#m;
    return m.HEAPU32[m._lua_touserdata(this.#L, UPVALUE_1) >> 2];
  }

  /** The main state of this state's Lua universe (the `Global`'s address). */
  mainThread(): number {
    const m = this.#m;
    m._lua_rawgeti(this.#L, LUA_REGISTRY, 1n); // LUA_RIDX_MAINTHREAD
    const main = m._lua_tothread(this.#L, -1);
    m._lua_settop(this.#L, -2);
    return main;
  }

  /** `lua_error` with the string on top: unwinds into Lua, never returns. */
  error(): number {
    return this.#m._lua_error(this.#L);
  }
}

/** LUA_REGISTRYINDEX (Lua 5.4: -LUAI_MAXSTACK - 1000). */
const LUA_REGISTRY = -1001000;
/** lua_upvalueindex(1). */
const UPVALUE_1 = LUA_REGISTRY - 1;
