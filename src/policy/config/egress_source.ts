/**
 * EgressSource: the typed result of `kumo.make_egress_source { ... }`
 * (lua-api §6.1) — where outbound connections are made from.
 *
 * Built by the `get_egress_source` event binding and consumed by `egress/`
 * when a dispatcher opens a connection. Conversion only: never binds sockets
 * or checks that the address is plumbed here.
 *
 * @module
 */

import type { ThrottleSpec } from "../../util/throttle_spec.ts";
import {
  convert,
  custom,
  dflt,
  duration,
  enumOf,
  fail,
  hostPort,
  int,
  ip,
  type KeySource,
  keySource,
  object,
  opt,
  req,
  string,
  throttle,
} from "./schema.ts";

/** When an auto-suspend rule fires: on the first failure or after N per period. */
export type SuspendTrigger = "Immediate" | { threshold: ThrottleSpec };

/** `suspend_when_unplumbed` / `suspend_when_proxy_unhealthy`. */
export interface SuspendOnFailure {
  /** @default "Immediate" */
  trigger: SuspendTrigger;
  /** How long the source stays suspended (ms). */
  duration: number;
}

/** A converted egress source. Durations in ms. */
export interface EgressSource {
  name: string;
  ehloDomain?: string;
  /** Local bind address. */
  sourceAddress?: string;
  /** Destination port override (beats mx_list port and smtp_port). */
  remotePort?: number;
  haProxyServer?: string;
  haProxySourceAddress?: string;
  socks5ProxyServer?: string;
  socks5ProxySourceAddress?: string;
  socks5ProxyUsername?: string;
  socks5ProxyPassword?: KeySource;
  suspendWhenUnplumbed?: SuspendOnFailure;
  suspendWhenProxyUnhealthy?: SuspendOnFailure;
  /** Cache lifetime of this definition (ms). @default 60_000 */
  ttl: number;
}

const THRESHOLD = object({ Threshold: req(throttle()) }, { name: "Trigger" });
const IMMEDIATE = enumOf(["Immediate", "Threshold"]);

const TRIGGER = custom<SuspendTrigger>(
  "enum Trigger",
  (v, cx) => {
    if (typeof v === "string") {
      const t = IMMEDIATE.parse(v, cx);
      if (t !== "Immediate") fail(cx, "invalid type: unit variant, expected newtype variant");
      return "Immediate";
    }
    return { threshold: THRESHOLD.parse(v, cx).Threshold };
  },
  (t) => (t === "Immediate" ? t : { Threshold: t.threshold.text }),
);

const SUSPEND = object({
  trigger: dflt(TRIGGER, "Immediate" as SuspendTrigger),
  duration: req(duration()),
}, { name: "SuspendOnFailure" });

/** The schema of `make_egress_source` (field order as upstream). */
export const EGRESS_SOURCE = object({
  name: req(string()),
  ehlo_domain: opt(string()),
  source_address: opt(ip()),
  remote_port: opt(int({ max: 65535, name: "u16" })),
  ha_proxy_server: opt(hostPort()),
  ha_proxy_source_address: opt(ip()),
  socks5_proxy_server: opt(hostPort()),
  socks5_proxy_source_address: opt(ip()),
  socks5_proxy_username: opt(string()),
  socks5_proxy_password: opt(keySource()),
  suspend_when_unplumbed: opt(SUSPEND),
  suspend_when_proxy_unhealthy: opt(SUSPEND),
  ttl: dflt(duration(), 60_000),
}, { name: "EgressSource" });

/**
 * Convert a `make_egress_source` table.
 *
 * @throws {ConfigError} serde-worded, e.g. ``deserialize error: missing field `name`, while processing {}``
 *
 * @example
 * ```ts
 * parseEgressSource({ name: "ip-1", source_address: "10.0.0.1" }).ttl; // 60000
 * ```
 */
export function parseEgressSource(input: unknown): EgressSource {
  return convert(EGRESS_SOURCE, input);
}

/** The JSON/Lua-readable form (snake_case keys, humantime durations). */
export function egressSourceToJSON(x: EgressSource): Record<string, unknown> {
  return EGRESS_SOURCE.toJSON(x);
}
