/**
 * Config objects: the typed values `kumo.make_*` returns to Lua.
 *
 * Place on the path: policy. A config object travels through Lua as an
 * opaque reference to this JS value; Lua may read its keys and iterate it
 * (its JSON view: humantime durations, throttle text, CIDR arrays), and the
 * engine gets the typed value back when a handler returns it, without
 * re-converting a Lua table.
 *
 * @module
 */

/** A typed config value plus its Lua-readable JSON view. */
export interface ConfigObject<T = unknown> {
  readonly kind: string;
  readonly value: T;
  readonly view: Record<string, unknown>;
}

/** Tells a config object from anything else a handler may return. */
export function isConfigObject(v: unknown): v is ConfigObject {
  return typeof v === "object" && v !== null && "kind" in v && "value" in v && "view" in v &&
    Object.getPrototypeOf(v) === ConfigObjectProto;
}

const ConfigObjectProto = {};

/**
 * Makes a config object. The view is computed on first read: most config
 * objects go straight back to the engine and are never inspected from Lua.
 */
export function makeConfigObject<T>(
  kind: string,
  value: T,
  view: () => Record<string, unknown>,
): ConfigObject<T> {
  const o = Object.create(ConfigObjectProto);
  o.kind = kind;
  o.value = value;
  let cached: Record<string, unknown> | undefined;
  Object.defineProperty(o, "view", { get: () => cached ??= view(), enumerable: true });
  return o;
}

/**
 * Accepts what an event handler returned for a config-valued event: a config
 * object of the expected kind, or (a harmless superset of upstream) a plain
 * table, parsed with `parse`.
 */
export function expectConfig<T>(
  returned: unknown,
  kind: string,
  parse: (input: unknown) => T,
  event: string,
): T {
  if (isConfigObject(returned)) {
    if (returned.kind !== kind) {
      throw new TypeError(`${event}: expected a ${kind} object, got a ${returned.kind}`);
    }
    return returned.value as T;
  }
  if (returned === null || returned === undefined) {
    throw new TypeError(`${event}: the handler returned nil; expected a ${kind} object`);
  }
  return parse(returned);
}
