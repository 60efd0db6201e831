/**
 * POST /api/inject/v1 over real HTTP against the real program: raw and
 * builder messages with per-recipient substitutions travel through the
 * spool and queue to a loopback SMTP sink; the bytes that arrive are checked
 * and parsed with a real MIME parser (postal-mime); Reception records carry
 * reception_protocol "HTTP"; /metrics counts what was sent. Builder
 * features (amp bodies, reply_to, a `To` override, trace_headers), the
 * Static and Handlebars dialects, contrib date filters and the MIME
 * re-encoding of raw content are followed to the sink too.
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
  // Raw content is re-serialized: Content-Type first, then the original fields.
  assert.match(
    anaText,
    /^X-KumoRef: [A-Za-z0-9+/=\r\n\t]+\r\nContent-Type: text\/plain; charset="us-ascii"\r\nFrom: news@src\.test\r\n/,
  );
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

/** The unfolded value of the first `name:` header of a raw message text. */
function header(text: string, name: string): string | undefined {
  const head = text.slice(0, text.indexOf("\r\n\r\n"));
  const m = new RegExp(`(?:^|\r\n)${name}:[ \t]?((?:[^\r]|\r\n[ \t])*)`, "i").exec(head);
  return m?.[1].replace(/\r\n[ \t]/g, " ");
}

Deno.test("inject: amp/reply_to/To override/trace_headers, Static and Handlebars, raw 8-bit re-encoded", async () => {
  await using rig = await startHttpRig({
    extra: `kumo.on('http_message_generated', function(msg, auth)
  msg:set_meta('tenant', 'acme')
end)`,
  });
  const url = `${rig.base}/api/inject/v1`;
  const builder = await postJson(url, {
    envelope_sender: "bounce@src.test",
    recipients: [{ email: "ana@dest.test", name: "Ana" }],
    trace_headers: {
      received_header: true,
      header_name: "X-Ref",
      include_meta_names: ["tenant", "missing"],
    },
    content: {
      from: { email: "news@src.test" },
      reply_to: { email: "help@src.test", name: "Help {{ name }}" },
      subject: "sent {{ 0|datetimeformat(format='short') }} {{ name|upper }}",
      text_body: "text for {{ name }}",
      amp_html_body: "<p>amp for {{ name }}</p>",
      html_body: "<p>html for {{ name }}</p>",
      headers: {
        To: "List <list@dest.test>",
        "X-A": "{{ email }}",
        "X-Norm": "{{ '250 OK ids=8a5475ccbbc611eda12250ebf67f93bd'|normalize_smtp_response }}",
      },
    },
  });
  assert.equal(builder.status, 200, builder.text);
  const stat = await postJson(url, {
    envelope_sender: "bounce@src.test",
    recipients: [{ email: "bo@dest.test", name: "Bo" }],
    template_dialect: "Static",
    content: { subject: "{{ name }} stays", text_body: "Hi {{ name }}" },
  });
  assert.equal(stat.status, 200, stat.text);
  const hbs = await postJson(url, {
    envelope_sender: "bounce@src.test",
    recipients: [{ email: "cy@dest.test", name: "Cy & Co", substitutions: { items: ["a", "b"] } }],
    template_dialect: "Handlebars",
    content: {
      subject: "{{name}}",
      text_body: "{{#each items}}{{this}} for {{name}}. {{/each}}",
      html_body: "<p>{{name}}</p>",
    },
  });
  assert.equal(hbs.status, 200, hbs.text);
  const raw = await postJson(url, {
    envelope_sender: "bounce@src.test",
    recipients: [{ email: "di@dest.test", name: "Dí" }],
    content:
      "From: news@src.test\nSubject: {{ name }}\n\nGrüße, {{ name }}! See you at the shop next week.\n",
  });
  assert.equal(raw.status, 200, raw.text);

  const got = await rig.sink.waitFor(4, 20_000);
  const by = new Map(got.map((m) => [m.rcptTo[0], m]));

  // Builder: part order text, amp, html; Reply-To; the headers map's To wins.
  const ana = by.get("ana@dest.test")!;
  const anaText = dec.decode(ana.data);
  const parsed = await PostalMime.parse(ana.data);
  assert.equal(parsed.subject, "sent 1970-01-01 00:00 ANA");
  assert.deepEqual(parsed.replyTo, [{ address: "help@src.test", name: "Help Ana" }]);
  assert.deepEqual(parsed.to, [{ address: "list@dest.test", name: "List" }]);
  assert.equal(parsed.headers.find((h) => h.key === "x-norm")?.value, "250 OK ids={uuid}");
  assert.equal((anaText.match(/\r\nTo: /g) ?? []).length, 1, anaText);
  assert.equal(header(anaText, "X-A"), "ana@dest.test");
  assert.equal(parsed.text?.trim(), "text for Ana");
  assert.equal(parsed.html?.trim(), "<p>html for Ana</p>");
  const iText = anaText.indexOf("Content-Type: text/plain");
  const iAmp = anaText.indexOf("Content-Type: text/x-amp-html");
  const iHtml = anaText.indexOf("Content-Type: text/html");
  assert.ok(iText > 0 && iText < iAmp && iAmp < iHtml, anaText);
  assert.match(anaText, /<p>amp for Ana<\/p>/);
  assert.match(
    anaText,
    /^Content-Type: multipart\/alternative;|\r\nContent-Type: multipart\/alternative;/,
  );
  // trace_headers: X-Ref (with the meta named) first, then Received.
  assert.ok(anaText.startsWith("X-Ref: "), anaText);
  assert.equal(header(anaText, "X-KumoRef"), undefined);
  const ref = JSON.parse(atob(header(anaText, "X-Ref")!.replace(/\s+/g, "")));
  assert.deepEqual(ref, { "_@_": "\\_/", recipient: "ana@dest.test", tenant: "acme" });
  const received = header(anaText, "Received")!;
  assert.match(
    received,
    /^from src\.test \(127\.0\.0\.1\) +by \S+ \(KumoMTA\) +with HTTP id [0-9a-f]{32} for <ana@dest\.test>; +[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} /,
  );
  assert.ok(anaText.indexOf("\r\nReceived: ") < anaText.indexOf("\r\nContent-Type: "));

  // Static: nothing expanded.
  const bo = await PostalMime.parse(by.get("bo@dest.test")!.data);
  assert.equal(bo.subject, "{{ name }} stays");
  assert.equal(bo.text?.trim(), "Hi {{ name }}");
  assert.deepEqual(bo.to, [{ address: "bo@dest.test", name: "Bo" }]);

  // Handlebars: recursive lookup, escaping only in the HTML body.
  const cy = await PostalMime.parse(by.get("cy@dest.test")!.data);
  assert.equal(cy.subject, "Cy & Co");
  assert.equal(cy.text?.trim(), "a for Cy & Co. b for Cy & Co.");
  assert.equal(cy.html?.trim(), "<p>Cy &amp; Co</p>");

  // Raw 8-bit text arrives re-encoded: quoted-printable UTF-8, Subject RFC 2047
  // (the template's one trailing newline is dropped, so QP ends on a soft break).
  const diData = by.get("di@dest.test")!.data;
  const di = dec.decode(diData);
  assert.match(
    di,
    /\r\nContent-Type: text\/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\nFrom: news@src\.test\r\nSubject: =\?UTF-8\?[BQ]\?[^\r]+\?=\r\nMIME-Version: 1\.0\r\n\r\nGr=C3=BC=C3=9Fe, D=C3=AD! See you at the shop next week\.=\r\n$/,
  );
  assert.ok(diData.every((b) => b < 0x80), "the message is 7-bit clean");
  const diParsed = await PostalMime.parse(diData);
  assert.equal(diParsed.subject, "Dí");
  assert.equal(diParsed.text, "Grüße, Dí! See you at the shop next week.");
});
