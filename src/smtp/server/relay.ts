/**
 * Relay decision for inbound mail (queues-and-delivery.md §9.3, lua-api.md
 * §6.5) and the per-session cache of `get_listener_domain` results.
 *
 * Place on the mail's path: the session asks at every RCPT TO, and the DATA
 * phase asks again per batch (first recipient). Relaying is allowed when the
 * peer is in `relay_hosts`, or the **sender** domain's listener domain has
 * `relay_from` containing the peer, or the **recipient** domain's listener
 * domain has `relay_to`. `get_listener_domain` is consulted for both
 * domains, sender first, even when `relay_hosts` already allows the peer
 * (lua-api.md §4.2: policies use it to see every domain, and the recipient
 * domain's OOB/ARF settings matter either way); results are cached per
 * session, at most 16 domains, least recently used evicted first, and the
 * end-of-DATA check reuses them. A recipient domain logging OOB/ARF is
 * accepted without relaying. It never replies to the client: the caller
 * maps the verdict to `550 5.7.1 …`. A Lua failure in `get_listener_domain`
 * (reject included) propagates as an error (→ `421 4.3.0 technical
 * difficulties`).
 *
 * @module
 */

import type { PolicyEngine } from "../../policy/engine.ts";
import type { ConnMeta } from "../../policy/conn_methods.ts";
import { expectConfig } from "../../policy/config_object.ts";
import { type ListenerDomain, parseListenerDomain } from "../../policy/config/listener_domain.ts";
import { PolicyError, PolicyReject } from "../../policy/policy_error.ts";
import type { CidrSet } from "../../util/cidr.ts";

/** Most domains remembered per session (lua-api.md §4.2). */
export const LISTENER_DOMAIN_CACHE_SIZE = 16;

const EVENT = "get_listener_domain";

/**
 * `get_listener_domain` results of one session, keyed by lower-cased domain
 * (at most {@link LISTENER_DOMAIN_CACHE_SIZE}, least recently used evicted
 * first).
 *
 * @example
 * ```ts
 * const cache = new ListenerDomainCache(engine, "127.0.0.1:2025", connMeta);
 * const ld = await cache.get("example.com"); // ListenerDomain or null
 * ```
 */
export class ListenerDomainCache {
  readonly #engine: PolicyEngine;
  readonly #listener: string;
  readonly #conn: ConnMeta;
  #map = new Map<string, ListenerDomain | null>();

  constructor(engine: PolicyEngine, listener: string, conn: ConnMeta) {
    this.#engine = engine;
    this.#listener = listener;
    this.#conn = conn;
  }

  /** Whether a `get_listener_domain` handler exists at all. */
  get active(): boolean {
    return this.#engine.hasHandler(EVENT);
  }

  /**
   * The listener domain for `domain`, or `null` when the policy has none.
   * @throws {PolicyError} when the handler fails or rejects.
   */
  async get(domain: string): Promise<ListenerDomain | null> {
    if (domain === "" || !this.active) return null;
    const key = domain.toLowerCase();
    const hit = this.#map.get(key);
    if (hit !== undefined) {
      // LRU: a hit becomes the most recently used entry.
      this.#map.delete(key);
      this.#map.set(key, hit);
      return hit;
    }
    const r = await this.#engine.call(EVENT, "ssc", [domain, this.#listener, this.#conn]);
    let value: ListenerDomain | null = null;
    if (r.kind === "error") throw new PolicyError(r.message, r.traceback);
    if (r.kind === "reject") {
      // lua-api.md §3: a reject here is treated like any other error.
      throw new PolicyError(`${EVENT}: ${new PolicyReject(r.code, r.message, r.how).message}`);
    }
    if (r.kind === "ok" && r.values[0] != null) {
      try {
        value = expectConfig(r.values[0], "ListenerDomain", parseListenerDomain, EVENT);
      } catch (e) {
        throw new PolicyError(`${EVENT}: ${(e as Error).message}`);
      }
    }
    if (this.#map.size >= LISTENER_DOMAIN_CACHE_SIZE) {
      this.#map.delete(this.#map.keys().next().value!);
    }
    this.#map.set(key, value);
    return value;
  }
}

/** Outcome of {@link decideRelay}. */
export interface RelayVerdict {
  /** The message may be relayed. */
  relay: boolean;
  /** The recipient domain logs OOB or ARF reports (RCPT accepted even without relay). */
  reportDomain: boolean;
}

/**
 * Decide whether `peerIp` may relay mail from `senderDomain` to `rcptDomain`.
 * Synchronous unless the policy has a `get_listener_domain` handler (the
 * SMTP session's per-command fast path relies on that).
 *
 * @example
 * ```ts
 * const v = await decideRelay(params.relayHosts, "10.0.0.7", "shop.test", "gmail.test", cache);
 * if (!v.relay && !v.reportDomain) reply(550, "5.7.1 relaying not permitted for 10.0.0.7:4000");
 * ```
 */
export function decideRelay(
  relayHosts: CidrSet,
  peerIp: string,
  senderDomain: string,
  rcptDomain: string,
  cache: ListenerDomainCache,
): RelayVerdict | Promise<RelayVerdict> {
  const relay = relayHosts.contains(peerIp);
  if (!cache.active) return { relay, reportDomain: false };
  return byListenerDomains(relay, peerIp, senderDomain, rcptDomain, cache);
}

async function byListenerDomains(
  relay: boolean,
  peerIp: string,
  senderDomain: string,
  rcptDomain: string,
  cache: ListenerDomainCache,
): Promise<RelayVerdict> {
  // Both domains, sender first, whatever relay_hosts said (lua-api.md §4.2).
  const sender = await cache.get(senderDomain);
  const rcpt = await cache.get(rcptDomain);
  if (sender !== null && sender.relayFrom.contains(peerIp)) relay = true;
  if (rcpt?.relayTo) relay = true;
  const reportDomain = rcpt !== null && (rcpt.logOob !== "Ignore" || rcpt.logArf !== "Ignore");
  return { relay, reportDomain };
}
