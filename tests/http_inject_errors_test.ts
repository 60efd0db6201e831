/**
 * Bad inject requests against the real program: each gets the status and
 * a body that says what is wrong, and nothing of them is spooled or
 * delivered; deferred_generation answers zero counts and still delivers;
 * gzip request bodies are accepted; a bad credential fails even from a
 * trusted peer; a queue that cannot be resolved fails its recipients
 * before anything is spooled; msg:save() records of a recipient that is not
 * queued are removed.
 */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { postJson, startHttpRig } from "./support/http_rig.ts";
import { readLogRecords } from "./support/kumo_process.ts";

const OK_CONTENT = "Subject: hi\r\n\r\nhello\r\n";

Deno.test("inject errors: 4xx/5xx with reasons, nothing half-enqueued", async () => {
  await using rig = await startHttpRig({ httpExtra: "request_body_limit = 4096" });
  const url = `${rig.base}/api/inject/v1`;
  const req = (over: Record<string, unknown>) => ({
    envelope_sender: "bounce@src.test",
    recipients: [{ email: "ana@dest.test" }],
    content: OK_CONTENT,
    ...over,
  });
  const cases: [string, Promise<{ status: number; text: string }>, number, RegExp][] = [
    ["malformed JSON", postJson(url, "{not json"), 400, /Failed to parse the request body as JSON/],
    [
      "wrong content type",
      fetch(url, { method: "POST", body: "{}", headers: { "content-type": "text/plain" } })
        .then(async (r) => ({ status: r.status, text: await r.text() })),
      415,
      /application\/json/,
    ],
    ["unknown key", postJson(url, req({ bogus: 1 })), 422, /unknown field `bogus`/],
    [
      "unknown recipient key",
      postJson(url, req({ recipients: [{ email: "a@dest.test", mail: "x" }] })),
      422,
      /recipients\[0\]: unknown field `mail`/,
    ],
    [
      "template syntax",
      postJson(url, req({ content: { text_body: "Hi {{ name " } })),
      422,
      /^Error: failed parsing field 'content.text_body' as template: .*\(in template 'text_body.txt' line 1: 'Hi \{\{ name '\)$/,
    ],
    [
      "Handlebars syntax",
      postJson(url, req({ template_dialect: "Handlebars", content: { text_body: "{{#if}}" } })),
      422,
      /^Error: failed parsing field 'content\.text_body' as template: Parse error on line 1: .*\(in template 'text_body\.txt' line 1: '\{\{#if\}\}'\)$/,
    ],
    [
      "from name template syntax",
      postJson(
        url,
        req({ content: { text_body: "x", from: { email: "a@src.test", name: "{{ shop " } } }),
      ),
      422,
      /^Error: failed parsing field 'content\.from\.name' as template: .*\(in template 'headers\[From\]' line 1: '\{\{ shop '\)$/,
    ],
    [
      "no body",
      postJson(url, req({ content: { subject: "x" } })),
      422,
      /text_body or html_body is required/,
    ],
    [
      "bad from",
      postJson(url, req({ content: { text_body: "x", from: { email: "not an address" } } })),
      422,
      /content\.from/,
    ],
    [
      "bad base64",
      postJson(
        url,
        req({
          content: {
            text_body: "x",
            attachments: [{ data: "!!!", base64: true, content_type: "image/png" }],
          },
        }),
      ),
      422,
      /attachments\[0\]\.data: invalid base64/,
    ],
    [
      "bad sender",
      postJson(url, req({ envelope_sender: "a@@b" })),
      500,
      /^Error: envelope_sender: /,
    ],
    [
      "too large",
      postJson(url, req({ content: "Subject: x\r\n\r\n" + "a".repeat(5000) })),
      413,
      /^Failed to buffer the request body: length limit exceeded$/,
    ],
    [
      "too large after decompression",
      fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", "content-encoding": "gzip" },
        body: new Uint8Array(
          gzipSync(JSON.stringify(req({ content: "Subject: x\r\n\r\n" + "b".repeat(9000) }))),
        ),
      }).then(async (r) => ({ status: r.status, text: await r.text() })),
      413,
      /length limit exceeded/,
    ],
    [
      "bad credential from a trusted peer",
      postJson(url, req({}), { authorization: `Basic ${btoa("x:y")}` }),
      401,
      /Authentication Failed for x/,
    ],
  ];
  for (const [name, p, status, re] of cases) {
    const r = await p;
    assert.equal(r.status, status, `${name}: ${r.text}`);
    assert.match(r.text, re, name);
  }

  // Per-recipient failures: a bad address and a render error fail only themselves.
  const partial = await postJson(url, {
    envelope_sender: "",
    recipients: [
      { email: "broken@@dest.test" },
      { email: "ok@dest.test" },
      { email: "render@dest.test", substitutions: { items: 5 } },
    ],
    content: "Subject: x\r\n\r\n{% for i in items %}{{ i }}{% endfor %}\r\n",
  });
  assert.equal(partial.status, 200, partial.text);
  const body = JSON.parse(partial.text);
  assert.equal(body.success_count, 1);
  assert.equal(body.fail_count, 2);
  assert.deepEqual(body.failed_recipients, ["broken@@dest.test", "render@dest.test"]);
  assert.match(body.errors[0], /^broken@@dest\.test: /);
  assert.match(body.errors[1], /^render@dest\.test: .*not iterable/);

  // Raw content that does not parse as MIME fails its recipients, not the request.
  const badMime = await postJson(url, {
    envelope_sender: "bounce@src.test",
    recipients: [{ email: "mime@dest.test" }],
    content: "Subject: x\r\nContent-Type: multipart/mixed\r\n\r\n--b\r\nhi\r\n--b--\r\n",
  });
  assert.equal(badMime.status, 200, badMime.text);
  assert.deepEqual(JSON.parse(badMime.text), {
    success_count: 0,
    fail_count: 1,
    failed_recipients: ["mime@dest.test"],
    errors: [
      "mime@dest.test: Cannot parse message: multipart/mixed without a boundary",
    ],
  });

  // gzip-compressed request, and deferred generation.
  const gz = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "content-encoding": "gzip" },
    body: new Uint8Array(
      gzipSync(JSON.stringify(req({ recipients: [{ email: "gz@dest.test" }] }))),
    ),
  });
  assert.equal(gz.status, 200);
  assert.equal((await gz.json()).success_count, 1);
  const deferred = await postJson(url, {
    ...req({ recipients: [{ email: "d1@dest.test" }, { email: "d2@dest.test" }] }),
    deferred_generation: true,
  });
  assert.equal(deferred.status, 200, deferred.text);
  assert.deepEqual(JSON.parse(deferred.text), {
    success_count: 0,
    fail_count: 0,
    failed_recipients: [],
    errors: [],
  });

  const got = await rig.sink.waitFor(4, 20_000);
  assert.deepEqual(got.map((m) => m.rcptTo[0]).sort(), [
    "d1@dest.test",
    "d2@dest.test",
    "gz@dest.test",
    "ok@dest.test",
  ]);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(rig.sink.messages.length, 4);
  await rig.kumo.stop();
  const recs = readLogRecords(`${rig.dir}/logs`);
  const gen = recs.filter((r) => r.queue === "generator.kumomta.internal");
  assert.deepEqual(gen.map((r) => r.type), ["Reception", "Delivery"]);
  assert.equal(recs.filter((r) => r.type === "Reception").length, 5);
  // Nothing is left in the spool: every accepted message was delivered.
  const left: string[] = [];
  for (const d of ["data", "meta"]) {
    const walk = (p: string) => {
      for (const e of Deno.readDirSync(p)) {
        if (e.isDirectory) walk(`${p}/${e.name}`);
        else if (p !== `${rig.dir}/spool/${d}`) left.push(`${p}/${e.name}`);
      }
    };
    walk(`${rig.dir}/spool/${d}`);
  }
  assert.deepEqual(left.filter((p) => /\/[0-9a-f]{2}\/[0-9a-f]{2}\//.test(p)), []);
});

Deno.test("inject: a queue that cannot be resolved fails its recipients before anything is spooled", async () => {
  await using rig = await startHttpRig({
    queueConfig: `
kumo.on('get_queue_config', function(domain)
  kumo.log_warn('get_queue_config ' .. domain)
  if domain == 'broken.test' then error('no config for ' .. domain) end
  if domain == 'nopool.test' then return kumo.make_queue_config { egress_pool = 'missing' } end
  return kumo.make_queue_config { retry_interval = '1s' }
end)
kumo.on('get_egress_pool', function(name) error('no such pool ' .. name) end)`,
  });
  const url = `${rig.base}/api/inject/v1`;
  const r = await postJson(url, {
    envelope_sender: "bounce@src.test",
    recipients: [
      { email: "ok1@dest.test" },
      { email: "a@broken.test" },
      { email: "b@broken.test" },
      { email: "c@nopool.test" },
      { email: "ok2@dest.test" },
    ],
    content: OK_CONTENT,
  });
  assert.equal(r.status, 200, r.text);
  const body = JSON.parse(r.text);
  assert.equal(body.success_count, 2, r.text);
  assert.equal(body.fail_count, 3, r.text);
  assert.deepEqual(body.failed_recipients, ["a@broken.test", "b@broken.test", "c@nopool.test"]);
  assert.match(
    body.errors[0],
    /^a@broken\.test: Cannot resolve queue "broken\.test": .*no config for broken\.test/,
  );
  assert.match(
    body.errors[1],
    /^b@broken\.test: Cannot resolve queue "broken\.test": .*no config for broken\.test/,
  );
  assert.match(
    body.errors[2],
    /^c@nopool\.test: Cannot resolve queue "nopool\.test": .*no such pool missing/,
  );

  const got = await rig.sink.waitFor(2, 20_000);
  assert.deepEqual(got.map((m) => m.rcptTo[0]).sort(), ["ok1@dest.test", "ok2@dest.test"]);
  await rig.kumo.stop();
  // broken.test was asked once for the request (then remembered), not once per recipient.
  assert.equal(rig.kumo.stderr().split("get_queue_config broken.test").length - 1, 1);
  assert.match(
    rig.kumo.stderr(),
    /Cannot resolve queue "broken\.test": .*no config for broken\.test/,
  );
  // Nothing of the failed recipients reached the spool or the logs (no Reception, no Bounce).
  const recs = readLogRecords(`${rig.dir}/logs`);
  assert.deepEqual(
    recs.filter((x) => x.type === "Reception").map((x) => x.recipient).sort(),
    ["ok1@dest.test", "ok2@dest.test"],
  );
  assert.deepEqual(
    recs.filter((x) => /broken|nopool/.test(String(x.recipient))).map((x) => x.type),
    [],
  );
});

Deno.test("inject: records msg:save() wrote for a recipient that is not queued are removed", async () => {
  await using rig = await startHttpRig({
    extra: `
kumo.on('http_message_generated', function(msg, auth)
  msg:save()
  local user = msg:recipient().user
  if user == 'boom' then error('saved then failed') end
  if user == 'nulled' then msg:set_meta('queue', 'null') end
end)`,
  });
  const r = await postJson(`${rig.base}/api/inject/v1`, {
    envelope_sender: "bounce@src.test",
    recipients: [{ email: "ok@dest.test" }, { email: "boom@dest.test" }, {
      email: "nulled@dest.test",
    }],
    content: OK_CONTENT,
  });
  assert.equal(r.status, 200, r.text);
  const body = JSON.parse(r.text);
  assert.equal(body.success_count, 2, r.text);
  assert.deepEqual(body.failed_recipients, ["boom@dest.test"]);
  assert.match(body.errors[0], /saved then failed/);
  await rig.sink.waitFor(1, 20_000);
  assert.equal(await rig.kumo.stop(), 0);
  assert.deepEqual(rig.sink.messages.map((m) => m.rcptTo[0]), ["ok@dest.test"]);
  // The delivered message left the spool; the failed and the dropped one left nothing behind.
  assert.deepEqual(spoolRecords(`${rig.dir}/spool`), []);
});

/** Record files under both spools (LocalDisk layout), temp files excluded. */
function spoolRecords(root: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    let entries: Deno.DirEntry[] = [];
    try {
      entries = [...Deno.readDirSync(p)];
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory) walk(`${p}/${e.name}`);
      else out.push(`${p}/${e.name}`);
    }
  };
  for (const d of ["data", "meta"]) walk(`${root}/${d}/data`);
  return out;
}
