/**
 * Scheduled-queue names: built from a message's meta, parsed back into parts.
 *
 * On the mail's path this runs after the reception events and at spool-in:
 * the name decides which scheduled queue holds the message, and its parsed
 * parts are what `get_queue_config(domain, tenant, campaign, routing_domain)`
 * receives. Format (KumoMTA `QueueNameComponents`):
 *
 * | tenant | campaign | routing_domain | name |
 * |---|---|---|---|
 * | – | – | – | `domain` |
 * | – | – | yes | `domain!routing` |
 * | yes | – | – | `tenant@domain` |
 * | – | yes | – | `campaign:@domain` |
 * | yes | yes | yes | `campaign:tenant@domain!routing` |
 *
 * Pure functions: never touch a queue or the spool.
 *
 * @module
 */

/** Inputs of {@linkcode buildQueueName}: meta values (must be strings when present) plus the domain. */
export interface QueueNameInput {
  /** Meta `queue`: when a string, the name verbatim. */
  queue?: unknown;
  /** Meta `campaign`. */
  campaign?: unknown;
  /** Meta `tenant`. */
  tenant?: unknown;
  /** Domain of the first envelope recipient (lower-cased here). */
  domain: string;
  /** Meta `routing_domain`. */
  routingDomain?: unknown;
}

/** The parts of a scheduled-queue name. */
export interface QueueNameComponents {
  domain: string;
  /** Present (maybe `""`) when the name has an `@`. */
  tenant?: string;
  campaign?: string;
  routingDomain?: string;
}

function metaString(value: unknown, key: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  throw new TypeError(
    `Cannot use meta "${key}" in a queue name: expected a string, got ${typeof value}`,
  );
}

/**
 * Build the effective scheduled-queue name.
 *
 * @throws {TypeError} when `queue`, `campaign`, `tenant` or `routingDomain`
 * is present but not a string (the message names the meta key).
 *
 * @example
 * ```ts
 * buildQueueName({ campaign: "spring", tenant: "shop", domain: "Customer.TEST" });
 * // "spring:shop@customer.test"
 * ```
 */
export function buildQueueName(input: QueueNameInput): string {
  const queue = metaString(input.queue, "queue");
  const campaign = metaString(input.campaign, "campaign");
  const tenant = metaString(input.tenant, "tenant");
  const routing = metaString(input.routingDomain, "routing_domain");
  if (queue !== undefined) return queue;
  let name = input.domain.toLowerCase();
  if (campaign !== undefined) name = `${campaign}:${tenant ?? ""}@${name}`;
  else if (tenant !== undefined) name = `${tenant}@${name}`;
  if (routing !== undefined) name += `!${routing}`;
  return name;
}

/**
 * Split a scheduled-queue name into its parts: first at the first `@`
 * (prefix `campaign:tenant` or `tenant`), then the rest at the first `!`.
 * Quirk kept from KumoMTA: `campaign:@d` yields tenant `""`, not absent.
 *
 * @example
 * ```ts
 * parseQueueName("spring:shop@customer.test!relay.test");
 * // { campaign: "spring", tenant: "shop", domain: "customer.test", routingDomain: "relay.test" }
 * ```
 */
export function parseQueueName(name: string): QueueNameComponents {
  const out: QueueNameComponents = { domain: name };
  let rest = name;
  const at = name.indexOf("@");
  if (at >= 0) {
    const prefix = name.slice(0, at);
    rest = name.slice(at + 1);
    const colon = prefix.indexOf(":");
    if (colon >= 0) {
      out.campaign = prefix.slice(0, colon);
      out.tenant = prefix.slice(colon + 1);
    } else {
      out.tenant = prefix;
    }
  }
  const bang = rest.indexOf("!");
  if (bang >= 0) {
    out.domain = rest.slice(0, bang);
    out.routingDomain = rest.slice(bang + 1);
  } else {
    out.domain = rest;
  }
  return out;
}
