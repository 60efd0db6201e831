/**
 * Starts the stages the policy's `init` configured, and stops them again.
 *
 * Place on the path: called by main.ts after `init`. Start order follows
 * cli.md §2 and queues-and-delivery.md §8: log writers first; then the ESMTP
 * listeners (which answer `421 4.3.2 <host> waiting for spool startup. Try
 * again soon!` until the spools are open); then the data and meta spools;
 * then spool enumeration (`spool_message_enumerated`, then the queue
 * hand-off) while new mail is already accepted. Shutdown runs in reverse:
 * stop accepting, `421 4.3.2 <host> shutting down` to sessions, close the
 * logs (segments finished and made read-only), close the spools.
 *
 * Queue hand-off: sessions start with {@link spoolOnlyHandoff} (a message
 * stays in the spool and is found again at the next start); once the spools
 * are open the queue stage's QueueManager becomes the hand-off and runs the
 * spool-in (`spool_message_enumerated`, then insert).
 *
 * @module
 */

import type { PolicyEngine } from "./policy/engine.ts";
import type { ServerConfig } from "./policy/server_config.ts";
import type { Resolver } from "./dns/resolver.ts";
import type { EsmtpListenerConfig } from "./policy/config/esmtp_listener.ts";
import type { SpoolConfig } from "./policy/config/spool.ts";
import type { LocalLogsConfig as PolicyLocalLogs } from "./policy/config/local_logs.ts";
import { openSpool, type Spool, type SpoolPair } from "./spool/mod.ts";
import { diskSpaceCheck } from "./spool/disk_space.ts";
import { isLoadShedding } from "./metrics/memory_limits.ts"; // [http]
import {
  LocalLogger,
  type LocalLogsConfig,
  LogDispatcher,
  type PerRecordConfig,
} from "./log/local_logger.ts";
import type { LogRecord } from "./log/record.ts";
import { diag } from "./log/diag.ts";
import { Message } from "./message/message.ts";
import type { QueueHandoff } from "./queue/handoff.ts";
import type { ReceptionServices } from "./smtp/server/reception_services.ts";
import { EsmtpListener } from "./smtp/server/listener.ts";
import { QueueManager } from "./queue/queue_manager.ts"; // [deliver]
import type { HttpListenerConfig } from "./policy/config/http_listener.ts"; // [http]
import { type RunningHttpListener, startHttpListener } from "./http/http_listener.ts"; // [http]
import { GENERATOR_QUEUE, runGeneratorMessage } from "./http/inject_v1.ts"; // [http]
import { DEFERRED_QUEUE_NAME, deferredInjectHandler } from "./smtp/server/deferred_inject.ts"; // [smtp]
import { metricsRegistry } from "./metrics/kumo_metrics.ts"; // [http]
import { registerQueueGauges } from "./metrics/queue_gauges.ts"; // [http]
import type { PolicyRuntime } from "./policy/runtime.ts"; // [lua-runtime]
import { bindPolicyRuntime } from "./queue/policy_runtime.ts"; // [lua-runtime]
import { LogHook } from "./log/log_hook.ts"; // [loghook]
import { parseLogHook } from "./policy/config/log_hook.ts"; // [loghook]
import { storeMessage } from "./spool/store_message.ts";

/** A running server. */
export interface RunningServer {
  /** Graceful shutdown: stop accepting, flush, close logs and spools. */
  shutdown(): Promise<void>;
}

/** The interim hand-off: the message stays in the spool until the queue stage exists. */
export const spoolOnlyHandoff: QueueHandoff = { insert: () => Promise.resolve() };

/** Node id file kept in the meta spool directory (stable across restarts). */
async function loadNodeId(metaPath: string): Promise<string> {
  const file = `${metaPath}/nodeid`;
  try {
    const text = (await Deno.readTextFile(file)).trim();
    if (/^[0-9a-f-]{36}$/.test(text)) return text;
  } catch { /* first start */ }
  const id = crypto.randomUUID();
  await Deno.mkdir(metaPath, { recursive: true });
  await Deno.writeTextFile(file, id + "\n");
  return id;
}

function toLoggerConfig(c: PolicyLocalLogs): LocalLogsConfig {
  const perRecord: LocalLogsConfig["perRecord"] = {};
  for (const [k, v] of Object.entries(c.perRecord)) {
    if (v !== undefined) perRecord[k] = v;
  }
  return {
    logDir: c.logDir,
    maxFileSize: c.maxFileSize,
    maxSegmentDurationMs: c.maxSegmentDuration,
    compressionLevel: c.compressionLevel,
    backPressure: c.backPressure,
    headers: c.headers,
    meta: c.meta,
    perRecord,
    filterEvent: c.filterEvent,
  };
}

/** `filter_event`: Lua `(msg) -> bool`; records without a message use a stand-in. */
function logFilter(engine: PolicyEngine, event: string) {
  return async (record: LogRecord, ctx: { meta: Record<string, unknown>; message?: Message }) => {
    const msg = ctx.message ?? new Message({
      id: record.id || undefined,
      sender: record.sender,
      recipients: Array.isArray(record.recipient)
        ? record.recipient
        : record.recipient === ""
        ? []
        : [record.recipient],
      meta: ctx.meta,
      data: new Uint8Array(0), // no message body: header lookups find nothing
    });
    const r = await engine.call(event, "m", [msg]);
    if (r.kind === "error") throw new Error(r.message);
    if (r.kind === "reject") throw new Error(`${r.code} ${r.message}`);
    return r.kind === "none" || r.values[0] === undefined || Boolean(r.values[0]);
  };
}

/** Starts every configured stage. Throws when the configuration cannot run. */
export async function startServer(
  engine: PolicyEngine,
  cfg: ServerConfig,
  _resolver: Resolver,
  handoff: QueueHandoff = spoolOnlyHandoff,
  runtime?: PolicyRuntime, // [lua-runtime] kumo.inject_message / kumo.api.admin.*
): Promise<RunningServer> {
  if (!cfg.spools.has("data") || !cfg.spools.has("meta")) {
    if (cfg.spools.size === 0) throw new Error("No spools have been defined");
    throw new Error('Both a "data" and a "meta" spool must be defined');
  }
  const dataDef = cfg.spools.get("data") as SpoolConfig;
  const metaDef = cfg.spools.get("meta") as SpoolConfig;

  // Log writers first.
  const logs = new LogDispatcher();
  for (const c of cfg.localLogs as PolicyLocalLogs[]) {
    const lc = toLoggerConfig(c);
    logs.add(
      new LocalLogger(lc, {
        filter: lc.filterEvent ? logFilter(engine, lc.filterEvent) : undefined,
      }),
    );
  }

  // [loghook] configure_log_hook: records → should_enqueue_log_record → spool + queue (logs §6).
  let queues: QueueManager | null = null; // [deliver] created once the spools are open
  let unbindRuntime = () => {}; // [lua-runtime]
  for (const raw of cfg.logHooks) {
    const h = parseLogHook(raw);
    const perRecord: Record<string, PerRecordConfig | undefined> = { ...h.perRecord };
    logs.add(
      new LogHook({ ...h, perRecord }, {
        active: () => engine.hasHandler("should_enqueue_log_record"),
        shouldEnqueue: async (msg, name) => {
          const r = await engine.call("should_enqueue_log_record", "ms", [msg, name]);
          if (r.kind === "error") throw new Error(r.message);
          if (r.kind === "reject") throw new Error(`${r.code} ${r.message}`);
          return r.kind === "ok" && r.values[0] === true;
        },
        enqueue: async (msg, deferred) => {
          const spools = services.spools;
          if (spools === null || queues === null) throw new Error("the queue stage is not running");
          if (!deferred) await storeMessage(spools, msg);
          await queues.insert(msg);
        },
      }),
    );
  }

  const services: ReceptionServices = {
    engine,
    spools: null,
    logs,
    handoff,
    nodeId: await loadNodeId(metaDef.path),
    shuttingDown: false,
    diskTooFull: diskSpaceCheck([dataDef, metaDef]),
    loadShedding: isLoadShedding, // [http] memory headroom 0
  };

  const listeners: EsmtpListener[] = [];
  const opened: Spool[] = [];
  const httpListeners: RunningHttpListener[] = []; // [http]
  const unregisterGauges = registerQueueGauges(metricsRegistry, () => queues, { // [metrics]
    engine,
    disks: [{ name: "data spool", path: dataDef.path }, { name: "meta spool", path: metaDef.path }],
  });
  const teardown = async () => {
    unbindRuntime(); // [lua-runtime]
    await queues?.shutdown(); // [deliver] stop delivery first
    services.shuttingDown = true;
    await Promise.all(httpListeners.map((l) => l.shutdown())); // [http]
    unregisterGauges(); // [http]
    await Promise.all(listeners.map((l) => l.shutdown()));
    await logs.close();
    await Promise.all(opened.map((s) => s.close().catch(() => {})));
  };

  try {
    for (const lc of cfg.esmtpListeners as EsmtpListenerConfig[]) {
      const l = await EsmtpListener.start(lc, services);
      listeners.push(l);
      diag.info("kumod", `smtp listener on ${l.address}`);
    }
    // [http] HTTP listeners (src/http/); they answer 503 until the spools are open.
    for (const hc of cfg.httpListeners as HttpListenerConfig[]) {
      httpListeners.push(
        await startHttpListener(hc, {
          reception: services,
          queues: () => queues,
          metrics: metricsRegistry,
        }),
      );
    }
    const spools: SpoolPair = {
      data: await openSpool(dataDef).then((s) => (opened.push(s), s)),
      meta: await openSpool(metaDef).then((s) => (opened.push(s), s)),
    };
    services.spools = spools;
    // [deliver] begin: QueueManager is the hand-off; it runs the spool-in (§8 attempt estimation).
    queues = new QueueManager({
      engine,
      resolver: _resolver,
      spools,
      logs,
      nodeId: services.nodeId,
    });
    services.handoff = queues;
    if (runtime) unbindRuntime = bindPolicyRuntime(runtime, spools, queues); // [lua-runtime]
    queues.internalQueues.set(GENERATOR_QUEUE, (m) => runGeneratorMessage(services, m)); // [http]
    queues.internalQueues.set(DEFERRED_QUEUE_NAME, deferredInjectHandler(services)); // [smtp] deferred_queue
    await queues.startSpoolIn();
    // [deliver] end
  } catch (e) {
    await teardown();
    throw e;
  }

  let stopping: Promise<void> | null = null;
  return { shutdown: () => (stopping ??= teardown()) };
}
