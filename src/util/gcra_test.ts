import assert from "node:assert/strict";
import { Throttle } from "./gcra.ts";
import { parseThrottleSpec } from "./throttle_spec.ts";

Deno.test("Throttle allows a burst of maxBurst then one per interval", () => {
  const t = new Throttle(parseThrottleSpec("10/s"));
  for (let i = 0; i < 10; i++) assert.deepEqual(t.tryAcquire(0), { ok: true }, `#${i}`);
  const r = t.tryAcquire(0);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.retryAfterMs, 100);
  assert.equal(t.tryAcquire(99).ok, false);
  assert.equal(t.tryAcquire(100).ok, true);
  assert.equal(t.tryAcquire(100).ok, false);
});

Deno.test("Throttle honours max_burst smaller than the limit", () => {
  const t = new Throttle(parseThrottleSpec("60/min,max_burst=1"));
  assert.equal(t.tryAcquire(1000).ok, true);
  const r = t.tryAcquire(1000);
  assert.ok(!r.ok && r.retryAfterMs === 1000);
  assert.equal(t.tryAcquire(2000).ok, true);
});

Deno.test("Throttle keeps the long-run rate", () => {
  const t = new Throttle(parseThrottleSpec("20/30min"));
  let ok = 0;
  for (let now = 0; now < 3_600_000; now += 1000) if (t.tryAcquire(now).ok) ok++;
  // 20 burst + 20 more over the second half hour (one every 90 s) ≈ 59..60
  assert.ok(ok >= 58 && ok <= 60, String(ok));
  t.reset();
  assert.equal(t.tryAcquire(3_600_000).ok, true);
});
