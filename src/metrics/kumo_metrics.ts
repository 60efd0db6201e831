/**
 * The kumod metric families (names, labels and types of http-api.md §5.1)
 * registered once in the process-wide registry, and the named helpers the
 * stages call to feed them, so every stage increments the same series
 * `kcli` and Prometheus read.
 *
 * Place on the path: beside it. The SMTP server, HTTP inject, the queue and
 * egress stages, DNS, logging and the policy engine import the helpers;
 * gauges that mirror live state (queue sizes, connections per ready queue,
 * disk, memory) are refreshed at scrape time by `src/metrics/queue_gauges.ts`.
 * Nothing here does I/O. Helpers on per-message paths keep the labelled
 * child once per label value (a Map lookup, no allocation after warm-up).
 *
 * @module
 */

import { MetricsRegistry } from "./registry.ts";

/** The process-wide registry rendered by `GET /metrics`. */
export const metricsRegistry: MetricsRegistry = new MetricsRegistry();

const r = metricsRegistry;
const PRUNE = { pruning: true };

/**
 * Handles on the standard families.
 *
 * @example
 * ```ts
 * kumoMetrics.totalMessagesReceived.labels("http_listener").inc();
 * ```
 */
export const kumoMetrics = {
  totalMessagesReceived: r.counter(
    "total_messages_received",
    "total number of messages ever received",
    ["service"],
  ),
  totalMessagesDelivered: r.counter(
    "total_messages_delivered",
    "total number of messages ever delivered",
    ["service"],
  ),
  totalMessagesTransfail: r.counter(
    "total_messages_transfail",
    "total number of message delivery attempts that transiently failed",
    ["service"],
  ),
  totalMessagesFail: r.counter(
    "total_messages_fail",
    "total number of message delivery attempts that permanently failed",
    ["service"],
  ),
  deliveredByProvider: r.counter(
    "total_messages_delivered_by_provider",
    "total number of messages ever delivered, by provider",
    ["provider"],
  ),
  transfailByProvider: r.counter(
    "total_messages_transfail_by_provider",
    "total number of message delivery attempts that transiently failed, by provider",
    ["provider"],
  ),
  failByProvider: r.counter(
    "total_messages_fail_by_provider",
    "total number of message delivery attempts that permanently failed, by provider",
    ["provider"],
  ),
  deliveredByProviderAndSource: r.counter(
    "total_messages_delivered_by_provider_and_source",
    "total number of messages ever delivered, by provider, source and pool",
    ["provider", "source", "pool"],
  ),
  transfailByProviderAndSource: r.counter(
    "total_messages_transfail_by_provider_and_source",
    "total number of message delivery attempts that transiently failed, by provider, source and pool",
    ["provider", "source", "pool"],
  ),
  failByProviderAndSource: r.counter(
    "total_messages_fail_by_provider_and_source",
    "total number of message delivery attempts that permanently failed, by provider, source and pool",
    ["provider", "source", "pool"],
  ),
  connectionCount: r.gauge(
    "connection_count",
    "number of active connections, keyed by the service name",
    ["service"],
    PRUNE,
  ),
  totalConnectionCount: r.counter(
    "total_connection_count",
    "total number of connections ever made, keyed by the service name",
    ["service"],
  ),
  totalConnectionsDenied: r.counter(
    "total_connections_denied",
    "total number of connections refused by a listener (max_connections, load shedding)",
    ["service"],
  ),
  smtpServerRejections: r.counter(
    "smtp_server_rejections",
    "number of rejections logged by the smtp server (service total and per listener)",
    ["service"],
  ),
  readyCount: r.gauge(
    "ready_count",
    "number of messages in the ready queue",
    ["service"],
    PRUNE,
  ),
  readyFull: r.counter(
    "ready_full",
    "number of times a message could not fit in the ready queue",
    ["service"],
    PRUNE,
  ),
  scheduledCount: r.gauge(
    "scheduled_count",
    "number of messages in the scheduled queue",
    ["queue"],
    PRUNE,
  ),
  scheduledCountTotal: r.gauge(
    "scheduled_count_total",
    "total number of messages across all scheduled queues",
  ),
  scheduledByDomain: r.gauge(
    "scheduled_by_domain",
    "number of messages in scheduled queues, by destination domain",
    ["domain"],
    PRUNE,
  ),
  scheduledByTenant: r.gauge(
    "scheduled_by_tenant",
    "number of messages in scheduled queues, by tenant",
    ["tenant"],
    PRUNE,
  ),
  scheduledByTenantCampaign: r.gauge(
    "scheduled_by_tenant_campaign",
    "number of messages in scheduled queues, by tenant and campaign",
    ["tenant", "campaign"],
    PRUNE,
  ),
  scheduledQueueCount: r.gauge("scheduled_queue_count", "number of scheduled queues"),
  queuedByProvider: r.gauge(
    "queued_count_by_provider",
    "number of messages in the scheduled and ready queues, by provider",
    ["provider"],
    PRUNE,
  ),
  queuedByProviderAndPool: r.gauge(
    "queued_count_by_provider_and_pool",
    "number of messages in the scheduled and ready queues, by provider and pool",
    ["provider", "pool"],
    PRUNE,
  ),
  connectionsByProvider: r.gauge(
    "connection_count_by_provider",
    "number of active outbound connections, by provider",
    ["provider"],
    PRUNE,
  ),
  connectionsByProviderAndPool: r.gauge(
    "connection_count_by_provider_and_pool",
    "number of active outbound connections, by provider and pool",
    ["provider", "pool"],
    PRUNE,
  ),
  delayedReadyFull: r.counter(
    "delayed_due_to_ready_queue_full",
    "number of times a message was delayed because its ready queue was full",
    ["queue"],
    PRUNE,
  ),
  delayedMessageRate: r.counter(
    "delayed_due_to_message_rate_throttle",
    "number of times a message was delayed due to max_message_rate",
    ["queue"],
    PRUNE,
  ),
  delayedThrottleInsertReady: r.counter(
    "delayed_due_to_throttle_insert_ready",
    "number of times a message was delayed by the throttle_insert_ready_queue event",
    ["queue"],
    PRUNE,
  ),
  deliverLatency: r.histogram(
    "deliver_message_latency_rollup",
    "how many seconds a deliver_message call takes for a given protocol",
    ["service"],
  ),
  memoryUsage: r.gauge("memory_usage", "number of bytes of resident memory in use"),
  memoryLimit: r.gauge(
    "memory_limit",
    "soft memory limit in bytes: at this usage the server sheds load",
  ),
  memoryLowThresh: r.gauge(
    "memory_low_thresh",
    "low memory threshold in bytes: above it passive memory reduction applies",
  ),
  messageCount: r.gauge("message_count", "total number of messages held in memory"),
  messageDataResidentCount: r.gauge(
    "message_data_resident_count",
    "total number of messages held in memory with their data loaded",
  ),
  messageMetaResidentCount: r.gauge(
    "message_meta_resident_count",
    "total number of messages held in memory with their meta loaded",
  ),
  threadPoolSize: r.gauge(
    "thread_pool_size",
    "number of threads in a thread pool (kumo-edge: one event loop)",
    ["pool"],
  ),
  threadPoolParked: r.gauge(
    "thread_pool_parked",
    "number of idle threads in a thread pool (kumo-edge: one event loop)",
    ["pool"],
  ),
  logSubmitLatency: r.histogram(
    "log_submit_latency",
    "latency of log event submission operations",
    ["logger"],
  ),
  smtpsrvReadData: r.histogram(
    "smtpsrv_read_data_duration",
    "how long it took to receive the DATA portion of an SMTP transaction",
  ),
  smtpsrvProcessData: r.histogram(
    "smtpsrv_process_data_duration",
    "how long it took to process the DATA portion (policy, spool, queue) and reply",
  ),
  smtpsrvTransaction: r.histogram(
    "smtpsrv_transaction_duration",
    "how long an SMTP transaction took, from MAIL FROM to the reply to DATA",
  ),
  diskFreeBytes: r.gauge(
    "disk_free_bytes",
    "number of available bytes in a monitored location",
    ["name"],
  ),
  diskFreePercent: r.gauge(
    "disk_free_percent",
    "percentage of available bytes in a monitored location",
    ["name"],
  ),
  diskFreeInodes: r.gauge(
    "disk_free_inodes",
    "number of available inodes in a monitored location",
    ["name"],
  ),
  diskFreeInodesPercent: r.gauge(
    "disk_free_inodes_percent",
    "percentage of available inodes in a monitored location",
    ["name"],
  ),
  logSubmitFull: r.counter(
    "log_submit_full",
    "how many times submission of a log event hit the back_pressure",
    ["logger"],
  ),
  logHookBacklog: r.counter(
    "log_hook_backlog_count",
    "how many times processing of a log event hit the back_pressure in a hook",
    ["logger"],
  ),
  luaCount: r.gauge("lua_count", "the number of lua contexts currently alive"),
  luaSpareCount: r.gauge("lua_spare_count", "the number of lua contexts available for reuse"),
  luaLoadCount: r.counter("lua_load_count", "how many times the policy lua script has been loaded"),
  luaEventStarted: r.counter(
    "lua_event_started",
    "how many times a lua event callback has been started",
    ["event"],
  ),
  luaEventLatency: r.histogram(
    "lua_event_latency",
    "how long a given lua event callback took",
    ["event"],
  ),
  dnsMxOk: r.counter(
    "dns_mx_resolve_status_ok",
    "total number of successful MailExchanger resolve calls",
  ),
  dnsMxFail: r.counter(
    "dns_mx_resolve_status_fail",
    "total number of failed MailExchanger resolve calls",
  ),
  dnsMxCacheHit: r.counter(
    "dns_mx_resolve_cache_hit",
    "total number of MailExchanger resolve calls satisfied by the cache",
  ),
  dnsMxCacheMiss: r.counter(
    "dns_mx_resolve_cache_miss",
    "total number of MailExchanger resolve calls that needed a DNS request",
  ),
  dnsMxInProgress: r.gauge(
    "dns_mx_resolve_in_progress",
    "number of MailExchanger resolve calls currently in progress",
  ),
};

type Inc = { inc(n?: number): void };
type Family = { labels(...v: string[]): Inc };

/** Labelled children kept per family and label value (hot paths). */
const children = new Map<Family, Map<string, Inc>>();

function child(f: Family, value: string): Inc {
  let m = children.get(f);
  if (m === undefined) children.set(f, m = new Map());
  let c = m.get(value);
  if (c === undefined) m.set(value, c = f.labels(value));
  return c;
}

/**
 * The metrics protocol of a ready queue (`smtp_client`, `lua`, `maildir`,
 * …): the part after the `@` that follows `->`, up to a `:`.
 *
 * @example
 * ```ts
 * readyQueueProtocol("unspecified->mx.example.test@smtp_client"); // "smtp_client"
 * readyQueueProtocol("unspecified->hook.log_hook@lua:make.hook"); // "lua"
 * ```
 */
export function readyQueueProtocol(readyQueue: string): string {
  const arrow = readyQueue.indexOf("->");
  const at = arrow < 0 ? -1 : readyQueue.indexOf("@", arrow);
  if (at < 0) return "smtp_client";
  const proto = readyQueue.slice(at + 1);
  const colon = proto.indexOf(":");
  return colon < 0 ? proto : proto.slice(0, colon);
}

/**
 * The `service` label of a ready queue: `<protocol>:<ready queue name>`
 * (http-api.md §5.1; kcli splits on the first `:`).
 */
export function readyQueueService(readyQueue: string): string {
  return `${readyQueueProtocol(readyQueue)}:${readyQueue}`;
}

/**
 * The `service` label of one ESMTP listener: `esmtp_listener:<bound ip:port>`
 * (http-api.md §5.1), beside the `esmtp_listener` roll-up.
 *
 * @example
 * ```ts
 * listenerService("127.0.0.1:2525"); // "esmtp_listener:127.0.0.1:2525"
 * ```
 */
export function listenerService(address: string): string {
  return `esmtp_listener:${address}`;
}

/** Count one accepted message for `service` (`esmtp_listener`, `http_listener`, …). */
export function countReceived(service: string): void {
  child(kumoMetrics.totalMessagesReceived, service).inc();
}

/** The fields of a log record that decide which outcome series to bump. */
export interface OutcomeFields {
  type: string;
  /** The ready queue name (`src->site@proto`); anything else counts only the roll-up. */
  site: string;
  provider_name?: string;
  egress_source?: string | null;
  egress_pool?: string | null;
}

/**
 * Count a Delivery / TransientFailure / Bounce record: the protocol roll-up
 * (`smtp_client`, `lua`, …), the ready queue's `<protocol>:<name>` series and,
 * when the egress path names a provider, the `_by_provider*` series.
 * Other record types are ignored.
 *
 * @example
 * ```ts
 * countOutcome({ type: "Delivery", site: "unspecified->mx.example.test@smtp_client" });
 * ```
 */
export function countOutcome(rec: OutcomeFields): void {
  const k = kumoMetrics;
  let family, byProvider, byProviderAndSource;
  switch (rec.type) {
    case "Delivery":
      [family, byProvider, byProviderAndSource] = [
        k.totalMessagesDelivered,
        k.deliveredByProvider,
        k.deliveredByProviderAndSource,
      ];
      break;
    case "TransientFailure":
      [family, byProvider, byProviderAndSource] = [
        k.totalMessagesTransfail,
        k.transfailByProvider,
        k.transfailByProviderAndSource,
      ];
      break;
    case "Bounce":
      [family, byProvider, byProviderAndSource] = [
        k.totalMessagesFail,
        k.failByProvider,
        k.failByProviderAndSource,
      ];
      break;
    default:
      return;
  }
  if (!rec.site.includes("->")) {
    // No ready queue (decided in the queue stage, or an admin action).
    child(family, "smtp_client").inc();
  } else {
    child(family, readyQueueProtocol(rec.site)).inc();
    child(family, readyQueueService(rec.site)).inc();
  }
  if (rec.provider_name) {
    child(byProvider, rec.provider_name).inc();
    byProviderAndSource.labels(
      rec.provider_name,
      rec.egress_source ?? "",
      rec.egress_pool ?? "",
    ).inc();
  }
}

/** Observe how long one log record took to hand to local logger `logger` (`dir-<path>`). */
export function observeLogSubmit(logger: string, seconds: number): void {
  let c = logChildren.get(logger);
  if (c === undefined) logChildren.set(logger, c = kumoMetrics.logSubmitLatency.labels(logger));
  c.observe(seconds);
}

const logChildren = new Map<string, { observe(v: number): void }>();

/** Which inbound SMTP timing a duration belongs to. */
export type SmtpsrvTiming = "read_data" | "process_data" | "transaction";

/** Observe one inbound SMTP timing (seconds): `smtpsrv_<timing>_duration`. */
export function observeSmtpsrv(timing: SmtpsrvTiming, seconds: number): void {
  const k = kumoMetrics;
  (timing === "read_data"
    ? k.smtpsrvReadData
    : timing === "process_data"
    ? k.smtpsrvProcessData
    : k.smtpsrvTransaction).observe(seconds);
}

/** Count one opened connection (listener or outbound) for `service`. */
export function countConnection(service: string): void {
  child(kumoMetrics.totalConnectionCount, service).inc();
}

/** Count a connection a listener refused (`max_connections`). */
export function countConnectionDenied(service: string): void {
  child(kumoMetrics.totalConnectionsDenied, service).inc();
}

/** Count a logged SMTP server rejection: `total` and the listener's address. */
export function countRejection(listener?: string): void {
  child(kumoMetrics.smtpServerRejections, "total").inc();
  if (listener) child(kumoMetrics.smtpServerRejections, listener).inc();
}

/** Why the queue stage delayed a message without an attempt. */
export type DelayReason = "ready_full" | "message_rate" | "throttle_insert_ready";

/**
 * Count a delay of a message of scheduled queue `queue`; `readyQueue` also
 * bumps `ready_full{service}` for a full ready queue.
 */
export function countDelay(reason: DelayReason, queue: string, readyQueue?: string): void {
  const k = kumoMetrics;
  const f = reason === "ready_full"
    ? k.delayedReadyFull
    : reason === "message_rate"
    ? k.delayedMessageRate
    : k.delayedThrottleInsertReady;
  f.labels(queue).inc();
  if (readyQueue !== undefined) child(k.readyFull, readyQueueService(readyQueue)).inc();
}

/** Count a log record dropped because a local logger hit its back_pressure. */
export function countLogSubmitFull(logger: string): void {
  child(kumoMetrics.logSubmitFull, logger).inc();
}

/** Count a log record a hook could not take (`log_hook_backlog_count{logger="hook-<name>"}`). */
export function countLogHookBacklog(hookName: string): void {
  child(kumoMetrics.logHookBacklog, `hook-${hookName}`).inc();
}

/** Outcome of one MX resolution (`dns_mx_resolve_status_*`). */
export function countMxResolve(ok: boolean): void {
  (ok ? kumoMetrics.dnsMxOk : kumoMetrics.dnsMxFail).inc();
}

/** An MX lookup answered from the queue stage's cache, or not. */
export function countMxCache(hit: boolean): void {
  (hit ? kumoMetrics.dnsMxCacheHit : kumoMetrics.dnsMxCacheMiss).inc();
}

const luaChildren = new Map<
  string,
  { started: Inc; latency: { observe(v: number): void } }
>();

/**
 * Start timing a Lua event dispatch; call the returned function when it
 * ends. Counts `lua_event_started{event}` and observes `lua_event_latency`.
 *
 * @example
 * ```ts
 * const done = luaEventTimer("get_queue_config");
 * try { await dispatch(); } finally { done(); }
 * ```
 */
export function luaEventTimer(event: string): () => void {
  let c = luaChildren.get(event);
  if (c === undefined) {
    c = {
      started: kumoMetrics.luaEventStarted.labels(event),
      latency: kumoMetrics.luaEventLatency.labels(event),
    };
    luaChildren.set(event, c);
  }
  c.started.inc();
  const t0 = performance.now();
  const latency = c.latency;
  return () => latency.observe((performance.now() - t0) / 1000);
}

/** Count one load of the policy script into a new Lua context. */
export function countLuaLoad(): void {
  kumoMetrics.luaLoadCount.inc();
}

/** Observe one delivery attempt's duration (seconds) for the protocol roll-up. */
export function observeDeliverLatency(protocol: string, seconds: number): void {
  kumoMetrics.deliverLatency.labels(protocol).observe(seconds);
}
