import assert from "node:assert/strict";
import { LuaFactory } from "wasmoon";
import { captureWasmInstances, rawLua, rawModule } from "./lua_raw.ts";

Deno.test("raw Lua calls go straight to the WASM instance's exports", async () => {
  const done = captureWasmInstances();
  const factory = new LuaFactory();
  await factory.getLuaModule().finally(done);
  const engine = await factory.createEngine();
  try {
    const thread = engine.global;
    const wrapped = (thread.lua.module as unknown as Record<string, unknown>)._lua_settop;
    const m = rawModule(thread) as unknown as Record<string, unknown>;
    assert.notEqual(m._lua_settop, wrapped, "the emscripten wrapper is bypassed");
    assert.equal(m.HEAPU8, (thread.lua.module as unknown as Record<string, unknown>).HEAPU8);
    const raw = rawLua(thread);
    raw.settop(0);
    raw.pushString("héllo");
    raw.pushNumber(42);
    assert.equal(raw.gettop(), 2);
    assert.equal(raw.toString(1), "héllo");
    assert.equal(raw.toNumber(2), 42);
    raw.settop(0);
  } finally {
    engine.global.close();
  }
});

Deno.test("without a captured instance the module's own exports are used", async () => {
  const factory = new LuaFactory();
  const engine = await factory.createEngine();
  try {
    const thread = engine.global;
    const wrapped = (thread.lua.module as unknown as Record<string, unknown>)._lua_settop;
    assert.equal((rawModule(thread) as unknown as Record<string, unknown>)._lua_settop, wrapped);
    const raw = rawLua(thread);
    raw.pushString("x");
    assert.equal(raw.toString(-1), "x");
  } finally {
    engine.global.close();
  }
});
