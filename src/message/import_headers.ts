/**
 * `msg:import_headers(specs)`: copy header values into message meta by a
 * list of rules, optionally removing the headers in the same pass (upstream's
 * flexible variant of `msg:import_x_headers`).
 *
 * Place on the path: message. Each spec is `{name, match?, transform?,
 * target?, remove?}`: `name` is a header name or a prefix with one trailing
 * `*` (`X-*`), matched case-insensitively; `match` is `last` (default),
 * `first` or `all` (an array); `transform` derives the meta key from the
 * header name as written (`snake_case` default, `kebab_case`, `camel_case`,
 * `pascal_case`); `target` names the key outright (precise names only);
 * `remove` drops the matched fields. The first spec that matches a header
 * wins. A spec without matches writes nothing.
 *
 * Pure: bytes in, meta entries and bytes out.
 *
 * @module
 */

import { getAllHeaders, removeHeaderFields } from "./headers.ts";

/** How a matched header name becomes a meta key. */
export type KeyTransform = "snake_case" | "kebab_case" | "camel_case" | "pascal_case";

/** One validated spec of `msg:import_headers`. */
export interface ImportHeaderSpec {
  /** Lower-cased header name, or lower-cased prefix when `wildcard`. */
  name: string;
  wildcard: boolean;
  match: "first" | "last" | "all";
  transform: KeyTransform;
  target?: string;
  remove: boolean;
}

/** What applying the specs produced. */
export interface ImportHeadersResult {
  /** Meta entries in first-seen order: a string, or an array for `match = 'all'`. */
  meta: [string, string | string[]][];
  /** The message without the removed fields (the input itself when none). */
  data: Uint8Array;
}

const SPEC_KEYS = new Set(["name", "match", "transform", "target", "remove"]);
const MATCHES = new Set(["first", "last", "all"]);
const TRANSFORMS = new Set(["snake_case", "kebab_case", "camel_case", "pascal_case"]);

function fail(i: number, what: string): never {
  throw new TypeError(`Cannot import headers with spec ${i + 1}: ${what}`);
}

/**
 * Validate the Lua table given to `msg:import_headers`.
 *
 * @throws {TypeError} on a missing or ill-formed field, an unsupported
 * wildcard, or `target` with a wildcard name.
 * @example
 * ```ts
 * parseImportHeaderSpecs([{ name: "X-*", remove: true }]);
 * ```
 */
export function parseImportHeaderSpecs(input: unknown): ImportHeaderSpec[] {
  const list = Array.isArray(input)
    ? input
    : typeof input === "object" && input !== null && Object.keys(input).length === 0
    ? []
    : null;
  if (list === null) {
    throw new TypeError(
      `Cannot import headers from ${JSON.stringify(input)}: expected an array of specs`,
    );
  }
  return list.map((raw, i) => {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      fail(i, `expected a table, got ${JSON.stringify(raw)}`);
    }
    const o = raw as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!SPEC_KEYS.has(k)) fail(i, `unknown field "${k}"`);
    if (typeof o.name !== "string" || o.name === "") fail(i, `"name" must be a non-empty string`);
    const star = o.name.indexOf("*");
    const wildcard = star >= 0;
    if (wildcard && (star !== o.name.length - 1 || star === 0)) {
      fail(i, `name "${o.name}": only one trailing "*" after a prefix is supported`);
    }
    const match = o.match ?? "last";
    if (typeof match !== "string" || !MATCHES.has(match)) {
      fail(i, `match "${match}": expected first, last or all`);
    }
    const transform = o.transform ?? "snake_case";
    if (typeof transform !== "string" || !TRANSFORMS.has(transform)) {
      fail(
        i,
        `transform "${transform}": expected snake_case, kebab_case, camel_case or pascal_case`,
      );
    }
    if (o.target !== undefined && (typeof o.target !== "string" || o.target === "")) {
      fail(i, `"target" must be a non-empty string`);
    }
    if (o.target !== undefined && wildcard) {
      fail(i, `target "${o.target}": not allowed with the wildcard name "${o.name}"`);
    }
    if (o.remove !== undefined && typeof o.remove !== "boolean") {
      fail(i, `"remove" must be a boolean`);
    }
    const spec: ImportHeaderSpec = {
      name: (wildcard ? o.name.slice(0, -1) : o.name).toLowerCase(),
      wildcard,
      match: match as ImportHeaderSpec["match"],
      transform: transform as KeyTransform,
      remove: o.remove === true,
    };
    if (o.target !== undefined) spec.target = o.target as string;
    return spec;
  });
}

function capitalize(w: string): string {
  return w.charAt(0).toUpperCase() + w.slice(1).toLowerCase();
}

/**
 * The meta key for header `name` under `transform` (words split at `-`/`_`).
 *
 * @example
 * ```ts
 * metaKeyFor("X-Campaign-Id", "camel_case"); // "xCampaignId"
 * ```
 */
export function metaKeyFor(name: string, transform: KeyTransform): string {
  const words = name.split(/[-_]+/).filter((w) => w !== "");
  switch (transform) {
    case "snake_case":
      return words.map((w) => w.toLowerCase()).join("_");
    case "kebab_case":
      return words.map((w) => w.toLowerCase()).join("-");
    case "camel_case":
      return words.map((w, i) => i === 0 ? w.toLowerCase() : capitalize(w)).join("");
    case "pascal_case":
      return words.map(capitalize).join("");
  }
}

/**
 * Apply validated specs to a message's bytes.
 *
 * @example
 * ```ts
 * const data = new TextEncoder().encode("X-A: 1\r\nX-A: 2\r\n\r\nbody");
 * importHeaders(data, parseImportHeaderSpecs([{ name: "X-A", match: "all" }])).meta;
 * // [["x_a", ["1", "2"]]]
 * ```
 */
export function importHeaders(
  data: Uint8Array,
  specs: readonly ImportHeaderSpec[],
): ImportHeadersResult {
  const values = new Map<string, { match: ImportHeaderSpec["match"]; values: string[] }>();
  const remove = new Set<number>();
  getAllHeaders(data).forEach((h, pos) => {
    const lower = h.name.toLowerCase();
    const spec = specs.find((s) => s.wildcard ? lower.startsWith(s.name) : lower === s.name);
    if (spec === undefined) return;
    const key = spec.target ?? metaKeyFor(h.name, spec.transform);
    let slot = values.get(key);
    if (slot === undefined) values.set(key, slot = { match: spec.match, values: [] });
    slot.values.push(h.value);
    if (spec.remove) remove.add(pos);
  });
  const meta: [string, string | string[]][] = [];
  for (const [key, slot] of values) {
    const v = slot.values;
    meta.push([key, slot.match === "all" ? v : slot.match === "first" ? v[0] : v[v.length - 1]]);
  }
  return { meta, data: removeHeaderFields(data, remove) };
}
