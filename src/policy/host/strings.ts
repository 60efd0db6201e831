/**
 * kumo.string.*: the string helpers of KumoMTA's Lua API.
 *
 * Place on the path: policy (host functions). Pure functions with Rust's
 * `str` semantics (an empty pattern matches at every character boundary);
 * `psl_*` use the full Public Suffix List (tldts, private section
 * included); `eval_template` is MiniJinja (minijinja-js) like upstream;
 * `normalize_smtp_response` is in src/util/normalize_smtp_response.ts.
 *
 * @module
 */

import { getDomain, getPublicSuffix } from "tldts";
import { Environment } from "minijinja-js";
import { multi } from "../lua_context.ts";
import {
  loadNormalizerDictionary,
  normalizeSmtpResponse,
} from "../../util/normalize_smtp_response.ts";

/**
 * Start offsets of the non-overlapping matches of `pat` in `s`, left to
 * right, as Rust's `str::matches` finds them: an empty pattern matches at
 * every character boundary, including both ends.
 */
function matchOffsets(s: string, pat: string, limit = Infinity): number[] {
  const out: number[] = [];
  if (pat.length === 0) {
    let i = 0;
    for (const c of s) {
      if (out.length >= limit) return out;
      out.push(i);
      i += c.length;
    }
    if (out.length < limit) out.push(s.length);
    return out;
  }
  for (let i = s.indexOf(pat); i >= 0 && out.length < limit; i = s.indexOf(pat, i + pat.length)) {
    out.push(i);
  }
  return out;
}

/** The same from the right (Rust's `rmatch_indices`), rightmost first. */
function rmatchOffsets(s: string, pat: string, limit = Infinity): number[] {
  if (pat.length === 0) return matchOffsets(s, pat).reverse().slice(0, limit);
  const out: number[] = [];
  let end = s.length;
  while (out.length < limit && end >= pat.length) {
    const i = s.lastIndexOf(pat, end - pat.length);
    if (i < 0) break;
    out.push(i);
    end = i;
  }
  return out;
}

/** Rust's `split`: every piece between matches, left to right. */
export function split(s: string, pat: string): string[] {
  return splitn(s, Infinity, pat);
}

/** Rust's `splitn`: at most `n` pieces, the last holding the rest (`n = 0` gives none). */
export function splitn(s: string, n: number, pat: string): string[] {
  if (n <= 0) return [];
  const out: string[] = [];
  let start = 0;
  for (const i of matchOffsets(s, pat, n - 1)) {
    // An empty pattern's match at 0 yields a leading "" piece, as in Rust.
    out.push(s.slice(start, i));
    start = i + pat.length;
  }
  out.push(s.slice(start));
  return out;
}

/** Rust's `rsplit`: the pieces from the right. */
export function rsplit(s: string, pat: string): string[] {
  return rsplitn(s, Infinity, pat);
}

/** Rust's `rsplitn`: at most `n` pieces from the right, the last holding the rest. */
export function rsplitn(s: string, n: number, pat: string): string[] {
  if (n <= 0) return [];
  const out: string[] = [];
  let end = s.length;
  for (const i of rmatchOffsets(s, pat, n - 1)) {
    out.push(s.slice(i + pat.length, end));
    end = i;
  }
  out.push(s.slice(0, end));
  return out;
}

/** Rust's `replacen`: replace the first `n` matches (`Infinity` = all, like `replace`). */
export function replacen(s: string, from: string, to: string, n: number): string {
  let out = "";
  let last = 0;
  for (const i of matchOffsets(s, from, n)) {
    out += s.slice(last, i) + to;
    last = i + from.length;
  }
  return out + s.slice(last);
}

const utf8Length = (s: string) => new TextEncoder().encode(s).length;

/**
 * `kumo.string.wrap(text, soft=75, hard=900)`, upstream's header folding:
 * words are packed while the line stays under `soft` bytes; a word that
 * does not fit starts a new line; a word longer than `hard` bytes is broken
 * every `hard` bytes (never inside a UTF-8 sequence). Breaks are `\r\n\t`;
 * trailing whitespace is trimmed.
 *
 * @example
 * ```ts
 * wrap("hello world", 10, 15); // "hello\r\n\tworld"
 * ```
 */
export function wrap(text: string, soft = 75, hard = 900): string {
  let result = "";
  let line = "";
  let lineLen = 0;
  const flush = () => {
    if (result.length > 0) result += "\t";
    result += line + "\r\n";
    line = "";
    lineLen = 0;
  };
  // Every ASCII whitespace byte separates words (runs give empty words, as upstream).
  for (const word of text.split(/[ \t\n\r\f]/)) {
    const wordLen = utf8Length(word);
    if (lineLen + wordLen < soft) {
      if (lineLen > 0) {
        line += " ";
        lineLen++;
      }
      line += word;
      lineLen += wordLen;
      continue;
    }
    if (lineLen > 0) flush();
    if (wordLen <= hard) {
      line = word;
      lineLen = wordLen;
    } else {
      for (const c of word) {
        line += c;
        lineLen += utf8Length(c);
        if (lineLen >= hard) flush();
      }
    }
  }
  if (lineLen > 0) {
    if (result.length > 0) result += "\t";
    result += line;
  }
  return result.trimEnd();
}

/** `psl_suffix`: the public suffix (ICANN and private sections), or nil. */
export function pslSuffix(domain: string): string | null {
  return getPublicSuffix(domain, PSL_OPTIONS);
}

/** `psl_domain`: the registrable domain (suffix plus one label), or nil. */
export function pslDomain(domain: string): string | null {
  return getDomain(domain, PSL_OPTIONS);
}

const PSL_OPTIONS = { allowPrivateDomains: true } as const;

/** Template dialects of `eval_template`'s optional fourth argument. */
const DIALECTS = ["Jinja", "Static", "Handlebars"];

let jinja: Environment | null = null;
function jinjaEnv(): Environment {
  if (jinja === null) {
    const env = new Environment();
    env.debug = false;
    env.enablePyCompat();
    env.addFilter(
      "normalize_smtp_response",
      (v: unknown) => normalizeSmtpResponse(String(v ?? "")),
    );
    jinja = env;
  }
  return jinja;
}

/**
 * `kumo.string.eval_template(name, source, context [, dialect])`: renders
 * `source` with MiniJinja (minijinja-js, the engine KumoMTA embeds; Python
 * string methods enabled, auto-escaping chosen by the name's extension,
 * `normalize_smtp_response` filter). Dialect `Static` returns the source
 * unchanged; `Handlebars` is refused.
 *
 * @example
 * ```ts
 * await evalTemplate("x.txt", "Hi {{ name }}", { name: "Ana" }); // "Hi Ana"
 * ```
 */
export async function evalTemplate(
  name: string,
  source: string,
  context: unknown,
  dialect: unknown = "Jinja",
): Promise<string> {
  const d = dialect ?? "Jinja";
  if (typeof d !== "string" || !DIALECTS.includes(d)) {
    throw new TypeError(
      `kumo.string.eval_template: unknown variant ${JSON.stringify(d)}, expected one of ${
        DIALECTS.map((x) => `\`${x}\``).join(", ")
      }`,
    );
  }
  if (d === "Static") return source;
  if (d === "Handlebars") {
    throw new Error(
      "kumo.string.eval_template: template dialect `Handlebars` is not implemented by kumo-edge",
    );
  }
  if (source.includes("normalize_smtp_response")) await loadNormalizerDictionary();
  try {
    return jinjaEnv().renderNamedStr(String(name), source, context ?? {});
  } catch (e) {
    const first = String((e as Error)?.message ?? e).split("\n")[0];
    throw new Error(`kumo.string.eval_template "${name}": ${first}`);
  }
}

type Fn = (...args: never[]) => unknown;
type AsyncFn = (...args: never[]) => Promise<unknown>;

/** Lua nil arrives as undefined or null. */
const orDefault = (
  v: number | null | undefined,
  d: number,
) => (v === undefined || v === null ? d : v);

/** The synchronous `kumo.string` functions. */
export const STRING_FUNCTIONS: Record<string, Fn> = {
  "string.split": (s: string, pat: string) => split(String(s), String(pat)),
  "string.splitn": (s: string, n: number, pat: string) => splitn(String(s), n, String(pat)),
  "string.rsplit": (s: string, pat: string) => rsplit(String(s), String(pat)),
  "string.rsplitn": (s: string, n: number, pat: string) => rsplitn(String(s), n, String(pat)),
  "string.split_whitespace": (s: string) => String(s).split(/\s+/u).filter((x) => x.length > 0),
  "string.split_ascii_whitespace": (s: string) =>
    String(s).split(/[ \t\n\r\f]+/).filter((x) => x.length > 0),
  "string.trim": (s: string) => String(s).trim(),
  "string.trim_start": (s: string) => String(s).trimStart(),
  "string.trim_end": (s: string) => String(s).trimEnd(),
  "string.starts_with": (s: string, p: string) => String(s).startsWith(String(p)),
  "string.ends_with": (s: string, p: string) => String(s).endsWith(String(p)),
  "string.replace": (s: string, from: string, to: string) =>
    replacen(String(s), String(from), String(to), Infinity),
  "string.replacen": (s: string, from: string, to: string, n: number) =>
    replacen(String(s), String(from), String(to), n),
  "string.wrap": (s: string, soft?: number, hard?: number) =>
    wrap(String(s), orDefault(soft, 75), orDefault(hard, 900)),
  // multi(): an explicit nil, so that `tostring(kumo.string.psl_domain 'co.uk')` works.
  "string.psl_domain": (s: string) => multi(pslDomain(String(s)) ?? undefined),
  "string.psl_suffix": (s: string) => multi(pslSuffix(String(s)) ?? undefined),
};

/**
 * The asynchronous ones: the normalizer's dictionary and the template
 * filter load on first use.
 */
export const STRING_ASYNC_FUNCTIONS: Record<string, AsyncFn> = {
  "string.eval_template": (name: string, tpl: string, ctx: unknown, dialect?: unknown) =>
    evalTemplate(String(name), String(tpl), ctx, dialect),
  "string.normalize_smtp_response": async (s: string) => {
    await loadNormalizerDictionary();
    return normalizeSmtpResponse(String(s));
  },
};
