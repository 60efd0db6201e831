/**
 * Admin bounce rules (http-api §6.1, queues-and-delivery §7): the rule
 * store, the request reader and the AdminBounce response.
 *
 * Place on the path: consulted by the queue stage at insert, promotion and
 * dispatch, and swept once over the scheduled queues when a rule is made
 * (src/queue/queue_admin.ts does the sweeping and logging). This file only
 * keeps rules; it never touches a queue or the spool.
 *
 * @module
 */

import type { QueueNameComponents } from "../message/queue_name.ts";
import type { ResponseRecord } from "../log/record.ts";
import { formatDuration } from "../util/duration.ts";
import {
  asObject,
  denyUnknown,
  matchesQueue,
  optBool,
  type QueueCriteria,
  readCriteria,
  readExpiry,
  reqString,
  sameCriteria,
} from "./queue_criteria.ts";

/** A parsed `BounceV1Request`. */
export interface BounceRequest {
  reason: string;
  criteria: QueueCriteria;
  /** ms since the epoch. */
  expires: number;
  suppressLogging: boolean;
}

/** One active bounce rule. */
export interface BounceRule extends BounceRequest {
  id: string;
  /** Per scheduled-queue counts since creation. */
  bounced: Map<string, number>;
  totalBounced: number;
}

const BOUNCE_FIELDS = [
  "campaign",
  "tenant",
  "domain",
  "routing_domain",
  "reason",
  "duration",
  "expires",
  "suppress_logging",
  "queue_names",
] as const;

/**
 * Read a `BounceV1Request` (unknown keys refused).
 *
 * @throws {AdminRequestError} when a field is missing or has the wrong type
 */
export function parseBounceRequest(body: unknown, now = Date.now()): BounceRequest {
  const b = asObject(body);
  denyUnknown(b, BOUNCE_FIELDS);
  return {
    reason: reqString(b, "reason"),
    criteria: readCriteria(b, true),
    expires: readExpiry(b, now),
    suppressLogging: optBool(b, "suppress_logging"),
  };
}

/** The response an AdminBounce record carries. */
export function adminBounceResponse(reason: string): ResponseRecord {
  return {
    code: 551,
    enhanced_code: { class: 5, subject: 7, detail: 1 },
    content: `Administrator bounced with reason: ${reason}`,
    command: null,
  };
}

/**
 * The live bounce rules; expired rules vanish on the next look.
 *
 * @example
 * ```ts
 * const rules = new AdminBounceRules();
 * const id = rules.add(parseBounceRequest({ reason: "bad list", tenant: "shop" }));
 * rules.find("shop@x.test", { tenant: "shop", domain: "x.test" })?.id === id; // true
 * ```
 */
export class AdminBounceRules {
  #rules: BounceRule[] = [];

  /** Number of live rules (0 keeps the per-message checks free). */
  get size(): number {
    this.#prune(Date.now());
    return this.#rules.length;
  }

  #prune(now: number): void {
    if (this.#rules.length === 0) return;
    if (this.#rules.some((r) => r.expires <= now)) {
      this.#rules = this.#rules.filter((r) => r.expires > now);
    }
  }

  /** Add a rule, replacing one with identical criteria; returns the new id. */
  add(req: BounceRequest): BounceRule {
    const rule: BounceRule = {
      ...req,
      id: crypto.randomUUID(),
      bounced: new Map(),
      totalBounced: 0,
    };
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

  /** The first live rule matching the queue. Hot path: no allocation when there are no rules. */
  find(name: string, comps: QueueNameComponents): BounceRule | undefined {
    if (this.#rules.length === 0) return undefined;
    const now = Date.now();
    this.#prune(now);
    for (const r of this.#rules) if (matchesQueue(r.criteria, name, comps)) return r;
    return undefined;
  }

  /** Count a bounce against `rule`. */
  static count(rule: BounceRule, queue: string): void {
    rule.bounced.set(queue, (rule.bounced.get(queue) ?? 0) + 1);
    rule.totalBounced++;
  }

  /** The GET listing (http-api §6.1). */
  list(now = Date.now()): Record<string, unknown>[] {
    this.#prune(now);
    return this.#rules.map((r) => ({
      id: r.id,
      campaign: r.criteria.campaign ?? null,
      tenant: r.criteria.tenant ?? null,
      domain: r.criteria.domain ?? null,
      routing_domain: r.criteria.routingDomain ?? null,
      reason: r.reason,
      duration: formatDuration(r.expires - now),
      bounced: Object.fromEntries(r.bounced),
      total_bounced: r.totalBounced,
    }));
  }
}
