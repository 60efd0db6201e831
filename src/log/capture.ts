/**
 * Meta and header capture for log records (logs.md §1.3).
 *
 * Place on the mail's path: a logger compiles its `meta`/`headers` lists
 * once at configuration time; per record it copies the selected message meta
 * keys and headers into the record. Headers come through a callback so the
 * body is only parsed when a header list is configured; it must never call
 * that callback for an empty list.
 *
 * @module
 */

/** A compiled capture list: exact names plus trailing-`*` prefixes. */
export interface CaptureSpec {
  /** Exact names in configuration order (lower-cased for headers). */
  exact: string[];
  /** Prefixes from `prefix*` entries (lower-cased for headers); `""` means all. */
  prefixes: string[];
  /** True when the list is empty: nothing to capture. */
  empty: boolean;
  /** True when names compare case-insensitively (headers). */
  caseInsensitive: boolean;
}

/** One message header as the capture callback returns it. */
export interface HeaderField {
  name: string;
  value: string;
}

/**
 * Compile a capture list such as `["tenant", "x_*", "*"]`.
 *
 * @param list entries from `configure_local_logs { meta = ..., headers = ... }`
 * @param caseInsensitive true for header lists
 * @example
 * ```ts
 * const spec = compileCapture(["Subject", "X-*"], true);
 * ```
 */
export function compileCapture(list: readonly string[], caseInsensitive = false): CaptureSpec {
  const exact: string[] = [];
  const prefixes: string[] = [];
  for (const raw of list) {
    const name = caseInsensitive ? raw.toLowerCase() : raw;
    if (name.endsWith("*")) {
      const p = name.slice(0, -1);
      if (!prefixes.includes(p)) prefixes.push(p);
    } else if (!exact.includes(name)) {
      exact.push(name);
    }
  }
  return { exact, prefixes, empty: list.length === 0, caseInsensitive };
}

function matchesPrefix(prefixes: readonly string[], name: string): boolean {
  for (let i = 0; i < prefixes.length; i++) {
    if (name.startsWith(prefixes[i])) return true;
  }
  return false;
}

/**
 * Copy the selected meta keys: exact names present and not null, then every
 * key matching a prefix (case-sensitive).
 *
 * @example
 * ```ts
 * captureMeta(compileCapture(["tenant", "x_*"]), { tenant: "a", x_y: 1, z: 2 });
 * // { tenant: "a", x_y: 1 }
 * ```
 */
export function captureMeta(
  spec: CaptureSpec,
  meta: Record<string, unknown>,
): Record<string, unknown> {
  if (spec.empty) return {};
  const out: Record<string, unknown> = {};
  const exact = spec.exact;
  for (let i = 0; i < exact.length; i++) {
    const v = meta[exact[i]];
    if (v !== undefined && v !== null) out[exact[i]] = v;
  }
  if (spec.prefixes.length > 0) {
    for (const key in meta) {
      if (!Object.hasOwn(meta, key) || Object.hasOwn(out, key)) continue;
      const v = meta[key];
      if (v === undefined || v === null) continue;
      if (matchesPrefix(spec.prefixes, key)) out[key] = v;
    }
  }
  return out;
}

/**
 * Copy the selected headers: case-insensitive match, original spelling as
 * the key (first occurrence's), a single occurrence as a string and several
 * as an array. The callback is not called for an empty list.
 *
 * @example
 * ```ts
 * captureHeaders(compileCapture(["subject"], true), () => [{ name: "Subject", value: "hi" }]);
 * // { Subject: "hi" }
 * ```
 */
export function captureHeaders(
  spec: CaptureSpec,
  getAllHeaders: () => readonly HeaderField[],
): Record<string, unknown> {
  if (spec.empty) return {};
  const headers = getAllHeaders();
  if (headers.length === 0) return {};
  const out: Record<string, unknown> = {};
  // lower-cased name -> key used in `out` (first spelling seen)
  let keys: Map<string, string> | null = null;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i];
    const lower = h.name.toLowerCase();
    if (!spec.exact.includes(lower) && !matchesPrefix(spec.prefixes, lower)) continue;
    keys ??= new Map();
    const key = keys.get(lower);
    if (key === undefined) {
      keys.set(lower, h.name);
      out[h.name] = h.value;
      continue;
    }
    const prev = out[key];
    if (Array.isArray(prev)) prev.push(h.value);
    else out[key] = [prev as string, h.value];
  }
  return out;
}
