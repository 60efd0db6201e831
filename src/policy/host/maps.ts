/**
 * Host-side lookup maps for policy: `kumo.domain_map`, `kumo.cidr.make_map`
 * and `kumo.regex_set_map`.
 *
 * Place on the path: policy (host functions). The data lives in JS so that a
 * map survives `kumo.memoize` (the prelude marshals the reference, not a copy)
 * and lookups cost one host call.
 *
 * @module
 */

import { CidrMap } from "../../util/cidr.ts";

interface DomainNode<V> {
  value?: V;
  hasValue: boolean;
  wildcard?: { value: V };
  children: Map<string, DomainNode<V>>;
}

function newNode<V>(): DomainNode<V> {
  return { hasValue: false, children: new Map() };
}

/**
 * Map keyed by domain, with `*.suffix` wildcards, matched label by label from
 * the right: an exact key beats a wildcard; `*.example.com` never matches
 * `example.com`; once an exact label node exists the walk descends into it
 * (policy-extras.md, domain_map rules). Keys are case-sensitive.
 */
export class DomainMap<V> {
  #root: DomainNode<V> = newNode();

  /** Add or replace `key` (a domain, or `*.suffix` for a wildcard). */
  set(key: string, value: V): void {
    const labels = key.split(".").reverse();
    let node = this.#root;
    const wildcard = labels[labels.length - 1] === "*";
    const path = wildcard ? labels.slice(0, -1) : labels;
    for (const l of path) {
      let child = node.children.get(l);
      if (!child) {
        child = newNode();
        node.children.set(l, child);
      }
      node = child;
    }
    if (wildcard) node.wildcard = { value };
    else {
      node.value = value;
      node.hasValue = true;
    }
  }

  /** The value for `name` by the matching rules above; undefined when nothing matches. */
  get(name: string): V | undefined {
    const labels = name.split(".");
    let node = this.#root;
    for (let i = labels.length - 1; i >= 0; i--) {
      const child = node.children.get(labels[i]);
      if (!child) return node.wildcard?.value;
      node = child;
    }
    return node.hasValue ? node.value : undefined;
  }
}

/** A map from regular expression to value; the first matching pattern wins. */
export class RegexSetMap<V> {
  #entries: [RegExp, V][] = [];
  /** Add `pattern` (a JavaScript regular expression) after the existing ones. */
  set(pattern: string, value: V): void {
    this.#entries.push([new RegExp(pattern), value]);
  }
  /** The value of the first pattern matching `text`; undefined when none. */
  get(text: string): V | undefined {
    for (const [re, v] of this.#entries) if (re.test(text)) return v;
    return undefined;
  }
}

/** `kumo.cidr.make_map`: longest-prefix lookups; assignment rebuilds the table. */
export class LuaCidrMap {
  #entries: Record<string, unknown>;
  #map: CidrMap<unknown>;
  constructor(init: Record<string, unknown>) {
    this.#entries = { ...init };
    this.#map = CidrMap.parse(this.#entries, (v) => v);
  }
  /** The value of the longest prefix containing `ip`; undefined when none. */
  get(ip: string): unknown {
    return this.#map.get(ip);
  }
  /** Add or replace `cidr` and rebuild the lookup table. */
  set(cidr: string, value: unknown): void {
    const next = { ...this.#entries, [cidr]: value };
    this.#map = CidrMap.parse(next, (v) => v);
    this.#entries = next;
  }
}

/** Host functions backing the maps (ud = the JS map object). */
export const MAP_FUNCTIONS = {
  domain_map_new(init: Record<string, unknown>) {
    const m = new DomainMap<unknown>();
    for (const k in init ?? {}) m.set(k, init[k]);
    return m;
  },
  domain_map_get: (m: DomainMap<unknown>, k: string) => m.get(String(k)),
  domain_map_set: (m: DomainMap<unknown>, k: string, v: unknown) => m.set(String(k), v),
  cidr_map_new: (init: Record<string, unknown>) => new LuaCidrMap(init ?? {}),
  cidr_map_get: (m: LuaCidrMap, k: string) => m.get(String(k)),
  cidr_map_set: (m: LuaCidrMap, k: string, v: unknown) => m.set(String(k), v),
  regex_map_new(init: Record<string, unknown>) {
    const m = new RegexSetMap<unknown>();
    for (const k in init ?? {}) m.set(k, init[k]);
    return m;
  },
  regex_map_get: (m: RegexSetMap<unknown>, k: string) => m.get(String(k)),
  regex_map_set: (m: RegexSetMap<unknown>, k: string, v: unknown) => m.set(String(k), v),
};
