import assert from "node:assert/strict";
import { loadTestPolicy } from "./load_test_policy.ts";
import { Message } from "../../message/message.ts";

Deno.test("kumo.make_throttle is GCRA, shared by name across Lua contexts", async () => {
  await using p = await loadTestPolicy(`
    kumo.on('take', function(name, pause)
      local th = kumo.make_throttle(name, '2/s')
      local r = th:throttle()
      if pause then kumo.sleep(pause) end
      return r
    end)
    kumo.on('delay', function(msg)
      local th = kumo.make_throttle('delay-test', '1/h')
      return th:delay_message_if_throttled(msg)
    end)
    kumo.on('sleep', function()
      local th = kumo.make_throttle('sleep-test', '20/s,max_burst=1')
      local first = th:sleep_if_throttled()
      local second = th:sleep_if_throttled()
      return { first, second, th:explain() }
    end)
  `);
  // two concurrent dispatches borrow two contexts
  const [a, b] = await Promise.all([p.run("take", "shared", 0.05), p.run("take", "shared", 0.05)]);
  for (const r of [a, b] as Record<string, unknown>[]) {
    assert.equal(r.throttled, false);
    assert.equal(r.limit, 2);
    assert.equal(r.retry_after, undefined);
  }
  const c = await p.run("take", "shared") as Record<string, number | boolean>;
  assert.equal(c.throttled, true, "the third event within a second is throttled");
  assert.equal(c.remaining, 0);
  assert.ok(
    (c.retry_after as number) > 0 && (c.retry_after as number) <= 0.5,
    String(c.retry_after),
  );
  const other = await p.run("take", "other") as Record<string, unknown>;
  assert.equal(other.throttled, false, "names are independent");
  assert.equal(other.remaining, 1);

  const msg = new Message({ sender: "a@x.test", recipients: ["b@y.test"], data: null });
  const before = Date.now();
  assert.equal(await p.engine.callOrThrow("delay", "m", [msg]), false);
  assert.ok(msg.due <= Date.now());
  assert.equal(await p.engine.callOrThrow("delay", "m", [msg]), true);
  assert.ok(msg.due > before + 3_000_000, "due moved about an hour ahead");

  const [first, second, explain] = await p.run("sleep") as [boolean, boolean, string];
  assert.equal(first, false);
  assert.equal(second, true, "the second call had to sleep");
  assert.match(explain, /sleep-test.*20\/s/);
});

Deno.test("kumo.make_throttle rejects a bad spec with the policy line", async () => {
  await using p = await loadTestPolicy(
    `kumo.on('t', function()\n  local t = kumo.make_throttle('x', '10 per hour')\n  return t\nend)`,
  );
  await assert.rejects(p.run("t"), /init\.lua:2:.*10 per hour/);
});
