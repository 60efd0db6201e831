import assert from "node:assert/strict";
import { WeightedRoundRobin } from "./egress_pool.ts";

function counts(rr: WeightedRoundRobin, n: number): Record<string, number> {
  const c: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const s = rr.next()!;
    c[s] = (c[s] ?? 0) + 1;
  }
  return c;
}

Deno.test("WeightedRoundRobin starts on the second entry and honours 2:1", () => {
  const rr = new WeightedRoundRobin([{ name: "a", weight: 2 }, { name: "b", weight: 1 }]);
  assert.deepEqual([rr.next(), rr.next(), rr.next(), rr.next(), rr.next(), rr.next()], [
    "b",
    "a",
    "a",
    "b",
    "a",
    "a",
  ]);
  assert.deepEqual(counts(rr, 300), { a: 200, b: 100 });
});

Deno.test("WeightedRoundRobin never picks weight 0 and handles empty pools", () => {
  const rr = new WeightedRoundRobin([
    { name: "a", weight: 1 },
    { name: "z", weight: 0 },
    { name: "b", weight: 3 },
  ]);
  const c = counts(rr, 400);
  assert.equal(c.z, undefined);
  assert.deepEqual(c, { a: 100, b: 300 });
  assert.equal(new WeightedRoundRobin([{ name: "z", weight: 0 }]).next(), undefined);
  assert.equal(new WeightedRoundRobin([{ name: "only", weight: 5 }]).next(), "only");
});
