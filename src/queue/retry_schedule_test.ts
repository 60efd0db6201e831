import assert from "node:assert/strict";
import {
  delayBasedOnAge,
  delayForAttempt,
  expirationText,
  inferNumAttempts,
  jitterSpan,
  scheduleAfterFailure,
} from "./retry_schedule.ts";

const MIN = 60_000;
const H = 60 * MIN;
const DEFAULT = { retryInterval: 20 * MIN, maxAge: 7 * 24 * H };

Deno.test("scheduleAfterFailure() follows the default timeline, then expires after 9 attempts", () => {
  const attempts: number[] = [0];
  let now = 0;
  let n = 0;
  for (;;) {
    const d = scheduleAfterFailure({
      now,
      createdMs: 0,
      numAttempts: n,
      policy: DEFAULT,
      random: () => 0.5,
    });
    if (d.kind === "expire") break;
    now = d.due;
    n++;
    attempts.push(now);
    assert.ok(n < 20);
  }
  assert.deepEqual(attempts, [
    0,
    20 * MIN,
    H,
    2 * H + 20 * MIN,
    5 * H,
    10 * H + 20 * MIN,
    21 * H,
    42 * H + 20 * MIN,
    85 * H,
  ]);
});

Deno.test("scheduleAfterFailure() jitter stays within ±J/2 and J is capped at 60 s", () => {
  assert.equal(jitterSpan(20 * MIN), 60_000);
  assert.equal(jitterSpan(1000), 0);
  assert.equal(jitterSpan(10 * MIN), 30_000);
  const lo = scheduleAfterFailure({
    now: 0,
    createdMs: 0,
    numAttempts: 0,
    policy: DEFAULT,
    random: () => 0,
  });
  const hi = scheduleAfterFailure({
    now: 0,
    createdMs: 0,
    numAttempts: 0,
    policy: DEFAULT,
    random: () => 0.999,
  });
  assert.equal(lo.delayMs, 20 * MIN - 30_000);
  assert.equal(hi.delayMs, 20 * MIN + 30_000);
});

Deno.test("scheduleAfterFailure() honours max_retry_interval and per-message expires", () => {
  const p = { ...DEFAULT, maxRetryInterval: 30 * MIN };
  assert.equal(delayForAttempt(5, p), 30 * MIN);
  const d = scheduleAfterFailure({
    now: 1000,
    createdMs: 0,
    numAttempts: 0,
    policy: { retryInterval: 1000, maxAge: 1 },
    expiresMs: 5000,
    random: () => 0.5,
  });
  assert.equal(d.kind, "retry"); // expires replaces max_age
  const e = scheduleAfterFailure({
    now: 1000,
    createdMs: 0,
    numAttempts: 2,
    policy: { retryInterval: 1000, maxAge: 1e9 },
    expiresMs: 5000,
    random: () => 0.5,
  });
  assert.equal(e.kind, "expire");
});

Deno.test("inferNumAttempts() and delayBasedOnAge() estimate restart state like upstream", () => {
  assert.equal(inferNumAttempts(0, DEFAULT), 0);
  assert.equal(inferNumAttempts(19 * MIN, DEFAULT), 0);
  assert.equal(inferNumAttempts(20 * MIN, DEFAULT), 1);
  assert.equal(inferNumAttempts(61 * MIN, DEFAULT), 2);
  assert.equal(delayBasedOnAge(0, 5 * MIN, DEFAULT), 0);
  // 3 attempts: sum of delays 1..2 = 40 + 80 min = 2 h; at age 61 min → 59 min to go
  assert.equal(delayBasedOnAge(3, 61 * MIN, DEFAULT), 59 * MIN);
  assert.equal(delayBasedOnAge(3, 8 * 24 * H, DEFAULT), null);
});

Deno.test("expirationText() words max_age and set_scheduling expiry as upstream", () => {
  assert.equal(
    expirationText({ dueMs: 75_000, createdMs: 0, maxAgeMs: 60_000 }),
    "5.4.7 Next delivery time would be 1m 15s after creation, which exceeds max_age=1m",
  );
  assert.equal(
    expirationText({
      dueMs: Date.UTC(2026, 0, 2, 3, 4, 5, 123),
      createdMs: 0,
      maxAgeMs: 60_000,
      expiresMs: Date.UTC(2026, 0, 2, 3, 0, 0),
    }),
    "5.4.7 Next delivery time would be at 2026-01-02 03:04:05.123 UTC which exceeds " +
      "the expiry time 2026-01-02 03:00:00 UTC configured via set_scheduling",
  );
});
