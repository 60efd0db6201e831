/**
 * HttpServices: what every HTTP endpoint borrows from the running server —
 * the shared reception services (policy engine, spools once open, log
 * dispatcher, queue hand-off, node id, shutdown flag), the queue stage, the
 * metrics registry and this listener's own settings and bound address.
 *
 * Place on the path: built by `src/http/http_listener.ts` for each
 * `kumo.start_http_listener`, from objects `src/server.ts` owns. Plain data;
 * `reception` is the same mutable object the SMTP listeners share, so spools
 * and the shutdown flag are seen as soon as they change. It never does I/O.
 *
 * @module
 */

import type { ReceptionServices } from "../smtp/server/reception_services.ts";
import type { QueueManager } from "../queue/queue_manager.ts";
import type { HttpListenerConfig } from "../policy/config/http_listener.ts";
import type { MetricsRegistry } from "../metrics/registry.ts";

/** One HTTP listener: its parsed config and the address it is bound to. */
export interface HttpListenerInfo {
  config: HttpListenerConfig;
  /** The bound `ip:port` (`[v6]:port`); set once the socket is bound. */
  address: string;
  /** The bound IP alone (may be `0.0.0.0`); meta `received_via`. */
  ip: string;
}

/**
 * Services handed to {@link buildHttpApp}.
 *
 * @example
 * ```ts
 * const services: HttpServices = {
 *   reception, queues: () => queueManager, metrics: metricsRegistry,
 *   listener: { config, address: "127.0.0.1:8000", ip: "127.0.0.1" },
 * };
 * ```
 */
export interface HttpServices {
  /** Engine, spools (null until open), logs, hand-off, node id, shutdown flag. */
  reception: ReceptionServices;
  /** The queue stage, or null before the spools are open (admin endpoints). */
  queues: () => QueueManager | null;
  metrics: MetricsRegistry;
  listener: HttpListenerInfo;
}
