/**
 * Test support for the long-tail host modules: load a policy text into a
 * real PolicyEngine in-process (no server), optionally with a
 * {@link PolicyRuntime}, and run one of its events.
 *
 * Place on the path: tests only (imported by `src/policy/host/*_test.ts`).
 *
 * @module
 */

import { PolicyEngine } from "../engine.ts";
import { buildCatalogue } from "../catalogue.ts";
import { newServerConfig } from "../server_config.ts";
import { offlineResolver } from "../../../tests/support/offline_resolver.ts";
import type { PolicyRuntime } from "../runtime.ts";

/** A loaded engine that removes its temp dir when disposed. */
export interface TestPolicy extends AsyncDisposable {
  engine: PolicyEngine;
  dir: string;
  /** `engine.callOrThrow(event, "", args)`. */
  run(event: string, ...args: unknown[]): Promise<unknown>;
}

/**
 * Write `source` (or `source(dir)`) as `<tmp>/init.lua` and load it.
 *
 * @example
 * ```ts
 * await using p = await loadTestPolicy(`kumo.on('t', function() return 1 end)`);
 * await p.run("t"); // 1
 * ```
 */
export async function loadTestPolicy(
  source: string | ((dir: string) => string),
  opts: { runtime?: PolicyRuntime; validating?: boolean } = {},
): Promise<TestPolicy> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-longtail-" });
  const path = `${dir}/init.lua`;
  await Deno.writeTextFile(path, typeof source === "string" ? source : source(dir));
  let engine: PolicyEngine | undefined;
  try {
    engine = await PolicyEngine.load({
      policyPath: path,
      version: "test",
      validating: opts.validating,
      catalogue: buildCatalogue(
        () => engine,
        newServerConfig(),
        offlineResolver(),
        opts.runtime ?? {},
      ),
    });
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
  const eng = engine;
  return {
    engine: eng,
    dir,
    run: (event, ...args) => eng.callOrThrow(event, "", args),
    async [Symbol.asyncDispose]() {
      eng.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
