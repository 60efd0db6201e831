/**
 * The kumod metric families (names, labels and help of http-api.md §5.1)
 * registered once in the process-wide registry, so every stage increments
 * the same series `kcli` and Prometheus read.
 *
 * Place on the path: beside it. The SMTP server, HTTP inject and the queue
 * stage import {@link kumoMetrics} and bump counters; gauges that mirror live
 * state (queue sizes) are refreshed by collectors registered in
 * `src/server.ts`. Nothing here does I/O.
 *
 * @module
 */

import { MetricsRegistry } from "./registry.ts";

/** The process-wide registry rendered by `GET /metrics`. */
export const metricsRegistry: MetricsRegistry = new MetricsRegistry();

const r = metricsRegistry;

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
    "total number of messages received",
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
  connectionCount: r.gauge("connection_count", "number of active connections", ["service"]),
  totalConnectionCount: r.counter(
    "total_connection_count",
    "total number of connections ever made",
    ["service"],
  ),
  smtpServerRejections: r.counter(
    "smtp_server_rejections",
    "number of rejections logged by the smtp server",
    ["service"],
  ),
  scheduledCount: r.gauge("scheduled_count", "number of messages in the scheduled queue", [
    "queue",
  ]),
  scheduledCountTotal: r.gauge(
    "scheduled_count_total",
    "total number of messages across all scheduled queues",
  ),
  scheduledQueueCount: r.gauge("scheduled_queue_count", "number of scheduled queues"),
  readyCount: r.gauge("ready_count", "number of messages in the ready queue", ["service"]),
};

/** Which metric the outcome record type bumps (`Delivery` etc.), or undefined. */
export function outcomeCounter(type: string) {
  switch (type) {
    case "Delivery":
      return kumoMetrics.totalMessagesDelivered;
    case "TransientFailure":
      return kumoMetrics.totalMessagesTransfail;
    case "Bounce":
      return kumoMetrics.totalMessagesFail;
    default:
      return undefined;
  }
}
