/**
 * Fast conversion of Lua tables to JS values and of plain JS data to Lua
 * tables, installed in every Lua context ahead of wasmoon's own converter.
 *
 * Place on the path: policy. Every `kumo.make_*` call and most host calls
 * convert a table; wasmoon's generic converter walks each table twice and
 * stringifies every key through `luaL_tolstring`, and registers every pushed
 * table in the registry for cycle detection. Policy data is JSON-like, so a
 * single `lua_next` pass and direct `lua_createtable` pushes suffice.
 *
 * Conversion rules (same as wasmoon's, which the rest of the code expects):
 * a non-empty table whose keys are exactly 1..n in order becomes an array;
 * any other table (including `{}`) becomes an object with string keys.
 * Tables seen twice in one conversion (cycles) are converted once.
 *
 * @module
 */

import { type LuaThread, LuaType, LuaTypeExtension } from "wasmoon";
import { type RawLua, rawLua } from "./lua_raw.ts";

const MAX_DEPTH = 200;

/** The table converter registered with a higher priority than wasmoon's. */
export class FastTableExtension extends LuaTypeExtension<unknown> {
  constructor(thread: LuaThread) {
    super(thread as never, "kumo_fast_table");
  }

  override isType(_thread: LuaThread, _index: number, type: LuaType): boolean {
    return type === LuaType.Table;
  }

  override getValue(thread: LuaThread, index: number, userdata?: unknown): unknown {
    const raw = rawLua(thread);
    const idx = raw.absindex(index);
    const seen = (userdata as Map<number, unknown> | undefined) ?? new Map<number, unknown>();
    const ptr = raw.topointer(idx);
    const prior = seen.get(ptr);
    if (prior !== undefined) return prior;

    const keys: (string | number)[] = [];
    const values: unknown[] = [];
    const placeholder: Record<string, unknown> = {};
    seen.set(ptr, placeholder);
    let sequential = true;
    raw.pushNil();
    while (raw.next(idx) !== 0) {
      const kt = raw.type(-2);
      let key: string | number;
      if (kt === LuaType.String) {
        key = raw.toString(-2);
        sequential = false;
      } else if (kt === LuaType.Number) {
        key = raw.toNumber(-2);
        if (key !== keys.length + 1) sequential = false;
      } else {
        // booleans, tables... as keys: stringify a copy, as wasmoon does
        key = thread.indexToString(-2);
        sequential = false;
      }
      keys.push(key);
      // Scalars straight from the stack; tables, functions, userdata through
      // the converters (this one again for nested tables).
      switch (raw.type(-1)) {
        case LuaType.String:
          values.push(raw.toString(-1));
          break;
        case LuaType.Number:
          values.push(raw.toNumber(-1));
          break;
        case LuaType.Boolean:
          values.push(raw.toBoolean(-1));
          break;
        default:
          values.push(thread.getValue(-1, undefined, seen));
      }
      raw.settop(-2);
    }
    let result: unknown;
    if (sequential && keys.length > 0) {
      result = values;
    } else {
      for (let i = 0; i < keys.length; i++) placeholder[String(keys[i])] = values[i];
      result = placeholder;
    }
    seen.set(ptr, result);
    return result;
  }

  override pushValue(
    thread: LuaThread,
    decoration: { target: unknown; options: Record<string, unknown> },
    userdata?: unknown,
  ): boolean {
    const target = decoration.target;
    if (typeof target !== "object" || target === null) return false;
    if (Object.keys(decoration.options).length > 0) return false;
    const isArray = Array.isArray(target);
    if (target instanceof Map) {
      // Keys as they are (integers stay integers): see toLua in lua_context.ts.
      const depth = (userdata as number | undefined) ?? 0;
      if (depth > MAX_DEPTH) throw new Error("value nested too deeply to pass to Lua");
      const raw = rawLua(thread);
      raw.createtable(0, target.size);
      for (const [k, v] of target as Map<unknown, unknown>) {
        if (v === undefined || v === null || k === undefined || k === null) continue;
        pushItem(thread, raw, k, depth);
        pushItem(thread, raw, v, depth);
        raw.rawset(-3);
      }
      return true;
    }
    if (!isArray) {
      const proto = Object.getPrototypeOf(target);
      if (proto !== Object.prototype && proto !== null) return false;
    }
    const depth = (userdata as number | undefined) ?? 0;
    if (depth > MAX_DEPTH) throw new Error("value nested too deeply to pass to Lua");
    const raw = rawLua(thread);
    if (isArray) {
      const arr = target as unknown[];
      raw.createtable(arr.length, 0);
      for (let i = 0; i < arr.length; i++) {
        pushItem(thread, raw, arr[i], depth);
        raw.rawseti(-2, i + 1);
      }
    } else {
      const obj = target as Record<string, unknown>;
      raw.createtable(0, 0);
      for (const k in obj) {
        const v = obj[k];
        if (v === undefined || v === null) continue;
        raw.pushString(k);
        pushItem(thread, raw, v, depth);
        raw.rawset(-3);
      }
    }
    return true;
  }

  override close(): void {}
}

/** One table entry: scalars straight through {@link RawLua}, the rest through the converters. */
function pushItem(thread: LuaThread, raw: RawLua, v: unknown, depth: number): void {
  switch (typeof v) {
    case "string":
      raw.pushString(v);
      return;
    case "number":
      raw.pushNumber(v);
      return;
    case "boolean":
      raw.pushBoolean(v);
      return;
    case "object":
      if (v === null) raw.pushNil();
      else thread.pushValue(v, depth + 1);
      return;
    default:
      thread.pushValue(v);
  }
}
