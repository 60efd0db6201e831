/**
 * Unit tests for the inject template dialects (src/http/inject_templates.ts,
 * src/http/template_datetime.ts; http-api.md §3.4): MiniJinja with
 * minijinja-contrib's date/time helpers and normalize_smtp_response,
 * Handlebars with recursive lookup, Static, and the 422 texts.
 */
import assert from "node:assert/strict";
import { compileTemplates } from "./inject_templates.ts";
import { HttpError } from "./request_body.ts";
import { loadNormalizerDictionary } from "../util/normalize_smtp_response.ts";

function jinja(source: string, vars: Record<string, unknown> = {}, name = "t.txt"): string {
  using set = compileTemplates("Jinja", [{ name, field: "content", source }]);
  return set.render(name, vars);
}

Deno.test("Jinja: now(), datetimeformat, dateformat, timeformat with format and tz", () => {
  assert.match(
    jinja("{{ now()|datetimeformat(format='iso') }}"),
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/,
  );
  const nowSecs = Number(jinja("{{ now() }}"));
  assert.ok(Math.abs(nowSecs - Date.now() / 1000) < 60, String(nowSecs));
  assert.equal(jinja("{{ 0|datetimeformat(format='short') }}"), "1970-01-01 00:00");
  assert.equal(jinja("{{ 0|datetimeformat }}"), "Jan 1 1970 00:00");
  assert.equal(
    jinja("{{ 0|datetimeformat(format='short', tz='Europe/Vienna') }}"),
    "1970-01-01 01:00",
  );
  assert.equal(
    jinja("{{ t|datetimeformat(format='full') }}", { t: "2023-06-24T16:37:22Z" }),
    "Saturday, June 24 2023 16:37:22.0",
  );
  assert.equal(
    jinja("{{ t|datetimeformat(format='iso') }}", { t: "2023-06-24T16:37:22.5+02:00" }),
    "2023-06-24T16:37:22+02:00",
  );
  assert.equal(jinja("{{ t|datetimeformat(format='unix') }}", { t: 1687624642.25 }), "1687624642");
  assert.equal(jinja("{{ '2023-06-24'|dateformat }}"), "Jun 24 2023");
  assert.equal(jinja("{{ '2023-06-24'|dateformat(format='full') }}"), "Saturday, June 24 2023");
  assert.equal(jinja("{{ 3723|timeformat(format='long') }}"), "01:02:03");
  assert.equal(
    jinja(
      "{{ 0|datetimeformat(format='[weekday repr:short] [hour repr:12] [period case:lower] \\\\[x\\\\]') }}",
    ),
    "Thu 12 am [x]",
  );
  // contrib filters that minijinja-js has built in stay available.
  assert.equal(jinja("{{ 2|pluralize }} {{ 1500|filesizeformat }}"), "s 1.5 kB");
});

Deno.test("Jinja: a bad date fails the render, and the engine keeps working", () => {
  using set = compileTemplates("Jinja", [
    { name: "a.txt", field: "content", source: "{{ v|datetimeformat }}" },
    { name: "b.txt", field: "content", source: "ok {{ v }}" },
  ]);
  assert.throws(() => set.render("a.txt", { v: "not a date" }), /not a valid date or timestamp/);
  assert.throws(() => set.render("a.txt", { v: "2023-06-24" }), /requires time/);
  assert.throws(
    () => jinja("{{ 0|datetimeformat(tz='Mars/Base') }}"),
    /unknown timezone 'Mars\/Base'/,
  );
  assert.equal(set.render("b.txt", { v: 1 }), "ok 1");
  assert.equal(set.render("a.txt", { v: 0 }), "Jan 1 1970 00:00");
});

Deno.test("Jinja: normalize_smtp_response filter, auto-escape only in .html", async () => {
  await loadNormalizerDictionary(); // the inject endpoint does this (loadContentHelpers)
  assert.equal(
    jinja("{{ r|normalize_smtp_response }}", { r: "250 OK ids=8a5475ccbbc611eda12250ebf67f93bd" }),
    "250 OK ids={uuid}",
  );
  assert.equal(jinja("{{ v }}", { v: "<b>" }, "x.html"), "&lt;b&gt;");
  assert.equal(jinja("{{ v }}", { v: "<b>" }, "x.txt"), "<b>");
});

Deno.test("Handlebars: recursive lookup, escaping only in .html, compile errors are 422", () => {
  using set = compileTemplates("Handlebars", [
    {
      name: "text_body.txt",
      field: "content.text_body",
      source: "{{#each items}}{{this}} for {{name}}; {{/each}}",
    },
    { name: "html_body.html", field: "content.html_body", source: "<p>{{name}}</p>" },
  ]);
  assert.equal(
    set.render("text_body.txt", { name: "A&B", items: [1, 2] }),
    "1 for A&B; 2 for A&B; ",
  );
  assert.equal(set.render("html_body.html", { name: "A&B" }), "<p>A&amp;B</p>");
  assert.throws(
    () =>
      compileTemplates("Handlebars", [{
        name: "text_body.txt",
        field: "content.text_body",
        source: "Hi {{ name ",
      }]),
    (e: unknown) =>
      e instanceof HttpError && e.status === 422 &&
      /^Error: failed parsing field 'content\.text_body' as template: Parse error on line 1: .*got 'EOF' \(in template 'text_body\.txt' line 1: 'Hi \{\{ name '\)$/
        .test(e.message),
  );
});

Deno.test("Static passes text through; Jinja errors name the display template", () => {
  using s = compileTemplates("Static", [{
    name: "content",
    field: "content",
    source: "{{ name }}",
  }]);
  assert.equal(s.render("content", { name: "x" }), "{{ name }}");
  assert.throws(
    () =>
      compileTemplates("Jinja", [{
        name: "headers[From].name",
        display: "headers[From]",
        field: "content.from.name",
        source: "{{ shop ",
      }]),
    (e: unknown) =>
      e instanceof HttpError &&
      /^Error: failed parsing field 'content\.from\.name' as template: .* \(in template 'headers\[From\]' line 1: '\{\{ shop '\)$/
        .test(e.message),
  );
});
