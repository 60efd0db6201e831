import assert from "node:assert/strict";
import { cancelDeadline, deadline, TICK_MS } from "./coarse_timer.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("deadline() fires once, no earlier than asked", async () => {
  const t0 = Date.now();
  let fired = 0;
  let at = 0;
  deadline(120, () => {
    fired++;
    at = Date.now();
  });
  // bounded wait (a loaded machine runs timers late; this is no speed test)
  for (let i = 0; i < 200 && fired === 0; i++) await sleep(10);
  await sleep(2 * TICK_MS);
  assert.equal(fired, 1);
  assert.ok(at - t0 >= 120, `fired after ${at - t0} ms`);
});

Deno.test("cancelDeadline() keeps it from firing and leaves no interval running", async () => {
  let fired = false;
  const d = deadline(30, () => fired = true);
  const other = deadline(60_000, () => fired = true);
  cancelDeadline(d);
  cancelDeadline(d); // twice is fine
  await sleep(30 + 2 * TICK_MS);
  assert.equal(fired, false);
  cancelDeadline(other); // the last one: the interval stops (the op sanitizer checks)
  cancelDeadline(undefined);
});

Deno.test("a deadline that throws does not stop the others", async () => {
  const seen: string[] = [];
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    seen.push(`error:${e.error?.message}`);
  };
  globalThis.addEventListener("error", onError);
  try {
    deadline(10, () => {
      throw new Error("boom");
    });
    deadline(10, () => seen.push("second"));
    await sleep(10 + 3 * TICK_MS);
  } finally {
    globalThis.removeEventListener("error", onError);
  }
  assert.deepEqual(seen.sort(), ["error:boom", "second"]);
});
