/**
 * kumo.dns.*: DNS lookups for policy, through the same resolver the
 * delivery stage uses (so `kumo.dns.configure_resolver` governs both).
 *
 * Place on the path: policy (host functions) → dns.
 *
 * @module
 */

import type { Resolver } from "../../dns/resolver.ts";
import { resolveMailExchanger } from "../../dns/mail_exchanger.ts";

function withDot(name: string): string {
  return name.endsWith(".") ? name : name + ".";
}

/** The asynchronous `kumo.dns.*` functions. */
export function dnsFunctions(
  resolver: Resolver,
): Record<string, (...args: never[]) => Promise<unknown>> {
  return {
    "dns.lookup_mx": async (domain: string) => {
      const mx = await resolveMailExchanger(String(domain), resolver);
      const byPref: Record<string, string[]> = {};
      for (const [pref, hosts] of mx.byPref) byPref[String(pref)] = hosts;
      return {
        domain_name: mx.domainName,
        hosts: mx.hosts,
        site_name: mx.siteName,
        by_pref: byPref,
        is_domain_literal: mx.isDomainLiteral,
        is_secure: false,
        is_mx: mx.isMx,
      };
    },
    "dns.lookup_addr": (name: string) => resolver.lookupAddr(String(name)),
    "dns.lookup_txt": (name: string) => resolver.lookupTxt(String(name)),
    "dns.lookup_ptr": (ip: string) => resolver.lookupPtr(String(ip)),
    "dns.ptr_host": async (ip: string) => (await resolver.lookupPtr(String(ip)))[0],
    "dns.rbl_lookup": async (ip: string, bl: string) => {
      const rev = String(ip).split(".").reverse().join(".");
      try {
        const a = await resolver.lookupA(withDot(`${rev}.${bl}`));
        const txt = await resolver.lookupTxt(withDot(`${rev}.${bl}`)).catch(() => []);
        return [a[0], txt[0]];
      } catch {
        return undefined;
      }
    },
  };
}
