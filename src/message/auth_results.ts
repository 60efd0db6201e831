/**
 * Authentication results (RFC 8601): the `authenticationresult` objects of
 * `msg:dkim_verify()` and the `Authentication-Results` header that
 * `msg:add_authentication_results(serv_id, results)` prepends.
 *
 * Place on the path: message. The header value is laid out as upstream
 * does: `serv_id;` then, per result, a folded line `method[/version]=result
 * [reason="…"]` and one folded line per property (sorted by name); values
 * that are not MIME tokens are quoted. No results: `serv_id; none`.
 *
 * Pure: values in, text out.
 *
 * @module
 */

/** One `resinfo` of RFC 8601 (upstream's AuthenticationResult). */
export interface AuthenticationResult {
  /** The method, e.g. `dkim`, `spf`. */
  method: string;
  method_version?: number;
  /** `pass`, `fail`, `neutral`, `none`, `temperror`, `permerror`, `policy`, … */
  result: string;
  reason?: string;
  /** e.g. `{ "header.d": "example.com" }`. */
  props: Record<string, string>;
}

const KEYS = new Set(["method", "method_version", "result", "reason", "props"]);

function emptyTable(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;
}

/**
 * Validate one result table from policy.
 *
 * @throws {TypeError} on unknown fields or fields of the wrong type.
 */
export function parseAuthenticationResult(v: unknown, where = "result"): AuthenticationResult {
  const bad = (what: string): never => {
    throw new TypeError(`Cannot use authentication ${where}: ${what}`);
  };
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    bad(`expected a table, got ${JSON.stringify(v) ?? String(v)}`);
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) bad(`unknown field "${k}"`);
  if (typeof o.method !== "string" || o.method === "") bad(`"method" must be a non-empty string`);
  if (typeof o.result !== "string" || o.result === "") bad(`"result" must be a non-empty string`);
  if (o.reason !== undefined && typeof o.reason !== "string") bad(`"reason" must be a string`);
  if (
    o.method_version !== undefined &&
    (typeof o.method_version !== "number" || !Number.isInteger(o.method_version) ||
      o.method_version < 0)
  ) bad(`"method_version" must be a non-negative integer`);
  for (const k of ["method", "result", "reason"]) {
    if (typeof o[k] === "string" && /[\r\n]/.test(o[k] as string)) {
      bad(`"${k}" contains a line break`);
    }
  }
  const props: Record<string, string> = {};
  if (o.props !== undefined) {
    if (typeof o.props !== "object" || o.props === null || Array.isArray(o.props)) {
      if (!(Array.isArray(o.props) && o.props.length === 0)) bad(`"props" must be a table`);
    } else {
      for (const [k, pv] of Object.entries(o.props as Record<string, unknown>)) {
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(k)) bad(`invalid property name "${k}"`);
        if (typeof pv !== "string") bad(`property "${k}" must be a string`);
        if (/[\r\n]/.test(pv as string)) bad(`property "${k}" contains a line break`);
        props[k] = pv as string;
      }
    }
  }
  const r: AuthenticationResult = {
    method: o.method as string,
    result: o.result as string,
    props,
  };
  if (o.method_version !== undefined) r.method_version = o.method_version as number;
  if (o.reason !== undefined) r.reason = o.reason as string;
  return r;
}

/**
 * Validate the results array of `msg:add_authentication_results` (an empty
 * Lua table counts as an empty array).
 *
 * @throws {TypeError} when it is not an array of valid results.
 */
export function parseAuthenticationResults(v: unknown): AuthenticationResult[] {
  if (v === undefined || v === null || emptyTable(v)) return [];
  if (!Array.isArray(v)) {
    throw new TypeError(
      `Cannot use authentication results ${JSON.stringify(v)}: expected an array of results`,
    );
  }
  return v.map((x, i) => parseAuthenticationResult(x, `result ${i + 1}`));
}

/** RFC 2045 token characters (no tspecials, no space or controls), plus `@`. */
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~@]+$/;

function token(v: string): string {
  return TOKEN.test(v) ? v : `"${v.replace(/["\\]/g, "\\$&")}"`;
}

/**
 * The `Authentication-Results` header value (folded with CRLF + TAB).
 *
 * @example
 * ```ts
 * formatAuthenticationResults("mx.example", [
 *   { method: "dkim", result: "pass", props: { "header.d": "example.com" } },
 * ]); // "mx.example;\r\n\tdkim=pass\r\n\theader.d=example.com"
 * ```
 */
export function formatAuthenticationResults(
  servId: string,
  results: readonly AuthenticationResult[],
): string {
  if (/[\r\n]/.test(servId) || servId.trim() === "") {
    throw new TypeError(`Cannot use authserv-id ${JSON.stringify(servId)}: expected a host name`);
  }
  if (results.length === 0) return `${servId}; none`;
  let out = servId;
  for (const r of results) {
    out += `;\r\n\t${token(r.method)}`;
    if (r.method_version !== undefined) out += `/${r.method_version}`;
    out += `=${token(r.result)}`;
    if (r.reason !== undefined) out += ` reason=${token(r.reason)}`;
    for (const k of Object.keys(r.props).sort()) out += `\r\n\t${k}=${token(r.props[k])}`;
  }
  return out;
}
