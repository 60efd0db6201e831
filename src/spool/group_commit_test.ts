import assert from "node:assert/strict";
import { GroupCommit } from "./group_commit.ts";

Deno.test("GroupCommit batches items that arrive during a commit", async () => {
  const batches: number[][] = [];
  const gc = new GroupCommit<number>(async (items) => {
    batches.push(items.slice());
    await new Promise((r) => setTimeout(r, 5));
  });
  const all = Array.from({ length: 100 }, (_, i) => gc.submit(i));
  await Promise.all(all);
  assert.deepEqual(batches.flat(), Array.from({ length: 100 }, (_, i) => i));
  assert.equal(batches.length, 1, "same-tick submits share one commit");
  // Items submitted while a commit runs wait for the next one, together.
  const first = gc.submit(100);
  await new Promise((r) => setTimeout(r, 1));
  const later = Array.from({ length: 50 }, (_, i) => gc.submit(101 + i));
  await Promise.all([first, ...later]);
  assert.equal(batches.length, 3);
  assert.equal(batches[2].length, 50);
  assert.equal(gc.commits, 3);
  assert.equal(gc.items, 151);
});

Deno.test("GroupCommit rejects every submitter of a failed batch, then recovers", async () => {
  let fail = true;
  const gc = new GroupCommit<string>((items) => {
    if (fail) return Promise.reject(new Error(`boom ${items.length}`));
    return Promise.resolve();
  });
  const results = await Promise.allSettled([gc.submit("a"), gc.submit("b")]);
  assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
  assert.match(String((results[0] as PromiseRejectedResult).reason), /boom 2/);
  fail = false;
  await gc.submit("c");
  await gc.drain();
});

Deno.test("GroupCommit caps the batch size", async () => {
  const sizes: number[] = [];
  const gc = new GroupCommit<number>((items) => {
    sizes.push(items.length);
    return Promise.resolve();
  }, { maxBatch: 10 });
  await Promise.all(Array.from({ length: 25 }, (_, i) => gc.submit(i)));
  assert.deepEqual(sizes, [10, 10, 5]);
});
