/**
 * Mail exchanger resolution: routing domain → MX hosts → connection plan.
 *
 * The DNS stage of the delivery path (queues-and-delivery §4.1). The queue
 * layer calls `resolveMailExchanger` (or `resolveMxList` for an explicit
 * `mx_list`) to learn the site name of a ready queue; the egress dispatcher
 * calls `buildConnectionPlan` to get the ordered addresses to try. It decides
 * nothing about outcomes (null MX bounce, prohibited hosts, 451 when no
 * address): callers do, from the data returned here.
 *
 * @module
 */

import ipaddr from "ipaddr.js";
import { DnsNxDomainError, type MxRecord, type Resolver } from "./resolver.ts";
import { siteName } from "./site_name.ts";

/** A fixed connection target: an mx_list entry or a domain literal. */
export interface MxTarget {
  /** Host name (lower-case, trailing dot) to resolve, or the label of a fixed address. */
  name: string;
  /** Fixed IP address; when absent `name` is resolved through A/AAAA. */
  addr?: string;
  /** Port given with this entry. */
  port?: number;
}

/** The resolved mail exchangers of a routing domain. */
export interface MailExchanger {
  /** The domain looked up, lower-case with trailing dot (`example.net.`); literals as given. */
  domainName: string;
  /** MX hosts in plan order: preference ascending, alphabetical within; trailing dot. */
  hosts: string[];
  /** Hosts grouped by preference. */
  byPref: Map<number, string[]>;
  /** The site name keying the ready queue (§4.2). */
  siteName: string;
  /** The routing domain was an address literal (`[192.0.2.10]`). */
  isDomainLiteral: boolean;
  /** Hosts came from MX records (false for implicit MX, literals and mx_list). */
  isMx: boolean;
  /** The domain publishes a null MX (RFC 7505): mail for it must bounce. */
  isNullMx: boolean;
  /** Port from the routing domain or literal (`example.net:2525`). */
  port?: number;
  /** Fixed targets in order (literals and mx_list); when set they replace `byPref`. */
  targets?: MxTarget[];
}

/** Address families to look up for each host (`ip_lookup_strategy`). */
export type IpLookupStrategy =
  | "Ipv4AndIpv6"
  | "Ipv4Only"
  | "Ipv6Only"
  | "Ipv4ThenIpv6"
  | "Ipv6ThenIpv4";

/** One address to connect to. */
export interface ConnectionTarget {
  /** MX host name (trailing dot) or the literal IP. */
  name: string;
  addr: string;
  port: number;
}

/** Options for {@linkcode buildConnectionPlan}. */
export interface ConnectionPlanOptions {
  /** @default "Ipv4AndIpv6" */
  ipLookupStrategy?: IpLookupStrategy;
  /** Default port (`smtp_port`), used when neither the entry nor the domain gives one. @default 25 */
  port?: number;
  /** Egress source `remote_port`: beats every other port. */
  remotePort?: number;
  /** Called for each host whose lookup failed and was skipped. */
  onSkip?: (host: string, error: unknown) => void;
  /** Random source for shuffling, for tests. @default Math.random */
  random?: () => number;
}

/** A parsed address literal or `host:port`. */
interface ParsedDestination {
  host: string;
  port?: number;
  literal: boolean;
}

function parsePort(text: string, input: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new RangeError(`Cannot parse destination "${input}": invalid port "${text}"`);
  }
  return Number(text);
}

/** Canonical text of an IP, or undefined if `text` is not one. */
function canonicalIp(text: string): string | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.parse(text).toString();
  if (text.includes(":") && ipaddr.IPv6.isValid(text)) return ipaddr.parse(text).toString();
  return undefined;
}

/**
 * Parse `name`, `name:port`, `[IP]`, `[IP]:port`, `[IP:port]`, `[IPv6:addr]`
 * and bare IPv6 in brackets. The port may be inside or outside the brackets, not both.
 */
function parseDestination(input: string): ParsedDestination {
  const text = input.trim();
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) throw new RangeError(`Cannot parse destination "${input}": missing "]"`);
    let inner = text.slice(1, close);
    const after = text.slice(close + 1);
    let port: number | undefined;
    if (after !== "") {
      if (!after.startsWith(":")) {
        throw new RangeError(`Cannot parse destination "${input}": junk after "]"`);
      }
      port = parsePort(after.slice(1), input);
    }
    if (/^ipv6:/i.test(inner)) inner = inner.slice(5);
    let ip = canonicalIp(inner);
    if (ip === undefined) {
      // `[192.0.2.10:2525]`: port inside the brackets (IPv4 only; IPv6 has colons).
      const colon = inner.lastIndexOf(":");
      const head = colon > 0 ? inner.slice(0, colon) : "";
      if (colon > 0 && ipaddr.IPv4.isValidFourPartDecimal(head)) {
        if (port !== undefined) {
          throw new RangeError(`Cannot parse destination "${input}": port given twice`);
        }
        port = parsePort(inner.slice(colon + 1), input);
        ip = canonicalIp(head);
      }
    }
    if (ip === undefined) {
      throw new RangeError(`Cannot parse destination "${input}": not an IP address literal`);
    }
    return { host: ip, port, literal: true };
  }
  const colon = text.lastIndexOf(":");
  // Exactly one colon: `host:port`. More (a bare IPv6) stays a name, as upstream does.
  if (colon > 0 && text.indexOf(":") === colon) {
    return {
      host: text.slice(0, colon),
      port: parsePort(text.slice(colon + 1), input),
      literal: false,
    };
  }
  return { host: text, literal: false };
}

/** Lower-case with a trailing dot. */
function fqdn(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower : `${lower}.`;
}

/** Site-name rendering of a literal: the IP, with `:port`; IPv6 with port is bracketed. */
function literalSiteName(ip: string, port: number | undefined): string {
  if (port === undefined) return ip;
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/**
 * Resolve a routing domain to its mail exchangers (queues-and-delivery §4.1).
 *
 * Throws `DnsError` (e.g. `DnsNxDomainError`) when the domain does not
 * resolve, and `RangeError` for a malformed literal or port.
 *
 * @example
 * ```ts
 * const mx = await resolveMailExchanger("example.net:2525", resolver);
 * mx.siteName; // e.g. "(mx1|mx2).example.net:2525"
 * ```
 */
export async function resolveMailExchanger(
  routingDomain: string,
  resolver: Resolver,
): Promise<MailExchanger> {
  const dest = parseDestination(routingDomain);
  if (dest.literal) {
    return {
      domainName: routingDomain,
      hosts: [dest.host],
      byPref: new Map([[1, [dest.host]]]),
      siteName: literalSiteName(dest.host, dest.port),
      isDomainLiteral: true,
      isMx: false,
      isNullMx: false,
      port: dest.port,
      targets: [{ name: dest.host, addr: dest.host, port: dest.port }],
    };
  }

  const domain = fqdn(dest.host);
  let records: MxRecord[];
  try {
    records = await resolver.lookupMx(domain);
  } catch (err) {
    // The system resolver cannot tell NXDOMAIN from "no MX": the domain exists if it has an address.
    if (!(err instanceof DnsNxDomainError) || err.certain) throw err;
    const addrs = await resolver.lookupAddr(domain).catch(() => []);
    if (addrs.length === 0) throw err;
    records = [];
  }

  if (records.length === 0) {
    // Implicit MX (RFC 5321 §5.1): the domain itself at preference 1.
    return {
      domainName: domain,
      hosts: [domain],
      byPref: new Map([[1, [domain]]]),
      siteName: siteName([domain], dest.port),
      isDomainLiteral: false,
      isMx: false,
      isNullMx: false,
      port: dest.port,
    };
  }

  const real = records.filter((r) => r.exchange !== ".");
  if (real.length === 0) {
    return {
      domainName: domain,
      hosts: [],
      byPref: new Map(),
      siteName: "",
      isDomainLiteral: false,
      isMx: true,
      isNullMx: true,
      port: dest.port,
    };
  }

  const hosts: string[] = [];
  const byPref = new Map<number, string[]>();
  for (const r of real) {
    const host = fqdn(r.exchange);
    if (hosts.includes(host)) continue;
    hosts.push(host);
    const group = byPref.get(r.preference);
    if (group) group.push(host);
    else byPref.set(r.preference, [host]);
  }
  return {
    domainName: domain,
    hosts,
    byPref,
    siteName: siteName(hosts, dest.port),
    isDomainLiteral: false,
    isMx: true,
    isNullMx: false,
    port: dest.port,
  };
}

/** An `mx_list` entry from the queue config. */
export type MxListEntry = string | { name: string; addr: string };

/**
 * Turn a queue config `mx_list` into fixed targets, tried in list order.
 * Site name: `mx_list:<entry>,<entry>` with each entry as written (objects by `name`).
 * An empty `mx_list` means "normal MX lookup": call `resolveMailExchanger` instead.
 *
 * @example
 * ```ts
 * resolveMxList(["[127.0.0.1]:2526"]).siteName; // "mx_list:[127.0.0.1]:2526"
 * ```
 */
export function resolveMxList(entries: readonly MxListEntry[]): MailExchanger {
  const targets: MxTarget[] = [];
  const labels: string[] = [];
  for (const entry of entries) {
    if (typeof entry === "string") {
      const dest = parseDestination(entry);
      labels.push(entry.trim());
      targets.push(
        dest.literal
          ? { name: dest.host, addr: dest.host, port: dest.port }
          : { name: fqdn(dest.host), port: dest.port },
      );
    } else {
      const addrText = entry.addr.trim();
      let addr = canonicalIp(addrText);
      let port: number | undefined;
      if (addr === undefined) {
        const dest = parseDestination(addrText.startsWith("[") ? addrText : `[${addrText}]`);
        addr = dest.host;
        port = dest.port;
      }
      labels.push(entry.name);
      targets.push({ name: entry.name, addr, port });
    }
  }
  const hosts = targets.map((t) => t.name);
  return {
    domainName: "mx_list",
    hosts,
    byPref: new Map(hosts.map((h, i) => [i, [h]])),
    siteName: `mx_list:${labels.join(",")}`,
    isDomainLiteral: false,
    isMx: false,
    isNullMx: false,
    targets,
  };
}

/** Look up one host's addresses per the strategy; throws when nothing could be looked up. */
async function hostAddresses(
  resolver: Resolver,
  host: string,
  strategy: IpLookupStrategy,
): Promise<string[]> {
  const ip = canonicalIp(host.endsWith(".") ? host.slice(0, -1) : host);
  if (ip !== undefined) return [ip]; // an MX pointing at an IP: tolerated
  const v4 = () => resolver.lookupA(host);
  const v6 = () => resolver.lookupAaaa(host);
  switch (strategy) {
    case "Ipv4Only":
      return await v4();
    case "Ipv6Only":
      return await v6();
    case "Ipv4ThenIpv6":
    case "Ipv6ThenIpv4": {
      const [first, second] = strategy === "Ipv4ThenIpv6" ? [v4, v6] : [v6, v4];
      let firstError: unknown;
      try {
        const addrs = await first();
        if (addrs.length > 0) return addrs;
      } catch (err) {
        firstError = err;
      }
      try {
        return await second();
      } catch (err) {
        throw firstError ?? err;
      }
    }
    default: {
      const [a, aaaa] = await Promise.allSettled([v4(), v6()]);
      if (a.status === "rejected" && aaaa.status === "rejected") throw a.reason;
      return [
        ...(a.status === "fulfilled" ? a.value : []),
        ...(aaaa.status === "fulfilled" ? aaaa.value : []),
      ];
    }
  }
}

/** Fisher–Yates shuffle in place. */
function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/**
 * Expand mail exchangers into the ordered addresses to try.
 *
 * MX hosts: A/AAAA per `ipLookupStrategy`, all hosts looked up in parallel;
 * preference groups lowest first, the addresses of one group shuffled
 * together; a host whose lookup fails is skipped (reported via `onSkip`).
 * Fixed targets (literals, mx_list) keep their order. An empty result means
 * "MX didn't resolve to any hosts" for the caller. Null MX gives `[]`.
 *
 * @example
 * ```ts
 * const plan = await buildConnectionPlan(mx, resolver, { ipLookupStrategy: "Ipv4Only" });
 * ```
 */
export async function buildConnectionPlan(
  mx: MailExchanger,
  resolver: Resolver,
  options: ConnectionPlanOptions = {},
): Promise<ConnectionTarget[]> {
  const strategy = options.ipLookupStrategy ?? "Ipv4AndIpv6";
  const random = options.random ?? Math.random;
  const portFor = (entryPort: number | undefined) =>
    options.remotePort ?? entryPort ?? mx.port ?? options.port ?? 25;
  const lookup = async (host: string): Promise<string[]> => {
    try {
      return await hostAddresses(resolver, host, strategy);
    } catch (err) {
      options.onSkip?.(host, err);
      return [];
    }
  };

  if (mx.targets) {
    const resolved = await Promise.all(
      mx.targets.map((t) => t.addr !== undefined ? Promise.resolve([t.addr]) : lookup(t.name)),
    );
    const plan: ConnectionTarget[] = [];
    mx.targets.forEach((t, i) => {
      for (const addr of resolved[i]) plan.push({ name: t.name, addr, port: portFor(t.port) });
    });
    return plan;
  }

  const prefs = [...mx.byPref.keys()].sort((a, b) => a - b);
  const groups = await Promise.all(
    prefs.map((pref) =>
      Promise.all(mx.byPref.get(pref)!.map(async (host) => {
        const addrs = await lookup(host);
        return addrs.map((addr): ConnectionTarget => ({
          name: host,
          addr,
          port: portFor(undefined),
        }));
      }))
    ),
  );
  const plan: ConnectionTarget[] = [];
  for (const group of groups) plan.push(...shuffle(group.flat(), random));
  return plan;
}
