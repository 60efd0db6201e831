/**
 * Fast calls from Lua into JS: every JS function pushed into a Lua context
 * (the host table, `kumo.*` host functions, callbacks) becomes a C closure
 * over one shared trampoline that reads its arguments and pushes its
 * results through the raw WASM exports (lua_raw.ts).
 *
 * Place on the path: policy. wasmoon's own function wrapper marshals every
 * call through `ccall` (a C string built for each metatable name it
 * checks), looks up a metatable `__name` and scans the type extensions for
 * every argument, and wraps the calling state in a new Thread object; a
 * `msg:set_scheduling{...}` cost ~13 µs that way. Here scalars and host
 * objects (`js_userdata`) are read straight from the stack, and only other
 * values (tables, Lua functions, threads) go through wasmoon's converters,
 * which give the same results as before: `nil` arrives as `null`, a table
 * through {@linkcode FastTableExtension}, a thrown error reaches Lua as its
 * message.
 *
 * The closure keeps wasmoon's layout (its upvalue is a `js_function`
 * userdata whose `__gc` drops the function's reference), so wasmoon's
 * converters still recognise and collect it.
 *
 * @module
 */

import { Decoration, LuaMultiReturn, type LuaThread, LuaType, LuaTypeExtension } from "wasmoon";
import { rawAt, type RawModule, rawModule } from "./lua_raw.ts";
import type { FastTableExtension } from "./lua_tables.ts";

type AnyFn = (...args: unknown[]) => unknown;

/** wasmoon's reference table (shared by every state of one WASM module). */
interface RefTable {
  ref(value: unknown): number;
  unref(index: number): void;
  getRef(index: number): unknown;
}

/** A Lua universe: its Global, and the table converter registered in it. */
interface Universe {
  global: LuaThread;
  tables: FastTableExtension;
}

/** The Lua universes (main state address → Universe) whose values need converters. */
const universes = new Map<number, Universe>();
/** The C functions of one WASM module: the call trampoline and the reference finalizer. */
const trampolines = new WeakMap<object, { call: number; gc: number }>();

function trampolinesOf(m: RawModule, refs: RefTable): { call: number; gc: number } {
  let t = trampolines.get(m);
  if (t === undefined) {
    t = {
      call: m.addFunction((L) => call(m, refs, L), "ii"),
      gc: m.addFunction((L) => {
        const ref = rawAt(m, L).firstUserdataRef();
        if (ref >= 0) refs.unref(ref);
        return 0;
      }, "ii"),
    };
    trampolines.set(m, t);
  }
  return t;
}

function universeOf(m: RawModule, L: number): Universe {
  const u = universes.get(rawAt(m, L).mainThread());
  if (u === undefined) throw new Error("Lua state is closed");
  return u;
}

/** A wasmoon thread for state `L`, for the values the raw path does not read or push. */
function threadFor(m: RawModule, L: number): LuaThread {
  return universeOf(m, L).global.stateToThread(L);
}

function call(m: RawModule, refs: RefTable, L: number): number {
  const raw = rawAt(m, L);
  let result: unknown;
  try {
    const f = refs.getRef(raw.upvalueRef()) as AnyFn;
    const n = raw.gettop();
    const args = new Array<unknown>(n);
    let thread: LuaThread | undefined;
    for (let i = 1; i <= n; i++) {
      switch (raw.type(i)) {
        case LuaType.Nil:
          args[i - 1] = null;
          continue;
        case LuaType.Number:
          args[i - 1] = raw.toNumber(i);
          continue;
        case LuaType.String:
          args[i - 1] = raw.toString(i);
          continue;
        case LuaType.Boolean:
          args[i - 1] = raw.toBoolean(i);
          continue;
        case LuaType.Userdata: {
          const ref = raw.jsRef(i);
          if (ref >= 0) {
            args[i - 1] = refs.getRef(ref);
            continue;
          }
          break;
        }
        case LuaType.Table: // the converter wasmoon would pick (highest priority)
          thread ??= threadFor(m, L);
          args[i - 1] = universeOf(m, L).tables.getValue(thread, i);
          continue;
      }
      thread ??= threadFor(m, L);
      args[i - 1] = thread.getValue(i);
    }
    result = f(...args);
    if (result === undefined) return 0;
    raw.settop(0);
    if (result instanceof LuaMultiReturn) {
      for (const v of result) push(m, L, v);
      return result.length;
    }
    push(m, L, result);
    return 1;
  } catch (e) {
    raw.settop(0);
    raw.pushString(e instanceof Error ? e.message : String(e));
  }
  return raw.error();
}

function push(m: RawModule, L: number, v: unknown): void {
  const raw = rawAt(m, L);
  switch (typeof v) {
    case "string":
      return raw.pushString(v);
    case "number":
      return raw.pushNumber(v);
    case "boolean":
      return raw.pushBoolean(v);
    case "undefined":
      return raw.pushNil();
    default: {
      if (v === null) return raw.pushNil();
      const u = universeOf(m, L);
      const thread = u.global.stateToThread(L);
      // A host object (toLua's decorateUserdata), by reference.
      if (v instanceof Decoration && typeof v.target === "object" && v.target !== null) {
        const o = v.options as Record<string, unknown>;
        let only = o.reference === true;
        for (const k in o) if (k !== "reference") only = false;
        if (only) return pushHostObject(thread, v.target);
      }
      if (!(v instanceof Decoration) && u.tables.pushValue(thread, new Decoration(v, {}))) return;
      thread.pushValue(v);
    }
  }
}

/**
 * The type extension that pushes JS functions as trampoline closures.
 * Register it in every context: its state must be known for the values the
 * raw path hands to wasmoon.
 */
export class FastFunctionExtension extends LuaTypeExtension<unknown> {
  readonly #refs: RefTable;
  readonly #m: RawModule;
  readonly #trampoline: number;
  readonly #address: number;

  /** `tables`: the FastTableExtension registered in the same state. */
  constructor(global: LuaThread, tables: FastTableExtension) {
    super(global as never, "kumo_fast_function");
    this.#m = rawModule(global);
    this.#refs = global.lua as unknown as RefTable;
    const t = trampolinesOf(this.#m, this.#refs);
    this.#trampoline = t.call;
    this.#address = global.address;
    universes.set(global.address, { global, tables });
    rawAt(this.#m, global.address).replaceRefFinalizers(t.gc);
  }

  /** Called by wasmoon when the state closes: forget it (its address may be reused). */
  override close(): void {
    universes.delete(this.#address);
  }

  override isType(): boolean {
    return false; // Lua values are read by wasmoon's own function extension
  }

  override pushValue(thread: LuaThread, decoration: Decoration<unknown>): boolean {
    const target = decoration.target;
    if (typeof target !== "function") return false;
    // Decorated functions (receiveThread, self…) keep wasmoon's wrapper.
    for (const _ in decoration.options) return false;
    rawAt(this.#m, thread.address).pushJsClosure(this.#refs.ref(target), this.#trampoline);
    return true;
  }
}

/** Push a host object by reference, as wasmoon's `decorateUserdata` push does, without its converters. */
export function pushHostObject(thread: LuaThread, value: object): void {
  const refs = thread.lua as unknown as RefTable;
  rawAt(rawModule(thread), thread.address).pushJsUserdata(refs.ref(value));
}
