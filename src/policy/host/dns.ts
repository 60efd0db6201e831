/**
 * kumo.dns.*: DNS lookups for policy, through the same resolver the
 * delivery stage uses (so `kumo.dns.configure_resolver` governs both), or
 * through a resolver named with `kumo.dns.define_resolver(name, cfg)` when
 * the lookup names one as its last argument.
 *
 * Place on the path: policy (host functions) → dns. Never caches results
 * itself (the Resolver does, per TTL).
 *
 * @module
 */

import { Resolver } from "../../dns/resolver.ts";
import { resolveMailExchanger } from "../../dns/mail_exchanger.ts";
import type { DnsResolverConfig } from "../config/dns_resolver.ts";

function withDot(name: string): string {
  return name.endsWith(".") ? name : name + ".";
}

/**
 * The Resolver for an optional resolver name: the default one without a
 * name, else one built (once per definition) from `define_resolver`.
 */
export function resolverPicker(
  resolver: Resolver,
  named: ReadonlyMap<string, unknown>,
): (name: unknown) => Resolver {
  const built = new Map<string, { cfg: unknown; resolver: Resolver }>();
  return (name) => {
    if (name === undefined || name === null) return resolver;
    const key = String(name);
    const cfg = named.get(key) as DnsResolverConfig | undefined;
    if (cfg === undefined) {
      throw new Error(
        `Cannot use resolver "${key}": it was not defined with kumo.dns.define_resolver`,
      );
    }
    const hit = built.get(key);
    if (hit?.cfg === cfg) return hit.resolver;
    if (cfg.nameServers.length === 0) {
      // The `{ Test = ... }` form has no name servers; never fall back to the system resolver.
      throw new Error(`Cannot use resolver "${key}": it has no name_servers`);
    }
    const r = new Resolver({
      nameServers: cfg.nameServers.map((s) => ({ ip: s.ip, port: s.port })),
    });
    built.set(key, { cfg, resolver: r });
    return r;
  };
}

/**
 * The asynchronous `kumo.dns.*` functions.
 *
 * `kumo.dns.lookup_mx(domain [, resolver])` returns `{ domain_name, hosts,
 * site_name, by_pref, is_domain_literal, is_secure, is_mx }` (lua-api §8):
 * `by_pref` is keyed by the integer preference (`by_pref[10]`); `is_secure`
 * is always false and `mta_sts` always nil (no DNSSEC validation, no
 * MTA-STS). NXDOMAIN and other lookup failures raise.
 *
 * @param named resolvers from `kumo.dns.define_resolver` (read at call time)
 * @example
 * ```ts
 * const fns = dnsFunctions(resolver, cfg.namedResolvers);
 * await fns["dns.lookup_mx"]("example.test");
 * ```
 */
export function dnsFunctions(
  resolver: Resolver,
  named: ReadonlyMap<string, unknown> = new Map(),
): Record<string, (...args: never[]) => Promise<unknown>> {
  const pick = resolverPicker(resolver, named);
  return {
    "dns.lookup_mx": async (domain: string, name?: string) => {
      const mx = await resolveMailExchanger(String(domain), pick(name));
      const byPref = new Map<number, string[]>();
      for (const [pref, hosts] of mx.byPref) byPref.set(pref, hosts);
      return {
        domain_name: mx.domainName,
        hosts: mx.hosts,
        site_name: mx.siteName,
        by_pref: byPref,
        is_domain_literal: mx.isDomainLiteral,
        is_secure: false,
        is_mx: mx.isMx,
        mta_sts: null,
      };
    },
    "dns.lookup_addr": (host: string, name?: string) => pick(name).lookupAddr(String(host)),
    "dns.lookup_txt": (host: string, name?: string) => pick(name).lookupTxt(String(host)),
    "dns.lookup_ptr": (ip: string, name?: string) => pick(name).lookupPtr(String(ip)),
    "dns.ptr_host": async (ip: string, name?: string) =>
      (await pick(name).lookupPtr(String(ip)))[0],
    "dns.rbl_lookup": async (ip: string, bl: string, name?: string) => {
      const r = pick(name);
      const rev = String(ip).split(".").reverse().join(".");
      try {
        const a = await r.lookupA(withDot(`${rev}.${bl}`));
        const txt = await r.lookupTxt(withDot(`${rev}.${bl}`)).catch(() => []);
        return [a[0], txt[0]];
      } catch {
        return undefined;
      }
    },
  };
}
