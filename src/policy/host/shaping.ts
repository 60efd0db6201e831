/**
 * `kumo.shaping.*` and the `kumo.invoke_get_*` resolution functions: the host
 * side of the `policy-extras.shaping` helper, and the way a helper (or a
 * test) asks the policy's own resolution events what they would answer
 * (`invoke_get_egress_path_config`, `invoke_get_egress_source`,
 * `invoke_get_egress_pool`, `invoke_get_queue_config`; lua-api.md §8).
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
import { parseQueueName } from "../../message/queue_name.ts";

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
    invoke_get_egress_path_config: (domain: string, source: string, site: string) =>
      invoke(engine, "get_egress_path_config", "sss", [domain, source, site]),
    invoke_get_egress_source: (name: string) =>
      invoke(engine, "get_egress_source", "s", [String(name)]),
    invoke_get_egress_pool: (name: string) =>
      invoke(engine, "get_egress_pool", "s", [String(name)]),
    invoke_get_queue_config: (queueName: string) => {
      const c = parseQueueName(String(queueName));
      return invoke(engine, "get_queue_config", "ssss", [
        c.domain,
        c.tenant ?? null,
        c.campaign ?? null,
        c.routingDomain ?? null,
      ]);
    },
  };
}

/** Runs a resolution event and returns the config's JSON-like view. */
async function invoke(
  engine: () => PolicyEngine | undefined,
  event: string,
  sig: string,
  args: readonly unknown[],
): Promise<unknown> {
  const e = engine();
  if (!e) throw new Error(`kumo.invoke_${event}: no policy engine`);
  const ret = await e.callOrThrow(event, sig, args);
  return isConfigObject(ret) ? ret.view : ret;
}
