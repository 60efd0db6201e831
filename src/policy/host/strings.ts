/**
 * kumo.string.*: the string helpers of KumoMTA's Lua API.
 *
 * Place on the path: policy (host functions). Pure functions; Lua strings in,
 * Lua values out. `psl_*` use a small built-in list of multi-label public
 * suffixes (see pslSuffix) rather than the full Public Suffix List.
 *
 * @module
 */

import nunjucks from "nunjucks";

function splitAll(s: string, pat: string): string[] {
  return s.split(pat);
}

/** Splits into at most n pieces, like Rust's splitn. */
export function splitn(s: string, n: number, pat: string): string[] {
  const out: string[] = [];
  let rest = s;
  while (out.length < n - 1) {
    const i = rest.indexOf(pat);
    if (i < 0) break;
    out.push(rest.slice(0, i));
    rest = rest.slice(i + pat.length);
  }
  out.push(rest);
  return out;
}

/** Splits from the right into at most n pieces, like Rust's rsplitn. */
export function rsplitn(s: string, n: number, pat: string): string[] {
  const out: string[] = [];
  let rest = s;
  while (out.length < n - 1) {
    const i = rest.lastIndexOf(pat);
    if (i < 0) break;
    out.push(rest.slice(i + pat.length));
    rest = rest.slice(0, i);
  }
  out.push(rest);
  return out;
}

/** Greedy word wrap at `width` columns (default 75). */
export function wrap(s: string, width = 75): string {
  const words = s.split(/\s+/).filter((w) => w.length > 0);
  const lines: string[] = [];
  let line = "";
  for (const w of words) {
    if (line.length > 0 && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line.length ? line + " " + w : w;
  }
  if (line.length) lines.push(line);
  return lines.join("\n");
}

/** Joins a multi-line SMTP response into one line, removing repeated codes. */
export function normalizeSmtpResponse(text: string): string {
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines.length === 0) return "";
  const m = /^(\d{3})[ -](\d\.\d{1,3}\.\d{1,3} )?/.exec(lines[0]);
  if (!m) return lines.join(" ").replace(/\s+/g, " ").trim();
  const parts = [lines[0].slice(0, 3)];
  if (m[2]) parts.push(m[2].trim());
  for (const l of lines) {
    let rest = l.replace(/^\d{3}[ -]/, "");
    if (m[2] && rest.startsWith(m[2])) rest = rest.slice(m[2].length);
    parts.push(rest.trim());
  }
  return parts.filter((p) => p.length > 0).join(" ");
}

const MULTI_LABEL_SUFFIXES = new Set([
  "co.uk",
  "org.uk",
  "ac.uk",
  "gov.uk",
  "me.uk",
  "com.au",
  "net.au",
  "org.au",
  "co.nz",
  "co.jp",
  "ne.jp",
  "or.jp",
  "com.br",
  "com.cn",
  "com.mx",
  "co.in",
  "co.za",
  "com.tr",
  "com.sg",
  "co.kr",
]);

/** The public suffix of a domain. */
export function pslSuffix(domain: string): string {
  const labels = domain.toLowerCase().replace(/\.$/, "").split(".");
  if (labels.length >= 2) {
    const two = labels.slice(-2).join(".");
    if (MULTI_LABEL_SUFFIXES.has(two)) return two;
  }
  return labels[labels.length - 1];
}

/** The registrable domain (suffix plus one label). */
export function pslDomain(domain: string): string | undefined {
  const d = domain.toLowerCase().replace(/\.$/, "");
  const suffix = pslSuffix(d);
  if (d === suffix) return undefined;
  const rest = d.slice(0, d.length - suffix.length - 1).split(".");
  return rest[rest.length - 1] + "." + suffix;
}

const templateEnv = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: false });

/**
 * `kumo.string.eval_template(name, template, context)`: renders a
 * Jinja-compatible template (nunjucks) over the context table.
 */
export function evalTemplate(
  name: string,
  template: string,
  context: Record<string, unknown>,
): string {
  try {
    return templateEnv.renderString(template, context);
  } catch (e) {
    throw new Error(`eval_template "${name}": ${(e as Error).message}`);
  }
}

/** The `kumo.string` table. */
export const STRING_FUNCTIONS: Record<string, (...args: never[]) => unknown> = {
  "string.split": (s: string, pat: string) => splitAll(s, pat),
  "string.splitn": (s: string, n: number, pat: string) => splitn(s, n, pat),
  "string.rsplit": (s: string, pat: string) => splitAll(s, pat).reverse(),
  "string.rsplitn": (s: string, n: number, pat: string) => rsplitn(s, n, pat),
  "string.split_whitespace": (s: string) => s.split(/\s+/u).filter((x) => x.length > 0),
  "string.split_ascii_whitespace": (s: string) =>
    s.split(/[ \t\n\r\f]+/).filter((x) => x.length > 0),
  "string.trim": (s: string) => s.trim(),
  "string.trim_start": (s: string) => s.trimStart(),
  "string.trim_end": (s: string) => s.trimEnd(),
  "string.starts_with": (s: string, p: string) => s.startsWith(p),
  "string.ends_with": (s: string, p: string) => s.endsWith(p),
  "string.replace": (s: string, from: string, to: string) => s.split(from).join(to),
  "string.replacen": (s: string, from: string, to: string, n: number) => {
    let out = s;
    let idx = 0;
    for (let i = 0; i < n; i++) {
      const j = out.indexOf(from, idx);
      if (j < 0) break;
      out = out.slice(0, j) + to + out.slice(j + from.length);
      idx = j + to.length;
    }
    return out;
  },
  "string.wrap": (s: string, width?: number) => wrap(s, width),
  "string.eval_template": (name: string, tpl: string, ctx: Record<string, unknown>) =>
    evalTemplate(name, tpl, ctx ?? {}),
  "string.normalize_smtp_response": (s: string) => normalizeSmtpResponse(s),
  "string.psl_domain": (s: string) => pslDomain(s),
  "string.psl_suffix": (s: string) => pslSuffix(s),
};
