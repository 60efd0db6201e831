/**
 * `kumo.format_queue_config_toml(config)` and
 * `kumo.format_egress_path_config_toml(config)` (lua-api.md §8 long tail):
 * a queue or egress-path config as TOML text that parses back into the same
 * config (`kumo.serde.toml_parse` → `kumo.make_*`).
 *
 * Place on the path: policy (host functions). `config` is a config object
 * from `kumo.make_queue_config` / `kumo.make_egress_path`, or a table as
 * `kumo.invoke_get_*` returns; a table is validated first, so a bad key is
 * reported as `make_*` would. Serialisation goes through the typed config
 * (humantime durations, throttle text, CIDR arrays), not the Lua table.
 *
 * @module
 */

import { isConfigObject } from "../config_object.ts";
import { parseQueueConfig, queueConfigToJSON } from "../config/queue_config.ts";
import { egressPathToJSON, parseEgressPath } from "../config/egress_path.ts";
import { tomlEncode } from "./serde.ts";

type Fn = (...args: never[]) => unknown;

function formatter<T>(
  fn: string,
  kind: string,
  parse: (v: unknown) => T,
  toJSON: (v: T) => Record<string, unknown>,
): Fn {
  return ((config: unknown) => {
    if (isConfigObject(config)) {
      if (config.kind !== kind) {
        throw new TypeError(`kumo.${fn}: expected a ${kind} object, got a ${config.kind}`);
      }
      return tomlEncode(toJSON(config.value as T));
    }
    return tomlEncode(toJSON(parse(config)));
  }) as Fn;
}

/**
 * The two formatters, for the long-tail catalogue (its glue unwraps config objects).
 *
 * @example
 * ```ts
 * (CONFIG_FORMAT_FUNCTIONS.format_queue_config_toml as (c: unknown) => string)({ retry_interval: "5m" });
 * // 'retry_interval = "5m"\n...'
 * ```
 */
export const CONFIG_FORMAT_FUNCTIONS: Record<string, Fn> = {
  format_queue_config_toml: formatter(
    "format_queue_config_toml",
    "QueueConfig",
    parseQueueConfig,
    queueConfigToJSON,
  ),
  format_egress_path_config_toml: formatter(
    "format_egress_path_config_toml",
    "EgressPathConfig",
    parseEgressPath,
    egressPathToJSON,
  ),
};
