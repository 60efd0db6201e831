/**
 * Gauges that mirror live state at scrape time (http-api.md §5.1):
 * `scheduled_count{queue}` and its roll-ups by domain / tenant / campaign,
 * `ready_count{service}`, outbound `connection_count{service}` per ready
 * queue and per protocol, `queued_count_by_provider*`,
 * `connection_count_by_provider*`, `message_count` and the data/meta
 * resident counts (messages held by the queues), Lua context counts,
 * memory usage and thresholds (`memory_limit` = the soft limit,
 * `memory_low_thresh`), `thread_pool_size/parked{pool="main"}` (fixed 1/0:
 * one event loop does the work) and disk.
 *
 * Place on the path: registered by `src/server.ts`; read-only over the
 * QueueManager's queues, the engine's pool counters and `statfs`. Series of
 * queues that went away vanish because each family is rebuilt per scrape
 * (so gauges go down to zero and disappear as queues drain and are reaped).
 *
 * @module
 */

import * as fs from "node:fs";
import type { MetricsRegistry } from "./registry.ts";
import type { QueueManager } from "../queue/queue_manager.ts";
import { kumoMetrics as k, readyQueueProtocol, readyQueueService } from "./kumo_metrics.ts";
import { memoryThresholds } from "./memory_limits.ts";

/** A monitored location for `disk_free_*{name}` (`data spool`, `meta spool`, `log dir <path>`). */
export interface DiskLocation {
  name: string;
  path: string;
}

/** Optional sources of the non-queue gauges. */
export interface GaugeSources {
  /** The policy engine's context pool. */
  engine?: { readonly idleContexts: number; readonly activeContexts: number };
  /** Locations for the `disk_free_*` gauges. */
  disks?: readonly DiskLocation[];
}

/**
 * Refresh the live gauges before each render; returns the unregister function.
 *
 * @example
 * ```ts
 * const stop = registerQueueGauges(metricsRegistry, () => queues, { engine });
 * ```
 */
export function registerQueueGauges(
  registry: MetricsRegistry,
  queues: () => QueueManager | null,
  sources: GaugeSources = {},
): () => void {
  /** connection_count series this collector owns (listeners keep theirs). */
  let ownedConnections = new Set<string>();
  return registry.onCollect(() => {
    ownedConnections = refreshQueues(queues(), ownedConnections);
    refreshProcess(sources);
  });
}

function add(m: Map<string, number>, key: string, n: number): void {
  m.set(key, (m.get(key) ?? 0) + n);
}

function refreshQueues(qm: QueueManager | null, owned: Set<string>): Set<string> {
  for (
    const g of [
      k.scheduledCount,
      k.scheduledByDomain,
      k.scheduledByTenant,
      k.scheduledByTenantCampaign,
      k.readyCount,
      k.queuedByProvider,
      k.queuedByProviderAndPool,
      k.connectionsByProvider,
      k.connectionsByProviderAndPool,
    ]
  ) g.reset();
  const nowOwned = new Set<string>();
  if (qm === null) {
    for (const s of owned) k.connectionCount.remove(s);
    k.scheduledCountTotal.set(0);
    k.scheduledQueueCount.set(0);
    k.messageCount.set(0);
    k.messageDataResidentCount.set(0);
    k.messageMetaResidentCount.set(0);
    return nowOwned;
  }
  const { scheduled, ready } = qm.queueViews();
  const byDomain = new Map<string, number>();
  const byTenant = new Map<string, number>();
  const byCampaign = new Map<string, [string, string, number]>();
  const byProvider = new Map<string, number>();
  const byProviderPool = new Map<string, [string, string, number]>();
  let total = 0;
  let count = 0;
  let resident = 0;
  for (const q of scheduled) {
    const size = q.size;
    for (const m of q.messages()) if (m.data !== null) resident++;
    k.scheduledCount.labels(q.name).set(size);
    total += size;
    count++;
    const c = q.components;
    add(byDomain, c.domain, size);
    if (c.tenant !== undefined) {
      add(byTenant, c.tenant, size);
      if (c.campaign !== undefined) {
        const key = `${c.tenant}\0${c.campaign}`;
        const e = byCampaign.get(key) ?? [c.tenant, c.campaign, 0];
        e[2] += size;
        byCampaign.set(key, e);
      }
    }
    const provider = q.config.providerName;
    if (provider !== undefined) {
      add(byProvider, provider, size);
      const pool = q.config.egressPool ?? "unspecified";
      const key = `${provider}\0${pool}`;
      const e = byProviderPool.get(key) ?? [provider, pool, 0];
      e[2] += size;
      byProviderPool.set(key, e);
    }
  }
  k.scheduledCountTotal.set(total);
  k.scheduledQueueCount.set(count);
  for (const [d, n] of byDomain) k.scheduledByDomain.labels(d).set(n);
  for (const [t, n] of byTenant) k.scheduledByTenant.labels(t).set(n);
  for (const [t, c, n] of byCampaign.values()) k.scheduledByTenantCampaign.labels(t, c).set(n);

  const connByProtocol = new Map<string, number>();
  const connByProvider = new Map<string, number>();
  const connByProviderPool = new Map<string, [string, string, number]>();
  let readyTotal = 0;
  for (const rq of ready) {
    const service = readyQueueService(rq.name);
    const size = rq.size;
    readyTotal += size;
    resident += rq.dataResidentCount();
    const active = rq.activeConnections;
    k.readyCount.labels(service).set(size);
    k.connectionCount.labels(service).set(active);
    nowOwned.add(service);
    add(connByProtocol, readyQueueProtocol(rq.name), active);
    const provider = rq.providerName;
    if (provider !== undefined) {
      add(byProvider, provider, size);
      const key = `${provider}\0${rq.poolName}`;
      const e = byProviderPool.get(key) ?? [provider, rq.poolName, 0];
      e[2] += size;
      byProviderPool.set(key, e);
      add(connByProvider, provider, active);
      const c = connByProviderPool.get(key) ?? [provider, rq.poolName, 0];
      c[2] += active;
      connByProviderPool.set(key, c);
    }
  }
  // Every queued message keeps its meta in memory; data may be shrunk to the spool.
  k.messageCount.set(total + readyTotal);
  k.messageMetaResidentCount.set(total + readyTotal);
  k.messageDataResidentCount.set(resident);
  for (const [proto, n] of connByProtocol) {
    k.connectionCount.labels(proto).set(n);
    nowOwned.add(proto);
  }
  for (const s of owned) if (!nowOwned.has(s)) k.connectionCount.remove(s);
  for (const [p, n] of byProvider) k.queuedByProvider.labels(p).set(n);
  for (const [p, pool, n] of byProviderPool.values()) {
    k.queuedByProviderAndPool.labels(p, pool).set(n);
  }
  for (const [p, n] of connByProvider) k.connectionsByProvider.labels(p).set(n);
  for (const [p, pool, n] of connByProviderPool.values()) {
    k.connectionsByProviderAndPool.labels(p, pool).set(n);
  }
  return nowOwned;
}

function refreshProcess(sources: GaugeSources): void {
  try {
    k.memoryUsage.set(Deno.memoryUsage().rss);
  } catch { /* not available: leave the last value */ }
  const limits = memoryThresholds();
  if (limits.soft !== null) k.memoryLimit.set(limits.soft);
  if (limits.lowThresh !== null) k.memoryLowThresh.set(limits.lowThresh);
  // One JavaScript event loop does all the work; upstream's pools map onto it.
  k.threadPoolSize.labels("main").set(1);
  k.threadPoolParked.labels("main").set(0);
  const e = sources.engine;
  if (e !== undefined) {
    k.luaCount.set(e.idleContexts + e.activeContexts);
    k.luaSpareCount.set(e.idleContexts);
  }
  for (const d of sources.disks ?? []) {
    let s;
    try {
      s = fs.statfsSync(d.path);
    } catch {
      continue;
    }
    k.diskFreeBytes.labels(d.name).set(s.bavail * s.bsize);
    k.diskFreePercent.labels(d.name).set(s.blocks > 0 ? (s.bavail / s.blocks) * 100 : 0);
    k.diskFreeInodes.labels(d.name).set(s.ffree);
    k.diskFreeInodesPercent.labels(d.name).set(s.files > 0 ? (s.ffree / s.files) * 100 : 0);
  }
}
