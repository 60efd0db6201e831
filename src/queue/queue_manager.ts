/**
 * The queue stage: scheduled queues keyed by name, promotion of due
 * messages to ready queues (source picked by weighted round robin), retry
 * and expiry per queues-and-delivery §3, outcome logging, spool removal
 * after the final outcome is logged, and spool-in at startup (§8).
 *
 * Place on the path: behind the QueueHandoff (reception calls `insert`),
 * in front of the egress ready queues. It never writes to an SMTP socket;
 * the spool is only written when meta changed and removed at the end.
 *
 * @module
 */

import type { Message } from "../message/message.ts";
import { Message as MessageClass } from "../message/message.ts";
import { parseQueueName, type QueueNameComponents } from "../message/queue_name.ts";
import type { PolicyEngine } from "../policy/engine.ts";
import { expectConfig } from "../policy/config_object.ts";
import { parseQueueConfig, type QueueConfig } from "../policy/config/queue_config.ts";
import type { Resolver } from "../dns/resolver.ts";
import { type MailExchanger, resolveMailExchanger, resolveMxList } from "../dns/mail_exchanger.ts";
import type { SpoolPair } from "../spool/spool.ts";
import type { LogDispatcher } from "../log/local_logger.ts";
import {
  type LogRecord,
  newLogRecord,
  type RecordType,
  type ResponseRecord,
} from "../log/record.ts";
import { diag } from "../log/diag.ts";
import { EgressResolver, WeightedRoundRobin } from "../egress/egress_pool.ts";
import { type AttemptReport, ReadyQueue, readyQueueName } from "../egress/ready_queue.ts";
import type { EgressSource } from "../policy/config/egress_source.ts";
import { Throttle } from "../util/gcra.ts";
import { ScheduledQueue } from "./scheduled_queue.ts";
import type { QueueHandoff } from "./handoff.ts";
import {
  delayBasedOnAge,
  delayForAttempt,
  expirationText,
  humanDuration,
  inferNumAttempts,
  scheduleAfterFailure,
} from "./retry_schedule.ts";
import { PolicyReject } from "../policy/policy_error.ts";
import { spoolIdCreatedMs } from "../message/spool_id.ts";
import { QueueAdmin } from "./queue_admin.ts"; // [admin]
import { countDelay, countMxCache, countOutcome, kumoMetrics } from "../metrics/kumo_metrics.ts"; // [metrics]
import { protocolRoute } from "./protocol_route.ts"; // [protocols]

/** Services the queue stage is built from. */
export interface QueueManagerOptions {
  engine: PolicyEngine;
  resolver: Resolver;
  spools: SpoolPair;
  logs: LogDispatcher;
  /** UUID of this node for log records. @default a random UUID */
  nodeId?: string;
  /** EHLO fallback. @default Deno.hostname() */
  hostname?: string;
  /** Jitter source. @default Math.random */
  random?: () => number;
}

/** Extra fields of a record built by {@link QueueManager}. */
interface RecordExtra {
  site?: string;
  peer?: LogRecord["peer_address"];
  pool?: string | null;
  source?: string | null;
  sourceAddress?: LogRecord["source_address"];
  deliveryProtocol?: string | null;
  sessionId?: string;
  tls?: AttemptReport["tls"];
  providerName?: string;
}

function internalResponse(code: number, text: string): ResponseRecord {
  const m = /^([245])\.(\d{1,3})\.(\d{1,3}) /.exec(text);
  return {
    code,
    enhanced_code: m ? { class: +m[1], subject: +m[2], detail: +m[3] } : null,
    content: m ? text.slice(m[0].length) : text,
    command: null,
  };
}

/** Why `requeue_message` handlers did not simply succeed. */
type RequeueHookResult = "ok" | "bounced" | "failed";

/** Meta keys that make up the queue name (restored when `requeue_message` fails). */
const QUEUE_META_KEYS = ["queue", "tenant", "campaign", "routing_domain"] as const;

function responseLine(r: ResponseRecord): string {
  const e = r.enhanced_code;
  return `${r.code} ${e ? `${e.class}.${e.subject}.${e.detail} ` : ""}${r.content}`;
}

/**
 * Owns every scheduled and ready queue of the process.
 *
 * @example
 * ```ts
 * const qm = new QueueManager({ engine, resolver, spools, logs });
 * await qm.insert(msg); // after it was spooled
 * qm.startSpoolIn();
 * await qm.shutdown();
 * ```
 */
export class QueueManager implements QueueHandoff {
  #o: QueueManagerOptions;
  #nodeId: string;
  #random: () => number;
  #egress: EgressResolver;
  #scheduled = new Map<string, ScheduledQueue>();
  #creating = new Map<string, Promise<ScheduledQueue>>();
  #ready = new Map<string, ReadyQueue>();
  #stopping = false;
  /** Config epoch each scheduled queue's config was resolved in (refresh_strategy Epoch). */
  #epochOf = new WeakMap<ScheduledQueue, number>();
  #reaper: ReturnType<typeof setInterval> | undefined;
  #mxCache = new Map<string, { cfg: QueueConfig; mx: MailExchanger; expires: number }>();
  #inflight = new Set<Promise<unknown>>();
  /** Resolves when the spool-in pass is done. */
  spoolInDone: Promise<void> = Promise.resolve();
  /**
   * [http] Built-in queues handled in-process instead of being delivered
   * (e.g. `generator.kumomta.internal`): queue name → handler, which owns
   * the message (and its spool records) from then on.
   */
  readonly internalQueues = new Map<string, (msg: Message) => Promise<void>>();

  constructor(options: QueueManagerOptions) {
    this.#o = options;
    this.#nodeId = options.nodeId ?? crypto.randomUUID();
    this.#random = options.random ?? Math.random;
    this.#egress = new EgressResolver(options.engine);
    // [admin] bounce/suspend/rebind/inspect (src/queue/queue_admin.ts) over a narrow view.
    this.admin = new QueueAdmin({
      engine: options.engine,
      spools: options.spools,
      scheduled: this.#scheduled,
      ready: this.#ready,
      queueFor: (name) => this.#queueFor(name),
      log: (type, msg, response, site) =>
        this.#log(
          this.#record(type, msg, msg.recipients.map((r) => r.email), response, { site }),
          msg,
        ),
      finish: (msg) => this.#finish(msg),
      transient: (msg, response, site) =>
        this.#transientInternal(this.#scheduled.get(msg.queueName()), msg, response, { site }),
      persist: (msg) => this.#persistMeta(msg),
      track: (p) => this.#track(p),
    });
  }

  /** [admin] The operator's levers: admin bounce, suspensions, rebind, inspection. */
  readonly admin: QueueAdmin;

  /** Scheduled queue names and sizes (for inspection and tests). */
  scheduledQueues(): Map<string, number> {
    return new Map([...this.#scheduled].map(([k, q]) => [k, q.size]));
  }

  /** [metrics] The live scheduled and ready queues, read-only (src/metrics/queue_gauges.ts). */
  queueViews(): { scheduled: Iterable<ScheduledQueue>; ready: Iterable<ReadyQueue> } {
    return { scheduled: this.#scheduled.values(), ready: this.#ready.values() };
  }

  /** Ready queue names (for inspection and tests). */
  readyQueues(): string[] {
    return [...this.#ready.keys()];
  }

  /** QueueHandoff: schedule an accepted (already spooled) message. */
  async insert(msg: Message): Promise<void> {
    if (this.#stopping) throw new Error("Cannot insert message: queue manager is shutting down");
    if (this.admin.onInsert(msg)) return; // [admin] bounced
    if (this.#internal(msg)) return; // [http]
    const q = await this.#queueFor(msg.queueName());
    q.schedule(msg);
  }

  /** [smtp] Failed {@link prepare} resolutions by queue name, remembered 60 s. */
  #prepareFailures = new Map<string, { error: Error; until: number }>();

  /**
   * [smtp] Resolve a queue before a message for it is accepted (end of
   * DATA, before the spool write; lua-api.md §3): `get_queue_config` for a
   * new scheduled queue, then its egress pool and every source of it. The
   * `null` queue, built-in queues and existing queues resolve at once. A
   * failure is remembered for 60 s: calls within that time fail with the
   * same error without asking the policy again, and the half-made queue is
   * dropped so that it is resolved afresh afterwards.
   *
   * @throws {Error} when the queue cannot be resolved (reception answers `421 4.3.0`)
   * @example
   * ```ts
   * await qm.prepare(msg.queueName()); // then spool, then qm.insert(msg)
   * ```
   */
  async prepare(name: string): Promise<void> {
    if (name === "null" || this.internalQueues.has(name) || this.#scheduled.has(name)) return;
    const now = Date.now();
    const failed = this.#prepareFailures.get(name);
    if (failed !== undefined && now < failed.until) throw failed.error;
    this.#prepareFailures.delete(name);
    try {
      const q = await this.#queueFor(name);
      try {
        await this.#egress.pool(q.config.egressPool);
      } catch (e) {
        if (q.size === 0 && this.#scheduled.get(name) === q) {
          q.stop();
          this.#scheduled.delete(name);
        }
        throw e;
      }
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      for (const [k, v] of this.#prepareFailures) {
        if (v.until <= now) this.#prepareFailures.delete(k);
      }
      this.#prepareFailures.set(name, { error, until: now + 60_000 });
      throw error;
    }
  }

  /** [http] Hand a message of a built-in queue to its handler (in the background). */
  #internal(msg: Message): boolean {
    const handler = this.internalQueues.get(msg.queueName());
    if (handler === undefined) return false;
    this.#track(
      handler(msg).catch((e) => {
        diag.error("kumod::queue", `Cannot process internal message "${msg.id}": ${e}`);
      }),
    );
    return true;
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#inflight.add(p);
    p.finally(() => this.#inflight.delete(p)).catch(() => {});
    return p;
  }

  // ---- scheduled queues and their config ----

  async #resolveConfig(c: QueueNameComponents): Promise<QueueConfig> {
    const engine = this.#o.engine;
    if (!engine.hasHandler("get_queue_config")) return parseQueueConfig({});
    const ret = await engine.callOrThrow("get_queue_config", "ssss", [
      c.domain,
      c.tenant ?? null,
      c.campaign ?? null,
      c.routingDomain ?? null,
    ]);
    if (ret == null) return parseQueueConfig({});
    return expectConfig(ret, "QueueConfig", parseQueueConfig, "get_queue_config");
  }

  #queueFor(name: string): Promise<ScheduledQueue> {
    const q = this.#scheduled.get(name);
    if (q) {
      if (this.#stale(q)) this.#refresh(q);
      return Promise.resolve(q);
    }
    let p = this.#creating.get(name);
    if (!p) {
      p = (async () => {
        const comps = parseQueueName(name);
        const cfg = await this.#resolveConfig(comps);
        const sq = new ScheduledQueue(name, comps, cfg, (m) => this.#onDue(sq, m));
        this.#applyConfig(sq, cfg);
        this.#scheduled.set(name, sq);
        this.#startReaper();
        return sq;
      })().finally(() => this.#creating.delete(name));
      this.#creating.set(name, p);
    }
    return p;
  }

  #applyConfig(q: ScheduledQueue, cfg: QueueConfig): void {
    const old = q.config;
    q.config = cfg;
    // Epoch: refresh only when the config epoch changes (§1).
    q.configExpires = cfg.refreshStrategy === "Epoch" ? Infinity : Date.now() + cfg.refreshInterval;
    this.#epochOf.set(q, this.#o.engine.epoch);
    if (!q.throttle || old.maxMessageRate?.text !== cfg.maxMessageRate?.text) {
      q.throttle = cfg.maxMessageRate ? new Throttle(cfg.maxMessageRate) : null;
    }
  }

  #stale(q: ScheduledQueue): boolean {
    return Date.now() >= q.configExpires ||
      (q.config.refreshStrategy === "Epoch" && this.#epochOf.get(q) !== this.#o.engine.epoch);
  }

  /**
   * Drop scheduled queues that stayed empty for their `reap_interval`; a
   * message coming back later simply re-creates its queue.
   */
  #startReaper(): void {
    if (this.#reaper !== undefined || this.#stopping) return;
    this.#reaper = setInterval(() => {
      const now = Date.now();
      for (const [name, q] of this.#scheduled) {
        if (q.size === 0 && now - q.lastChanged >= q.config.reapInterval) {
          q.stop();
          this.#scheduled.delete(name);
        }
      }
    }, 1000);
    Deno.unrefTimer(this.#reaper);
  }

  #refresh(q: ScheduledQueue): void {
    q.configExpires = q.config.refreshStrategy === "Epoch"
      ? Infinity
      : Date.now() + q.config.refreshInterval;
    this.#epochOf.set(q, this.#o.engine.epoch);
    this.#resolveConfig(q.components).then(
      (cfg) => this.#applyConfig(q, cfg),
      (e) => diag.error("kumod::queue", `Cannot refresh queue config for "${q.name}": ${e}`),
    );
  }

  // ---- promotion ----

  #onDue(q: ScheduledQueue, msg: Message): void {
    this.#track(
      this.#promote(q, msg).catch((e) => {
        diag.error("kumod::queue", `Cannot promote message "${msg.id}" from "${q.name}": ${e}`);
        this.#transientInternal(q, msg, internalResponse(451, `4.4.4 KumoMTA internal: ${e}`), {});
      }),
    );
  }

  async #promote(q: ScheduledQueue, msg: Message): Promise<void> {
    if (this.#stopping) return;
    if (this.admin.onPromote(q, msg)) return; // [admin] bounced or suspended
    if (this.#stale(q)) this.#refresh(q);
    const cfg = q.config;
    q.lastChanged = Date.now(); // reap_interval counts from the last activity
    if (q.throttle) {
      const r = q.throttle.tryAcquire();
      if (!r.ok) {
        countDelay("message_rate", q.name); // [metrics]
        this.#delay(q, msg, r.retryAfterMs, "queue max_message_rate throttled"); // not an attempt
        return;
      }
    }
    if (await this.#throttledByPolicy(q, msg)) return;
    if (msg.data === null) {
      const data = await this.#o.spools.data.load(msg.id);
      if (data === null) {
        await this.#missingData(msg, cfg);
        return;
      }
      msg.data = data;
      msg.dataDirty = false;
    }
    // Source selection: weighted round robin over the pool, per scheduled queue.
    const pool = await this.#egress.pool(cfg.egressPool);
    if (!q.wrr || q.rrPool !== pool.name || !q.wrr.sameAs(pool.entries)) {
      q.wrr = new WeightedRoundRobin(pool.entries);
      q.rrPool = pool.name;
    }
    const sourceName = q.wrr.next();
    if (sourceName === undefined) {
      this.#transientInternal(
        q,
        msg,
        internalResponse(
          451,
          `4.4.4 KumoMTA internal: no sources available for ${q.name} pool=\`${pool.name}\``,
        ),
        { pool: pool.name },
      );
      return;
    }
    let source = await this.#egress.source(sourceName);
    const routing = q.components.routingDomain ?? q.components.domain;
    // [protocols] custom_lua / maildir_path: ready queue `<source>-><routing>@lua:…|maildir:…`.
    const route = protocolRoute(cfg, routing, this.#o.engine);
    if (cfg.protocol.kind !== "smtp" && route === null) {
      this.#transientInternal(
        q,
        msg,
        internalResponse(
          451,
          `4.4.4 KumoMTA internal: protocol ${cfg.protocol.kind} is not supported`,
        ),
        { pool: pool.name },
      );
      return;
    }
    let mx: MailExchanger;
    try {
      mx = route ? route.mx : await this.#mailExchanger(cfg, routing);
    } catch (e) {
      this.#transientInternal(
        q,
        msg,
        internalResponse(451, `4.4.4 failed to resolve queue ${q.name}: ${(e as Error).message}`),
        { pool: pool.name, source: source.name },
      );
      return;
    }
    // Skip sources whose ready queue is suspended ([admin], http-api §6.3) or
    // whose source_selection_rate refuses them now (lua-api §6.4); with none
    // left: "no sources … eligible" and the normal retry, as upstream.
    let rqName = readyQueueName(source.name, mx.siteName, route?.protocol);
    let rq: ReadyQueue | undefined;
    for (let i = 0;; i++) {
      if (!this.admin.readySuspended(rqName)) {
        const got = await this.#readyQueueFor(
          rqName,
          source,
          pool.name,
          routing,
          mx,
          route,
          q,
          msg,
        );
        if (got === null) return; // failed transiently already
        if (got.trySelect()) {
          rq = got;
          break;
        }
      }
      const next = i < pool.entries.length ? q.wrr.next() : undefined;
      if (next === undefined) {
        const text = `4.4.4 KumoMTA internal: no sources for ${q.name} pool=\`${pool.name}\` ` +
          "are eligible for selection at this time";
        this.#transientInternal(q, msg, internalResponse(451, text), { pool: pool.name });
        return;
      }
      source = await this.#egress.source(next);
      rqName = readyQueueName(source.name, mx.siteName, route?.protocol);
    }
    if (rq.size >= rq.maxReady) {
      // Ready queue full: not an attempt.
      countDelay("ready_full", q.name, rqName); // [metrics]
      this.#delay(q, msg, Math.floor(this.#random() * 60_000), `ready queue ${rqName} is full`);
      return;
    }
    rq.enqueue(msg, q.components, pool.name); // the message's own pool (several may share a source)
  }

  /**
   * The ready queue `rqName`, made (and its path config loaded) on first use;
   * null when its protocol driver cannot be built (the message then got a
   * TransientFailure).
   */
  async #readyQueueFor(
    rqName: string,
    source: EgressSource,
    poolName: string,
    routing: string,
    mx: MailExchanger,
    route: ReturnType<typeof protocolRoute>,
    q: ScheduledQueue,
    msg: Message,
  ): Promise<ReadyQueue | null> {
    let rq = this.#ready.get(rqName);
    if (rq) {
      rq.mx = mx;
      return rq;
    }
    let driver;
    try {
      driver = route?.driver(); // [protocols]
    } catch (e) {
      const text = `4.4.4 failed to resolve queue ${q.name}: ${(e as Error).message}`;
      this.#transientInternal(q, msg, internalResponse(451, text), { pool: poolName });
      return null;
    }
    rq = new ReadyQueue({
      driver, // [protocols]
      name: rqName,
      source,
      poolName,
      routingDomain: routing,
      mx,
      engine: this.#o.engine,
      resolver: this.#o.resolver,
      hostname: this.#o.hostname,
      onOutcome: (m, report) => this.#track(this.#onOutcome(m, report)),
      onDelayed: (m, ms, context) => this.#delay(undefined, m, ms, context),
      admit: (m) => this.admin.admit(m, rqName), // [admin]
    });
    this.#ready.set(rqName, rq);
    await rq.pathConfig().catch(() => {});
    return rq;
  }

  /**
   * `throttle_insert_ready_queue`: when a handler moved the due time into the
   * future, the message goes back through `requeue_message` (no attempt) and
   * is re-randomised to now + 0–60 s, as upstream does (lua-api §4.5).
   */
  async #throttledByPolicy(q: ScheduledQueue, msg: Message): Promise<boolean> {
    const engine = this.#o.engine;
    if (!engine.hasHandler("throttle_insert_ready_queue")) return false;
    const before = msg.due;
    await engine.callOrThrow("throttle_insert_ready_queue", "m", [msg]);
    const now = Date.now();
    if (msg.due <= now || msg.due === before) return false;
    const context = "ThrottledByThrottleInsertReadyQueue";
    countDelay("throttle_insert_ready", q.name); // [metrics]
    const delayMs = Math.floor(this.#random() * 60_000);
    if ((await this.#requeueHook(msg, null, [context], false, delayMs)) === "bounced") return true;
    this.#delay(q.name === msg.queueName() ? q : undefined, msg, delayMs, context);
    return true;
  }

  /**
   * Run the `requeue_message` handlers (lua-api §3): `kumo.reject(code, text)`
   * bounces the message with that code and text and removes it ("bounced");
   * any other error is logged and the message goes back to its original
   * queue ("failed": queue-name meta restored).
   */
  async #requeueHook(
    msg: Message,
    response: ResponseRecord | null,
    context: string[],
    incrementAttempts: boolean,
    delayMs: number | null,
    x: RecordExtra = {},
  ): Promise<RequeueHookResult> {
    const engine = this.#o.engine;
    if (!engine.hasHandler("requeue_message")) return "ok";
    const saved = QUEUE_META_KEYS.map((k) => [k, msg.meta[k]] as const);
    try {
      await engine.callOrThrow("requeue_message", "msbbs", [
        msg,
        response ? responseLine(response) : "",
        context,
        incrementAttempts,
        delayMs === null ? null : delayMs / 1000,
      ]);
      return "ok";
    } catch (e) {
      if (!(e instanceof PolicyReject)) {
        diag.error("kumod::queue", `Error in requeue_message for "${msg.id}": ${e}`);
        for (const [k, v] of saved) if (msg.meta[k] !== v) msg.setMeta(k, v);
        return "failed";
      }
      this.#log(
        this.#record(
          "Bounce",
          msg,
          msg.recipients.map((r) => r.email),
          internalResponse(e.code, e.text),
          x,
        ),
        msg,
      );
      await this.#finish(msg);
      return "bounced";
    }
  }

  /**
   * Put a message back in its scheduled queue `delayMs` from now without
   * counting an attempt, logging a Delayed record (logs §2).
   */
  #delay(q: ScheduledQueue | undefined, msg: Message, delayMs: number, context: string): void {
    const due = Date.now() + delayMs;
    msg.due = due;
    this.#log(
      this.#record(
        "Delayed",
        msg,
        msg.recipients.map((r) => r.email),
        internalResponse(
          400,
          `Context: ${context}. Next due in ${humanDuration(delayMs)} at ${
            new Date(due).toISOString()
          }`,
        ),
        {},
      ),
      msg,
    );
    if (q) {
      q.schedule(msg);
      return;
    }
    this.#track(
      this.#queueFor(msg.queueName()).then((sq) => sq.schedule(msg)).catch((e) =>
        diag.error("kumod::queue", `Cannot re-queue message "${msg.id}": ${e}`)
      ),
    );
  }

  /**
   * The MailExchanger of a routing domain, memoised so that promotion does
   * not rebuild it per message: an `mx_list` for as long as the queue config
   * object is the same; DNS results for 1 s (the resolver caches the
   * records themselves for their TTL).
   */
  async #mailExchanger(cfg: QueueConfig, routing: string): Promise<MailExchanger> {
    if (cfg.protocol.kind !== "smtp") throw new Error("not an smtp queue");
    const now = Date.now();
    const hit = this.#mxCache.get(routing);
    const fresh = hit !== undefined && hit.cfg === cfg && hit.expires > now;
    countMxCache(fresh); // [metrics]
    if (fresh) return hit.mx;
    const list = cfg.protocol.mxList.length > 0;
    const mx = list ? resolveMxList(cfg.protocol.mxList) : await this.#resolveMx(routing); // [metrics]
    if (this.#mxCache.size > 10_000) this.#mxCache.clear();
    this.#mxCache.set(routing, { cfg, mx, expires: list ? Infinity : now + 1000 });
    return mx;
  }

  /** [metrics] resolveMailExchanger, counted (`dns_mx_resolve_*`). */
  async #resolveMx(routing: string): Promise<MailExchanger> {
    kumoMetrics.dnsMxInProgress.inc();
    try {
      const mx = await resolveMailExchanger(routing, this.#o.resolver);
      kumoMetrics.dnsMxOk.inc();
      return mx;
    } catch (e) {
      kumoMetrics.dnsMxFail.inc();
      throw e;
    } finally {
      kumoMetrics.dnsMxInProgress.dec();
    }
  }

  // ---- outcomes ----

  #record(
    type: RecordType,
    msg: Message,
    recipients: string[],
    response: ResponseRecord,
    x: RecordExtra,
  ): LogRecord {
    const rec = newLogRecord(type, response, this.#nodeId, msg.createdMs);
    rec.id = msg.id;
    rec.sender = msg.sender.email;
    rec.recipient = recipients.length === 1 ? recipients[0] : recipients;
    rec.queue = msg.queueName();
    rec.site = x.site ?? "";
    rec.size = msg.size;
    rec.peer_address = x.peer ?? null;
    rec.num_attempts = msg.numAttempts;
    rec.egress_pool = x.pool ?? null;
    rec.egress_source = x.source ?? null;
    rec.source_address = x.sourceAddress ?? null;
    rec.delivery_protocol = x.deliveryProtocol ?? null;
    const rp = msg.meta.reception_protocol;
    rec.reception_protocol = typeof rp === "string" ? rp : null;
    if (x.tls) {
      rec.tls_cipher = x.tls.cipher;
      rec.tls_protocol_version = x.tls.protocol;
      if (x.tls.peerSubject) rec.tls_peer_subject_name = x.tls.peerSubject;
    }
    if (x.providerName) rec.provider_name = x.providerName;
    if (x.sessionId) rec.session_id = x.sessionId;
    return rec;
  }

  #log(rec: LogRecord, msg: Message): void {
    countOutcome(rec); // [metrics]
    this.#o.logs.submit(rec, {
      meta: msg.meta,
      getAllHeaders: () => (msg.data ? msg.getAllHeaders() : []),
    });
  }

  async #onOutcome(msg: Message, report: AttemptReport): Promise<void> {
    const extra: RecordExtra = {
      site: report.readyQueue,
      peer: report.peer,
      pool: report.egressPool,
      source: report.egressSource,
      sourceAddress: report.sourceAddress,
      deliveryProtocol: report.deliveryProtocol ?? "ESMTP", // [protocols] Lua, Maildir
      sessionId: report.sessionId,
      tls: report.tls,
      providerName: report.providerName,
    };
    // Group recipients with identical replies into one record.
    const groups = new Map<
      string,
      { type: RecordType; response: ResponseRecord; rcpts: string[] }
    >();
    const transient: number[] = [];
    for (const r of report.results) {
      if (r.outcome === "TransientFailure") transient.push(r.index);
      const key = r.outcome + "\0" + JSON.stringify(r.response);
      const g = groups.get(key);
      const email = msg.recipients[r.index].email;
      if (g) g.rcpts.push(email);
      else groups.set(key, { type: r.outcome, response: r.response, rcpts: [email] });
    }
    for (const g of groups.values()) {
      this.#log(this.#record(g.type, msg, g.rcpts, g.response, extra), msg);
    }
    if (transient.length === 0) {
      await this.#finish(msg);
      return;
    }
    if (transient.length !== msg.recipients.length) {
      msg.setRecipient(transient.map((i) => msg.recipients[i]));
    }
    const first = report.results.find((r) => r.outcome === "TransientFailure")!;
    await this.#retry(msg, first.response, extra);
  }

  /** A transient failure decided inside the queue stage (no connection). */
  #transientInternal(
    q: ScheduledQueue | undefined,
    msg: Message,
    response: ResponseRecord,
    x: RecordExtra,
  ): void {
    this.#log(
      this.#record("TransientFailure", msg, msg.recipients.map((r) => r.email), response, {
        ...x,
        site: x.site ?? "",
      }),
      msg,
    );
    this.#track(this.#retry(msg, response, x, q));
  }

  async #retry(
    msg: Message,
    response: ResponseRecord,
    x: RecordExtra,
    q?: ScheduledQueue,
  ): Promise<void> {
    if (this.#stopping) {
      await this.#persistMeta(msg);
      return;
    }
    const before = msg.queueName();
    if (
      (await this.#requeueHook(msg, response, ["TransientFailure"], true, null, x)) === "bounced"
    ) {
      return;
    }
    const after = msg.queueName();
    const sq = q && q.name === after ? q : await this.#queueFor(after);
    const cfg = sq.config;
    const expires = msg.scheduling?.expires ? Date.parse(msg.scheduling.expires) : undefined;
    const now = Date.now();
    const d = scheduleAfterFailure({
      now,
      createdMs: msg.createdMs,
      numAttempts: msg.numAttempts,
      policy: cfg,
      expiresMs: Number.isFinite(expires) ? expires : undefined,
      random: this.#random,
    });
    msg.incrementNumAttempts();
    if (d.kind === "expire") {
      // Upstream wording (queue.rs increment_attempts_and_update_delay).
      const text = expirationText({
        dueMs: d.due,
        createdMs: msg.createdMs,
        maxAgeMs: cfg.maxAge,
        expiresMs: expires,
      });
      this.#log(
        this.#record(
          "Expiration",
          msg,
          msg.recipients.map((r) => r.email),
          internalResponse(551, text),
          { pool: cfg.egressPool ?? null, providerName: cfg.providerName },
        ),
        msg,
      );
      await this.#finish(msg);
      return;
    }
    msg.due = after !== before ? now : d.due;
    await this.#persistMeta(msg);
    sq.schedule(msg);
  }

  async #persistMeta(msg: Message): Promise<void> {
    if (!msg.metaDirty && !msg.dataDirty) return;
    try {
      // deferred_spool: the data was never written; it must be before the meta (§3.1).
      if (msg.dataDirty && msg.data !== null) {
        await this.#o.spools.data.store(msg.id, msg.data, { sync: msg.forceSync });
        msg.dataDirty = false;
      }
      // msg:set_force_sync(true) makes write-backs durable before going on.
      await this.#o.spools.meta.store(msg.id, msg.metaBytes(), { sync: msg.forceSync });
      msg.metaDirty = false;
    } catch (e) {
      diag.error("kumod::queue", `Cannot save meta of message "${msg.id}": ${e}`);
    }
  }

  /**
   * The data spool has no record for a message whose meta it still holds
   * (queues-and-delivery §8: removed from the spool). It cannot be delivered
   * or retried, so it ends as an `Expiration` (`551`, `{5,1,3}`, as for
   * unparsable meta, logs §2) naming the missing data; the meta is removed
   * only once that record is logged. A data spool that fails to read (an
   * error rather than "no record") is a transient failure instead.
   */
  async #missingData(msg: Message, cfg: QueueConfig): Promise<void> {
    diag.error(
      "kumod::queue",
      `Cannot load data of message "${msg.id}": missing from the data spool`,
    );
    this.#log(
      this.#record(
        "Expiration",
        msg,
        msg.recipients.map((r) => r.email),
        internalResponse(
          551,
          `5.1.3 Failed to load message data: no record of "${msg.id}" in the data spool`,
        ),
        { pool: cfg.egressPool ?? null, providerName: cfg.providerName },
      ),
      msg,
    );
    await this.#finish(msg);
  }

  /** Final outcome logged: remove from both spools. */
  async #finish(msg: Message): Promise<void> {
    try {
      await Promise.all([this.#o.spools.meta.remove(msg.id), this.#o.spools.data.remove(msg.id)]);
    } catch (e) {
      diag.error("kumod::queue", `Cannot remove message "${msg.id}" from spool: ${e}`);
    }
  }

  // ---- spool-in ----

  /** Enumerate the meta spool in the background and queue what it holds (§8). */
  startSpoolIn(): Promise<void> {
    this.spoolInDone = this.#spoolIn().catch((e) => {
      diag.error("kumod::spool", `spool enumeration failed: ${e}`);
    });
    return this.spoolInDone;
  }

  async #spoolIn(): Promise<void> {
    const engine = this.#o.engine;
    let n = 0;
    for await (const entry of this.#o.spools.meta.enumerate()) {
      if (this.#stopping) return;
      let msg: Message;
      try {
        msg = MessageClass.fromSpool(entry.id, entry.bytes, null);
        msg.metaDirty = false;
        msg.dataDirty = false;
      } catch (e) {
        diag.error("kumod::spool", `Removing unparsable message "${entry.id}": ${e}`);
        this.#logCorruptMeta(entry.id, e as Error); // logs §2: Expiration {5,1,3}
        await this.#finish({ id: entry.id } as Message);
        continue;
      }
      try {
        if (engine.hasHandler("spool_message_enumerated")) {
          await engine.callOrThrow("spool_message_enumerated", "m", [msg]);
        }
        if (this.#internal(msg)) continue; // [http]
        const q = await this.#queueFor(msg.queueName());
        const cfg = q.config;
        const now = Date.now();
        const age = now - msg.createdMs;
        msg.numAttempts = inferNumAttempts(age, cfg);
        const expires = msg.scheduling?.expires ? Date.parse(msg.scheduling.expires) : NaN;
        // A message with its own `expires` is not subject to max_age (§3).
        const hasExpires = Number.isFinite(expires);
        const delay = delayBasedOnAge(
          msg.numAttempts,
          age,
          hasExpires ? { ...cfg, maxAge: Infinity } : cfg,
        );
        if (hasExpires ? now >= expires : delay === null) {
          let next = age; // age the message would have at its next due time
          if (!hasExpires) {
            let overall = 0;
            for (let i = 1; i < msg.numAttempts; i++) overall += delayForAttempt(i, cfg);
            next = Math.max(age, overall);
          }
          const text = expirationText({
            dueMs: hasExpires ? now : msg.createdMs + next,
            createdMs: msg.createdMs,
            maxAgeMs: cfg.maxAge,
            expiresMs: hasExpires ? expires : undefined,
          });
          this.#log(
            this.#record(
              "Expiration",
              msg,
              msg.recipients.map((r) => r.email),
              internalResponse(551, text),
              { site: "localhost", pool: cfg.egressPool ?? null, providerName: cfg.providerName },
            ),
            msg,
          );
          await this.#finish(msg);
          continue;
        }
        msg.due = Date.now() + (delay ?? 0);
        q.schedule(msg);
        n++;
      } catch (e) {
        diag.error("kumod::spool", `Cannot queue spooled message "${entry.id}": ${e}`);
      }
    }
    diag.info("kumod::spool", `spool enumeration complete: ${n} messages queued`);
  }

  /**
   * The Expiration record for a meta spool entry that cannot be parsed
   * (logs §2: `551`, `{5,1,3}`): only the id is known, so sender,
   * recipient and queue are empty.
   */
  #logCorruptMeta(id: string, e: Error): void {
    let created: number | undefined; // the event time when the id carries none
    try {
      created = spoolIdCreatedMs(id);
    } catch { /* not a time-based id: use now */ }
    const response = internalResponse(551, `5.1.3 Failed to parse metadata: ${e.message}`);
    const rec = newLogRecord("Expiration", response, this.#nodeId, created);
    rec.id = id;
    rec.site = "localhost";
    countOutcome(rec); // [metrics]
    this.#o.logs.submit(rec, { meta: {}, getAllHeaders: () => [] });
  }

  // ---- shutdown ----

  /** Stop timers and dispatchers; everything undelivered stays in the spool. */
  async shutdown(): Promise<void> {
    this.#stopping = true;
    if (this.#reaper !== undefined) clearInterval(this.#reaper);
    const left: Message[] = [];
    for (const q of this.#scheduled.values()) left.push(...q.stop());
    const stopped = await Promise.all([...this.#ready.values()].map((rq) => rq.stop()));
    for (const l of stopped) left.push(...l);
    for (let i = 0; i < 10 && this.#inflight.size > 0; i++) {
      await Promise.allSettled([...this.#inflight]);
    }
    for (const m of left) await this.#persistMeta(m);
  }
}
