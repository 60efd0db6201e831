/**
 * Unit tests for the diagnostic log filter and line formats
 * (src/log/diag.ts). Place on the path: beside it, every stage's diagnostics.
 */
import assert from "node:assert/strict";
import { ConfigError } from "../util/config_error.ts";
import { DiagLogger, filterLevel, formatDiagTime, parseDiagFilter } from "./diag.ts";

Deno.test("parseDiagFilter() reads a default level and target directives", () => {
  const f = parseDiagFilter("kumod=debug,info");
  assert.equal(f.defaultLevel, 3);
  assert.deepEqual(f.directives, [{ target: "kumod", level: 4 }]);
});

Deno.test("parseDiagFilter() without a bare level disables unmatched targets", () => {
  const f = parseDiagFilter("kumod=warn");
  assert.equal(filterLevel(f, "lua"), 0);
  assert.equal(filterLevel(f, "kumod::smtp_server"), 2);
});

Deno.test("parseDiagFilter() empty spec enables error only", () => {
  assert.equal(parseDiagFilter("").defaultLevel, 1);
  assert.equal(parseDiagFilter(" , ").defaultLevel, 1);
});

Deno.test("parseDiagFilter() levels are case-insensitive; off and digits work", () => {
  const f = parseDiagFilter("lua=OFF, kumod=Trace ,WARN,x=2");
  assert.equal(f.defaultLevel, 2);
  assert.equal(filterLevel(f, "lua"), 0);
  assert.equal(filterLevel(f, "kumod"), 5);
  assert.equal(filterLevel(f, "x"), 2);
});

Deno.test("parseDiagFilter() bare target means trace", () => {
  assert.equal(filterLevel(parseDiagFilter("info,kumod"), "kumod::x"), 5);
});

Deno.test("parseDiagFilter() rejects bad specs with ConfigError", () => {
  assert.throws(() => parseDiagFilter("kumod=verbose"), ConfigError);
  assert.throws(() => parseDiagFilter("=info"), ConfigError);
  assert.throws(() => parseDiagFilter("kumod[span]=info"), ConfigError);
  assert.throws(() => parseDiagFilter("7"), ConfigError);
  assert.throws(() => parseDiagFilter("kumod=verbose"), /unknown level "verbose"/);
});

Deno.test("filterLevel() longest matching target prefix wins", () => {
  const f = parseDiagFilter("kumod=warn,kumod::smtp_server=trace,kumod::smtp=debug,error");
  assert.equal(filterLevel(f, "kumod::smtp_server::tls"), 5);
  assert.equal(filterLevel(f, "kumod::smtp_client"), 4);
  assert.equal(filterLevel(f, "kumod::queue"), 2);
  assert.equal(filterLevel(f, "lua"), 1);
});

function capture(filter: string, format: "full" | "json" = "full") {
  const out: string[] = [];
  const log = new DiagLogger({
    filter,
    format,
    write: (t) => out.push(t),
    now: () => Date.UTC(2026, 0, 2, 3, 4, 5, 6) + 0.789,
  });
  return { log, out };
}

Deno.test("DiagLogger writes the tracing full format", () => {
  const { log, out } = capture("info");
  log.info("kumod", "initialization complete");
  log.error("lua", "boom");
  log.debug("kumod", "hidden");
  log.flush();
  assert.equal(
    out.join(""),
    "2026-01-02T03:04:05.006789Z  INFO kumod: initialization complete\n" +
      "2026-01-02T03:04:05.006789Z ERROR lua: boom\n",
  );
});

Deno.test("DiagLogger json format writes one object per line", () => {
  const { log, out } = capture("info", "json");
  log.warn("kumod::spool", "slow");
  log.flush();
  assert.deepEqual(JSON.parse(out.join("")), {
    timestamp: "2026-01-02T03:04:05.006789Z",
    level: "WARN",
    fields: { message: "slow" },
    target: "kumod::spool",
  });
});

Deno.test("DiagLogger.setFilter() applies at runtime and rejects bad specs", () => {
  const { log, out } = capture("info");
  assert.equal(log.enabled("kumod", "debug"), false);
  log.setFilter("kumod=debug");
  assert.equal(log.enabled("kumod", "debug"), true);
  assert.equal(log.enabled("lua", "error"), false);
  assert.throws(() => log.setFilter("kumod=loud"), ConfigError);
  assert.equal(log.filterSpec, "kumod=debug");
  log.flush();
  assert.equal(out.length, 0);
});

Deno.test("DiagLogger flushes buffered lines on the next microtask", async () => {
  const { log, out } = capture("info");
  log.info("kumod", "a");
  log.info("kumod", "b");
  assert.equal(out.length, 0);
  await Promise.resolve();
  assert.equal(out.length, 1);
  assert.equal(out[0].split("\n").length, 3);
});

Deno.test("formatDiagTime() prints microseconds", () => {
  assert.equal(formatDiagTime(0), "1970-01-01T00:00:00.000000Z");
});
