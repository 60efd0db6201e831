/**
 * `GET /api/admin/ready-q-states/v1` against the real program
 * (http-api.md §6.6): a ready queue whose only allowed connection is busy
 * while messages wait reports `connection_limited`; one whose
 * `max_connection_rate` refused a new connection reports
 * `connection_rate_throttled`; the `queues` filter keeps only the named
 * queues; states go away when the condition ends.
 */
import assert from "node:assert/strict";
import { postJson, startHttpRig } from "./support/http_rig.ts";
import { waitUntil } from "./support/admin_kumo.ts";

const READY = "unspecified->mx.dest.test@smtp_client";

type States = {
  states_by_ready_queue: Record<string, Record<string, { context: string; since: string }>>;
};

async function states(base: string, query = ""): Promise<States> {
  const r = await fetch(`${base}/api/admin/ready-q-states/v1${query}`);
  assert.equal(r.status, 200);
  return await r.json();
}

function inject(base: string, n: number) {
  return postJson(`${base}/api/inject/v1`, {
    envelope_sender: "bounce@src.test",
    recipients: Array.from({ length: n }, (_, i) => ({ email: `r${i}@dest.test` })),
    content: "Subject: hi\r\n\r\nhello\r\n",
  });
}

Deno.test("ready-q-states: connection_limited while the one connection is busy", async () => {
  await using rig = await startHttpRig({ pathExtra: "connection_limit = 1", sinkDelayMs: 300 });
  const r = await inject(rig.base, 4);
  assert.equal(r.status, 200, r.text);
  let seen: States | undefined;
  await waitUntil(
    async () => {
      seen = await states(rig.base);
      return seen.states_by_ready_queue[READY]?.connection_limited !== undefined;
    },
    15_000,
    "connection_limited",
  );
  const st = seen!.states_by_ready_queue[READY].connection_limited;
  assert.equal(st.context, "connection_limit=1 reached");
  assert.ok(!Number.isNaN(Date.parse(st.since)), st.since);
  // Filtered on another queue name: nothing.
  assert.deepEqual(await states(rig.base, "?queues=other->x@smtp_client"), {
    states_by_ready_queue: {},
  });
  await rig.sink.waitFor(4, 30_000);
  assert.equal(rig.sink.maxConcurrent, 1);
  await waitUntil(
    async () => (await states(rig.base)).states_by_ready_queue[READY] === undefined,
    10_000,
    "state cleared",
  );
});

Deno.test("ready-q-states: connection_rate_throttled after max_connection_rate refuses", async () => {
  await using rig = await startHttpRig({
    pathExtra: "max_connection_rate = '1/h', max_deliveries_per_connection = 1",
    queueConfig:
      "kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1h' } end)",
  });
  const r = await inject(rig.base, 2);
  assert.equal(r.status, 200, r.text);
  let seen: States | undefined;
  await waitUntil(
    async () => {
      seen = await states(rig.base, `?queues=${encodeURIComponent(READY)}`);
      return seen.states_by_ready_queue[READY]?.connection_rate_throttled !== undefined;
    },
    15_000,
    "connection_rate_throttled",
  );
  const st = seen!.states_by_ready_queue[READY].connection_rate_throttled;
  assert.match(st.context, /^max_connection_rate throttling for (59m|1h)/);
  assert.ok(!Number.isNaN(Date.parse(st.since)), st.since);
  await rig.sink.waitFor(1, 15_000);
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(rig.sink.messages.length, 1, "the second connection waits for the throttle");
});
