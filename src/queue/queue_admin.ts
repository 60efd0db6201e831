/**
 * QueueAdmin: the operator's levers on the live queues — admin bounce,
 * scheduled-queue and ready-queue suspension, rebind, inspection and
 * ready-queue states (http-api §6, queues-and-delivery §7). The HTTP admin
 * endpoints and `kumo.api.admin.*` call it; the QueueManager consults its
 * checks at insert, promotion, source selection and dispatch.
 *
 * Place on the path: inside the queue stage, beside the QueueManager, which
 * hands it a narrow {@link QueueOps} view (log, finish, retry, queues).
 * It never talks SMTP and never answers HTTP.
 *
 * @module
 */

import type { Message } from "../message/message.ts";
import { parseQueueName } from "../message/queue_name.ts";
import type { PolicyEngine } from "../policy/engine.ts";
import type { SpoolPair } from "../spool/spool.ts";
import type { RecordType, ResponseRecord } from "../log/record.ts";
import { diag } from "../log/diag.ts";
import type { ReadyQueue } from "../egress/ready_queue.ts";
import type { ScheduledQueue } from "./scheduled_queue.ts";
import { matchesQueue } from "./queue_criteria.ts";
import {
  adminBounceResponse,
  AdminBounceRules,
  type BounceRequest,
  type BounceRule,
} from "./admin_bounce.ts";
import {
  type ReadyQueueSuspendRequest,
  ReadyQueueSuspensions,
  suspendedResponse,
  type SuspendRequest,
  SuspensionRules,
} from "./suspension.ts";
import { applyRebind, type RebindRequest, rebindResponse } from "./rebind.ts";
import { inspectMessage, inspectScheduledQueue, type MessageView } from "./inspect.ts";

/** What the QueueManager lends its admin side. */
export interface QueueOps {
  engine: PolicyEngine;
  spools: SpoolPair;
  scheduled: ReadonlyMap<string, ScheduledQueue>;
  ready: ReadonlyMap<string, ReadyQueue>;
  queueFor(name: string): Promise<ScheduledQueue>;
  /** Log a record covering all of the message's recipients. */
  log(type: RecordType, msg: Message, response: ResponseRecord, site: string): void;
  /** Final outcome logged: remove from the spool. */
  finish(msg: Message): Promise<void>;
  /** Log a TransientFailure and take the normal retry path (attempts + 1). */
  transient(msg: Message, response: ResponseRecord, site: string): void;
  /** Save the meta record if it changed. */
  persist(msg: Message): Promise<void>;
  /** Keep a background task alive until shutdown. */
  track<T>(p: Promise<T>): Promise<T>;
}

/**
 * The admin rules and actions of one queue stage.
 *
 * @example
 * ```ts
 * const id = qm.admin.bounce(parseBounceRequest({ reason: "bad list", tenant: "shop" }));
 * qm.admin.listBounces();
 * ```
 */
export class QueueAdmin {
  readonly bounces = new AdminBounceRules();
  readonly suspensions = new SuspensionRules();
  readonly readySuspensions = new ReadyQueueSuspensions();
  #ops: QueueOps;

  constructor(ops: QueueOps) {
    this.#ops = ops;
  }

  // ---- admin bounce ----

  /** Make a bounce rule and sweep the scheduled queues in the background; returns its id. */
  bounce(req: BounceRequest): string {
    const rule = this.bounces.add(req);
    for (const q of [...this.#ops.scheduled.values()]) {
      if (!matchesQueue(rule.criteria, q.name, q.components)) continue;
      for (const msg of q.removeWhere(() => true)) this.#bounceOne(rule, msg, q.name);
    }
    return rule.id;
  }

  #bounceOne(rule: BounceRule, msg: Message, queue: string): void {
    AdminBounceRules.count(rule, queue);
    if (!rule.suppressLogging) {
      this.#ops.log("AdminBounce", msg, adminBounceResponse(rule.reason), "localhost");
    }
    this.#ops.track(this.#ops.finish(msg));
  }

  /** Bounce rules for GET. */
  listBounces(): Record<string, unknown>[] {
    return this.bounces.list();
  }

  /** Cancel a bounce rule; false when unknown. */
  cancelBounce(id: string): boolean {
    return this.bounces.remove(id);
  }

  // ---- scheduled-queue suspension ----

  /** Make a suspension; returns its id. Messages are held as they come due. */
  suspend(req: SuspendRequest): string {
    return this.suspensions.add(req).id;
  }

  /** Suspensions for GET. */
  listSuspensions(): Record<string, unknown>[] {
    return this.suspensions.list();
  }

  /** Cancel a suspension; false when unknown. */
  cancelSuspension(id: string): boolean {
    return this.suspensions.remove(id);
  }

  // ---- ready-queue suspension ----

  /** Suspend a ready queue: its waiting messages go back and are re-routed at once. */
  suspendReadyQueue(req: ReadyQueueSuspendRequest): string {
    const s = this.readySuspensions.add(req);
    const rq = this.#ops.ready.get(req.name);
    if (rq) { for (const msg of rq.drain()) this.#reroute(msg); }
    return s.id;
  }

  #reroute(msg: Message): void {
    msg.due = Date.now();
    this.#ops.track(
      this.#ops.queueFor(msg.queueName()).then((q) => q.schedule(msg)),
    ).catch((e) => diag.error("kumod::queue", `Cannot re-route message "${msg.id}": ${e}`));
  }

  /** Ready-queue suspensions for GET. */
  listReadySuspensions(): Record<string, unknown>[] {
    return this.readySuspensions.list();
  }

  /** Cancel a ready-queue suspension; false when unknown. */
  cancelReadySuspension(id: string): boolean {
    return this.readySuspensions.remove(id);
  }

  /** Whether the ready queue `name` is suspended (source selection skips it). */
  readySuspended(name: string): boolean {
    return this.readySuspensions.find(name) !== undefined;
  }

  // ---- checks on the path ----

  /** At insert: true when an admin bounce took the message. */
  onInsert(msg: Message): boolean {
    if (this.bounces.size === 0) return false;
    const name = msg.queueName();
    const rule = this.bounces.find(name, parseQueueName(name));
    if (!rule) return false;
    this.#bounceOne(rule, msg, name);
    return true;
  }

  /** When a message comes due: true when a bounce or suspension took it. */
  onPromote(q: ScheduledQueue, msg: Message): boolean {
    const rule = this.bounces.find(q.name, q.components);
    if (rule) {
      this.#bounceOne(rule, msg, q.name);
      return true;
    }
    const s = this.suspensions.find(q.name, q.components);
    if (s) {
      this.#ops.transient(msg, suspendedResponse(s.reason), q.name);
      return true;
    }
    return false;
  }

  /** As a dispatcher pulls a message from ready queue `rq`: false when taken back. */
  admit(msg: Message, rq: string): boolean {
    const b = this.bounces;
    const s = this.suspensions;
    const r = this.readySuspensions;
    if (b.size === 0 && s.size === 0 && r.size === 0) return true; // the common case
    const name = msg.queueName();
    const comps = parseQueueName(name);
    const rule = b.find(name, comps);
    if (rule) {
      this.#bounceOne(rule, msg, name);
      return false;
    }
    const sus = s.find(name, comps);
    if (sus) {
      this.#ops.transient(msg, suspendedResponse(sus.reason), rq);
      return false;
    }
    if (r.find(rq)) {
      this.#reroute(msg);
      return false;
    }
    return true;
  }

  // ---- rebind ----

  /** Start a rebind over the matching scheduled queues (runs in the background). */
  rebind(req: RebindRequest): Promise<void> {
    const work: [ScheduledQueue, Message[]][] = [];
    for (const q of [...this.#ops.scheduled.values()]) {
      if (!matchesQueue(req.criteria, q.name, q.components)) continue;
      const msgs = q.removeWhere(() => true);
      if (msgs.length > 0) work.push([q, msgs]);
    }
    return this.#ops.track((async () => {
      for (const [q, msgs] of work) {
        for (const msg of msgs) await this.#rebindOne(req, q, msg);
      }
    })());
  }

  async #rebindOne(req: RebindRequest, q: ScheduledQueue, msg: Message): Promise<void> {
    try {
      if (await applyRebind(msg, req, this.#ops.engine)) await this.#ops.persist(msg);
      const to = msg.queueName();
      if (to !== q.name) {
        if (!req.suppressLogging) {
          this.#ops.log("AdminRebind", msg, rebindResponse(q.name, to, req.reason), "");
        }
        msg.due = Date.now();
        (await this.#ops.queueFor(to)).schedule(msg);
        return;
      }
      if (req.alwaysFlush) msg.due = Date.now();
    } catch (e) {
      diag.error("kumod::queue", `Cannot rebind message "${msg.id}": ${e}`);
    }
    q.schedule(msg);
  }

  // ---- inspection ----

  /**
   * A message as stored in the spool.
   *
   * @throws {Error} when the id is not in the spool
   */
  inspectMessage(id: string, wantBody: boolean): Promise<{ id: string; message: MessageView }> {
    return inspectMessage(this.#ops.spools, id, wantBody);
  }

  /** A scheduled queue's sample, or undefined when there is no such queue. */
  async inspectScheduledQueue(
    name: string,
    wantBody: boolean,
    limit?: number,
  ): Promise<Record<string, unknown> | undefined> {
    const q = this.#ops.scheduled.get(name);
    if (!q) return undefined;
    return await inspectScheduledQueue(q, {
      wantBody,
      limit,
      loadData: (id) => this.#ops.spools.data.load(id),
    });
  }

  /** Ready queues with an active state; `names` (non-empty) keeps only those. */
  readyQueueStates(names: string[] = []): {
    states_by_ready_queue: Record<string, Record<string, unknown>>;
  } {
    const out: Record<string, Record<string, unknown>> = {};
    for (const [name, rq] of this.#ops.ready) {
      if (names.length > 0 && !names.includes(name)) continue;
      const st = rq.states();
      if (Object.keys(st).length > 0) out[name] = st;
    }
    return { states_by_ready_queue: out };
  }
}
