/**
 * kumo-edge: a KumoMTA-compatible edge MTA on Deno.
 *
 * `deno run -A mod.ts --policy init.lua` and the compiled `kumo` binary
 * behave the same. See README.md.
 *
 * @module
 */

import { main } from "./src/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
