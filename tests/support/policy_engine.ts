/**
 * Test support: load a policy text into a real PolicyEngine (no server, no
 * listeners) from a temp dir, for engine-level tests of the Lua helpers in
 * `policy-extras/`. Loopback-free: nothing here opens a socket.
 *
 * @module
 */

import { PolicyEngine } from "../../src/policy/engine.ts";
import { buildCatalogue } from "../../src/policy/catalogue.ts";
import { newServerConfig, type ServerConfig } from "../../src/policy/server_config.ts";
import { offlineResolver } from "./offline_resolver.ts";

/** A loaded engine, its recorded server config and its temp dir. */
export interface LoadedPolicy extends Disposable {
  engine: PolicyEngine;
  cfg: ServerConfig;
  dir: string;
}

/** Write `files` and `<dir>/init.lua` = `source` into a fresh temp dir and load it. */
export async function loadPolicy(
  source: string | ((dir: string) => string),
  files: Record<string, string> = {},
): Promise<LoadedPolicy> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-extras-" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  const path = `${dir}/init.lua`;
  await Deno.writeTextFile(path, typeof source === "string" ? source : source(dir));
  const cfg = newServerConfig();
  let engine: PolicyEngine | undefined;
  try {
    engine = await PolicyEngine.load({
      policyPath: path,
      version: "test",
      catalogue: buildCatalogue(() => engine, cfg, offlineResolver()),
    });
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
  const eng = engine;
  return {
    engine: eng,
    cfg,
    dir,
    [Symbol.dispose]() {
      eng.close();
      Deno.removeSync(dir, { recursive: true });
    },
  };
}
