/**
 * A tiny strict converter DSL: turns a Lua parameter table (already converted
 * to plain JS values) into a typed config object, and back to its JSON/Lua
 * readable form.
 *
 * Every `kumo.make_*` / `start_*` / `define_*` / `configure_*` binding in
 * `policy/` goes through here, once per call, before the mail's path uses the
 * result. Conversion mirrors serde's `deny_unknown_fields` structs, including
 * the error wording (`deserialize error: unknown field \`x\`, expected one of
 * ..., while processing <json>`) that `policy-extras/typing.lua` extracts.
 * Lua snake_case keys become camelCase properties here and nowhere else.
 * Never silently ignores an unknown key unless a schema asks for it.
 *
 * @module
 */

import { ConfigError } from "../../util/config_error.ts";
import { formatDuration, parseDuration } from "../../util/duration.ts";
import {
  formatThrottleSpec,
  parseThrottleSpec,
  type ThrottleSpec,
} from "../../util/throttle_spec.ts";
import { formatLimitSpec, type LimitSpec, parseLimitSpec } from "../../util/limit_spec.ts";
import { CidrMap, CidrSet } from "../../util/cidr.ts";
import ipaddr from "ipaddr.js";

/** Conversion context: the whole input (for the error) and the current key path. */
export interface Cx {
  /** The top-level table being converted (printed after `while processing`). */
  root: unknown;
  /** Dotted key path of the current value (`peer.10.0.0.0/8.banner`). */
  key: string;
}

/** A value converter. */
export interface Kind<T> {
  /** serde's "expected ..." wording, e.g. `a string`, `u64`. */
  readonly expecting: string;
  /** Convert one input value; throws {@linkcode ConfigError}. */
  parse(v: unknown, cx: Cx): T;
  /** The JSON/Lua-readable form of a converted value. */
  toJSON(v: T): unknown;
}

/** How a struct field treats an absent (nil) value. */
export interface FieldDef<T> {
  readonly kind: Kind<unknown>;
  readonly mode: "required" | "optional" | "default";
  readonly dflt?: () => T;
  /** Phantom: the converted type. */
  readonly _t?: T;
}

/** Snake-case Lua key → camelCase property name (type level). */
export type CamelCase<S extends string> = S extends `${infer H}_${infer T}`
  ? `${H}${Capitalize<CamelCase<T>>}`
  : S;

type FieldType<D> = D extends FieldDef<infer T> ? T : never;

/**
 * The converted object type of a field table: camelCase keys; fields that may
 * be undefined (optional) become optional properties.
 */
export type ObjectOf<F extends Record<string, FieldDef<unknown>>> =
  & {
    [K in keyof F as undefined extends FieldType<F[K]> ? never : CamelCase<K & string>]: FieldType<
      F[K]
    >;
  }
  & {
    [K in keyof F as undefined extends FieldType<F[K]> ? CamelCase<K & string> : never]?: FieldType<
      F[K]
    >;
  };

/** Snake-case Lua key → camelCase property name. */
export function camelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

// ---------------------------------------------------------------- errors

/** Compact JSON of the input, safe for functions, bigints and cycles. */
export function compactJson(v: unknown): string {
  const seen = new WeakSet<object>();
  try {
    return JSON.stringify(v, (_k, x) => {
      if (typeof x === "bigint") return x.toString();
      if (typeof x === "function") return "<function>";
      if (x !== null && typeof x === "object") {
        if (seen.has(x)) return "<cycle>";
        seen.add(x);
      }
      return x;
    }) ?? "null";
  } catch {
    return String(v);
  }
}

/** Throw a serde-worded conversion error for `cx`. */
export function fail(cx: Cx, message: string): never {
  throw new ConfigError(
    `deserialize error: ${message}, while processing ${compactJson(cx.root)}`,
    { key: cx.key || undefined },
  );
}

/** serde's description of an unexpected value (`string "x"`, `integer \`5\``, `map`). */
export function describeFound(v: unknown): string {
  if (v === null || v === undefined) return "unit value";
  switch (typeof v) {
    case "boolean":
      return `boolean \`${v}\``;
    case "number":
      return Number.isInteger(v) ? `integer \`${v}\`` : `floating point \`${v}\``;
    case "bigint":
      return `integer \`${v}\``;
    case "string":
      return `string ${JSON.stringify(v)}`;
    case "function":
      return "function";
    default:
      return Array.isArray(v) ? "sequence" : "map";
  }
}

/** serde's `OneOf` wording: `` `a` ``, `` `a` or `b` ``, `` one of `a`, `b`, `c` ``. */
export function oneOf(names: readonly string[]): string {
  const q = names.map((n) => `\`${n}\``);
  if (q.length === 1) return q[0];
  if (q.length === 2) return `${q[0]} or ${q[1]}`;
  return `one of ${q.join(", ")}`;
}

function invalidType(cx: Cx, v: unknown, expecting: string): never {
  return fail(cx, `invalid type: ${describeFound(v)}, expected ${expecting}`);
}

function sub(cx: Cx, key: string): Cx {
  return { root: cx.root, key: cx.key ? `${cx.key}.${key}` : key };
}

/** Run a scalar parser, re-wording its ConfigError in serde style. */
function wrap<T>(cx: Cx, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ConfigError) fail(cx, e.message);
    throw e;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

// ---------------------------------------------------------------- field modes

/** A field that must be present. */
export function req<T>(kind: Kind<T>): FieldDef<T> {
  return { kind, mode: "required" };
}

/** A field that may be absent (undefined in the result). */
export function opt<T>(kind: Kind<T>): FieldDef<T | undefined> {
  return { kind, mode: "optional" };
}

/** A field with a default (a value or a factory for mutable defaults). */
export function dflt<T>(kind: Kind<T>, value: T | (() => T)): FieldDef<T> {
  const f = typeof value === "function" ? value as () => T : () => value;
  return { kind, mode: "default", dflt: f };
}

// ---------------------------------------------------------------- scalar kinds

/** Any Lua string. */
export function string(): Kind<string> {
  return {
    expecting: "a string",
    parse(v, cx) {
      return typeof v === "string" ? v : invalidType(cx, v, this.expecting);
    },
    toJSON: (v) => v,
  };
}

/** A boolean. */
export function bool(): Kind<boolean> {
  return {
    expecting: "a boolean",
    parse(v, cx) {
      return typeof v === "boolean" ? v : invalidType(cx, v, this.expecting);
    },
    toJSON: (v) => v,
  };
}

/** Options of {@linkcode int}. */
export interface IntOptions {
  /** Smallest accepted value. @default 0 */
  min?: number;
  /** Largest accepted value. @default Number.MAX_SAFE_INTEGER */
  max?: number;
  /** serde's type name in errors. @default "u64" (or "i64" when min < 0) */
  name?: string;
}

/** An integer (Lua integer or integral float) within `[min, max]`. */
export function int(opts: IntOptions = {}): Kind<number> {
  const min = opts.min ?? 0;
  const max = opts.max ?? Number.MAX_SAFE_INTEGER;
  const expecting = opts.name ?? (min < 0 ? "i64" : "u64");
  return {
    expecting,
    parse(v, cx) {
      if (typeof v !== "number" || !Number.isInteger(v)) return invalidType(cx, v, expecting);
      if (v < min || v > max) fail(cx, `invalid value: integer \`${v}\`, expected ${expecting}`);
      return v;
    },
    toJSON: (v) => v,
  };
}

/** Any finite number. */
export function number(): Kind<number> {
  return {
    expecting: "f64",
    parse(v, cx) {
      return typeof v === "number" && Number.isFinite(v) ? v : invalidType(cx, v, "f64");
    },
    toJSON: (v) => v,
  };
}

/** A duration (seconds number or humantime string) → milliseconds. */
export function duration(): Kind<number> {
  const expecting = 'a duration (number of seconds or string like "5m")';
  return {
    expecting,
    parse(v, cx) {
      if (typeof v !== "number" && typeof v !== "string") return invalidType(cx, v, expecting);
      return wrap(cx, () => parseDuration(v, cx.key));
    },
    toJSON: formatDuration,
  };
}

/** A throttle spec string (`"100/h"`); JSON form is its canonical text. */
export function throttle(): Kind<ThrottleSpec> {
  const expecting = 'a throttle spec string like "100/h"';
  return {
    expecting,
    parse(v, cx) {
      if (typeof v !== "string") return invalidType(cx, v, expecting);
      return wrap(cx, () => parseThrottleSpec(v, cx.key));
    },
    toJSON: (v) => v.text || formatThrottleSpec(v),
  };
}

/** A limit spec (integer ≥ 1 or `"[local:]N"`). */
export function limit(): Kind<LimitSpec> {
  const expecting = 'an integer or a limit string like "local:10"';
  return {
    expecting,
    parse(v, cx) {
      if (typeof v !== "number" && typeof v !== "string") return invalidType(cx, v, expecting);
      return wrap(cx, () => parseLimitSpec(v, cx.key));
    },
    toJSON: formatLimitSpec,
  };
}

/** A CIDR list (array of IP/CIDR strings; `{}` = empty). JSON form: array of strings. */
export function cidrList(): Kind<CidrSet> {
  const expecting = "a sequence of CIDR strings";
  return {
    expecting,
    parse(v, cx) {
      if (v === null || typeof v !== "object") return invalidType(cx, v, expecting);
      return wrap(cx, () => CidrSet.parse(v, cx.key));
    },
    toJSON: (v) => v.toJSON(),
  };
}

/** A table keyed by IP/CIDR string (`[]` = empty), longest-prefix lookup. */
export function cidrMap<V>(value: Kind<V>): Kind<CidrMap<V>> {
  const expecting = "a map keyed by CIDR";
  return {
    expecting,
    parse(v, cx) {
      if (v === null || typeof v !== "object") return invalidType(cx, v, expecting);
      if (Array.isArray(v) && v.length > 0) return invalidType(cx, v, expecting);
      return wrap(
        cx,
        () => CidrMap.parse(v, (x, key) => value.parse(x, { root: cx.root, key }), cx.key),
      );
    },
    toJSON: (v) => v.toObject((x) => value.toJSON(x)),
  };
}

/** One of a fixed, case-sensitive list of strings (serde unit variants). */
export function enumOf<const T extends string>(variants: readonly T[]): Kind<T> {
  const expecting = oneOf(variants);
  return {
    expecting: `enum with variants ${expecting}`,
    parse(v, cx) {
      if (typeof v !== "string") return invalidType(cx, v, "a string variant name");
      if (!(variants as readonly string[]).includes(v)) {
        fail(cx, `unknown variant \`${v}\`, expected ${expecting}`);
      }
      return v as T;
    },
    toJSON: (v) => v,
  };
}

/** A string naming an IP address (no port). */
export function ip(): Kind<string> {
  return {
    expecting: "an IP address",
    parse(v, cx) {
      if (typeof v !== "string") return invalidType(cx, v, this.expecting);
      if (!isIp(v)) fail(cx, `invalid value: string ${JSON.stringify(v)}, expected an IP address`);
      return v;
    },
    toJSON: (v) => v,
  };
}

/** A `"host:port"` / `"[v6]:port"` string. */
export function hostPort(): Kind<string> {
  return {
    expecting: "a host:port string",
    parse(v, cx) {
      if (typeof v !== "string") return invalidType(cx, v, this.expecting);
      if (splitHostPort(v) === undefined) {
        fail(cx, `invalid value: string ${JSON.stringify(v)}, expected a host:port string`);
      }
      return v;
    },
    toJSON: (v) => v,
  };
}

/** Any JSON-like value, passed through unchanged. */
export function anyJson(): Kind<unknown> {
  return { expecting: "any value", parse: (v) => v, toJSON: (v) => v };
}

/** A custom kind built from a parse and a toJSON function. */
export function custom<T>(
  expecting: string,
  parse: (v: unknown, cx: Cx) => T,
  toJSON: (v: T) => unknown = (v) => v,
): Kind<T> {
  return { expecting, parse, toJSON };
}

// ---------------------------------------------------------------- containers

/** An array (`{}` = empty; a table keyed 1..n also counts). */
export function array<T>(item: Kind<T>): Kind<T[]> {
  const expecting = "a sequence";
  return {
    expecting,
    parse(v, cx) {
      let list: unknown[];
      if (Array.isArray(v)) list = v;
      else if (isPlainObject(v)) {
        const keys = Object.keys(v);
        if (!keys.every((k, i) => k === String(i + 1))) return invalidType(cx, v, expecting);
        list = keys.map((k) => v[k]);
      } else return invalidType(cx, v, expecting);
      return list.map((x, i) => item.parse(x, sub(cx, String(i + 1))));
    },
    toJSON: (v) => v.map((x) => item.toJSON(x)),
  };
}

/** A string-keyed map (`[]` = empty). */
export function map<T>(value: Kind<T>): Kind<Record<string, T>> {
  const expecting = "a map";
  return {
    expecting,
    parse(v, cx) {
      if (Array.isArray(v) && v.length === 0) return {};
      if (!isPlainObject(v)) return invalidType(cx, v, expecting);
      const out: Record<string, T> = {};
      for (const [k, x] of Object.entries(v)) out[k] = value.parse(x, sub(cx, k));
      return out;
    },
    toJSON: (v) => {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = value.toJSON(x);
      return out;
    },
  };
}

/** Array of strings. */
export function stringArray(): Kind<string[]> {
  return array(string());
}

/** Map of string to string. */
export function stringMap(): Kind<Record<string, string>> {
  return map(string());
}

/** Options of {@linkcode object}. */
export interface ObjectOptions {
  /** Rust struct name, for `expected struct X` wording. */
  name?: string;
  /** Silently drop unknown keys (dkim signer params upstream). @default false */
  ignoreUnknown?: boolean;
}

/** A struct kind; keeps its field table so it can be made partial. */
export interface ObjectKind<F extends Record<string, FieldDef<unknown>>> extends Kind<ObjectOf<F>> {
  readonly fields: F;
  /** The JSON/Lua-readable form: snake_case keys, absent optionals omitted. */
  toJSON(v: ObjectOf<F>): Record<string, unknown>;
  readonly options: ObjectOptions;
}

/**
 * A struct with named fields: unknown keys rejected, missing required keys
 * rejected, defaults filled in, keys camelCased in the result.
 *
 * @example
 * ```ts
 * const Pool = object({ name: req(string()), ttl: dflt(duration(), 60_000) }, { name: "EgressPool" });
 * convert(Pool, { name: "p" }); // { name: "p", ttl: 60000 }
 * ```
 */
export function object<F extends Record<string, FieldDef<unknown>>>(
  fields: F,
  options: ObjectOptions = {},
): ObjectKind<F> {
  const names = Object.keys(fields);
  const props = names.map(camelCase);
  const expecting = options.name ? `struct ${options.name}` : "a map";
  return {
    fields,
    options,
    expecting,
    parse(v, cx) {
      let table: Record<string, unknown>;
      if (Array.isArray(v) && v.length === 0) table = {};
      else if (isPlainObject(v)) table = v;
      else return invalidType(cx, v, expecting);
      if (!options.ignoreUnknown) {
        for (const k of Object.keys(table)) {
          if (!Object.hasOwn(fields, k)) {
            fail(
              cx,
              names.length === 0
                ? `unknown field \`${k}\`, there are no fields`
                : `unknown field \`${k}\`, expected ${oneOf(names)}`,
            );
          }
        }
      }
      const out: Record<string, unknown> = {};
      for (let i = 0; i < names.length; i++) {
        const name = names[i];
        const def = fields[name];
        const raw = Object.hasOwn(table, name) ? table[name] : undefined;
        if (raw === undefined || raw === null) {
          if (def.mode === "required") fail(cx, `missing field \`${name}\``);
          if (def.mode === "default") out[props[i]] = def.dflt!();
          else out[props[i]] = undefined;
          continue;
        }
        out[props[i]] = def.kind.parse(raw, sub(cx, name));
      }
      return out as ObjectOf<F>;
    },
    toJSON(v) {
      const src = v as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (let i = 0; i < names.length; i++) {
        const x = Object.hasOwn(src, props[i]) ? src[props[i]] : undefined;
        if (x !== undefined) out[names[i]] = fields[names[i]].kind.toJSON(x);
      }
      return out;
    },
  };
}

/** The same struct with every field optional and no defaults (override blocks). */
export type PartialFields<F extends Record<string, FieldDef<unknown>>> = {
  [K in keyof F]: FieldDef<(F[K] extends FieldDef<infer T> ? T : never) | undefined>;
};

/**
 * Make every field of a struct optional without defaults; used for `peer` /
 * `via` override blocks and dynamic parameters, where absence means "keep".
 */
export function partial<F extends Record<string, FieldDef<unknown>>>(
  kind: ObjectKind<F>,
  options: ObjectOptions = kind.options,
): ObjectKind<PartialFields<F>> {
  const fields: Record<string, FieldDef<unknown>> = {};
  for (const [k, def] of Object.entries(kind.fields)) fields[k] = opt(def.kind);
  return object(fields as PartialFields<F>, options);
}

// ---------------------------------------------------------------- KeySource

/** Where a secret (certificate, key, password) comes from. */
export type KeySource =
  | { kind: "file"; path: string }
  | { kind: "data"; data: string }
  | {
    kind: "vault";
    mount: string;
    path: string;
    /** Key inside the vault secret. @default "key" */
    key: string;
    /** Vault URL; resolved from `$VAULT_ADDR` at use time when absent. */
    address?: string;
    /** Vault token; resolved from `$VAULT_TOKEN` at use time when absent. */
    token?: string;
  }
  | { kind: "event"; eventName: string; eventArgs: unknown[] };

const KEY_DATA = object({ key_data: req(string()) });
const VAULT = object({
  vault_address: opt(string()),
  vault_token: opt(string()),
  vault_mount: req(string()),
  vault_path: req(string()),
  vault_key: dflt(string(), "key"),
});
const EVENT = object({ event_name: req(string()), event_args: dflt(array(anyJson()), () => []) });

/**
 * KeySource: a path string, `{key_data}`, `{vault_mount, vault_path,
 * vault_key?, vault_address?, vault_token?}` or `{event_name, event_args}`.
 */
export function keySource(): Kind<KeySource> {
  const expecting = "a path string or a key_data / vault / event_name table";
  return {
    expecting,
    parse(v, cx): KeySource {
      if (typeof v === "string") return { kind: "file", path: v };
      if (!isPlainObject(v)) return invalidType(cx, v, expecting);
      if ("key_data" in v) return { kind: "data", data: KEY_DATA.parse(v, cx).keyData };
      if ("vault_mount" in v || "vault_path" in v) {
        const x = VAULT.parse(v, cx);
        return {
          kind: "vault",
          mount: x.vaultMount,
          path: x.vaultPath,
          key: x.vaultKey,
          address: x.vaultAddress,
          token: x.vaultToken,
        };
      }
      if ("event_name" in v) {
        const x = EVENT.parse(v, cx);
        return { kind: "event", eventName: x.eventName, eventArgs: x.eventArgs };
      }
      return fail(cx, "data did not match any variant of untagged enum KeySource");
    },
    toJSON(v) {
      switch (v.kind) {
        case "file":
          return v.path;
        case "data":
          return { key_data: v.data };
        case "vault": {
          const out: Record<string, unknown> = {
            vault_mount: v.mount,
            vault_path: v.path,
            vault_key: v.key,
          };
          if (v.address !== undefined) out.vault_address = v.address;
          if (v.token !== undefined) out.vault_token = v.token;
          return out;
        }
        case "event":
          return { event_name: v.eventName, event_args: v.eventArgs };
      }
    },
  };
}

// ---------------------------------------------------------------- entry point

/**
 * Convert a whole parameter table with `kind`.
 *
 * @throws {ConfigError} `deserialize error: ..., while processing <json>`
 */
export function convert<T>(kind: Kind<T>, input: unknown): T {
  return kind.parse(input, { root: input, key: "" });
}

// ---------------------------------------------------------------- address helpers

/** Whether `s` is an IPv4 dotted quad or an IPv6 literal. */
export function isIp(s: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(s) || (s.includes(":") && ipaddr.IPv6.isValid(s));
}

/** Split `"host:port"` / `"[v6]:port"`; undefined when malformed. */
export function splitHostPort(s: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:\[\]]+):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  if (s.startsWith("[") && !isIp(m[1])) return undefined;
  return { host: m[1], port };
}
