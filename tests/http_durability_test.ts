/**
 * Durability of HTTP injection against the real program (http-api.md
 * §3.1, §3.5, §3.6): `deferred_spool` keeps a message out of the spool
 * while its first attempt runs and writes it at its first delay; every
 * recipient whose request got a 200 survives a SIGKILL and is delivered
 * after the restart; a `deferred_generation` request that was answered but
 * not yet expanded when the process was killed is expanded after the
 * restart.
 */
import assert from "node:assert/strict";
import { postJson, startHttpRig } from "./support/http_rig.ts";
import type { SinkStage } from "./support/smtp_sink.ts";
import { waitUntil } from "./support/admin_kumo.ts";

/** Recipients of the meta records in a LocalDisk meta spool. */
function spooledRecipients(metaDir: string): string[] {
  const out: string[] = [];
  const walk = (p: string, depth: number) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(p)];
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory) walk(`${p}/${e.name}`, depth + 1);
      else if (depth >= 4 && /^[0-9a-f]+$/.test(e.name)) {
        const rec = JSON.parse(Deno.readTextFileSync(`${p}/${e.name}`));
        out.push(...[rec.recipient].flat());
      }
    }
  };
  walk(`${metaDir}/data`, 0);
  return out.sort();
}

const RETRY_1H =
  "kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1h' } end)";

Deno.test("deferred_spool: not spooled during the first attempt, spooled at its first delay", async () => {
  const tempfail = (stage: SinkStage) =>
    stage === "rcpt" ? { code: 451, text: "4.3.0 try again later" } : undefined;
  await using rig = await startHttpRig({
    queueConfig: RETRY_1H,
    sinkReplies: tempfail,
    sinkDelayMs: 1500,
  });
  const url = `${rig.base}/api/inject/v1`;
  const body = (email: string, deferred: boolean) => ({
    envelope_sender: "bounce@src.test",
    recipients: [{ email }],
    content: "Subject: hi\r\n\r\nhello\r\n",
    deferred_spool: deferred,
  });
  const [kept, deferred] = await Promise.all([
    postJson(url, body("keep@dest.test", false)),
    postJson(url, body("defer@dest.test", true)),
  ]);
  assert.equal(kept.status, 200, kept.text);
  assert.equal(deferred.status, 200, deferred.text);
  // The sink holds the first attempt for seconds: only the normal message is on disk.
  assert.deepEqual(spooledRecipients(`${rig.dir}/spool/meta`), ["keep@dest.test"]);
  // After the 451, the deferred message is delayed and therefore written.
  await waitUntil(
    () => spooledRecipients(`${rig.dir}/spool/meta`).length === 2,
    20_000,
    "the deferred message spooled at its first delay",
  );
  assert.deepEqual(spooledRecipients(`${rig.dir}/spool/meta`), [
    "defer@dest.test",
    "keep@dest.test",
  ]);
  assert.equal(rig.sink.messages.length, 0);
});

Deno.test("SIGKILL after 200: every acknowledged recipient is delivered after the restart", async () => {
  let refuse = true;
  await using rig = await startHttpRig({
    sinkReplies: (stage) =>
      refuse && stage === "rcpt" ? { code: 451, text: "4.3.0 not yet" } : undefined,
  });
  const url = `${rig.base}/api/inject/v1`;
  const acked: string[] = [];
  let stop = false;
  const worker = async (w: number) => {
    for (let b = 0; !stop && b < 200; b++) {
      const rcpts = Array.from({ length: 10 }, (_, i) => `w${w}-b${b}-r${i}@dest.test`);
      let r: { status: number; text: string };
      try {
        r = await postJson(url, {
          envelope_sender: "bounce@src.test",
          recipients: rcpts.map((email) => ({ email })),
          content: "Subject: durable {{ email }}\r\n\r\nhello\r\n",
        });
      } catch {
        return; // the server vanished mid-request: not acknowledged
      }
      if (r.status !== 200) return;
      assert.equal(JSON.parse(r.text).success_count, 10, r.text);
      acked.push(...rcpts);
    }
  };
  const workers = [1, 2, 3, 4].map(worker);
  await waitUntil(() => acked.length >= 100, 20_000, "100 acknowledged recipients");
  await rig.kumo.kill();
  stop = true;
  await Promise.all(workers);
  assert.equal(rig.sink.messages.length, 0, "nothing was delivered before the kill");
  const ackedNow = acked.slice();

  refuse = false;
  await rig.restart();
  await waitUntil(
    () => {
      const got = new Set(rig.sink.messages.map((m) => m.rcptTo[0]));
      return ackedNow.every((r) => got.has(r));
    },
    60_000,
    `${ackedNow.length} acknowledged recipients delivered`,
  );
  const counts = new Map<string, number>();
  for (const m of rig.sink.messages) counts.set(m.rcptTo[0], (counts.get(m.rcptTo[0]) ?? 0) + 1);
  for (const r of ackedNow) assert.equal(counts.get(r), 1, `${r} delivered once`);
});

Deno.test("deferred_generation: a request killed before its expansion is expanded after restart", async () => {
  await using rig = await startHttpRig({
    extra: `kumo.on('http_message_generated', function(msg)
  kumo.log_info('generating for ' .. msg:recipient().email)
  kumo.sleep(30)
end)`,
  });
  const r = await postJson(`${rig.base}/api/inject/v1`, {
    envelope_sender: "bounce@src.test",
    recipients: [{ email: "g1@dest.test" }, { email: "g2@dest.test" }],
    content: { subject: "gen", text_body: "hello {{ email }}" },
    deferred_generation: true,
  });
  assert.equal(r.status, 200, r.text);
  await waitUntil(
    () => rig.kumo.stderr().includes("generating for g1@dest.test"),
    15_000,
    "the expansion to start",
  );
  await rig.kumo.kill();
  assert.deepEqual(spooledRecipients(`${rig.dir}/spool/meta`), [""], "only the request is spooled");
  await rig.restart({ extra: "" });
  const got = await rig.sink.waitFor(2, 20_000);
  assert.deepEqual(got.map((m) => m.rcptTo[0]).sort(), ["g1@dest.test", "g2@dest.test"]);
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(rig.sink.messages.length, 2);
  await waitUntil(
    () => spooledRecipients(`${rig.dir}/spool/meta`).length === 0,
    10_000,
    "the spool drained",
  );
});
