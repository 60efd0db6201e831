/**
 * `POST /api/admin/rebind/v1` and `POST /api/admin/bump-config-epoch`
 * against the real program (http-api.md §6.7, §6.8): rebind moves a held
 * message to the queue its new meta names, where it is delivered at once
 * and logged as AdminRebind; an epoch bump retires the pooled Lua
 * contexts, so a changed file the policy reads at load time takes effect
 * (and `lua_load_count` goes up), while without a bump the pooled context
 * keeps what it loaded.
 */
import assert from "node:assert/strict";
import { postJson, startHttpRig } from "./support/http_rig.ts";
import { readLogRecords } from "./support/kumo_process.ts";
import { waitUntil } from "./support/admin_kumo.ts";

function inject(base: string, email: string) {
  return postJson(`${base}/api/inject/v1`, {
    envelope_sender: "bounce@src.test",
    recipients: [{ email }],
    content: "Subject: hi\r\n\r\nhello\r\n",
  });
}

Deno.test("rebind: a held message moves to the queue its new meta names and is delivered", async () => {
  await using rig = await startHttpRig({
    queueConfig:
      "kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1h' } end)",
  });
  const hold = await postJson(`${rig.base}/api/admin/suspend/v1`, {
    reason: "hold",
    queue_names: ["dest.test"],
  });
  assert.equal(hold.status, 200, hold.text);
  assert.equal((await inject(rig.base, "ana@dest.test")).status, 200);
  await waitUntil(
    async () => {
      const q = await fetch(`${rig.base}/api/admin/inspect-sched-q/v1?queue_name=dest.test`);
      const v = q.status === 200 ? await q.json() : (await q.body?.cancel(), null);
      return v?.messages?.[0]?.message?.num_attempts === 1;
    },
    15_000,
    "a suspended attempt",
  );
  assert.equal(rig.sink.messages.length, 0);

  const unmatched = await postJson(`${rig.base}/api/admin/rebind/v1`, {
    reason: "nothing",
    domain: "other.test",
    data: { tenant: "t9" },
  });
  assert.equal(unmatched.status, 200);
  const r = await postJson(`${rig.base}/api/admin/rebind/v1`, {
    reason: "move",
    domain: "dest.test",
    data: { tenant: "t2" },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, "{}");
  // Due at once in its new queue (the 1h retry does not apply).
  const [got] = await rig.sink.waitFor(1, 15_000);
  assert.equal(got.rcptTo[0], "ana@dest.test");
  const old = await fetch(`${rig.base}/api/admin/inspect-sched-q/v1?queue_name=dest.test`);
  const oldView = old.status === 200 ? await old.json() : (await old.body?.cancel(), null);
  assert.ok(oldView === null || oldView.num_scheduled === 0, JSON.stringify(oldView));

  assert.equal(await rig.kumo.stop(), 0);
  const recs = readLogRecords(`${rig.dir}/logs`);
  const rb = recs.filter((x) => x.type === "AdminRebind");
  assert.equal(rb.length, 1);
  assert.equal(
    (rb[0].response as { content: string }).content,
    "Rebound from dest.test to t2@dest.test: move",
  );
  const d = recs.find((x) => x.type === "Delivery")!;
  assert.equal(d.queue, "t2@dest.test");
});

Deno.test("bump-config-epoch: pooled Lua contexts are retired and the policy reloads", async () => {
  const conf = await Deno.makeTempFile({ suffix: ".conf" });
  try {
    await Deno.writeTextFile(conf, 'tag = "one"\n');
    await using rig = await startHttpRig({
      // Read once per Lua context load; .conf is outside the config-monitor globs.
      extra: `local TAG = kumo.toml_load('${conf}').tag
kumo.on('http_message_generated', function(msg)
  msg:prepend_header('X-Tag', TAG)
end)`,
    });
    const loads = async () => {
      const text = await (await fetch(`${rig.base}/metrics`)).text();
      return Number(/\nlua_load_count (\d+)\n/.exec(text)?.[1]);
    };
    const tagOf = (i: number) =>
      /\r\nX-Tag: (\w+)\r\n/.exec(new TextDecoder().decode(rig.sink.messages[i].data))?.[1];

    assert.equal((await inject(rig.base, "m1@dest.test")).status, 200);
    await rig.sink.waitFor(1, 15_000);
    await new Promise((r) => setTimeout(r, 300));
    await Deno.writeTextFile(conf, 'tag = "two"\n');
    const before = await loads();
    assert.equal((await inject(rig.base, "m2@dest.test")).status, 200);
    await rig.sink.waitFor(2, 15_000);
    assert.equal(tagOf(0), "one");
    assert.equal(tagOf(1), "one", "a pooled context keeps what it loaded");
    assert.equal(await loads(), before, "no new context without a bump");

    const bump = await fetch(`${rig.base}/api/admin/bump-config-epoch`, { method: "POST" });
    assert.equal(bump.status, 200);
    assert.equal(await bump.text(), "");
    assert.equal((await inject(rig.base, "m3@dest.test")).status, 200);
    await rig.sink.waitFor(3, 15_000);
    assert.equal(tagOf(2), "two");
    assert.ok((await loads()) > before, "the policy was loaded again");
    assert.match(rig.kumo.stderr(), /config epoch is now \d+/);
  } finally {
    await Deno.remove(conf).catch(() => {});
  }
});
