/**
 * Suspensions (http-api §6.2, §6.3; queues-and-delivery §7): scheduled-queue
 * suspension rules (by criteria) and ready-queue suspensions (by exact ready
 * queue name), their request readers and the TransientFailure response.
 *
 * Place on the path: consulted by the queue stage when a message comes due
 * (promotion), when a dispatcher pulls it from a ready queue, and when a
 * source is picked. Rules only; the queue stage logs and re-schedules.
 *
 * @module
 */

import type { QueueNameComponents } from "../message/queue_name.ts";
import type { ResponseRecord } from "../log/record.ts";
import { formatDuration } from "../util/duration.ts";
import {
  asObject,
  matchesQueue,
  type QueueCriteria,
  readCriteria,
  readExpiry,
  reqString,
  sameCriteria,
} from "./queue_criteria.ts";

/** A parsed `SuspendV1Request`. */
export interface SuspendRequest {
  reason: string;
  criteria: QueueCriteria;
  /** ms since the epoch. */
  expires: number;
}

/** One scheduled-queue suspension. */
export interface SuspendRule extends SuspendRequest {
  id: string;
}

/** A parsed `SuspendReadyQueueV1Request`. */
export interface ReadyQueueSuspendRequest {
  name: string;
  reason: string;
  expires: number;
}

/** One ready-queue suspension. */
export interface ReadyQueueSuspension extends ReadyQueueSuspendRequest {
  id: string;
}

/**
 * Read a `SuspendV1Request` (no `routing_domain`; unknown keys ignored).
 *
 * @throws {AdminRequestError} when a field is missing or has the wrong type
 */
export function parseSuspendRequest(body: unknown, now = Date.now()): SuspendRequest {
  const b = asObject(body);
  return {
    reason: reqString(b, "reason"),
    criteria: readCriteria(b, false),
    expires: readExpiry(b, now),
  };
}

/**
 * Read a `SuspendReadyQueueV1Request`.
 *
 * @throws {AdminRequestError} when a field is missing or has the wrong type
 */
export function parseReadyQueueSuspendRequest(
  body: unknown,
  now = Date.now(),
): ReadyQueueSuspendRequest {
  const b = asObject(body);
  return {
    name: reqString(b, "name"),
    reason: reqString(b, "reason"),
    expires: readExpiry(b, now),
  };
}

/** `451 4.4.4 KumoMTA internal: scheduled queue is suspended: <reason>`. */
export function suspendedResponse(reason: string): ResponseRecord {
  return {
    code: 451,
    enhanced_code: { class: 4, subject: 4, detail: 4 },
    content: `KumoMTA internal: scheduled queue is suspended: ${reason}`,
    command: null,
  };
}

/** Drop expired entries in place; returns the (maybe new) array. */
function live<T extends { expires: number }>(list: T[], now: number): T[] {
  return list.some((r) => r.expires <= now) ? list.filter((r) => r.expires > now) : list;
}

/**
 * The live scheduled-queue suspensions.
 *
 * @example
 * ```ts
 * const s = new SuspensionRules();
 * s.add(parseSuspendRequest({ reason: "maintenance", domain: "x.test" }));
 * s.find("x.test", { domain: "x.test" })?.reason; // "maintenance"
 * ```
 */
export class SuspensionRules {
  #rules: SuspendRule[] = [];

  /** Rules held (expired ones may still count until the next look). */
  get size(): number {
    return this.#rules.length;
  }

  /** Add a rule, replacing one with identical criteria. */
  add(req: SuspendRequest): SuspendRule {
    const rule = { ...req, id: crypto.randomUUID() };
    this.#rules = this.#rules.filter((r) => !sameCriteria(r.criteria, req.criteria));
    if (req.expires > Date.now()) this.#rules.push(rule);
    return rule;
  }

  /** Remove by id; false when unknown. */
  remove(id: string): boolean {
    const n = this.#rules.length;
    this.#rules = this.#rules.filter((r) => r.id !== id);
    return this.#rules.length !== n;
  }

  /** The first live rule matching the queue. Hot path: free when empty. */
  find(name: string, comps: QueueNameComponents): SuspendRule | undefined {
    if (this.#rules.length === 0) return undefined;
    this.#rules = live(this.#rules, Date.now());
    for (const r of this.#rules) if (matchesQueue(r.criteria, name, comps)) return r;
    return undefined;
  }

  /** The GET listing (http-api §6.2). */
  list(now = Date.now()): Record<string, unknown>[] {
    this.#rules = live(this.#rules, now);
    return this.#rules.map((r) => ({
      id: r.id,
      campaign: r.criteria.campaign ?? null,
      tenant: r.criteria.tenant ?? null,
      domain: r.criteria.domain ?? null,
      reason: r.reason,
      duration: formatDuration(r.expires - now),
    }));
  }
}

/**
 * The live ready-queue suspensions, keyed by ready queue name.
 *
 * @example
 * ```ts
 * const s = new ReadyQueueSuspensions();
 * s.add({ name: "a->mx.test@smtp_client", reason: "x", expires: Date.now() + 60_000 });
 * s.find("a->mx.test@smtp_client")?.reason; // "x"
 * ```
 */
export class ReadyQueueSuspensions {
  #byName = new Map<string, ReadyQueueSuspension>();

  /** Suspensions held (expired ones may still count until the next look). */
  get size(): number {
    return this.#byName.size;
  }

  /** Add (or replace the one for the same name). */
  add(req: ReadyQueueSuspendRequest): ReadyQueueSuspension {
    const s = { ...req, id: crypto.randomUUID() };
    this.#byName.delete(req.name);
    if (req.expires > Date.now()) this.#byName.set(req.name, s);
    return s;
  }

  /** Remove by id; false when unknown. */
  remove(id: string): boolean {
    for (const [k, v] of this.#byName) {
      if (v.id === id) return this.#byName.delete(k);
    }
    return false;
  }

  /** The live suspension of `name`. Hot path: free when empty. */
  find(name: string): ReadyQueueSuspension | undefined {
    if (this.#byName.size === 0) return undefined;
    const s = this.#byName.get(name);
    if (s && s.expires <= Date.now()) {
      this.#byName.delete(name);
      return undefined;
    }
    return s;
  }

  /** The GET listing (http-api §6.3). */
  list(now = Date.now()): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const [k, s] of this.#byName) {
      if (s.expires <= now) {
        this.#byName.delete(k);
        continue;
      }
      out.push({
        id: s.id,
        name: s.name,
        reason: s.reason,
        duration: formatDuration(s.expires - now),
        expires: new Date(s.expires).toISOString(),
      });
    }
    return out;
  }
}
