import assert from "node:assert/strict";
import { selectShrinkPolicy } from "./shrink_policy.ts";
import { ScheduledQueue } from "./scheduled_queue.ts";
import { parseQueueConfig } from "../policy/config/queue_config.ts";
import { parseQueueName } from "../message/queue_name.ts";
import { Message } from "../message/message.ts";

Deno.test("selectShrinkPolicy(): upstream's rule, last entry whose interval the wait reaches", () => {
  assert.equal(selectShrinkPolicy([], 1), "ShrinkDataAndMeta");
  assert.equal(selectShrinkPolicy([], 0), "NoShrink", "due now: nothing to wait for");
  const steps = [
    { interval: 60_000, policy: "ShrinkData" as const },
    { interval: 300_000, policy: "ShrinkDataAndMeta" as const },
  ];
  assert.equal(selectShrinkPolicy(steps, 59_999), "NoShrink");
  assert.equal(selectShrinkPolicy(steps, 60_000), "ShrinkData");
  assert.equal(selectShrinkPolicy(steps, 299_999), "ShrinkData");
  assert.equal(selectShrinkPolicy(steps, 300_000), "ShrinkDataAndMeta");
  assert.equal(
    selectShrinkPolicy([{ interval: 0, policy: "NoShrink" }], 3_600_000),
    "NoShrink",
  );
});

function spooledMessage(): Message {
  const body = new TextEncoder().encode("Subject: held\r\n\r\nhello\r\n");
  const m = new Message({ sender: "a@src.test", recipients: ["b@dest.test"], data: body });
  m.metaDirty = false;
  m.dataDirty = false; // as storeMessage leaves it
  return m;
}

Deno.test("a scheduled queue releases a waiting message's spooled data as its shrink_policy says", () => {
  const comps = parseQueueName("dest.test");
  const q = new ScheduledQueue("dest.test", comps, parseQueueConfig({}), () => {});
  const kept = new ScheduledQueue(
    "dest.test",
    comps,
    parseQueueConfig({ shrink_policy: [{ interval: "1h", policy: "ShrinkData" }] }),
    () => {},
  );
  try {
    const waiting = spooledMessage();
    const size = waiting.size;
    waiting.due = Date.now() + 60_000;
    q.schedule(waiting);
    assert.equal(waiting.data, null, "default ShrinkDataAndMeta: data released");
    assert.equal(waiting.size, size, "its size is still known (log records)");

    const dueNow = spooledMessage();
    q.schedule(dueNow);
    assert.notEqual(dueNow.data, null, "due now: kept for the promotion");

    const dirty = spooledMessage();
    dirty.dataDirty = true; // changed, not yet in the spool
    dirty.due = Date.now() + 60_000;
    q.schedule(dirty);
    assert.notEqual(dirty.data, null, "unsaved data is never released");

    const soon = spooledMessage();
    soon.due = Date.now() + 60_000;
    kept.schedule(soon);
    assert.notEqual(soon.data, null, "a wait below every interval: NoShrink");
  } finally {
    q.stop();
    kept.stop();
  }
});
