/**
 * `kumo.regex.*`: `compile(pattern)` → Regex object with `is_match(s)`,
 * `find(s)` (first match text or nil), `find_all(s)` (array of match
 * texts), `captures(s)` (nil, or a table: `[0]` whole match, `[1..n]`
 * groups (nil when a group did not take part), plus named groups by name),
 * `replace(s, rep)` (first match), `replace_all(s, rep)`,
 * `replacen(s, rep, n)`, `split(s)`; also `kumo.regex.escape(s)`.
 * Replacement strings use Rust's syntax: `$1`, `$name`, `${name}`, `$$`.
 *
 * Place on the path: policy helpers; pure. Rust regex syntax is translated
 * where JS differs: leading inline flags `(?i)`, `(?m)`, `(?s)`, `(?x)`
 * (whitespace and `#` comments removed), `(?P<name>...)`, `\A`, `\z`.
 * Compiled patterns are cached (1,024 entries) and shared by all contexts.
 *
 * @module
 */

import { registerLuaClass, textArg } from "./host_object.ts";

/** A compiled pattern. */
export class LuaRegex {
  readonly global: RegExp;
  constructor(readonly source: string, readonly re: RegExp) {
    this.global = new RegExp(re.source, re.flags + "g");
  }
}

function stripExtended(p: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === "\\") {
      out += c + (p[i + 1] ?? "");
      i++;
    } else if (inClass) {
      if (c === "]") inClass = false;
      out += c;
    } else if (c === "[") {
      inClass = true;
      out += c;
    } else if (c === "#") {
      while (i < p.length && p[i] !== "\n") i++;
    } else if (!/\s/.test(c)) out += c;
  }
  return out;
}

/** Translate a Rust regex into a JS RegExp. */
export function compileRustRegex(pattern: string): RegExp {
  let p = pattern;
  let flags = "";
  for (;;) {
    const m = /^\(\?([imsxUu]+)\)/.exec(p);
    if (!m) break;
    for (const f of m[1]) {
      if (f === "x") p = stripExtended(p.slice(m[0].length)), flags += "";
      else if ("ims".includes(f) && !flags.includes(f)) flags += f;
    }
    if (!m[1].includes("x")) p = p.slice(m[0].length);
  }
  p = p.replace(/\(\?P</g, "(?<").replace(/\\A/g, "^").replace(/\\z/g, "(?![\\s\\S])");
  try {
    return new RegExp(p, flags + "u");
  } catch {
    try {
      return new RegExp(p, flags);
    } catch (e) {
      throw new SyntaxError(`Cannot compile regex "${pattern}": ${(e as Error).message}`);
    }
  }
}

const cache = new Map<string, LuaRegex>();

/** `kumo.regex.compile`. */
export function compileRegex(pattern: unknown): LuaRegex {
  const p = textArg(pattern, "pattern");
  let r = cache.get(p);
  if (!r) {
    r = new LuaRegex(p, compileRustRegex(p));
    if (cache.size >= 1024) cache.clear();
    cache.set(p, r);
  }
  return r;
}

/** Expand a Rust replacement (`$1`, `$name`, `${name}`, `$$`) for one match. */
function expand(rep: string, m: RegExpExecArray): string {
  return rep.replace(/\$(\$|\{([^}]*)\}|([A-Za-z0-9_]+))/g, (_all, d, braced, bare) => {
    if (d === "$") return "$";
    const name: string = braced ?? bare;
    const v = /^\d+$/.test(name) ? m[Number(name)] : m.groups?.[name];
    return v ?? "";
  });
}

function replaceN(r: LuaRegex, s: string, rep: string, limit: number): string {
  const g = r.global;
  g.lastIndex = 0;
  let out = "";
  let last = 0;
  let n = 0;
  for (let m = g.exec(s); m !== null && (limit <= 0 || n < limit); m = g.exec(s)) {
    out += s.slice(last, m.index) + expand(rep, m);
    last = m.index + m[0].length;
    n++;
    if (m[0].length === 0) g.lastIndex++;
  }
  return out + s.slice(last);
}

function matches(r: LuaRegex, s: string): RegExpExecArray[] {
  const g = r.global;
  g.lastIndex = 0;
  const out: RegExpExecArray[] = [];
  for (let m = g.exec(s); m !== null; m = g.exec(s)) {
    out.push(m);
    if (m[0].length === 0) g.lastIndex++;
  }
  return out;
}

registerLuaClass(LuaRegex, {
  name: "Regex",
  fields: (r, k) => (k === "pattern" ? r.source : undefined),
  methods: {
    is_match: (r, s: unknown) => r.re.test(textArg(s)),
    find: (r, s: unknown) => r.re.exec(textArg(s))?.[0],
    find_all: (r, s: unknown) => matches(r, textArg(s)).map((m) => m[0]),
    captures: (r, s: unknown) => {
      const m = r.re.exec(textArg(s));
      if (!m) return undefined;
      const out: Record<string, unknown> = { __numeric_keys: true };
      m.forEach((v, i) => {
        if (v !== undefined) out[String(i)] = v;
      });
      for (const [k, v] of Object.entries(m.groups ?? {})) if (v !== undefined) out[k] = v;
      return out;
    },
    replace: (r, s: unknown, rep: unknown) => replaceN(r, textArg(s), textArg(rep), 1),
    replace_all: (r, s: unknown, rep: unknown) => replaceN(r, textArg(s), textArg(rep), 0),
    replacen: (r, s: unknown, rep: unknown, n: number) =>
      n <= 0 ? textArg(s) : replaceN(r, textArg(s), textArg(rep), Number(n)),
    split: (r, s: unknown) => {
      const text = textArg(s);
      const out: string[] = [];
      let last = 0;
      for (const m of matches(r, text)) {
        out.push(text.slice(last, m.index));
        last = m.index + m[0].length;
      }
      out.push(text.slice(last));
      return out;
    },
  },
  meta: { __tostring: (r) => r.source },
});

type Fn = (...args: never[]) => unknown;

/** The `kumo.regex.*` functions. */
export const REGEX_FUNCTIONS: Record<string, Fn> = {
  "regex.compile": compileRegex as Fn,
  "regex.escape": ((s: unknown) => textArg(s).replace(/[.*+?^${}()|[\]\\#&~-]/g, "\\$&")) as Fn,
};
