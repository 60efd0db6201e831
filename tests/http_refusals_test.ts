/**
 * The 503 answers of the HTTP listener against the real program
 * (http-api.md §3.8, §4): a spool below its `min_free_space` makes liveness
 * say `storage is too full` and inject `Error: disk is too full`; a memory
 * soft limit below the process's usage (`kumo.set_memory_soft_limit`) makes
 * liveness say `load shedding`, inject `Error: load shedding` and new SMTP
 * sessions `421 4.3.2 … load shedding. Try later`, until the limit is
 * raised again. Nothing refused is spooled or delivered.
 */
import assert from "node:assert/strict";
import { postJson, startHttpRig } from "./support/http_rig.ts";
import { RawSmtp } from "./support/kumo_process.ts";

const REQUEST = {
  envelope_sender: "bounce@src.test",
  recipients: [{ email: "ana@dest.test" }],
  content: "Subject: hi\r\n\r\nhello\r\n",
};

function spoolFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    for (const e of Deno.readDirSync(p)) {
      if (e.isDirectory) walk(`${p}/${e.name}`);
      else out.push(`${p}/${e.name}`);
    }
  };
  walk(dir);
  return out.filter((p) => /\/[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{2}\//.test(p));
}

Deno.test("503: a spool below min_free_space → storage is too full / disk is too full", async () => {
  await using rig = await startHttpRig({ spoolExtra: "min_free_space = '100%'" });
  const live = await fetch(`${rig.base}/api/check-liveness/v1`);
  assert.equal(live.status, 503);
  assert.equal(await live.text(), "storage is too full");
  const r = await postJson(`${rig.base}/api/inject/v1`, REQUEST);
  assert.equal(r.status, 503);
  assert.equal(r.text, "Error: disk is too full");
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(rig.sink.messages.length, 0);
  assert.deepEqual(spoolFiles(`${rig.dir}/spool`), []);
});

Deno.test("503: memory headroom 0 → load shedding on liveness, inject and SMTP; recovers", async () => {
  await using rig = await startHttpRig({
    initExtra: "kumo.set_memory_soft_limit(1)",
    // A Basic-auth check is the test's lever to raise the limit at run time.
    extra: `kumo.on('http_server_validate_auth_basic', function(user, password)
  kumo.set_memory_soft_limit(1024 * 1024 * 1024 * 1024)
  return true
end)`,
  });
  const live = await fetch(`${rig.base}/api/check-liveness/v1`);
  assert.equal(live.status, 503);
  assert.equal(await live.text(), "load shedding");
  const r = await postJson(`${rig.base}/api/inject/v1`, REQUEST);
  assert.equal(r.status, 503);
  assert.equal(r.text, "Error: load shedding");
  {
    await using c = await RawSmtp.connect(rig.kumo.port);
    assert.equal(await c.reply(), "421 4.3.2 mx.test load shedding. Try later");
  }
  const metrics = await (await fetch(`${rig.base}/metrics`)).text();
  assert.match(metrics, /\nmemory_limit 1\n/);
  assert.match(metrics, /\nmemory_low_thresh 0\n/);
  assert.match(metrics, /\nmemory_usage [1-9]\d+\n/);
  assert.equal(rig.sink.messages.length, 0);

  const ok = await postJson(`${rig.base}/api/inject/v1`, REQUEST, {
    authorization: `Basic ${btoa("ops:raise")}`,
  });
  assert.equal(ok.status, 200, ok.text);
  const again = await fetch(`${rig.base}/api/check-liveness/v1`);
  assert.equal(again.status, 200);
  assert.equal(await again.text(), "OK");
  const got = await rig.sink.waitFor(1, 20_000);
  assert.equal(got[0].rcptTo[0], "ana@dest.test");
});
