/**
 * `--dump-*` output: machine-readable descriptions of the program.
 *
 * @module
 */

import type { CliOptions } from "./cli.ts";
import { VERSION } from "./version.ts";
import { metricsRegistry } from "./metrics/kumo_metrics.ts";

/** The JSON document a `--dump-*` flag asks for. */
export function dumpInfo(opts: CliOptions): unknown {
  if (opts.dumpOpenapiSpec) {
    return {
      openapi: "3.0.3",
      info: { title: "kumo-edge", version: VERSION },
      paths: {},
    };
  }
  if (opts.dumpLruttlCaches) {
    return [
      { name: "dns_resolver", capacity: 1024, doc: "DNS answers, cached for their TTL" },
    ];
  }
  // --dump-metric-metadata: the catalogue, from the registry itself.
  return metricsRegistry.metadata();
}
