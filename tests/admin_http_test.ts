/**
 * The admin HTTP API against the real program (http-api §6): suspend holds
 * delivery with the exact TransientFailure text and cancelling lets the
 * message go after the back-off; admin bounce removes queued messages with
 * AdminBounce records (the sink receives nothing for them); inspect-message
 * and inspect-sched-q return the spec's shapes; GETs carry a JSON `null`
 * body like kcli.
 */
import assert from "node:assert/strict";
import { startAdminKumo, waitUntil } from "./support/admin_kumo.ts";
import { readLogRecords } from "./support/kumo_process.ts";

Deno.test("admin API: suspend, inspect, cancel, bounce on the live queues", async (t) => {
  await using k = await startAdminKumo();
  let suspendId = "";
  let heldId = "";

  await t.step("suspend holds a queue: sink receives nothing, attempts go up", async () => {
    const r = await k.call("POST", "/api/admin/suspend/v1", {
      reason: "maintenance",
      domain: "dest.test",
      duration: "10m",
      unknown_key_is_ignored: true,
    });
    assert.equal(r.status, 200, r.text);
    suspendId = (r.json() as { id: string }).id;
    assert.match(suspendId, /^[0-9a-f-]{36}$/);
    const list = await k.call("GET", "/api/admin/suspend/v1");
    assert.equal(list.status, 200, list.text);
    const [s] = list.json() as Record<string, unknown>[];
    assert.equal(s.id, suspendId);
    assert.equal(s.domain, "dest.test");
    assert.equal(s.campaign, null);
    assert.equal(s.reason, "maintenance");
    assert.equal(typeof s.duration, "string");
    heldId = await k.send("a@dest.test");
    await waitUntil(
      async () => {
        const q = await k.call("GET", "/api/admin/inspect-sched-q/v1?queue_name=dest.test&limit=5");
        if (q.status !== 200) return false;
        const v = q.json() as { messages: { message: { num_attempts: number } }[] };
        return v.messages.length === 1 && v.messages[0].message.num_attempts >= 1;
      },
      15_000,
      "a suspended attempt",
    );
    assert.equal(k.sink.messages.length, 0);
  });

  await t.step("inspect-message and inspect-sched-q shapes", async () => {
    const r = await k.call("GET", `/api/admin/inspect-message/v1?id=${heldId}`);
    assert.equal(r.status, 200, r.text);
    const v = r.json() as { id: string; message: Record<string, unknown> };
    assert.equal(v.id, heldId);
    assert.equal(v.message.sender, "sender@src.test");
    assert.equal(v.message.recipient, "a@dest.test");
    assert.equal(v.message.data, null);
    assert.equal(typeof v.message.meta, "object");
    assert.equal("due" in v.message, false);
    assert.equal("num_attempts" in v.message, false);
    const b = await k.call("GET", `/api/admin/inspect-message/v1?id=${heldId}&want_body=true`);
    assert.match((b.json() as { message: { data: string } }).message.data, /hello a@dest\.test/);
    const missing = await k.call("GET", `/api/admin/inspect-message/v1?id=${"0".repeat(32)}`);
    assert.equal(missing.status, 500);
    assert.match(missing.text, /^Error: /);
    const q = await k.call("GET", "/api/admin/inspect-sched-q/v1?queue_name=dest.test");
    const qv = q.json() as Record<string, unknown>;
    assert.equal(qv.queue_name, "dest.test");
    assert.equal(qv.num_scheduled, 1);
    assert.equal((qv.queue_config as Record<string, unknown>).retry_interval, "1s");
    const none = await k.call("GET", "/api/admin/inspect-sched-q/v1?queue_name=nope.test");
    assert.equal(none.status, 404);
    assert.equal(none.text, "Error: no such queue nope.test");
    const noId = await k.call("GET", "/api/admin/inspect-message/v1");
    assert.equal(noId.status, 400);
    assert.equal(noId.text, "Failed to deserialize query string: missing field `id`");
    const noName = await k.call("GET", "/api/admin/inspect-sched-q/v1");
    assert.equal(noName.status, 400);
    assert.equal(noName.text, "Failed to deserialize query string: missing field `queue_name`");
  });

  await t.step("cancelling the suspension lets the message go after the back-off", async () => {
    const r = await k.call("DELETE", "/api/admin/suspend/v1", { id: suspendId });
    assert.equal(r.status, 200);
    assert.equal(r.text, `removed ${suspendId}`);
    const again = await k.call("DELETE", "/api/admin/suspend/v1", { id: suspendId });
    assert.equal(again.status, 404);
    assert.equal(again.text, `suspend entry ${suspendId} not found`);
    await k.sink.waitFor(1, 15_000);
    assert.equal(k.sink.messages[0].rcptTo[0], "a@dest.test");
  });

  await t.step("admin bounce sweeps held messages; sink receives nothing for them", async () => {
    const bad = await k.call("POST", "/api/admin/bounce/v1", { reason: "x", bogus: 1 });
    assert.equal(bad.status, 422);
    assert.match(bad.text, /unknown field `bogus`/);
    const hold = await k.call("POST", "/api/admin/suspend/v1", {
      reason: "hold",
      domain: "bounce.test",
    });
    assert.equal(hold.status, 200);
    await k.send("x@bounce.test");
    await k.send("y@bounce.test");
    await waitUntil(
      async () => {
        const q = await k.call("GET", "/api/admin/inspect-sched-q/v1?queue_name=bounce.test");
        return q.status === 200 && (q.json() as { num_scheduled: number }).num_scheduled === 2;
      },
      15_000,
      "two held messages",
    );
    const r = await k.call("POST", "/api/admin/bounce/v1", {
      reason: "bad list",
      domain: "bounce.test",
    });
    assert.equal(r.status, 200, r.text);
    const body = r.json() as { id: string; bounced: unknown; total_bounced: number };
    assert.deepEqual(body.bounced, {});
    assert.equal(body.total_bounced, 0);
    await waitUntil(
      async () => {
        const l = await k.call("GET", "/api/admin/bounce/v1");
        const [b] = l.json() as { total_bounced: number }[];
        return b?.total_bounced === 2;
      },
      10_000,
      "two bounces",
    );
    const [listed] = (await k.call("GET", "/api/admin/bounce/v1")).json() as Record<
      string,
      unknown
    >[];
    assert.deepEqual(listed.bounced, { "bounce.test": 2 });
    assert.equal(listed.domain, "bounce.test");
    const del = await k.call("DELETE", "/api/admin/bounce/v1", { id: body.id });
    assert.equal(del.text, `removed ${body.id}`);
    const gone = await k.call("DELETE", "/api/admin/bounce/v1", { id: body.id });
    assert.equal(gone.status, 404);
    assert.equal(gone.text, `bounce entry ${body.id} not found`);
  });

  await t.step("other admin endpoints answer", async () => {
    const e = await k.call("POST", "/api/admin/bump-config-epoch");
    assert.equal(e.status, 200);
    assert.equal(e.text, "");
    const f = await k.call("POST", "/api/admin/set_diagnostic_log_filter/v1", { filter: "info" });
    assert.equal(f.status, 200);
    const s = await k.call("GET", "/api/admin/ready-q-states/v1");
    assert.deepEqual(Object.keys(s.json() as object), ["states_by_ready_queue"]);
    const rb = await k.call("POST", "/api/admin/rebind/v1", { reason: "r", data: { a: "b" } });
    assert.equal(rb.status, 200);
    assert.equal(rb.text, "{}");
    const rq = await k.call("POST", "/api/admin/suspend-ready-q/v1", {
      name: "unspecified->mx1.dest.test@smtp_client",
      reason: "slow",
    });
    assert.equal(rq.status, 200);
    const [rql] = (await k.call("GET", "/api/admin/suspend-ready-q/v1")).json() as Record<
      string,
      unknown
    >[];
    assert.equal(rql.name, "unspecified->mx1.dest.test@smtp_client");
    assert.equal(typeof rql.expires, "string");
  });

  await t.step("logs: TransientFailure with the suspension text, AdminBounce records", async () => {
    assert.equal(await k.kumo.stop(), 0);
    const recs = readLogRecords(`${k.dir}/logs`);
    const tf = recs.find((r) => r.type === "TransientFailure" && r.queue === "dest.test");
    assert.ok(tf, "a TransientFailure record");
    assert.deepEqual(tf.response, {
      code: 451,
      enhanced_code: { class: 4, subject: 4, detail: 4 },
      content: "KumoMTA internal: scheduled queue is suspended: maintenance",
      command: null,
    });
    assert.equal(tf.site, "dest.test");
    const ab = recs.filter((r) => r.type === "AdminBounce");
    assert.equal(ab.length, 2);
    assert.deepEqual(ab[0].response, {
      code: 551,
      enhanced_code: { class: 5, subject: 7, detail: 1 },
      content: "Administrator bounced with reason: bad list",
      command: null,
    });
    assert.equal(ab[0].site, "localhost");
    assert.equal(k.sink.messages.length, 1); // only a@dest.test
  });
});
