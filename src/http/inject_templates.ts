/**
 * Templates of the inject API (http-api.md §3.4): every templated field of
 * a request is compiled once and then rendered per recipient, in one of
 * three dialects: `Jinja` (MiniJinja itself, through minijinja-js, with
 * minijinja-contrib's date/time helpers and `normalize_smtp_response`),
 * `Handlebars` (handlebars.js, recursive lookup) or `Static` (text passes
 * through). Engine defaults are kept: lenient undefined variables, (Jinja)
 * one trailing newline dropped, HTML escaping only for templates named
 * `*.html` (`html_body.html`, `amp_html_body.html`); Python-style string
 * methods (`name.upper()`) are enabled.
 *
 * Place on the path: the inject endpoint compiles before touching the
 * spool (compile errors are a 422 for the whole request) and renders inside
 * its per-recipient loop (render errors fail that recipient only). Must be
 * {@link TemplateSet.close}d: the engine lives in WASM memory.
 *
 * @module
 */

import { Environment } from "minijinja-js";
import Handlebars from "handlebars";
import { HttpError } from "./request_body.ts";
import type { TemplateDialect } from "./inject_request.ts";
import { dateformat, datetimeformat, now, timeformat } from "./template_datetime.ts";
import { normalizeSmtpResponse } from "../util/normalize_smtp_response.ts";

/** One template to compile: its engine name, request field and source. */
export interface TemplateSource {
  /** Engine name, unique in the request, e.g. `text_body.txt`, `html_body.html`, `headers[Subject]`. */
  name: string;
  /** Request field for error texts, e.g. `content.text_body`. */
  field: string;
  source: string;
  /** The name errors show, when it differs from `name` (`headers[From]` for both parts of `from`). */
  display?: string;
}

/**
 * Compiled templates of one request.
 *
 * @example
 * ```ts
 * using set = compileTemplates("Jinja", [{ name: "content", field: "content", source: "Hi {{ name }}" }]);
 * set.render("content", { name: "Ana" }); // "Hi Ana"
 * ```
 */
export interface TemplateSet extends Disposable {
  /** Render a compiled template; throws an Error with the engine's text. */
  render(name: string, vars: Record<string, unknown>): string;
  /** Release the engine. */
  close(): void;
}

/** `… (in name:3)` at the end of a MiniJinja message. */
const LOCATION = / \(in [^()]*:(\d+)\)$/;

function engineDetail(e: unknown): { detail: string; line: number | null } {
  const first = String(e instanceof Error ? e.message : e).split("\n")[0];
  const m = LOCATION.exec(first);
  return m
    ? { detail: first.slice(0, m.index), line: Number(m[1]) }
    : { detail: first, line: null };
}

function compileError(s: TemplateSource, detail: string, line: number | null): HttpError {
  const where = line === null
    ? ""
    : ` (in template '${s.display ?? s.name}' line ${line}: '${
      s.source.split("\n")[line - 1] ?? ""
    }')`;
  return new HttpError(
    422,
    `Error: failed parsing field '${s.field}' as template: ${detail}${where}`,
  );
}

function staticSet(sources: readonly TemplateSource[]): TemplateSet {
  const texts = new Map(sources.map((s) => [s.name, s.source]));
  return {
    render: (name) => texts.get(name) ?? "",
    close() {},
    [Symbol.dispose]() {},
  };
}

/**
 * Handlebars (handlebars.js): recursive lookup (`compat`), HTML escaping
 * only for `*.html` templates, like upstream's handlebars-rust setup.
 */
function handlebarsSet(sources: readonly TemplateSource[]): TemplateSet {
  const hb = Handlebars.create();
  const compiled = new Map<string, HandlebarsTemplateDelegate>();
  for (const s of sources) {
    let ast: hbs.AST.Program;
    try {
      ast = Handlebars.parse(s.source);
    } catch (e) {
      const lines = String((e as Error).message).split("\n");
      const m = /line (\d+)/.exec(lines[0]);
      throw compileError(
        s,
        `${lines[0].replace(/:$/, "")}: ${lines[lines.length - 1]}`,
        m ? Number(m[1]) : null,
      );
    }
    compiled.set(
      s.name,
      hb.compile(ast, { compat: true, noEscape: !s.name.endsWith(".html"), strict: false }),
    );
  }
  const display = new Map(sources.map((s) => [s.name, s.display ?? s.name]));
  return {
    render(name, vars) {
      const t = compiled.get(name);
      if (t === undefined) throw new Error(`template ${name} is not defined`);
      try {
        return t(vars);
      } catch (e) {
        throw new Error(`${(e as Error).message} (in template '${display.get(name)}')`);
      }
    },
    close() {},
    [Symbol.dispose]() {},
  };
}

/**
 * MiniJinja with upstream's extras: Python-style methods, minijinja-contrib's
 * `now()`, `datetimeformat`, `dateformat`, `timeformat` and KumoMTA's
 * `normalize_smtp_response` filter. A JS filter must not throw inside the
 * engine (minijinja-js aborts the WASM call), so failures are parked and
 * raised after the render returns.
 */
function jinjaSet(sources: readonly TemplateSource[]): TemplateSet {
  const env = new Environment();
  env.enablePyCompat();
  const failures: string[] = [];
  // deno-lint-ignore no-explicit-any
  const guard = <A extends any[], R>(fn: (...a: A) => R) => (...a: A): R | string => {
    try {
      return fn(...a);
    } catch (e) {
      failures.push(e instanceof Error ? e.message : String(e));
      return "";
    }
  };
  env.addFilter("datetimeformat", guard(datetimeformat));
  env.addFilter("dateformat", guard(dateformat));
  env.addFilter("timeformat", guard(timeformat));
  env.addFilter(
    "normalize_smtp_response",
    guard((v: unknown) => normalizeSmtpResponse(v == null ? "" : String(v))),
  );
  env.addGlobal("now", guard(now));
  let closed = false;
  const close = () => {
    if (!closed) {
      closed = true;
      env.free();
    }
  };
  for (const s of sources) {
    try {
      env.addTemplate(s.name, s.source);
    } catch (e) {
      close();
      const { detail, line } = engineDetail(e);
      throw compileError(s, detail, line);
    }
  }
  const display = new Map(sources.map((s) => [s.name, s.display ?? s.name]));
  return {
    render(name, vars) {
      failures.length = 0;
      let out: string;
      try {
        out = env.renderTemplate(name, vars);
      } catch (e) {
        const { detail, line } = engineDetail(e);
        throw new Error(
          `${detail}${line === null ? "" : ` (in template '${display.get(name)}' line ${line})`}`,
        );
      }
      if (failures.length > 0) {
        throw new Error(`invalid operation: ${failures[0]} (in template '${display.get(name)}')`);
      }
      return out;
    },
    close,
    [Symbol.dispose]: close,
  };
}

/**
 * Compile every source of a request.
 *
 * @throws {HttpError} 422 `Error: failed parsing field '<field>' as template: …`
 */
export function compileTemplates(
  dialect: TemplateDialect,
  sources: readonly TemplateSource[],
): TemplateSet {
  switch (dialect) {
    case "Static":
      return staticSet(sources);
    case "Handlebars":
      return handlebarsSet(sources);
    default:
      return jinjaSet(sources);
  }
}
