/**
 * Queue-selection criteria shared by the admin rules (bounce, suspend,
 * rebind; http-api §6.0) and the request-field readers those rules use.
 *
 * Place on the path: beside the scheduled queues; a rule asks "does this
 * queue name match?" at insert, promotion and dispatch. Pure functions:
 * never touches a queue, the spool or the network.
 *
 * @module
 */

import type { QueueNameComponents } from "../message/queue_name.ts";
import { parseDuration } from "../util/duration.ts";

/** Which scheduled queues a rule applies to. */
export interface QueueCriteria {
  campaign?: string;
  tenant?: string;
  domain?: string;
  routingDomain?: string;
  /** Exact scheduled queue names; when non-empty it replaces the other criteria. */
  queueNames: string[];
}

/** A request body that does not have the expected shape (HTTP 422). */
export class AdminRequestError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = "AdminRequestError";
  }
}

/**
 * Whether the rule `c` selects the queue `name` (components `comps`): every
 * set criterion must equal the component exactly; a missing component never
 * matches a set criterion.
 *
 * Hot path (called per message at insert/promotion/dispatch): no allocation.
 *
 * @example
 * ```ts
 * matchesQueue({ tenant: "shop", queueNames: [] }, "shop@x.test", { tenant: "shop", domain: "x.test" }); // true
 * ```
 */
export function matchesQueue(
  c: QueueCriteria,
  name: string,
  comps: QueueNameComponents,
): boolean {
  if (c.queueNames.length > 0) return c.queueNames.includes(name);
  if (c.campaign !== undefined && c.campaign !== comps.campaign) return false;
  if (c.tenant !== undefined && c.tenant !== comps.tenant) return false;
  if (c.domain !== undefined && c.domain !== comps.domain) return false;
  if (c.routingDomain !== undefined && c.routingDomain !== comps.routingDomain) return false;
  return true;
}

/** Whether two rules select exactly the same queues (a new rule then replaces the old). */
export function sameCriteria(a: QueueCriteria, b: QueueCriteria): boolean {
  return a.campaign === b.campaign && a.tenant === b.tenant && a.domain === b.domain &&
    a.routingDomain === b.routingDomain && a.queueNames.length === b.queueNames.length &&
    a.queueNames.every((n, i) => n === b.queueNames[i]);
}

/** Read an optional string-or-null field. */
export function optString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") {
    throw new AdminRequestError(`${key}: invalid type: expected a string`);
  }
  return v;
}

/** Read a required string field. */
export function reqString(body: Record<string, unknown>, key: string): string {
  const v = optString(body, key);
  if (v === undefined) throw new AdminRequestError(`missing field \`${key}\``);
  return v;
}

/** Read an optional boolean field. */
export function optBool(body: Record<string, unknown>, key: string): boolean {
  const v = body[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") {
    throw new AdminRequestError(`${key}: invalid type: expected a boolean`);
  }
  return v;
}

/** Read the criteria fields of a request body. */
export function readCriteria(
  body: Record<string, unknown>,
  withRoutingDomain: boolean,
): QueueCriteria {
  const names = body.queue_names;
  if (
    names !== undefined && names !== null &&
    (!Array.isArray(names) || !names.every((n) => typeof n === "string"))
  ) {
    throw new AdminRequestError("queue_names: invalid type: expected a sequence of strings");
  }
  const c: QueueCriteria = { queueNames: (names as string[] | null | undefined) ?? [] };
  const campaign = optString(body, "campaign");
  const tenant = optString(body, "tenant");
  const domain = optString(body, "domain");
  if (campaign !== undefined) c.campaign = campaign;
  if (tenant !== undefined) c.tenant = tenant;
  if (domain !== undefined) c.domain = domain;
  if (withRoutingDomain) {
    const rd = optString(body, "routing_domain");
    if (rd !== undefined) c.routingDomain = rd;
  }
  return c;
}

/**
 * When a rule ends: `expires` (RFC 3339) wins over `duration` (seconds or
 * a humantime string), which defaults to 5 minutes.
 */
export function readExpiry(body: Record<string, unknown>, now: number): number {
  const exp = body.expires;
  if (exp !== undefined && exp !== null) {
    const t = typeof exp === "string" ? Date.parse(exp) : NaN;
    if (!Number.isFinite(t)) {
      throw new AdminRequestError(`expires: invalid value: expected an RFC 3339 timestamp`);
    }
    return t;
  }
  const d = body.duration;
  if (d === undefined || d === null) return now + 300_000;
  try {
    return now + parseDuration(d, "duration");
  } catch (e) {
    throw new AdminRequestError(`duration: ${(e as Error).message}`);
  }
}

/** The body as an object, or a 422-style error. */
export function asObject(body: unknown): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new AdminRequestError("invalid type: expected a JSON object");
  }
  return body as Record<string, unknown>;
}

/** Refuse keys outside `allowed` (serde `deny_unknown_fields` wording). */
export function denyUnknown(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k)) {
      throw new AdminRequestError(
        `unknown field \`${k}\`, expected one of ${allowed.map((a) => `\`${a}\``).join(", ")}`,
      );
    }
  }
}
