/**
 * `deno task bench`: runs every benchmark in turn and prints its figures
 * with the ratio against a baseline measured in the same run.
 *
 * Each benchmark is its own script so it can be run alone:
 *   scripts/bench_policy.ts   policy dispatch (calls/s, µs per call)
 *   scripts/bench_inbound.ts  ESMTP acceptance into a durable spool vs smtp-sink / Postfix
 *   scripts/bench_relay.ts    end-to-end relay vs Postfix
 *   scripts/bench_inject.ts   HTTP inject (batches of 100) vs SMTP injection of the same messages
 * A benchmark whose script or peer programs are missing is reported as skipped.
 */

const here = new URL(".", import.meta.url).pathname;
const benches = ["bench_policy.ts", "bench_inbound.ts", "bench_relay.ts", "bench_inject.ts"];
let failed = 0;
for (const b of benches) {
  const path = `${here}${b}`;
  try {
    await Deno.stat(path);
  } catch {
    console.log(`== ${b}: skipped (not present)`);
    continue;
  }
  console.log(`== ${b}`);
  const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", path] }).spawn().status;
  if (!r.success) {
    failed++;
    console.log(`== ${b}: exited with ${r.code}`);
  }
}
Deno.exit(failed ? 1 : 0);
