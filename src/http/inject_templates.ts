/**
 * Templates of the inject API (http-api.md §3.4): every templated field of
 * a request is compiled once (MiniJinja itself, through minijinja-js; the
 * `Static` dialect passes text through) and then rendered per recipient.
 * Engine defaults are kept: lenient undefined variables, one trailing newline
 * dropped, HTML auto-escaping only for templates named `*.html`
 * (`html_body.html`, `amp_html_body.html`); Python-style string methods
 * (`name.upper()`) are enabled.
 *
 * Place on the path: the inject endpoint compiles before touching the
 * spool (compile errors are a 422 for the whole request) and renders inside
 * its per-recipient loop (render errors fail that recipient only). Must be
 * {@link TemplateSet.close}d: the engine lives in WASM memory.
 *
 * @module
 */

import { Environment } from "minijinja-js";
import { HttpError } from "./request_body.ts";
import type { TemplateDialect } from "./inject_request.ts";

/** One template to compile: its engine name, request field and source. */
export interface TemplateSource {
  /** Engine name, e.g. `text_body.txt`, `html_body.html`, `headers[Subject]`. */
  name: string;
  /** Request field for error texts, e.g. `content.text_body`. */
  field: string;
  source: string;
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

/**
 * Compile every source of a request.
 *
 * @throws {HttpError} 422 `Error: failed parsing field '<field>' as template: …`
 */
export function compileTemplates(
  dialect: TemplateDialect,
  sources: readonly TemplateSource[],
): TemplateSet {
  if (dialect === "Static") {
    const texts = new Map(sources.map((s) => [s.name, s.source]));
    return {
      render: (name) => texts.get(name) ?? "",
      close() {},
      [Symbol.dispose]() {},
    };
  }
  if (dialect === "Handlebars") {
    throw new HttpError(422, "Error: template_dialect `Handlebars` is not supported by kumo-edge");
  }
  const env = new Environment();
  env.enablePyCompat();
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
      const where = line === null
        ? ""
        : ` (in template '${s.name}' line ${line}: '${s.source.split("\n")[line - 1] ?? ""}')`;
      throw new HttpError(
        422,
        `Error: failed parsing field '${s.field}' as template: ${detail}${where}`,
      );
    }
  }
  return {
    render(name, vars) {
      try {
        return env.renderTemplate(name, vars);
      } catch (e) {
        const { detail, line } = engineDetail(e);
        throw new Error(
          `${detail}${line === null ? "" : ` (in template '${name}' line ${line})`}`,
        );
      }
    },
    close,
    [Symbol.dispose]: close,
  };
}
