/**
 * Test support: a Resolver that answers every name from an empty static zone
 * set (NXDOMAIN) and so never asks any name server, not even the system's.
 * In-process engines and harnesses start from it; a policy that calls
 * `kumo.dns.configure_resolver` (pointing at the test's own loopback DNS
 * server) replaces it as usual.
 *
 * @module
 */

import { Resolver } from "../../src/dns/resolver.ts";
import { StaticZones } from "../../src/dns/static_zones.ts";

/**
 * A resolver with no network at all.
 *
 * @example
 * ```ts
 * const r = offlineResolver(); // every lookup: NXDOMAIN, answered locally
 * ```
 */
export function offlineResolver(): Resolver {
  return new Resolver({ staticZones: StaticZones.parse([]) });
}
