/**
 * `kumo.shaping.*` and `kumo.invoke_get_egress_path_config`: the host side of
 * the `policy-extras.shaping` helper.
 *
 * Place on the path: policy (host functions). `kumo.shaping.load` returns an
 * opaque handle (a {@linkcode ShapingData}); it survives `kumo.memoize`, so
 * every Lua context shares one load. The Lua helper asks the handle for
 * egress-path parameters and builds the config with `kumo.make_egress_path`.
 *
 * @module
 */

import type { Resolver } from "../../dns/resolver.ts";
import type { PolicyEngine } from "../engine.ts";
import { isConfigObject } from "../config_object.ts";
import { loadShaping, parseShapingMergeOptions, ShapingData } from "./shaping_data.ts";

function handle(v: unknown): ShapingData {
  if (!(v instanceof ShapingData)) {
    throw new TypeError("expected shaping data returned by kumo.shaping.load");
  }
  return v;
}

function stringList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return [v];
  if (Array.isArray(v)) return v.map((x) => x as string);
  if (typeof v === "object" && Object.keys(v).length === 0) return [];
  throw new TypeError("kumo.shaping.load: expected a list of file names");
}

/** Synchronous `kumo.shaping.*` functions (readers of a loaded handle). */
export const SHAPING_SYNC_FUNCTIONS: Record<string, (...args: never[]) => unknown> = {
  "shaping.get_errors": (d: unknown) => [...handle(d).errors],
  "shaping.get_warnings": (d: unknown) => [...handle(d).warnings],
  "shaping.get_referenced_sources": (d: unknown) => handle(d).referencedSources(),
};

/** Asynchronous functions: loading (MX roll-up) and lookups (provider MX matching). */
export function shapingAsyncFunctions(
  engine: () => PolicyEngine | undefined,
  resolver: Resolver,
): Record<string, (...args: never[]) => Promise<unknown>> {
  return {
    "shaping.load": (files: unknown, options: unknown) =>
      loadShaping(stringList(files), parseShapingMergeOptions(options), resolver),
    "shaping.get_egress_path_config": (d: unknown, domain: string, source: string, site: string) =>
      handle(d).lookup(String(domain), String(source), String(site ?? "")),
    invoke_get_egress_path_config: async (domain: string, source: string, site: string) => {
      const e = engine();
      if (!e) throw new Error("kumo.invoke_get_egress_path_config: no policy engine");
      const ret = await e.callOrThrow("get_egress_path_config", "sss", [domain, source, site]);
      return isConfigObject(ret) ? ret.view : ret;
    },
  };
}
