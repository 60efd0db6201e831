/**
 * Host objects for the long tail of the `kumo` module: JS class instances
 * (throttles, times, regexes, HTTP clients, ...) that Lua sees as objects
 * with fields (`t.year`), methods (`re:find(s)`, awaited when asynchronous)
 * and metamethods (`tostring(t)`, `t1 - t2`, `<close>`), plus binary-safe
 * strings across the Lua/JS boundary.
 *
 * Place on the path: policy. A class registers a {@link LuaClass}; the Lua
 * glue in {@link HOST_OBJECT_LUA} (run by the prelude after the host
 * functions are installed) builds one metatable per class and re-installs
 * the long-tail functions so that their arguments are unwrapped and their
 * results wrapped. Objects live in JS; Lua holds a reference only, so they
 * survive `kumo.memoize` and are shared by every context that gets them.
 *
 * Binary data: a Lua string that is not valid UTF-8 (or holds a NUL) crosses
 * as `{ __bytes = {b1, b2, ...} }`; JS returns such a table for bytes that
 * are not valid UTF-8 text. {@link bytesArg} / {@link luaBytes} do the JS half.
 * A result object with `__numeric_keys: true` reaches Lua with its digit
 * keys as integers (`caps[0]`).
 *
 * @module
 */

import { Message } from "../../message/message.ts";
import { isConfigObject } from "../config_object.ts";

type Fn = (...args: never[]) => unknown;

/** How a JS class looks from Lua. */
export interface LuaClass<T = never> {
  /** Type name, used in error messages and as the metatable's `__name`. */
  name: string;
  /** Field read (`obj.key`): the value, or `undefined` for nil. */
  fields?: (self: T, key: string) => unknown;
  /** Synchronous methods (`obj:m(...)`). */
  methods?: Record<string, (self: T, ...args: never[]) => unknown>;
  /** Asynchronous methods; Lua awaits their promise. */
  asyncMethods?: Record<string, (self: T, ...args: never[]) => Promise<unknown>>;
  /** Metamethods by Lua name: `__tostring`, `__eq`, `__add`, `__sub`, `__lt`, `__le`, `__close`. */
  meta?: Record<string, (self: T, other?: never) => unknown>;
}

const classes = new Map<unknown, LuaClass>();

/**
 * Register `ctor`'s instances as Lua objects of class `cls`.
 *
 * @example
 * ```ts
 * class Point { constructor(public x: number) {} }
 * registerLuaClass(Point, { name: "Point", fields: (p, k) => k === "x" ? p.x : undefined });
 * ```
 */
export function registerLuaClass<T>(
  ctor: abstract new (...args: never[]) => T,
  cls: LuaClass<T>,
): void {
  classes.set(ctor, cls as unknown as LuaClass);
}

function classOf(obj: unknown): LuaClass {
  const cls = typeof obj === "object" && obj !== null ? classes.get(obj.constructor) : undefined;
  if (!cls) throw new TypeError(`Cannot use value "${String(obj)}": not a kumo host object`);
  return cls;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/** Bytes for Lua: a string when they are NUL-free UTF-8, else `{ __bytes }`. */
export function luaBytes(bytes: Uint8Array): string | { __bytes: number[] } {
  if (!bytes.includes(0)) {
    try {
      return utf8.decode(bytes);
    } catch { /* binary */ }
  }
  return { __bytes: Array.from(bytes) };
}

/** Bytes of a Lua string argument (text, or the glue's `{ __bytes }` form). */
export function bytesArg(v: unknown, what = "argument"): Uint8Array {
  if (typeof v === "string") return utf8Encoder.encode(v);
  if (typeof v === "number") return utf8Encoder.encode(String(v));
  if (typeof v === "object" && v !== null && Array.isArray((v as { __bytes?: unknown }).__bytes)) {
    return Uint8Array.from((v as { __bytes: number[] }).__bytes);
  }
  if (Array.isArray(v) && v.length === 0) return new Uint8Array(0);
  throw new TypeError(`Cannot use ${what}: expected a string, got ${typeof v}`);
}

/** Text of a Lua string argument (binary input is decoded as UTF-8, lossy). */
export function textArg(v: unknown, what = "argument"): string {
  if (typeof v === "string") return v;
  return new TextDecoder().decode(bytesArg(v, what));
}

/** The functions the glue needs (`kumo.__obj_*`); spread into the sync/async catalogue. */
export const HOST_OBJECT_SYNC: Record<string, Fn> = {
  __obj_class: ((obj: unknown) => {
    if (obj instanceof Message) return "Message";
    if (isConfigObject(obj)) return "ConfigObject";
    return classOf(obj).name;
  }) as Fn,
  __obj_get: ((obj: unknown, key: string) => classOf(obj).fields?.(obj as never, key)) as Fn,
  __obj_call: ((obj: unknown, name: string, ...args: never[]) => {
    const cls = classOf(obj);
    const f = cls.methods?.[name] ?? cls.meta?.[name];
    if (!f) throw new TypeError(`${cls.name} has no method named "${name}"`);
    return (f as Fn)(obj as never, ...args);
  }) as Fn,
  __host_classes: (() => {
    const out: Record<string, unknown> = {};
    for (const c of classes.values()) {
      out[c.name] = {
        methods: Object.keys(c.methods ?? {}),
        async: Object.keys(c.asyncMethods ?? {}),
        meta: Object.keys(c.meta ?? {}),
      };
    }
    return out;
  }) as Fn,
};

/** `kumo.__obj_acall`: an asynchronous method call. */
export const HOST_OBJECT_ASYNC: Record<string, (...args: never[]) => Promise<unknown>> = {
  __obj_acall: ((obj: unknown, name: string, ...args: never[]) => {
    const cls = classOf(obj);
    const f = cls.asyncMethods?.[name];
    if (!f) return Promise.reject(new TypeError(`${cls.name} has no method named "${name}"`));
    return f(obj as never, ...args);
  }) as (...args: never[]) => Promise<unknown>,
};

/**
 * `kumo.__lua_glue()` (the Lua chunks the prelude runs after installing the
 * host functions, each called with `kumo, H, WRAPPERS`; `extraChunks` are
 * `[chunk name, source]` pairs run after this module's own) and
 * `kumo.__host_wrap_names()` (the dotted names of the functions the glue
 * re-installs with object- and binary-aware arguments and results).
 */
export function hostObjectGlue(
  wrapSync: string[],
  wrapAsync: string[],
  extraChunks: [string, string][] = [],
): Record<string, Fn> {
  const chunks = [["kumo", HOST_OBJECT_LUA], ...extraChunks];
  const names = { sync: wrapSync, async: wrapAsync };
  return {
    __lua_glue: (() => chunks) as Fn,
    __host_wrap_names: (() => names) as Fn,
  };
}

/** Lua half: called as `chunk(kumo, H, WRAPPERS)` by the prelude. */
export const HOST_OBJECT_LUA = String.raw`
local kumo, H, WRAPPERS = ...
local S, A = H.sync_functions, H.async_functions
local spec = S.__host_wrap_names()
local pack, unpack, type, error, pcall, getmetatable, setmetatable, rawget, tostring =
  table.pack, table.unpack, type, error, pcall, getmetatable, setmetatable, rawget, tostring

local function fail(err, level)
  local mt = type(err) == 'table' and getmetatable(err)
  if mt and mt.__kumo_reject then error(err, 0) end
  error(tostring(err), level + 1)
end

local function to_bytes(s)
  local t, n = {}, #s
  for i = 1, n, 4096 do
    local part = { s:byte(i, math.min(i + 4095, n)) }
    table.move(part, 1, #part, i, t)
  end
  return { __bytes = t }
end
local function from_bytes(t)
  local parts = {}
  for i = 1, #t, 4096 do parts[#parts + 1] = string.char(unpack(t, i, math.min(i + 4095, #t))) end
  return table.concat(parts)
end

local function arg(v)
  local tv = type(v)
  if tv == 'string' then
    if utf8.len(v) == nil or v:find('\0', 1, true) then return to_bytes(v) end
    return v
  end
  if tv == 'table' then
    local mt = getmetatable(v)
    if mt and mt.__kumo_ud then return rawget(v, 1) end
  end
  return v
end

local obj_class, obj_get, obj_call, obj_acall = S.__obj_class, S.__obj_get, S.__obj_call, A.__obj_acall
local MTS = {}
local SPECIAL = { Message = WRAPPERS.m, ConfigObject = WRAPPERS.g }
local function wrap_obj(ud)
  local ok, name = pcall(obj_class, ud)
  if not ok then return ud end
  local special = SPECIAL[name]
  if special then return special(ud) end
  local mt = MTS[name]
  if mt == nil then return ud end
  return setmetatable({ ud }, mt)
end

local function res(v)
  local tv = type(v)
  if tv == 'userdata' then return wrap_obj(v) end
  if tv == 'table' and getmetatable(v) == nil then
    local b = rawget(v, '__bytes')
    if b ~= nil then return from_bytes(b) end
    if rawget(v, '__numeric_keys') then
      local out = {}
      for k, x in pairs(v) do
        if k ~= '__numeric_keys' then out[math.tointeger(tonumber(k)) or k] = x end
      end
      return out
    end
  end
  return v
end

local function args_of(...)
  local a = pack(...)
  for i = 1, a.n do a[i] = arg(a[i]) end
  return a
end

local function sync_fn(f)
  return function(...)
    local a = args_of(...)
    local r = pack(pcall(f, unpack(a, 1, a.n)))
    if not r[1] then fail(r[2], 2) end
    for i = 2, r.n do r[i] = res(r[i]) end
    return unpack(r, 2, r.n)
  end
end
local function async_fn(f)
  return function(...)
    local a = args_of(...)
    local ok, p = pcall(f, unpack(a, 1, a.n))
    if not ok then fail(p, 2) end
    local ok2, v = pcall(p.await, p)
    if not ok2 then fail(v, 2) end
    return res(v)
  end
end

for name, c in pairs(S.__host_classes()) do
  local methods = {}
  for _, m in ipairs(c.methods) do
    methods[m] = function(self, ...)
      if type(self) ~= 'table' or getmetatable(self) ~= MTS[name] then
        error(name .. ':' .. m .. ': call it as a method (obj:' .. m .. '(...))', 2)
      end
      local a = args_of(...)
      local r = pack(pcall(obj_call, rawget(self, 1), m, unpack(a, 1, a.n)))
      if not r[1] then fail(r[2], 2) end
      for i = 2, r.n do r[i] = res(r[i]) end
      return unpack(r, 2, r.n)
    end
  end
  for _, m in ipairs(c.async) do
    methods[m] = function(self, ...)
      if type(self) ~= 'table' or getmetatable(self) ~= MTS[name] then
        error(name .. ':' .. m .. ': call it as a method (obj:' .. m .. '(...))', 2)
      end
      local a = args_of(...)
      local ok, p = pcall(obj_acall, rawget(self, 1), m, unpack(a, 1, a.n))
      if not ok then fail(p, 2) end
      local ok2, v = pcall(p.await, p)
      if not ok2 then fail(v, 2) end
      return res(v)
    end
  end
  local mt = { __kumo_ud = true, __kumo_kind = 'o', __name = name }
  mt.__index = function(t, k)
    local f = methods[k]
    if f ~= nil then return f end
    local ok, v = pcall(obj_get, rawget(t, 1), k)
    if not ok then fail(v, 2) end
    return res(v)
  end
  mt.__newindex = function() error(name .. ' objects are read-only', 2) end
  for _, m in ipairs(c.meta) do
    mt[m] = function(a, b)
      if type(a) ~= 'table' or getmetatable(a) ~= mt then
        error(name .. ': unsupported operand order for ' .. m, 2)
      end
      local ok, v = pcall(obj_call, rawget(a, 1), m, arg(b))
      if not ok then fail(v, 2) end
      return res(v)
    end
  end
  MTS[name] = mt
end
WRAPPERS.o = wrap_obj

local function install(path, f)
  local t = kumo
  local parts = {}
  for p in path:gmatch('[^.]+') do parts[#parts + 1] = p end
  for i = 1, #parts - 1 do
    t[parts[i]] = t[parts[i]] or {}
    t = t[parts[i]]
  end
  t[parts[#parts]] = f
end
local lazy = kumo.__lazy
for _, name in ipairs(spec.sync) do install(name, lazy(function() return sync_fn(S[name]) end)) end
for _, name in ipairs(spec.async) do install(name, lazy(function() return async_fn(A[name]) end)) end
kumo.__host_arg, kumo.__host_res = arg, res
`;
