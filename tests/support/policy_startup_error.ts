/**
 * Test support for start-up failures: run the real program on
 * `<dir>/init.lua`, expect exit 1 and hand back its stderr with the
 * temporary directory written as `$DIR`, so a test can compare the
 * operator-facing error text exactly. Removes `dir` afterwards.
 *
 * No listeners are expected to come up; the run is bounded by `run`'s
 * timeout.
 *
 * @module
 */

import assert from "node:assert/strict";
import { run } from "./kumo_process.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/**
 * Start the program on `<dir>/init.lua`, remove `dir`, assert exit code 1
 * and return stderr with `dir` replaced by `$DIR`.
 *
 * @example
 * ```ts
 * await Deno.writeTextFile(`${dir}/init.lua`, policy);
 * assert.match(await policyStartupError(dir), /\$DIR\/ld\.toml/);
 * ```
 */
export async function policyStartupError(dir: string): Promise<string> {
  const r = await run(Deno.execPath(), [
    "run",
    "-A",
    `${ROOT}mod.ts`,
    "--policy",
    `${dir}/init.lua`,
  ]);
  await Deno.remove(dir, { recursive: true });
  assert.equal(r.code, 1, r.stderr);
  return r.stderr.replaceAll(dir, "$DIR");
}
