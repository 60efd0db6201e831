/**
 * Gauges that mirror the queue stage at scrape time: `scheduled_count`
 * per scheduled queue, `scheduled_count_total` and `scheduled_queue_count`
 * (http-api.md §5.1).
 *
 * Place on the path: registered by `src/server.ts`; read-only over the
 * QueueManager's public inspection methods. Series of reaped queues vanish
 * because the family is rebuilt on every scrape.
 *
 * @module
 */

import type { MetricsRegistry } from "./registry.ts";
import type { QueueManager } from "../queue/queue_manager.ts";
import { kumoMetrics } from "./kumo_metrics.ts";

/**
 * Refresh the queue gauges before each render; returns the unregister function.
 *
 * @example
 * ```ts
 * const stop = registerQueueGauges(metricsRegistry, () => queues);
 * ```
 */
export function registerQueueGauges(
  registry: MetricsRegistry,
  queues: () => QueueManager | null,
): () => void {
  return registry.onCollect(() => {
    const qm = queues();
    const per = kumoMetrics.scheduledCount;
    per.clear();
    if (qm === null) return;
    let total = 0;
    let count = 0;
    for (const [name, size] of qm.scheduledQueues()) {
      per.labels(name).set(size);
      total += size;
      count++;
    }
    kumoMetrics.scheduledCountTotal.labels().set(total);
    kumoMetrics.scheduledQueueCount.labels().set(count);
  });
}
