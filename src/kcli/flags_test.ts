/**
 * Unit tests for kcli's flag parser, table renderer and Prometheus reader
 * (src/kcli/). Place: the admin client, outside the mail's path.
 */
import assert from "node:assert/strict";
import { parseFlags } from "./flags.ts";
import { renderTable } from "./table.ts";
import { parsePrometheus } from "./queue_summary.ts";

Deno.test("parseFlags() reads values, switches, repeats and positionals", () => {
  const f = parseFlags(["--queue", "a", "--queue=b", "--json", "X"], {
    values: ["queue"],
    repeat: ["queue"],
    bools: ["json"],
    positionals: ["id"],
  });
  assert.deepEqual(f.values.get("queue"), ["a", "b"]);
  assert.equal(f.bools.has("json"), true);
  assert.deepEqual(f.positionals, ["X"]);
  assert.throws(() => parseFlags(["--nope"], {}), /unexpected argument '--nope'/);
  assert.throws(() => parseFlags(["--id"], { values: ["id"] }), /a value is required/);
  assert.throws(() => parseFlags([], { positionals: ["id"] }), /<ID>/);
});

Deno.test("renderTable() pads columns and right-aligns numbers", () => {
  assert.equal(renderTable(["A", "N"], [["xx", "5"], ["y", "10"]]), "A    N\nxx   5\ny   10\n");
});

Deno.test("parsePrometheus() reads names, labels and values", () => {
  const [s] = parsePrometheus('# HELP x\nready_count{service="smtp_client:a->b@smtp_client"} 3\n');
  assert.deepEqual(s, {
    name: "ready_count",
    labels: { service: "smtp_client:a->b@smtp_client" },
    value: 3,
  });
});
