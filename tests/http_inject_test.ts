/**
 * POST /api/inject/v1 over real HTTP against the real program: raw and
 * builder messages with per-recipient substitutions travel through the
 * spool and queue to a loopback SMTP sink; the bytes that arrive are checked
 * and parsed with a real MIME parser (postal-mime); Reception records carry
 * reception_protocol "HTTP"; /metrics counts what was sent.
 */
import assert from "node:assert/strict";
import PostalMime from "postal-mime";
import { postJson, startHttpRig } from "./support/http_rig.ts";
import { readLogRecords } from "./support/kumo_process.ts";

const dec = new TextDecoder();

Deno.test("inject: raw and builder messages arrive at the sink, substituted per recipient", async () => {
  await using rig = await startHttpRig({
    extra: `kumo.on('http_message_generated', function(msg, auth)
  msg:set_meta('generated_by', auth.peer_address)
end)`,
  });
  // Raw content: one template, expanded per recipient.
  const raw = await postJson(`${rig.base}/api/inject/v1`, {
    envelope_sender: "bounce@src.test",
    recipients: [
      { email: "ana@dest.test", name: "Ana", substitutions: { n: 3 } },
      { email: "bo@other.test" },
    ],
    substitutions: { shop: "Shop" },
    content: "From: news@src.test\nSubject: Hi {{ name | default('there') }}\n\n" +
      "{{ shop }} has {{ n | default(0) }} items for {{ email }}.\n",
  });
  assert.equal(raw.status, 200, raw.text);
  assert.deepEqual(JSON.parse(raw.text), {
    success_count: 2,
    fail_count: 0,
    failed_recipients: [],
    errors: [],
  });

  // Builder content with attachments and an inline image.
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]);
  const builder = await postJson(`${rig.base}/api/inject/v1`, {
    envelope_sender: "<bounce@src.test>",
    recipients: [{ email: "cy@dest.test", name: "Cy Ümlaut", metadata: { order: "A-9" } }],
    substitutions: { shop: "Shop & Co" },
    content: {
      from: { email: "news@src.test", name: "{{ shop }}" },
      subject: "Café for {{ name }}",
      text_body: "Hi {{ name }}, see you at {{ shop }}.",
      html_body: '<p>Hi {{ name }} from {{ shop }}</p><img src="cid:logo">',
      headers: { "X-Campaign": "spring" },
      attachments: [
        { data: "a,b\n1,2\n", content_type: "text/csv", file_name: "list.csv" },
        {
          data: btoa(String.fromCharCode(...png)),
          base64: true,
          content_type: "image/png",
          content_id: "logo",
          file_name: "logo.png",
        },
      ],
    },
  });
  assert.equal(builder.status, 200, builder.text);
  assert.equal(JSON.parse(builder.text).success_count, 1);

  const got = await rig.sink.waitFor(3, 20_000);
  const byRcpt = new Map(got.map((m) => [m.rcptTo[0], m]));

  const ana = byRcpt.get("ana@dest.test")!;
  assert.equal(ana.mailFrom, "bounce@src.test");
  const anaText = dec.decode(ana.data);
  assert.match(anaText, /^X-KumoRef: [A-Za-z0-9+/=\r\n\t]+\r\nFrom: news@src\.test\r\n/);
  assert.ok(
    anaText.endsWith(
      "From: news@src.test\r\nSubject: Hi Ana\r\nMIME-Version: 1.0\r\n\r\n" +
        "Shop has 3 items for ana@dest.test.\r\n",
    ),
    anaText,
  );
  const ref = /^X-KumoRef: ([^\r]*(?:\r\n\t[^\r]*)*)\r\n/.exec(anaText)![1].replace(/\r\n\t/g, "");
  assert.deepEqual(JSON.parse(atob(ref)), { "_@_": "\\_/", recipient: "ana@dest.test" });
  const bo = dec.decode(byRcpt.get("bo@other.test")!.data);
  assert.ok(
    bo.endsWith(
      "Subject: Hi there\r\nMIME-Version: 1.0\r\n\r\nShop has 0 items for bo@other.test.\r\n",
    ),
    bo,
  );

  const cy = byRcpt.get("cy@dest.test")!;
  const parsed = await PostalMime.parse(cy.data);
  assert.equal(parsed.subject, "Café for Cy Ümlaut");
  assert.equal(parsed.from?.name, "Shop & Co");
  assert.equal(parsed.from?.address, "news@src.test");
  assert.equal(parsed.to?.[0].name, "Cy Ümlaut");
  assert.equal(parsed.to?.[0].address, "cy@dest.test");
  assert.equal(parsed.text?.trim(), "Hi Cy Ümlaut, see you at Shop & Co.");
  // html_body is auto-escaped.
  assert.match(parsed.html ?? "", /<p>Hi Cy Ümlaut from Shop &amp; Co<\/p>/);
  const csv = parsed.attachments.find((a) => a.filename === "list.csv")!;
  assert.equal(csv.mimeType, "text/csv");
  assert.equal(dec.decode(csv.content as ArrayBuffer), "a,b\n1,2\n");
  const logo = parsed.attachments.find((a) => a.filename === "logo.png")!;
  assert.equal(logo.mimeType, "image/png");
  assert.equal(logo.contentId, "<logo>");
  assert.equal(logo.disposition, "inline");
  assert.deepEqual(new Uint8Array(logo.content as ArrayBuffer), png);
  const cyText = dec.decode(cy.data);
  assert.match(cyText, /\r\nContent-Type: multipart\/mixed; boundary="[^"]+"\r\n/);
  assert.match(cyText, /Content-Type: multipart\/related;/);
  assert.match(cyText, /Content-Type: multipart\/alternative;/);
  assert.match(cyText, /\r\nX-Campaign: spring\r\nTo: =\?UTF-8\?/);
  assert.match(cyText, /\r\nMIME-Version: 1\.0\r\nDate: [A-Z][a-z]{2}, \d{1,2} /);

  // /metrics counts the three generated messages and the deliveries.
  const deadline = Date.now() + 10_000;
  let metrics = "";
  while (Date.now() < deadline) {
    metrics = await (await fetch(`${rig.base}/metrics`)).text();
    if (/total_messages_delivered\{service="smtp_client"\} 3\n/.test(metrics)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(metrics, /total_messages_received\{service="http_listener"\} 3\n/);
  // Every line is Prometheus text exposition: HELP/TYPE comments, a sample or
  // an empty line (ignored by the format; prom-client separates families).
  const sample =
    /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (?:[-+]?[0-9.eE+-]+|NaN|[+-]Inf)$/;
  for (const line of metrics.trimEnd().split("\n")) {
    if (line === "") continue;
    assert.ok(/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* /.test(line) || sample.test(line), line);
  }
  assert.match(metrics, /# TYPE total_messages_received counter\n/);
  assert.match(metrics, /total_messages_delivered\{service="smtp_client"\} 3\n/);
  const json = await (await fetch(`${rig.base}/metrics.json`)).json();
  assert.equal(json.total_messages_received.value.service.http_listener, 3);

  await rig.kumo.stop();
  const recs = readLogRecords(`${rig.dir}/logs`);
  const rx = recs.filter((r) => r.type === "Reception");
  assert.equal(rx.length, 3);
  for (const r of rx) {
    assert.equal(r.reception_protocol, "HTTP");
    assert.deepEqual(r.peer_address, { name: "", addr: "127.0.0.1" });
    const meta = r.meta as Record<string, unknown>;
    assert.equal(meta.http_auth, "127.0.0.1");
    assert.equal(meta.received_from, "127.0.0.1");
    assert.equal(meta.received_via, "127.0.0.1");
    assert.equal(meta.hostname, "http.test");
    assert.equal(meta.generated_by, "127.0.0.1");
  }
  const cyRx = rx.find((r) => r.recipient === "cy@dest.test")!;
  assert.deepEqual((cyRx.meta as Record<string, unknown>).extra, { order: "A-9" });
});
