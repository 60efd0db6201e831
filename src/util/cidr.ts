/**
 * CIDR sets and maps: strict parsing of address lists (`relay_hosts`,
 * `prohibited_hosts`, `relay_from`) and longest-prefix lookup tables (`peer`,
 * `via` listener overrides).
 *
 * Parsed once at configuration time; `contains` / `get` run per connection
 * and per MX address, so lookups use pre-parsed integer keys (numbers for
 * IPv4, bigints for IPv6) and never call a general-purpose parser for
 * dotted-quad peers. Never accepts a CIDR with host bits set: upstream treats
 * that as an operator mistake. IPv4-mapped IPv6 peers (`::ffff:a.b.c.d`)
 * match IPv4 entries.
 *
 * @module
 */

import ipaddr from "ipaddr.js";
import { ConfigError } from "./config_error.ts";

interface ParsedCidr {
  v4: boolean;
  /** Network address: uint32 for IPv4, 128-bit bigint for IPv6. */
  net: number | bigint;
  prefix: number;
  /** Canonical text: bare address for a host route, else `net/prefix`. */
  text: string;
}

const V6_ALL = (1n << 128n) - 1n;

function v4Mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function v6Mask(prefix: number): bigint {
  return prefix === 0 ? 0n : (V6_ALL >> BigInt(128 - prefix)) << BigInt(128 - prefix);
}

function bytesToNumber(bytes: number[]): number {
  return ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
}

function bytesToBigint(bytes: number[]): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function numberToV4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function bigintToV6(n: bigint): string {
  const bytes: number[] = new Array(16);
  for (let i = 15; i >= 0; i--) {
    bytes[i] = Number(n & 255n);
    n >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

function cidrText(v4: boolean, net: number | bigint, prefix: number): string {
  const addr = v4 ? numberToV4(net as number) : bigintToV6(net as bigint);
  return prefix === (v4 ? 32 : 128) ? addr : `${addr}/${prefix}`;
}

/**
 * Fast dotted-quad parse; -1 when `s` is not a plain `a.b.c.d`.
 * Hot path: no allocation.
 */
function fastV4(s: string, start: number): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

/**
 * Parse a non-dotted-quad peer address for lookup (IPv6, bracketed, mapped).
 * Returns a uint32 for IPv4 (incl. IPv4-mapped IPv6), a bigint for IPv6,
 * undefined when `ip` is not an address.
 */
function slowPeerKey(ip: string): number | bigint | undefined {
  if (ip.length > 7 && ip.startsWith("::ffff:") && ip.charCodeAt(7) !== 58) {
    const mapped = fastV4(ip, 7);
    if (mapped >= 0) return mapped;
  }
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    const bare = ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
    addr = ipaddr.parse(bare);
  } catch {
    return undefined;
  }
  if (addr.kind() === "ipv6") {
    const v6 = addr as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) return bytesToNumber(v6.toIPv4Address().toByteArray());
    return bytesToBigint(v6.toByteArray());
  }
  return bytesToNumber(addr.toByteArray());
}

/**
 * Parse one strict CIDR or IP literal.
 *
 * @throws {ConfigError} `"<x>" is not a valid CIDR: host bits set. Did you mean "<fixed>"?`
 */
function parseCidr(entry: unknown, key?: string): ParsedCidr {
  if (typeof entry !== "string") {
    throw new ConfigError(
      `Cannot parse CIDR ${JSON.stringify(entry) ?? "nil"}: expected a string`,
      { key },
    );
  }
  const slash = entry.indexOf("/");
  const addrText = slash < 0 ? entry : entry.slice(0, slash);
  const prefixText = slash < 0 ? undefined : entry.slice(slash + 1);
  let v4: boolean;
  let bytes: number[];
  if (ipaddr.IPv4.isValidFourPartDecimal(addrText)) {
    v4 = true;
    bytes = ipaddr.IPv4.parse(addrText).toByteArray();
  } else if (addrText.includes(":") && ipaddr.IPv6.isValid(addrText)) {
    v4 = false;
    bytes = ipaddr.IPv6.parse(addrText).toByteArray();
  } else {
    throw new ConfigError(`"${entry}" is not a valid CIDR: "${addrText}" is not an IP address`, {
      key,
    });
  }
  const max = v4 ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    if (!/^[0-9]{1,3}$/.test(prefixText) || Number(prefixText) > max) {
      throw new ConfigError(
        `"${entry}" is not a valid CIDR: prefix length "${prefixText}" is out of range 0..${max}`,
        { key },
      );
    }
    prefix = Number(prefixText);
  }
  let addr: number | bigint;
  let net: number | bigint;
  if (v4) {
    addr = bytesToNumber(bytes);
    net = (addr & v4Mask(prefix)) >>> 0;
  } else {
    addr = bytesToBigint(bytes);
    net = addr & v6Mask(prefix);
  }
  if (net !== addr) {
    throw new ConfigError(
      `"${entry}" is not a valid CIDR: host bits set. Did you mean "${cidrText(v4, net, prefix)}"?`,
      { key },
    );
  }
  // An IPv4-mapped IPv6 network (::ffff:0:0/96 and longer) is stored as IPv4
  // so that plain IPv4 peers match it too.
  if (!v4 && prefix >= 96 && ((net as bigint) >> 32n) === 0xffffn) {
    return {
      v4: true,
      net: Number((net as bigint) & 0xffffffffn),
      prefix: prefix - 96,
      text: cidrText(false, net, prefix),
    };
  }
  return { v4, net, prefix, text: cidrText(v4, net, prefix) };
}

/** Longest-prefix table: one hash map per prefix length, longest first. */
class PrefixTable<V> {
  #v4 = new Map<number, Map<number, V>>();
  #v6 = new Map<number, Map<bigint, V>>();
  #v4Prefixes: { prefix: number; mask: number; map: Map<number, V> }[] = [];
  #v6Prefixes: { prefix: number; mask: bigint; map: Map<bigint, V> }[] = [];

  set(c: ParsedCidr, value: V): void {
    if (c.v4) {
      let m = this.#v4.get(c.prefix);
      if (!m) {
        m = new Map();
        this.#v4.set(c.prefix, m);
        this.#v4Prefixes.push({ prefix: c.prefix, mask: v4Mask(c.prefix), map: m });
        this.#v4Prefixes.sort((a, b) => b.prefix - a.prefix);
      }
      m.set(c.net as number, value);
    } else {
      let m = this.#v6.get(c.prefix);
      if (!m) {
        m = new Map();
        this.#v6.set(c.prefix, m);
        this.#v6Prefixes.push({ prefix: c.prefix, mask: v6Mask(c.prefix), map: m });
        this.#v6Prefixes.sort((a, b) => b.prefix - a.prefix);
      }
      m.set(c.net as bigint, value);
    }
  }

  /**
   * Hot path: one parse (no allocation for dotted quads), then at most one
   * map probe per prefix length present.
   */
  get(ip: string): V | undefined {
    let k: number | bigint | undefined = fastV4(ip, 0);
    if (k < 0) k = slowPeerKey(ip);
    if (k === undefined) return undefined;
    if (typeof k === "number") {
      for (const p of this.#v4Prefixes) {
        const v = p.map.get((k & p.mask) >>> 0);
        if (v !== undefined) return v;
      }
    } else {
      for (const p of this.#v6Prefixes) {
        const v = p.map.get(k & p.mask);
        if (v !== undefined) return v;
      }
    }
    return undefined;
  }
}

function listOf(list: unknown, key?: string): unknown[] {
  if (Array.isArray(list)) return list;
  // An empty Lua table may arrive as {}.
  if (list !== null && typeof list === "object" && Object.keys(list).length === 0) return [];
  throw new ConfigError(
    `Cannot parse CIDR list ${JSON.stringify(list) ?? "nil"}: expected an array of strings`,
    { key },
  );
}

/**
 * A set of networks with longest-prefix membership test.
 *
 * @example
 * ```ts
 * const relay = CidrSet.parse(["127.0.0.0/8", "::1"]);
 * relay.contains("::ffff:127.0.0.5"); // true
 * ```
 */
export class CidrSet {
  #table = new PrefixTable<true>();
  #texts: string[] = [];

  /**
   * Parse an array of IP literals / strict CIDRs (`{}` counts as empty).
   *
   * @throws {ConfigError} for a bad entry or host bits set
   */
  static parse(list: unknown, key?: string): CidrSet {
    const set = new CidrSet();
    const items = listOf(list, key);
    for (let i = 0; i < items.length; i++) {
      set.add(parseCidr(items[i], key === undefined ? undefined : `${key}[${i + 1}]`));
    }
    return set;
  }

  private add(c: ParsedCidr): void {
    this.#table.set(c, true);
    if (!this.#texts.includes(c.text)) this.#texts.push(c.text);
  }

  /** Whether `ip` lies in any member network. Hot path. */
  contains(ip: string): boolean {
    return this.#table.get(ip) === true;
  }

  /** Number of distinct entries. */
  get size(): number {
    return this.#texts.length;
  }

  /** Canonical entries (`"10.0.0.0/8"`, `"::1"`), in input order. */
  toJSON(): string[] {
    return [...this.#texts];
  }
}

/**
 * A map from networks to values; `get` returns the value of the longest
 * matching prefix.
 *
 * @example
 * ```ts
 * const m = CidrMap.parse({ "10.0.0.0/8": "a", "10.1.0.0/16": "b" }, (v) => String(v));
 * m.get("10.1.2.3"); // "b"
 * ```
 */
export class CidrMap<V> {
  #table = new PrefixTable<V>();
  #entries: [string, V][] = [];

  /**
   * Parse a table keyed by IP/CIDR string (`[]` counts as empty).
   *
   * @param table the Lua/JSON table
   * @param parseValue converts each value; receives the dotted key for errors
   * @throws {ConfigError} for a bad key or value
   */
  static parse<V>(
    table: unknown,
    parseValue: (value: unknown, key: string) => V,
    key?: string,
  ): CidrMap<V> {
    const map = new CidrMap<V>();
    if (Array.isArray(table) && table.length === 0) return map;
    if (table === null || typeof table !== "object" || Array.isArray(table)) {
      throw new ConfigError(
        `Cannot parse CIDR map ${JSON.stringify(table) ?? "nil"}: expected a table keyed by CIDR`,
        { key },
      );
    }
    for (const [k, v] of Object.entries(table)) {
      const sub = key === undefined ? k : `${key}.${k}`;
      map.set(parseCidr(k, sub), parseValue(v, sub));
    }
    return map;
  }

  private set(c: ParsedCidr, value: V): void {
    this.#table.set(c, value);
    const at = this.#entries.findIndex(([t]) => t === c.text);
    if (at >= 0) this.#entries[at] = [c.text, value];
    else this.#entries.push([c.text, value]);
  }

  /** Value of the longest prefix containing `ip`, or undefined. Hot path. */
  get(ip: string): V | undefined {
    return this.#table.get(ip);
  }

  /** Number of entries. */
  get size(): number {
    return this.#entries.length;
  }

  /** Entries as `[canonical cidr, value]` in input order. */
  entries(): [string, V][] {
    return this.#entries.map(([k, v]) => [k, v]);
  }

  /** The JSON form: an object keyed by canonical CIDR, values as they are. */
  toJSON(): Record<string, unknown> {
    return this.toObject((v) => v);
  }

  /**
   * The JSON/Lua form: an object keyed by canonical CIDR.
   *
   * @param mapValue converts each value to its JSON form
   */
  toObject<J>(mapValue: (v: V) => J): Record<string, J> {
    const out: Record<string, J> = {};
    for (const [k, v] of this.#entries) out[k] = mapValue(v);
    return out;
  }
}
