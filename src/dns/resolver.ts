/**
 * Resolver: the DNS stage's caching, rate-limited lookups (MX, A, AAAA, TXT, PTR).
 *
 * Used by the egress path to turn a routing domain into MX hosts and
 * addresses, and by the policy layer's `kumo.dns.*` bindings. With name
 * servers configured (`kumo.dns.configure_resolver`) it asks them directly and
 * caches for the record TTL; otherwise it uses the system resolver through
 * `Deno.resolveDns`, which hides TTLs and cannot tell NXDOMAIN from "no
 * records of that type". It never throws anything but `DnsError` subclasses
 * for lookup failures, and never talks SMTP.
 *
 * @module
 */

import ipaddr from "ipaddr.js";
import { DnsQueryTimeout, type DnsRecordType, type DnsReply, queryDns } from "./dns_client.ts";
import type { StaticZones } from "./static_zones.ts";

export type { DnsRecordType } from "./dns_client.ts";

/** One configured name server. */
export interface NameServer {
  ip: string;
  port: number;
}

/** One MX record, exchange lower-cased with a trailing dot. */
export interface MxRecord {
  preference: number;
  exchange: string;
}

/** Resolver settings; every field optional. */
export interface ResolverOptions {
  /** Name servers tried in order; empty = the system resolver. @default [] */
  nameServers?: NameServer[];
  /** Time allowed for one lookup, ms (`set_mx_timeout`). @default 5000 */
  timeoutMs?: number;
  /** Lookups in flight at once (`set_mx_concurrency_limit`). @default 128 */
  concurrency?: number;
  /** How long answers are cached when the TTL is unknown (system resolver), ms. @default 300000 */
  positiveTtlMs?: number;
  /** How long NXDOMAIN, no-data and failures are cached (`set_mx_negative_cache_ttl`), ms. @default 300000 */
  negativeTtlMs?: number;
  /** Clock, for tests. @default Date.now */
  now?: () => number;
  /** Fixed zones answered instead of any name server (`configure_test_resolver`); null = none. */
  staticZones?: StaticZones | null;
}

/** Why a lookup failed. */
export type DnsErrorCode = "NXDOMAIN" | "SERVFAIL" | "REFUSED" | "TIMEOUT" | "FAILED";

/** A failed DNS lookup. */
export class DnsError extends Error {
  /** Failure category. */
  readonly code: DnsErrorCode;
  /** Name that was looked up. */
  readonly domain: string;
  /** Record type that was asked for. */
  readonly recordType: DnsRecordType;
  constructor(code: DnsErrorCode, domain: string, recordType: DnsRecordType, detail: string) {
    super(`Cannot resolve ${recordType} for "${domain}": ${detail}`);
    this.name = "DnsError";
    this.code = code;
    this.domain = domain;
    this.recordType = recordType;
  }
}

/**
 * The name does not exist (rcode 3). With the system resolver this may also
 * mean "exists but has no records of this type": then `certain` is false.
 */
export class DnsNxDomainError extends DnsError {
  /** False when the backend cannot tell NXDOMAIN from no data (system resolver). */
  readonly certain: boolean;
  constructor(domain: string, recordType: DnsRecordType, certain: boolean) {
    super("NXDOMAIN", domain, recordType, certain ? "NXDOMAIN" : "no such name or no records");
    this.name = "DnsNxDomainError";
    this.certain = certain;
  }
}

/** The lookup did not finish in time. */
export class DnsTimeoutError extends DnsError {
  constructor(domain: string, recordType: DnsRecordType, timeoutMs: number) {
    super("TIMEOUT", domain, recordType, `timed out after ${timeoutMs} ms`);
    this.name = "DnsTimeoutError";
  }
}

type Answer = string[] | MxRecord[];

/** Cache size cap (KumoMTA keeps 64 Ki MX entries). */
const MAX_CACHE_ENTRIES = 65_536;

interface CacheEntry {
  expires: number;
  value?: Answer;
  error?: DnsError;
}

/** Normalise a name for cache keys and queries: lower-case, no trailing dot. */
function normalize(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") && lower.length > 1 ? lower.slice(0, -1) : lower;
}

/** Build the reverse-lookup name of an IP (`in-addr.arpa` / `ip6.arpa`). */
export function reverseName(ip: string): string {
  const addr = ipaddr.parse(ip);
  if (addr.kind() === "ipv4") {
    return `${addr.toByteArray().reverse().join(".")}.in-addr.arpa`;
  }
  const nibbles: string[] = [];
  for (const byte of addr.toByteArray()) {
    nibbles.push((byte >> 4).toString(16), (byte & 0xf).toString(16));
  }
  return `${nibbles.reverse().join(".")}.ip6.arpa`;
}

/**
 * A caching DNS resolver with a timeout and a concurrency limit.
 *
 * @example
 * ```ts
 * const resolver = new Resolver({ nameServers: [{ ip: "127.0.0.1", port: 5353 }] });
 * const mx = await resolver.lookupMx("example.test");
 * ```
 */
export class Resolver {
  #nameServers: NameServer[] = [];
  #timeoutMs = 5000;
  #concurrency = 128;
  #positiveTtlMs = 300_000;
  #negativeTtlMs = 300_000;
  #now: () => number = Date.now;
  #static: StaticZones | null = null;
  #cache = new Map<string, CacheEntry>();
  #inflight = new Map<string, Promise<Answer>>();
  #active = 0;
  #waiters: (() => void)[] = [];

  constructor(options: ResolverOptions = {}) {
    this.configure(options);
  }

  /** Change settings; changing name servers empties the cache. */
  configure(options: ResolverOptions): void {
    if (options.nameServers !== undefined) {
      this.#nameServers = options.nameServers.map((s) => ({ ip: s.ip, port: s.port }));
      this.#cache.clear();
    }
    if (options.timeoutMs !== undefined) this.#timeoutMs = options.timeoutMs;
    if (options.concurrency !== undefined) this.#concurrency = Math.max(1, options.concurrency);
    if (options.positiveTtlMs !== undefined) this.#positiveTtlMs = options.positiveTtlMs;
    if (options.negativeTtlMs !== undefined) this.#negativeTtlMs = options.negativeTtlMs;
    if (options.now !== undefined) this.#now = options.now;
    if (options.staticZones !== undefined) {
      this.#static = options.staticZones;
      this.#cache.clear();
    }
  }

  /** The configured name servers (empty = system resolver). */
  get nameServers(): readonly NameServer[] {
    return this.#nameServers;
  }

  /** Forget every cached answer. */
  clearCache(): void {
    this.#cache.clear();
  }

  /**
   * MX records in preference order (ties alphabetical). An existing name
   * without MX records gives `[]`; a null MX gives one record with exchange `"."`.
   */
  async lookupMx(name: string): Promise<MxRecord[]> {
    return (await this.#lookup(name, "MX")) as MxRecord[];
  }

  /** IPv4 addresses of a name; `[]` when it exists without any. */
  async lookupA(name: string): Promise<string[]> {
    return (await this.#lookup(name, "A")) as string[];
  }

  /** IPv6 addresses of a name; `[]` when it exists without any. */
  async lookupAaaa(name: string): Promise<string[]> {
    return (await this.#lookup(name, "AAAA")) as string[];
  }

  /** IPv4 and IPv6 addresses; fails only when both lookups fail. */
  async lookupAddr(name: string): Promise<string[]> {
    const [a, aaaa] = await Promise.allSettled([this.lookupA(name), this.lookupAaaa(name)]);
    if (a.status === "rejected" && aaaa.status === "rejected") throw a.reason;
    return [
      ...(a.status === "fulfilled" ? a.value : []),
      ...(aaaa.status === "fulfilled" ? aaaa.value : []),
    ];
  }

  /** TXT records, each record's character-strings joined into one string. */
  async lookupTxt(name: string): Promise<string[]> {
    return (await this.#lookup(name, "TXT")) as string[];
  }

  /** PTR names (trailing dot) for an IP address or an explicit reverse name. */
  async lookupPtr(ipOrName: string): Promise<string[]> {
    const name = ipaddr.isValid(ipOrName) ? reverseName(ipOrName) : ipOrName;
    return (await this.#lookup(name, "PTR")) as string[];
  }

  #lookup(rawName: string, type: DnsRecordType): Promise<Answer> {
    const name = normalize(rawName);
    const key = `${type} ${name}`;
    const cached = this.#cache.get(key);
    if (cached) {
      if (cached.expires > this.#now()) {
        return cached.error ? Promise.reject(cached.error) : Promise.resolve(cached.value!);
      }
      this.#cache.delete(key);
    }
    const pending = this.#inflight.get(key);
    if (pending) return pending;
    const started = this.#limited(() => this.#fetch(name, type)).then(
      ({ value, ttlMs }) => {
        this.#inflight.delete(key);
        if (ttlMs > 0) this.#remember(key, { value, expires: this.#now() + ttlMs });
        return value;
      },
      (err: unknown) => {
        this.#inflight.delete(key);
        const error = err instanceof DnsError
          ? err
          : new DnsError("FAILED", name, type, String((err as Error)?.message ?? err));
        if (this.#negativeTtlMs > 0) {
          this.#remember(key, { error, expires: this.#now() + this.#negativeTtlMs });
        }
        throw error;
      },
    );
    this.#inflight.set(key, started);
    return started;
  }

  /** Store an entry; past the cap, drop expired entries, then the oldest. */
  #remember(key: string, entry: CacheEntry): void {
    this.#cache.delete(key); // re-insert at the end: Map order is insertion order
    this.#cache.set(key, entry);
    if (this.#cache.size <= MAX_CACHE_ENTRIES) return;
    const now = this.#now();
    for (const [k, e] of this.#cache) if (e.expires <= now) this.#cache.delete(k);
    for (const k of this.#cache.keys()) {
      if (this.#cache.size <= MAX_CACHE_ENTRIES * 0.9) break;
      this.#cache.delete(k);
    }
  }

  async #limited<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#active >= this.#concurrency) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    this.#active++;
    try {
      return await fn();
    } finally {
      this.#active--;
      this.#waiters.shift()?.();
    }
  }

  /** One uncached lookup; returns the answer and how long to keep it. */
  async #fetch(name: string, type: DnsRecordType): Promise<{ value: Answer; ttlMs: number }> {
    if (this.#static) return this.#static.answer(name, type);
    if (this.#nameServers.length === 0) return await this.#fetchSystem(name, type);
    const deadline = this.#now() + this.#timeoutMs;
    let lastError: DnsError | undefined;
    const servers = this.#nameServers;
    for (let i = 0; i < servers.length; i++) {
      // Share what is left of the budget among the servers not yet asked.
      const share = Math.floor((deadline - this.#now()) / (servers.length - i));
      if (share <= 0) break;
      let reply: DnsReply;
      try {
        reply = await queryDns(servers[i], name, type, {
          timeoutMs: share,
          retryMs: Math.max(200, Math.min(1000, share / 3)),
        });
      } catch (err) {
        lastError = err instanceof DnsQueryTimeout
          ? new DnsTimeoutError(name, type, this.#timeoutMs)
          : new DnsError("FAILED", name, type, String((err as Error).message));
        continue;
      }
      switch (reply.rcode) {
        case 0:
          return this.#fromReply(reply, type);
        case 3:
          // NXDOMAIN is an answer, not a failure of this server: do not ask the next one.
          throw new DnsNxDomainError(name, type, true);
        case 2:
          lastError = new DnsError("SERVFAIL", name, type, "SERVFAIL");
          continue;
        case 5:
          lastError = new DnsError("REFUSED", name, type, "REFUSED");
          continue;
        default:
          lastError = new DnsError("FAILED", name, type, `rcode ${reply.rcode}`);
          continue;
      }
    }
    throw lastError ?? new DnsTimeoutError(name, type, this.#timeoutMs);
  }

  #fromReply(reply: DnsReply, type: DnsRecordType): { value: Answer; ttlMs: number } {
    let minTtl = Infinity;
    for (const r of reply.records) minTtl = Math.min(minTtl, r.ttl);
    if (reply.records.length === 0) {
      // NODATA: cache like a negative answer (RFC 2308 §5), capped by our setting.
      const soaMs = reply.negativeTtl === undefined ? Infinity : reply.negativeTtl * 1000;
      return { value: [], ttlMs: Math.min(this.#negativeTtlMs, soaMs) };
    }
    const ttlMs = minTtl * 1000;
    switch (type) {
      case "MX":
        return {
          value: sortMx(reply.records.map((r) => {
            const mx = r as { preference: number; exchange: string };
            return { preference: mx.preference, exchange: mx.exchange };
          })),
          ttlMs,
        };
      case "TXT":
        return {
          value: reply.records.map((r) => (r as { parts: string[] }).parts.join("")),
          ttlMs,
        };
      default:
        return { value: reply.records.map((r) => (r as { value: string }).value), ttlMs };
    }
  }

  async #fetchSystem(name: string, type: DnsRecordType): Promise<{ value: Answer; ttlMs: number }> {
    const ttlMs = this.#positiveTtlMs;
    try {
      const signal = AbortSignal.timeout(this.#timeoutMs);
      switch (type) {
        case "MX": {
          const mx = await Deno.resolveDns(name, "MX", { signal });
          return {
            value: sortMx(mx.map((r) => ({
              preference: r.preference,
              exchange: canonical(r.exchange),
            }))),
            ttlMs,
          };
        }
        case "TXT": {
          const txt = await Deno.resolveDns(name, "TXT", { signal });
          return { value: txt.map((parts) => parts.join("")), ttlMs };
        }
        case "PTR": {
          const ptr = await Deno.resolveDns(name, "PTR", { signal });
          return { value: ptr.map(canonical), ttlMs };
        }
        default:
          return { value: await Deno.resolveDns(name, type, { signal }), ttlMs };
      }
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) throw new DnsNxDomainError(name, type, false);
      if ((err as Error)?.name === "TimeoutError" || err instanceof Deno.errors.TimedOut) {
        throw new DnsTimeoutError(name, type, this.#timeoutMs);
      }
      throw new DnsError("FAILED", name, type, String((err as Error)?.message ?? err));
    }
  }
}

/** Lower-case with a trailing dot; the root stays `"."`. */
function canonical(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower : `${lower}.`;
}

/** Sort MX records by preference, then exchange name. */
function sortMx(records: MxRecord[]): MxRecord[] {
  return records.sort((a, b) =>
    a.preference - b.preference || (a.exchange < b.exchange ? -1 : a.exchange > b.exchange ? 1 : 0)
  );
}
