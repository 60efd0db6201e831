/**
 * The Lua C API calls that policy dispatch and table conversion make most,
 * called straight on the WASM module's exports (`module._lua_*`) instead of
 * through wasmoon's `cwrap`/`ccall` wrappers, which convert every argument
 * and save/restore the C stack on each call — about a microsecond each, and
 * a dispatch or a table conversion makes dozens. Strings go through one
 * scratch buffer per WASM module.
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
}

/** Memory shared by every RawLua of one WASM module. */
interface Scratch {
  /** [0]: int out-param (nres); [4]: size_t out-param (string length). */
  out: number;
  buf: number;
  cap: number;
  /** C string "js_userdata": the metatable name wasmoon gives JS objects. */
  jsUserdata: number;
  /** One RawLua per Lua thread address. */
  threads: Map<number, RawLua>;
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
  const m = thread.lua.module as unknown as RawModule;
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
    const name = encoder.encode("js_userdata\0");
    const jsUserdata = m._malloc(name.length);
    m.HEAPU8.set(name, jsUserdata);
    s = { out: m._malloc(8), buf: m._malloc(256), cap: 256, jsUserdata, threads: new Map() };
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
  const m = thread.lua.module as unknown as RawModule;
  const s = scratchOf(m);
  let r = s.threads.get(thread.address);
  if (r === undefined) {
    if (s.threads.size >= 4096) s.threads.clear(); // dead coroutines' addresses
    r = new RawLua(m, thread.address, s);
    s.threads.set(thread.address, r);
  }
  return r;
}

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
}
