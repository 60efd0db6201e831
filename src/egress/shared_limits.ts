/**
 * Named limits shared by every ready queue of the process: the egress path
 * keys `additional_connection_limits` (concurrent connections per name),
 * `additional_message_rate_throttles` and `additional_source_selection_rates`
 * (GCRA rates per name) of lua-api §6.4. Several paths naming the same key
 * draw from one budget — e.g. the shaping helper's
 * `shaping-provider-<name>-<source>-limit` caps a provider across all its
 * sites. Process-local: there is no redis sharing, so `local:` and plain
 * limits behave the same.
 *
 * Place on the path: egress. Ready queues ask here before opening a
 * connection or sending a message; nothing here logs, waits or does I/O.
 *
 * @module
 */

import type { LimitSpec } from "../util/limit_spec.ts";
import type { ThrottleSpec } from "../util/throttle_spec.ts";
import { Throttle } from "../util/gcra.ts";

/** Connection leases by limit name. */
const active = new Map<string, number>();
/** Called (once each) when a lease is given back. */
const waiters = new Set<() => void>();
/** Throttles by name, with the spec text they were made from. */
const throttles = new Map<string, { text: string; throttle: Throttle }>();

/**
 * Take one connection lease on every named limit, all or none.
 *
 * @returns a release function, or null when some limit is already full
 * @example
 * ```ts
 * const release = acquireConnectionLeases({ "provider-x": { limit: 5, local: false } });
 * if (release) { try { await work(); } finally { release(); } }
 * ```
 */
export function acquireConnectionLeases(limits: Record<string, LimitSpec>): (() => void) | null {
  const names = Object.keys(limits);
  for (const n of names) if ((active.get(n) ?? 0) >= limits[n].limit) return null;
  for (const n of names) active.set(n, (active.get(n) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    for (const n of names) {
      const left = (active.get(n) ?? 1) - 1;
      if (left <= 0) active.delete(n);
      else active.set(n, left);
    }
    const ready = [...waiters];
    waiters.clear();
    for (const fn of ready) fn();
  };
}

/** Leases held on `name` now (for inspection and tests). */
export function connectionLeases(name: string): number {
  return active.get(name) ?? 0;
}

/** Run `fn` once, the next time any lease is released. */
export function onLeaseReleased(fn: () => void): void {
  waiters.add(fn);
}

/** The shared throttle called `name`; a changed spec starts a fresh one. */
export function sharedThrottle(name: string, spec: ThrottleSpec): Throttle {
  const hit = throttles.get(name);
  if (hit && hit.text === spec.text) return hit.throttle;
  const throttle = new Throttle(spec);
  throttles.set(name, { text: spec.text, throttle });
  return throttle;
}

/**
 * Named throttles of a path map, smallest rate first (as upstream checks
 * them, so a small budget is not spent on a message a larger one refuses).
 */
export function namedThrottles(specs: Record<string, ThrottleSpec>): Throttle[] {
  return Object.entries(specs)
    .sort(([, a], [, b]) => a.limit / a.periodMs - b.limit / b.periodMs)
    .map(([name, spec]) => sharedThrottle(name, spec));
}
