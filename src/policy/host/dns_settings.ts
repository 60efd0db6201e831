/**
 * The `kumo.dns.*` settings functions (lua-api.md §5.6, §8): resolver
 * knobs, the test resolver, `load_resolv_conf` and `reverse_ip`. The
 * lookups themselves are in dns.ts.
 *
 * Place on the path: policy (host functions) → dns. Every knob changes the
 * one {@link Resolver} that main.ts hands to both the policy and the
 * delivery stage, so a policy's `set_mx_timeout` governs delivery's MX
 * lookups too. kumo-edge's resolver has one timeout, one negative-cache TTL
 * and one concurrency limit for every record type, so the `set_mx_*` knobs
 * apply to all lookups (upstream scopes them to MX resolution).
 * `set_mta_sts_enabled` is validated and recorded only: kumo-edge does not
 * consult MTA-STS.
 *
 * @module
 */

import ipaddr from "ipaddr.js";
import { type Resolver, reverseName } from "../../dns/resolver.ts";
import { StaticZones, type ZoneSource } from "../../dns/static_zones.ts";
import { parseDuration } from "../../util/duration.ts";

type Fn = (...args: never[]) => unknown;

/** What the settings remember beyond the resolver (read by tests and dumps). */
export interface DnsSettings {
  /** Last `set_mta_sts_enabled` value; MTA-STS itself is not implemented. @default true */
  mtaStsEnabled: boolean;
}

function quoted(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v ?? "nil");
}

/**
 * `kumo.dns.reverse_ip`: the address's labels reversed, without the
 * `in-addr.arpa` / `ip6.arpa` suffix (IPv6 as 32 nibbles).
 *
 * @example
 * ```ts
 * reverseIp("127.0.0.1"); // "1.0.0.127"
 * ```
 */
export function reverseIp(ip: string): string {
  if (!ipaddr.isValid(ip)) throw new Error(`Cannot reverse ${quoted(ip)}: not an IP address`);
  return reverseName(ip).replace(/\.(in-addr|ip6)\.arpa$/, "");
}

/**
 * Read a resolv.conf-format text into the table `configure_resolver` takes:
 * `nameserver` lines → `name_servers` (`"ip:53"`), `domain`, `search`, and
 * the `ndots`, `timeout` (seconds → `"Ns"`), `attempts` and `edns0` options.
 *
 * @example
 * ```ts
 * parseResolvConf("nameserver 127.0.0.1\nsearch a.test b.test\n");
 * // { name_servers: ["127.0.0.1:53"], search: ["a.test", "b.test"], options: {} }
 * ```
 */
export function parseResolvConf(text: string): Record<string, unknown> {
  const nameServers: string[] = [];
  const options: Record<string, unknown> = {};
  let domain: string | undefined;
  let search: string[] | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/[#;].*$/, "").trim();
    if (line.length === 0) continue;
    const [key, ...rest] = line.split(/\s+/);
    switch (key) {
      case "nameserver": {
        const ip = (rest[0] ?? "").replace(/%.*$/, "");
        if (!ipaddr.isValid(ip)) break;
        nameServers.push(ip.includes(":") ? `[${ip}]:53` : `${ip}:53`);
        break;
      }
      case "domain":
        if (rest[0]) domain = rest[0];
        break;
      case "search":
        search = rest;
        break;
      case "options":
        for (const opt of rest) {
          const [name, value] = opt.split(":");
          if (name === "edns0") options.edns0 = true;
          else if ((name === "ndots" || name === "attempts") && /^[0-9]+$/.test(value ?? "")) {
            options[name] = Number(value);
          } else if (name === "timeout" && /^[0-9]+$/.test(value ?? "")) {
            options.timeout = `${value}s`;
          }
        }
        break;
    }
  }
  const out: Record<string, unknown> = { name_servers: nameServers, options };
  if (domain !== undefined) out.domain = domain;
  if (search !== undefined) out.search = search;
  return out;
}

/**
 * Convert a `configure_test_resolver` argument: an array of zone texts (or
 * `{zone, secure}` tables), or `{ zones = {...}, servfail = {names} }`.
 *
 * @example
 * ```ts
 * testZones(["$ORIGIN a.test.\n@ 60 A 127.0.0.1\n"]).answer("a.test", "A").value; // ["127.0.0.1"]
 * ```
 */
export function testZones(input: unknown): StaticZones {
  const fail = (detail: string): never => {
    throw new TypeError(`kumo.dns.configure_test_resolver: ${detail}`);
  };
  const zoneList = (v: unknown, key: string): (string | ZoneSource)[] => {
    if (v === undefined || v === null) return [];
    if (typeof v !== "object") fail(`${key} must be a list of zone texts`);
    const list = Array.isArray(v) ? v : Object.keys(v as object).length === 0 ? [] : null;
    if (list === null) fail(`${key} must be a list of zone texts`);
    return list!.map((z, i) => {
      if (typeof z === "string") return z;
      if (z && typeof z === "object" && typeof (z as ZoneSource).zone === "string") {
        for (const k of Object.keys(z)) {
          if (k !== "zone" && k !== "secure") {
            fail(`unknown field \`${k}\` in ${key}[${i + 1}], expected \`zone\` or \`secure\``);
          }
        }
        return z as ZoneSource;
      }
      return fail(`${key}[${i + 1}] must be a zone text or { zone = '...', secure = bool }`);
    });
  };
  if (Array.isArray(input)) return StaticZones.parse(zoneList(input, "zones"));
  if (input && typeof input === "object") {
    const t = input as Record<string, unknown>;
    for (const k of Object.keys(t)) {
      if (k !== "zones" && k !== "servfail") {
        fail(`unknown field \`${k}\`, expected \`zones\` or \`servfail\``);
      }
    }
    const servfail = t.servfail ?? [];
    if (!Array.isArray(servfail) && !(typeof servfail === "object" && servfail !== null)) {
      fail("servfail must be a list of names");
    }
    const names = Array.isArray(servfail) ? servfail.map(String) : [];
    return StaticZones.parse(zoneList(t.zones, "zones"), names);
  }
  return fail(`expected a list of zone texts, got ${quoted(input)}`);
}

function positiveInteger(fn: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
    throw new TypeError(`kumo.dns.${fn}: invalid value ${quoted(v)}: expected a positive integer`);
  }
  return v;
}

/**
 * The settings functions, keyed by dotted name, acting on `resolver`.
 *
 * @example
 * ```ts
 * const fns = dnsSettingsFunctions(new Resolver(), { mtaStsEnabled: true });
 * ```
 */
export function dnsSettingsFunctions(
  resolver: Resolver,
  settings: DnsSettings,
): Record<string, Fn> {
  return {
    "dns.reverse_ip": ((ip: string) => reverseIp(String(ip))) as Fn,
    "dns.set_mx_timeout": ((d: unknown) => {
      resolver.configure({ timeoutMs: parseDuration(d, "kumo.dns.set_mx_timeout") });
    }) as Fn,
    "dns.set_mx_negative_cache_ttl": ((d: unknown) => {
      resolver.configure({ negativeTtlMs: parseDuration(d, "kumo.dns.set_mx_negative_cache_ttl") });
    }) as Fn,
    "dns.set_mx_concurrency_limit": ((n: unknown) => {
      resolver.configure({ concurrency: positiveInteger("set_mx_concurrency_limit", n) });
    }) as Fn,
    "dns.set_mta_sts_enabled": ((b: unknown) => {
      if (typeof b !== "boolean") {
        throw new TypeError(
          `kumo.dns.set_mta_sts_enabled: invalid value ${quoted(b)}: expected a boolean`,
        );
      }
      settings.mtaStsEnabled = b;
    }) as Fn,
    "dns.load_resolv_conf": ((path?: string) => {
      const p = path === undefined || path === null ? "/etc/resolv.conf" : String(path);
      let text: string;
      try {
        text = Deno.readTextFileSync(p);
      } catch (e) {
        throw new Error(`Cannot read resolv.conf "${p}": ${(e as Error).message}`);
      }
      return parseResolvConf(text);
    }) as Fn,
    "dns.configure_test_resolver": ((input: unknown) => {
      resolver.configure({ staticZones: testZones(input) });
    }) as Fn,
  };
}
