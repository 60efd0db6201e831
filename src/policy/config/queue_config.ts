/**
 * QueueConfig: the typed result of `kumo.make_queue_config { ... }`
 * (lua-api §6.3) — retry schedule, expiry, rate and delivery protocol of a
 * scheduled queue.
 *
 * Built by the `get_queue_config` binding; `queue/` uses it for backoff and
 * expiry, `egress/` for the protocol. Conversion only: `mx_list` strings are
 * validated as strings here and parsed by the routing code.
 *
 * @module
 */

import type { ThrottleSpec } from "../../util/throttle_spec.ts";
import {
  anyJson,
  array,
  bool,
  convert,
  custom,
  type Cx,
  dflt,
  duration,
  enumOf,
  fail,
  int,
  type Kind,
  object,
  opt,
  req,
  string,
  throttle,
} from "./schema.ts";

/** Memory policy for delayed messages (also used by egress paths). */
export type MemoryReductionPolicy = "ShrinkDataAndMeta" | "ShrinkData" | "NoShrink";
/** When a cached config is refreshed. */
export type ConfigRefreshStrategy = "Ttl" | "Epoch";
/** Scheduled-queue structure (all names accepted; one implementation). */
export type QueueStrategy =
  | "TimerWheel"
  | "SkipList"
  | "SingletonTimerWheel"
  | "SingletonTimerWheelV2";

/** An `mx_list` entry: a host string (`"mx.example"`, `"[10.0.0.1]:25"`) or a labelled address. */
export type MxListEntry = string | { name: string; addr: string };

/** The delivery protocol of a queue (exactly one shape). */
export type DeliveryProtocol =
  | { kind: "smtp"; mxList: MxListEntry[]; treatMxListAsSecure: boolean }
  | { kind: "maildir"; maildirPath: string; dirMode?: number; fileMode?: number }
  | {
    kind: "lua";
    /** The `constructor` event name (renamed: `constructor` is reserved on JS objects). */
    constructorEvent: string;
    batchSize: number;
    minBatchSize: number;
    /** ms */
    maxBatchLatency: number;
  }
  | { kind: "xfer"; params: unknown };

/** One `shrink_policy` step. */
export interface QueueShrinkPolicy {
  /** ms */
  interval: number;
  policy: MemoryReductionPolicy;
}

/** A converted queue config. Durations in ms. */
export interface QueueConfig {
  /** @default 1_200_000 (20 min) */
  retryInterval: number;
  maxRetryInterval?: number;
  /** @default 604_800_000 (7 days) */
  maxAge: number;
  /** undefined → built-in `unspecified` pool. */
  egressPool?: string;
  maxMessageRate?: ThrottleSpec;
  /** @default smtp via MX */
  protocol: DeliveryProtocol;
  /** @default 600_000 */
  reapInterval: number;
  /** @default 60_000 */
  refreshInterval: number;
  /** undefined → {@linkcode effectiveTickInterval} */
  timerwheelTickInterval?: number;
  /** @default "SingletonTimerWheel" */
  strategy: QueueStrategy;
  /** @default "Ttl" */
  refreshStrategy: ConfigRefreshStrategy;
  providerName?: string;
  /** @default [] */
  shrinkPolicy: QueueShrinkPolicy[];
}

/** Memory reduction policy kind (shared with egress_path). */
export const MEMORY_REDUCTION_POLICY: Kind<MemoryReductionPolicy> = enumOf([
  "ShrinkDataAndMeta",
  "ShrinkData",
  "NoShrink",
]);
/** Refresh strategy kind (shared with egress_path). */
export const REFRESH_STRATEGY: Kind<ConfigRefreshStrategy> = enumOf(["Ttl", "Epoch"]);

const MX_ADDR = object({ name: req(string()), addr: req(string()) }, { name: "MxListEntry" });
const MX_ENTRY = custom<MxListEntry>(
  "a host string or {name, addr}",
  (v, cx) => (typeof v === "string" ? v : MX_ADDR.parse(v, cx)),
  (v) => v,
);
const SMTP = object({
  mx_list: dflt(array(MX_ENTRY), () => []),
  treat_mx_list_as_secure: dflt(bool(), false),
}, { name: "SmtpProtocol" });
const SMTP_WRAP = object({ smtp: req(SMTP) }, { name: "DeliveryProto" });
const MAILDIR = object({
  maildir_path: req(string()),
  dir_mode: opt(int({ max: 0xffffffff, name: "u32" })),
  file_mode: opt(int({ max: 0xffffffff, name: "u32" })),
}, { name: "DeliveryProto" });
const LUA = object({
  constructor: req(string()),
  batch_size: dflt(int({ min: 1, name: "usize" }), 1),
  min_batch_size: dflt(int({ min: 1, name: "usize" }), 1),
  max_batch_latency: dflt(duration(), 0),
}, { name: "LuaDeliveryProtocol" });
const LUA_WRAP = object({ custom_lua: req(LUA) }, { name: "DeliveryProto" });
const XFER_WRAP = object({ xfer: req(anyJson()) }, { name: "DeliveryProto" });

function parseProtocol(v: unknown, cx: Cx): DeliveryProtocol {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    if ("smtp" in v) {
      const s = SMTP_WRAP.parse(v, cx).smtp;
      return { kind: "smtp", mxList: s.mxList, treatMxListAsSecure: s.treatMxListAsSecure };
    }
    if ("maildir_path" in v) {
      const m = MAILDIR.parse(v, cx);
      return { kind: "maildir", ...m };
    }
    if ("custom_lua" in v) {
      const l = LUA_WRAP.parse(v, cx).customLua;
      return {
        kind: "lua",
        constructorEvent: l.constructor,
        batchSize: l.batchSize,
        minBatchSize: l.minBatchSize,
        maxBatchLatency: l.maxBatchLatency,
      };
    }
    if ("xfer" in v) return { kind: "xfer", params: XFER_WRAP.parse(v, cx).xfer };
  }
  return fail(cx, "data did not match any variant of untagged enum DeliveryProto");
}

function protocolToJSON(p: DeliveryProtocol): unknown {
  switch (p.kind) {
    case "smtp":
      return { smtp: { mx_list: p.mxList, treat_mx_list_as_secure: p.treatMxListAsSecure } };
    case "maildir":
      return MAILDIR.toJSON(p);
    case "lua":
      return {
        custom_lua: LUA.toJSON({
          constructor: p.constructorEvent,
          batchSize: p.batchSize,
          minBatchSize: p.minBatchSize,
          maxBatchLatency: p.maxBatchLatency,
        }),
      };
    case "xfer":
      return { xfer: p.params };
  }
}

const PROTOCOL = custom<DeliveryProtocol>("enum DeliveryProto", parseProtocol, protocolToJSON);

const SHRINK = object({
  interval: req(duration()),
  policy: req(MEMORY_REDUCTION_POLICY),
}, { name: "QueueShrinkPolicy" });

/** The schema of `make_queue_config` (field order as upstream). */
export const QUEUE_CONFIG = object({
  retry_interval: dflt(duration(), 20 * 60_000),
  max_retry_interval: opt(duration()),
  max_age: dflt(duration(), 7 * 86_400_000),
  egress_pool: opt(string()),
  max_message_rate: opt(throttle()),
  protocol: dflt(
    PROTOCOL,
    (): DeliveryProtocol => ({ kind: "smtp", mxList: [], treatMxListAsSecure: false }),
  ),
  reap_interval: dflt(duration(), 10 * 60_000),
  refresh_interval: dflt(duration(), 60_000),
  timerwheel_tick_interval: opt(duration()),
  strategy: dflt(
    enumOf(["TimerWheel", "SkipList", "SingletonTimerWheel", "SingletonTimerWheelV2"] as const),
    "SingletonTimerWheel",
  ),
  refresh_strategy: dflt(REFRESH_STRATEGY, "Ttl"),
  provider_name: opt(string()),
  shrink_policy: dflt(array(SHRINK), () => []),
}, { name: "QueueConfig" });

/**
 * Convert a `make_queue_config` table.
 *
 * @example
 * ```ts
 * parseQueueConfig({ retry_interval: "5m" }).maxAge; // 604800000
 * ```
 */
export function parseQueueConfig(input: unknown): QueueConfig {
  return convert(QUEUE_CONFIG, input);
}

/** The JSON/Lua-readable form (`retry_interval = "20m"`, `max_age = "7days"`). */
export function queueConfigToJSON(x: QueueConfig): Record<string, unknown> {
  return QUEUE_CONFIG.toJSON(x);
}

/**
 * The timer-wheel tick: `timerwheel_tick_interval`, else retry_interval/20
 * clamped to 1 s..1 min.
 */
export function effectiveTickInterval(x: QueueConfig): number {
  if (x.timerwheelTickInterval !== undefined) return x.timerwheelTickInterval;
  return Math.min(60_000, Math.max(1000, x.retryInterval / 20));
}
