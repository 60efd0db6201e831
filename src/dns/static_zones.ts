/**
 * StaticZones: fixed DNS data parsed from zone-file text, answered without
 * any network — the backend of `kumo.dns.configure_test_resolver` and of
 * `kumo.dns.configure_resolver { Test = { zones = ... } }`.
 *
 * Place on the path: dns. The {@link Resolver} consults it instead of name
 * servers when configured. Zone text is RFC 1035 master-file syntax:
 * `$ORIGIN`, `$TTL`, `@`, relative and absolute owner names, an omitted
 * owner (leading blank) repeating the previous one, optional TTL and class
 * in either order, `;` comments and `( ... )` continuation. Records of type
 * A, AAAA, MX, TXT, PTR and CNAME are answered (CNAME chains are followed);
 * any other type (SOA, NS, TLSA, ...) is accepted and only makes its name
 * exist. Lookups of a name with no data of the asked type get an empty
 * answer (NODATA) when the name exists in a zone, else NXDOMAIN; names
 * listed in `servfail` fail with SERVFAIL. Non-ASCII names are stored in
 * their A-label (punycode) form. `secure = true` is accepted; DNSSEC is not
 * modelled (no lookup reports a secure answer).
 *
 * @module
 */

import { domainToASCII } from "node:url";
import ipaddr from "ipaddr.js";
import type { DnsRecordType } from "./dns_client.ts";
import { DnsError, DnsNxDomainError, type MxRecord } from "./resolver.ts";

/** One zone as given to configure_test_resolver. */
export interface ZoneSource {
  /** The zone text. */
  zone: string;
  /** Accepted for compatibility; DNSSEC is not modelled. @default false */
  secure?: boolean;
}

type Data =
  | { type: "A" | "AAAA" | "PTR" | "CNAME"; ttl: number; value: string }
  | { type: "MX"; ttl: number; value: MxRecord }
  | { type: "TXT"; ttl: number; value: string }
  | { type: "OTHER"; ttl: number; value: string };

/** A parse failure, naming the zone and line. */
export class ZoneSyntaxError extends SyntaxError {
  constructor(zoneIndex: number, line: number, detail: string) {
    super(`Cannot parse test zone ${zoneIndex + 1} line ${line}: ${detail}`);
    this.name = "ZoneSyntaxError";
  }
}

function canonical(name: string): string {
  let n = name.toLowerCase();
  if (!n.endsWith(".")) n += ".";
  if (n === ".") return n;
  // deno-lint-ignore no-control-regex
  if (/[^\x00-\x7f]/.test(n)) {
    const ascii = domainToASCII(n.slice(0, -1));
    if (ascii) n = ascii + ".";
  }
  return n;
}

/** Split one logical line into tokens; quoted strings keep their quotes off and are marked. */
function tokenize(line: string): { text: string; quoted: boolean }[] {
  const out: { text: string; quoted: boolean }[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i];
    if (c === " " || c === "\t") {
      i++;
      continue;
    }
    if (c === ";") break;
    if (c === '"') {
      let s = "";
      i++;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === "\\" && i + 1 < line.length) i++;
        s += line[i++];
      }
      i++;
      out.push({ text: s, quoted: true });
      continue;
    }
    let s = "";
    while (i < line.length && !/[ \t;"]/.test(line[i])) s += line[i++];
    out.push({ text: s, quoted: false });
  }
  return out;
}

const CLASSES = new Set(["IN", "CH", "HS", "CS"]);
const TTL_RE = /^[0-9]+$/;

/** Logical lines: comments dropped, `( ... )` joined; each with its first physical line number. */
function logicalLines(text: string): { line: number; text: string; indented: boolean }[] {
  const out: { line: number; text: string; indented: boolean }[] = [];
  let pending: { line: number; text: string; indented: boolean } | null = null;
  let depth = 0;
  for (const [idx, raw] of text.split(/\r?\n/).entries()) {
    let inQuote = false;
    let body = "";
    for (const c of raw) {
      if (c === '"') inQuote = !inQuote;
      if (c === ";" && !inQuote) break;
      if (!inQuote && c === "(") {
        depth++;
        body += " ";
        continue;
      }
      if (!inQuote && c === ")") {
        depth = Math.max(0, depth - 1);
        body += " ";
        continue;
      }
      body += c;
    }
    if (pending) pending.text += " " + body;
    else pending = { line: idx + 1, text: body, indented: /^[ \t]/.test(raw) };
    if (depth === 0) {
      if (pending.text.trim().length > 0) out.push(pending);
      pending = null;
    }
  }
  if (pending && pending.text.trim().length > 0) out.push(pending);
  return out;
}

/**
 * Parsed test zones.
 *
 * @example
 * ```ts
 * const z = StaticZones.parse(["$ORIGIN example.test.\n@ 600 MX 10 mx.example.test.\nmx 600 A 127.0.0.1\n"]);
 * z.answer("example.test", "MX"); // { value: [{ preference: 10, exchange: "mx.example.test." }], ttlMs: 0 }
 * ```
 */
export class StaticZones {
  #records = new Map<string, Data[]>();
  #zones: string[] = [];
  #servfail = new Set<string>();

  /** Parse zone texts (or `{zone, secure}` entries); `servfail` names fail with SERVFAIL. */
  static parse(
    zones: readonly (string | ZoneSource)[],
    servfail: readonly string[] = [],
  ): StaticZones {
    const z = new StaticZones();
    zones.forEach((src, i) => z.#addZone(typeof src === "string" ? src : src.zone, i));
    for (const n of servfail) z.#servfail.add(canonical(n));
    return z;
  }

  #addZone(text: string, index: number): void {
    let origin: string | null = null;
    let defaultTtl = 3600;
    let lastOwner: string | null = null;
    const abs = (name: string, line: number): string => {
      if (name === "@") {
        if (origin === null) throw new ZoneSyntaxError(index, line, "@ used before $ORIGIN");
        return origin;
      }
      if (name.endsWith(".")) return canonical(name);
      if (origin === null) {
        throw new ZoneSyntaxError(index, line, `relative name "${name}" without $ORIGIN`);
      }
      return canonical(origin === "." ? `${name}.` : `${name}.${origin}`);
    };
    for (const l of logicalLines(text)) {
      const toks = tokenize(l.text);
      if (toks.length === 0) continue;
      const first = toks[0].text;
      if (first.toUpperCase() === "$ORIGIN") {
        if (!toks[1]) throw new ZoneSyntaxError(index, l.line, "$ORIGIN needs a name");
        origin = canonical(toks[1].text);
        if (!this.#zones.includes(origin)) this.#zones.push(origin);
        continue;
      }
      if (first.toUpperCase() === "$TTL") {
        if (!toks[1] || !TTL_RE.test(toks[1].text)) {
          throw new ZoneSyntaxError(index, l.line, "$TTL needs a number of seconds");
        }
        defaultTtl = Number(toks[1].text);
        continue;
      }
      let pos = 0;
      let owner: string;
      if (l.indented) {
        if (lastOwner === null) throw new ZoneSyntaxError(index, l.line, "record without an owner");
        owner = lastOwner;
      } else {
        owner = abs(toks[0].text, l.line);
        pos = 1;
      }
      lastOwner = owner;
      let ttl = defaultTtl;
      for (let k = 0; k < 2 && pos < toks.length; k++) {
        const t = toks[pos].text;
        if (TTL_RE.test(t)) {
          ttl = Number(t);
          pos++;
        } else if (CLASSES.has(t.toUpperCase())) pos++;
      }
      const type = toks[pos]?.text.toUpperCase();
      if (!type) throw new ZoneSyntaxError(index, l.line, "missing record type");
      const rdata = toks.slice(pos + 1);
      const need = (n: number) => {
        if (rdata.length < n) {
          throw new ZoneSyntaxError(index, l.line, `${type} record needs ${n} value(s)`);
        }
      };
      let data: Data;
      switch (type) {
        case "A":
        case "AAAA": {
          need(1);
          const ip = rdata[0].text;
          if (!ipaddr.isValid(ip) || ipaddr.parse(ip).kind() !== (type === "A" ? "ipv4" : "ipv6")) {
            throw new ZoneSyntaxError(index, l.line, `invalid ${type} address "${ip}"`);
          }
          data = { type, ttl, value: ipaddr.parse(ip).toString() };
          break;
        }
        case "MX": {
          need(2);
          if (!TTL_RE.test(rdata[0].text)) {
            throw new ZoneSyntaxError(index, l.line, `invalid MX preference "${rdata[0].text}"`);
          }
          data = {
            type,
            ttl,
            value: { preference: Number(rdata[0].text), exchange: abs(rdata[1].text, l.line) },
          };
          break;
        }
        case "TXT":
          need(1);
          data = { type, ttl, value: rdata.map((t) => t.text).join("") };
          break;
        case "PTR":
        case "CNAME":
          need(1);
          data = { type, ttl, value: abs(rdata[0].text, l.line) };
          break;
        default:
          data = { type: "OTHER", ttl, value: rdata.map((t) => t.text).join(" ") };
      }
      const list = this.#records.get(owner) ?? [];
      list.push(data);
      this.#records.set(owner, list);
    }
  }

  /** True when the name has records, or is an ancestor (within a zone) of one that has. */
  #exists(name: string): boolean {
    if (this.#records.has(name)) return true;
    if (this.#zones.includes(name)) return true;
    for (const k of this.#records.keys()) if (k.endsWith("." + name)) return true;
    return false;
  }

  /**
   * The answer for `name`/`type`: values as the {@link Resolver} returns
   * them, never cached (`ttlMs` 0: the data is local).
   *
   * @throws {DnsNxDomainError} the name does not exist
   * @throws {DnsError} SERVFAIL for names listed in `servfail`
   */
  answer(rawName: string, type: DnsRecordType): { value: string[] | MxRecord[]; ttlMs: number } {
    let name = canonical(rawName);
    for (let hops = 0; hops < 8; hops++) {
      if (this.#servfail.has(name)) throw new DnsError("SERVFAIL", rawName, type, "SERVFAIL");
      const list = this.#records.get(name) ?? [];
      const hits = list.filter((r) => r.type === type);
      if (hits.length > 0) {
        if (type === "MX") {
          const mx = hits.map((r) => r.value as MxRecord);
          mx.sort((a, b) =>
            a.preference - b.preference ||
            (a.exchange < b.exchange ? -1 : a.exchange > b.exchange ? 1 : 0)
          );
          return { value: mx, ttlMs: 0 };
        }
        return { value: hits.map((r) => r.value as string), ttlMs: 0 };
      }
      const cname = list.find((r) => r.type === "CNAME");
      if (cname) {
        name = cname.value as string;
        continue;
      }
      if (this.#exists(name)) return { value: [], ttlMs: 0 };
      throw new DnsNxDomainError(rawName, type, true);
    }
    throw new DnsError("FAILED", rawName, type, "CNAME chain too long");
  }
}
