/**
 * DnsResolverConfig: the typed result of `kumo.dns.configure_resolver { ... }`
 * (lua-api §5.6, §8) — which name servers `dns/` queries.
 *
 * Converted once at startup and handed to `dns/`. Never sends a query here.
 *
 * @module
 */

import {
  anyJson,
  array,
  convert,
  custom,
  type Cx,
  fail,
  isIp,
  type Kind,
  object,
  opt,
  req,
  splitHostPort,
  string,
} from "./schema.ts";

/** One upstream name server. */
export interface NameServer {
  ip: string;
  /** @default 53 */
  port: number;
  /** @default "udp" */
  protocol: string;
}

/** A converted resolver config. */
export interface DnsResolverConfig {
  nameServers: NameServer[];
  /** Local domain. */
  domain?: string;
  /** Search list. @default [] */
  search: string[];
  /** Resolver options table, kept as given. */
  options?: unknown;
  /** `{ Test = {...} }` form: fixed test zones, kept as given. */
  test?: unknown;
}

function parseSocketAddr(s: string, cx: Cx): { ip: string; port: number } {
  if (isIp(s)) return { ip: s, port: 53 };
  const hp = splitHostPort(s);
  if (!hp || !isIp(hp.host)) {
    return fail(cx, `invalid value: string ${JSON.stringify(s)}, expected a socket address`);
  }
  return { ip: hp.host, port: hp.port };
}

const SERVER_TABLE = object({
  socket_addr: req(string()),
  protocol: opt(string()),
  // Hickory's NameServerConfig keys: accepted, not used.
  tls_dns_name: opt(anyJson()),
  trust_negative_responses: opt(anyJson()),
  bind_addr: opt(anyJson()),
  http_endpoint: opt(anyJson()),
}, { name: "NameServerConfig", ignoreUnknown: true });

const NAME_SERVER: Kind<NameServer> = custom<NameServer>(
  'an "ip:port" string or {socket_addr, protocol}',
  (v, cx) => {
    if (typeof v === "string") return { ...parseSocketAddr(v, cx), protocol: "udp" };
    const t = SERVER_TABLE.parse(v, cx);
    return {
      ...parseSocketAddr(t.socketAddr, { root: cx.root, key: `${cx.key}.socket_addr` }),
      protocol: (t.protocol ?? "udp").toLowerCase(),
    };
  },
  (n) => ({
    socket_addr: n.ip.includes(":") ? `[${n.ip}]:${n.port}` : `${n.ip}:${n.port}`,
    protocol: n.protocol,
  }),
);

const RESOLVER = object({
  name_servers: req(array(NAME_SERVER)),
  domain: opt(string()),
  search: opt(array(string())),
  options: opt(anyJson()),
}, { name: "ResolverConfig" });

/** The schema of `configure_resolver` (the plain form). */
export const DNS_RESOLVER = RESOLVER;

/**
 * Convert a `configure_resolver` table; `{ Test = {...} }` is kept as `test`.
 *
 * @example
 * ```ts
 * parseDnsResolver({ name_servers: ["127.0.0.1:5353"] }).nameServers[0].port; // 5353
 * ```
 */
export function parseDnsResolver(input: unknown): DnsResolverConfig {
  if (input !== null && typeof input === "object" && !Array.isArray(input)) {
    const keys = Object.keys(input);
    if (keys.length === 1 && keys[0] === "Test") {
      return { nameServers: [], search: [], test: (input as Record<string, unknown>).Test };
    }
  }
  const r = convert(RESOLVER, input);
  return {
    nameServers: r.nameServers,
    domain: r.domain,
    search: r.search ?? [],
    options: r.options,
  };
}

/** The JSON/Lua-readable form. */
export function dnsResolverToJSON(x: DnsResolverConfig): Record<string, unknown> {
  if (x.test !== undefined) return { Test: x.test };
  return RESOLVER.toJSON({
    nameServers: x.nameServers,
    domain: x.domain,
    search: x.search,
    options: x.options,
  });
}
