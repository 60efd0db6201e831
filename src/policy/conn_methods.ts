/**
 * `conn_meta:method(...)` for policy: connection metadata (lua-api.md §7.4).
 *
 * Place on the path: policy. The SMTP server owns the ConnMeta values.
 *
 * @module
 */

/** Connection metadata shared by a session and the messages it creates. */
export class ConnMeta {
  readonly values: Record<string, unknown>;
  authInfo?: unknown;
  constructor(values: Record<string, unknown> = {}) {
    this.values = values;
  }
  /** The value under `key` (`conn_meta:get_meta`); undefined when unset. */
  get(key: string): unknown {
    return this.values[key];
  }
  /** Set `key` (`conn_meta:set_meta`); null or undefined removes it. */
  set(key: string, value: unknown): void {
    if (value === null || value === undefined) delete this.values[key];
    else this.values[key] = value;
  }
}

/** The conn_meta methods, by Lua name. */
export const CONN_METHODS: Record<string, (c: ConnMeta, ...args: never[]) => unknown> = {
  get_meta: (c, k: string) => c.get(String(k)),
  set_meta: (c, k: string, v: unknown) => c.set(String(k), v),
  auth_info: (c) => c.authInfo,
};
