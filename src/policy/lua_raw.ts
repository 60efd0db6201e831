/**
 * The few Lua C API calls a policy dispatch makes, called straight on the
 * WASM module's exports (`module._lua_*`) instead of through wasmoon's
 * `cwrap`/`ccall` wrappers, which convert every argument and save/restore
 * the C stack on each call — about a microsecond each, and a dispatch makes
 * a dozen. Strings go through one scratch buffer per Lua state.
 *
 * Place on the path: policy engine internals (lua_context.ts). Hot path:
 * no allocation beyond the JS strings read back.
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
  _lua_rawgeti(L: number, idx: number, n: bigint): number;
  _lua_pushlstring(L: number, s: number, len: number): number;
  _lua_pushnil(L: number): void;
  _lua_pushboolean(L: number, b: number): void;
  _lua_resume(L: number, from: number, nargs: number, nres: number): number;
  _lua_type(L: number, idx: number): number;
  _lua_tonumberx(L: number, idx: number, isnum: number): number;
  _lua_tolstring(L: number, idx: number, len: number): number;
  _lua_toboolean(L: number, idx: number): number;
  _luaL_testudata(L: number, idx: number, tname: number): number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Direct Lua calls on one thread's state.
 *
 * @example
 * ```ts
 * const raw = new RawLua(thread);
 * raw.settop(0);
 * raw.pushString("get_queue_config");
 * ```
 */
export class RawLua {
  readonly #m: RawModule;
  readonly #L: number;
  /** [0]: int out-param (nres); [4]: size_t out-param (string length). */
  readonly #out: number;
  #buf: number;
  #cap: number;
  /** C string "js_userdata": the metatable name wasmoon gives JS objects. */
  #jsUserdata: number;

  constructor(thread: LuaThread) {
    this.#m = thread.lua.module as unknown as RawModule;
    this.#L = thread.address;
    this.#out = this.#m._malloc(8);
    this.#cap = 256;
    this.#buf = this.#m._malloc(this.#cap);
    const name = encoder.encode("js_userdata\0");
    this.#jsUserdata = this.#m._malloc(name.length);
    this.#m.HEAPU8.set(name, this.#jsUserdata);
  }

  settop(idx: number): void {
    this.#m._lua_settop(this.#L, idx);
  }

  rawgeti(idx: number, n: bigint): void {
    this.#m._lua_rawgeti(this.#L, idx, n);
  }

  pushNil(): void {
    this.#m._lua_pushnil(this.#L);
  }

  pushBoolean(b: boolean): void {
    this.#m._lua_pushboolean(this.#L, b ? 1 : 0);
  }

  /** Push a JS string as a Lua string (UTF-8; Lua copies it). */
  pushString(s: string): void {
    const m = this.#m;
    // UTF-8 needs at most 3 bytes per UTF-16 unit.
    const need = s.length * 3;
    if (need > this.#cap) {
      m._free(this.#buf);
      this.#cap = Math.max(need, this.#cap * 2);
      this.#buf = m._malloc(this.#cap);
    }
    const heap = m.HEAPU8;
    const at = this.#buf;
    // Short ASCII (event names, kinds, domains): copy the bytes by hand, an
    // encodeInto op call costs more than the loop.
    if (s.length <= 64) {
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        heap[at + i] = c;
      }
      if (i === s.length) {
        m._lua_pushlstring(this.#L, at, i);
        return;
      }
    }
    const { written } = encoder.encodeInto(s, heap.subarray(at, at + need));
    m._lua_pushlstring(this.#L, at, written);
  }

  /** `lua_resume`; returns the status, the result count is {@linkcode nres}. */
  resume(nargs: number): number {
    const m = this.#m;
    m.HEAPU32[this.#out >> 2] = 0;
    return m._lua_resume(this.#L, 0, nargs, this.#out);
  }

  /** Results of the last {@linkcode resume}. */
  get nres(): number {
    return this.#m.HEAPU32[this.#out >> 2];
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
    const lenAt = this.#out + 4;
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
    const ud = m._luaL_testudata(this.#L, idx, this.#jsUserdata);
    return ud === 0 ? -1 : m.HEAPU32[ud >> 2];
  }

  /** Release the scratch memory. */
  free(): void {
    this.#m._free(this.#jsUserdata);
    this.#m._free(this.#buf);
    this.#m._free(this.#out);
  }
}
