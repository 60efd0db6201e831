/**
 * Policy dispatch benchmark: calls/s and µs per call for a
 * `get_queue_config`-style handler returning a config object, against a
 * baseline measured in the same run (a handler that returns nothing, i.e.
 * the cost of the dispatch machinery alone). Goal: ≥ 50,000 calls/s.
 *
 * The config handler returns the same literal table on every call, which
 * the Lua-side config cache answers without converting anything. A third
 * line makes every table different (`retry_interval = n .. 's'`), so each
 * call pays the full Lua → JS table conversion and the strict parse: the
 * cost of a handler whose config depends on its arguments.
 *
 * Usage: deno run -A scripts/bench_policy.ts [calls]
 */
import { PolicyEngine } from "../src/policy/engine.ts";
import { buildCatalogue } from "../src/policy/catalogue.ts";
import { newServerConfig } from "../src/policy/server_config.ts";
import { Resolver } from "../src/dns/resolver.ts";

const CALLS = Number(Deno.args[0] ?? Deno.env.get("BENCH_POLICY_CALLS") ?? 50_000);

const dir = await Deno.makeTempDir({ prefix: "kumo-bench-policy-" });
await Deno.writeTextFile(
  `${dir}/init.lua`,
  `
local kumo = require 'kumo'
kumo.on('noop', function(domain) end)
kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
  return kumo.make_queue_config {
    egress_pool = 'pool-1',
    retry_interval = '10m',
    max_retry_interval = '2h',
    max_age = '3 days',
  }
end)
n = 0 -- per context; every table below differs from the ones before it
kumo.on('get_queue_config_uncached', function(domain, tenant, campaign, routing_domain)
  n = n + 1
  return kumo.make_queue_config {
    egress_pool = 'pool-1',
    retry_interval = n .. 's',
    max_retry_interval = '2h',
    max_age = '3 days',
  }
end)
`,
);
// assigned once; the catalogue's closure reads it after load
// deno-lint-ignore prefer-const
let engine: PolicyEngine | undefined;
engine = await PolicyEngine.load({
  policyPath: `${dir}/init.lua`,
  version: "bench",
  catalogue: buildCatalogue(() => engine, newServerConfig(), new Resolver()),
});

/** Rounds per handler; the median is reported (this VM's speed varies by ±20% from run to run). */
const ROUNDS = Number(Deno.env.get("BENCH_POLICY_ROUNDS") ?? 3);

async function run(event: string): Promise<number> {
  // warm up
  for (let i = 0; i < 2000; i++) {
    await engine!.call(event, "", ["example.test", "t", "c", undefined]);
  }
  const times: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = performance.now();
    for (let i = 0; i < CALLS; i++) {
      const r = await engine!.call(event, "", ["example.test", "t", "c", undefined]);
      if (r.kind === "error") throw new Error(r.message);
    }
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** ms to create one Lua context (re-running the policy), every call in a fresh one. */
async function contextCreation(n = 50): Promise<number> {
  const uses = engine!.maxContextUses;
  engine!.maxContextUses = 1;
  for (let i = 0; i < 5; i++) await engine!.call("noop", "", []);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await engine!.call("noop", "", []);
  engine!.maxContextUses = uses;
  return (performance.now() - t0) / n;
}

const base = await run("noop");
const qc = await run("get_queue_config");
const uncached = await run("get_queue_config_uncached");
const fmt = (ms: number) =>
  `${Math.round(CALLS / (ms / 1000)).toLocaleString("en-US").padStart(9)} calls/s  ${
    (ms * 1000 / CALLS).toFixed(2).padStart(7)
  } µs/call`;
console.log(`policy dispatch (${CALLS} calls each, median of ${ROUNDS} rounds, one core)`);
console.log(`  baseline: empty handler         ${fmt(base)}`);
console.log(`  get_queue_config → config obj   ${fmt(qc)}`);
console.log(`  same, a new table every call    ${fmt(uncached)}`);
console.log(`  ratio (config handler / empty):  ${(qc / base).toFixed(2)}× the time`);
console.log(`  ratio (new table / empty):       ${(uncached / base).toFixed(2)}× the time`);
const created = await contextCreation();
console.log(
  `  Lua context creation: ${created.toFixed(2)} ms, i.e. ${
    (created * 1000 / engine.maxContextUses).toFixed(2)
  } µs/call amortised over ${engine.maxContextUses} uses (included in the lines above)`,
);
console.log(`  goal ≥ 50,000 calls/s: ${CALLS / (qc / 1000) >= 50_000 ? "met" : "NOT met"}`);
engine.close();
await Deno.remove(dir, { recursive: true });
