/**
 * The retry schedule and expiry end to end (queues-and-delivery §3,
 * examples §10), scaled down to seconds: a real policy engine, spools, the
 * test's DNS server and an SMTP sink on 127.0.0.2 that tempfails every
 * RCPT. The assertions read the records' own timestamps (event_time against
 * created_time), with ±1 s tolerance for a loaded machine.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import { policyText, startHarness } from "./support/queue_harness.ts";
import type { LogRecord } from "../src/log/record.ts";

const at = (r: LogRecord) => Date.parse(r.event_time);
const since = (r: LogRecord) => at(r) - Date.parse(r.created_time);

/** Poll until `fn` holds (bounded). */
async function waitUntil(fn: () => Promise<boolean> | boolean, what: string, ms = 5000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Run one schedule: tempfail every RCPT, wait for the Expiration, then
 * check attempt times (seconds after creation) against `expected`.
 */
async function runSchedule(queueExtra: string, maxAge: string, expected: number[]) {
  await using dns = await startDnsServer({ zones: {} });
  let rcpts = 0;
  await using sink = await startSmtpSink({
    addresses: ["127.0.0.2"],
    replies: (stage) => {
      if (stage !== "rcpt") return undefined;
      rcpts++;
      return { code: 451, text: "4.3.0 try later" };
    },
  });
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: 9,
    queue:
      `${queueExtra} max_age = '${maxAge}', protocol = { smtp = { mx_list = { '[127.0.0.2]:${sink.port}' } } }`,
  }));
  const msg = await h.inject("s@src.test", "r@dest.test");
  const last = expected[expected.length - 1];
  const [exp] = await h.logs.waitFor("Expiration", 1, (last + 6) * 1000);
  const tfs = h.logs.of("TransientFailure");
  const shape = JSON.stringify(tfs.map((r) => [since(r), r.num_attempts]));

  assert.equal(tfs.length, expected.length, `attempts (ms after creation, num_attempts): ${shape}`);
  tfs.forEach((r, i) => {
    assert.equal(r.id, msg.id);
    assert.equal(r.num_attempts, i, shape);
    assert.equal(r.response.code, 451);
    assert.deepEqual(r.response.enhanced_code, { class: 4, subject: 3, detail: 0 });
    assert.equal(r.response.content, "try later");
    assert.equal(r.site, `unspecified->mx_list:[127.0.0.2]:${sink.port}@smtp_client`);
    const t = since(r);
    assert.ok(Math.abs(t - expected[i] * 1000) <= 1000, `attempt ${i} at ${t} ms: ${shape}`);
    if (i > 0) {
      // Never early: the gap is the scheduled delay (no jitter below 20 s).
      const gap = at(r) - at(tfs[i - 1]);
      const want = (expected[i] - expected[i - 1]) * 1000;
      assert.ok(gap >= want - 100 && gap <= want + 1000, `gap ${i}: ${gap} ms, want ${want}`);
    }
  });

  // Expiration comes right after the failure whose next try would pass
  // max_age, not when max_age itself is reached.
  const lastTf = tfs[tfs.length - 1];
  assert.ok(at(exp) - at(lastTf) < 1000, `Expiration ${at(exp) - at(lastTf)} ms after last try`);
  assert.ok(at(exp) >= at(lastTf));
  assert.equal(exp.id, msg.id);
  assert.equal(exp.recipient, "r@dest.test");
  assert.equal(exp.response.code, 551);
  assert.deepEqual(exp.response.enhanced_code, { class: 5, subject: 4, detail: 7 });
  // examples §10: "Next delivery time would be 1m 15s after creation, which exceeds max_age=1m".
  assert.match(
    exp.response.content,
    new RegExp(
      `^Next delivery time would be \\d+s.* after creation, which exceeds max_age=${maxAge}$`,
    ),
  );
  assert.equal(exp.response.command, null);
  assert.equal(exp.peer_address, null);
  assert.equal(h.logs.of("Delivery").length + h.logs.of("Bounce").length, 0);
  assert.equal(rcpts, expected.length, "one RCPT per attempt at the sink");
  await waitUntil(async () => (await h.spooled()) === 0, "the spool to be empty");
  // Nothing more is tried after the Expiration.
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(rcpts, expected.length);
  assert.equal(h.logs.of("TransientFailure").length, expected.length);
  return { tfs, exp };
}

Deno.test("retry schedule: 4xx at 0/1/3/7 s, Expiration right after the 7 s failure", async () => {
  // retry_interval 1 s doubles: 1, 2, 4; after the 7 s failure the next try
  // would be at 15 s > max_age 10 s, so it expires then (at ~7 s, not 10 s).
  const { exp } = await runSchedule("", "10s", [0, 1, 3, 7]);
  assert.ok(since(exp) < 9000, `Expiration at ${since(exp)} ms after creation`);
});

Deno.test("retry schedule: max_retry_interval caps the interval (1, 2, 2, 2 s)", async () => {
  // 1 s base capped at 2 s: tries at 0, 1, 3, 5, 7; after the 7 s failure
  // the next (9 s) would pass max_age 8 s.
  const { exp } = await runSchedule("max_retry_interval = '2s',", "8s", [0, 1, 3, 5, 7]);
  assert.ok(since(exp) < 7900, `Expiration at ${since(exp)} ms after creation`);
});
