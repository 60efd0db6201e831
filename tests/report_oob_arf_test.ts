/**
 * Incoming DSN (RFC 3464) and ARF (RFC 5965) reports (queues-and-delivery.md
 * §10, logs.md §3–§4): Python's smtplib sends a bounce and a feedback report
 * to a `LogThenDrop` listener domain of the real program, a bounce to a
 * `LogThenRelay` domain, and ordinary mail to the report domain from a peer
 * that may not relay. Checks the OOB / Feedback records in the zstd log
 * segments, that dropped reports are neither spooled nor delivered, that the
 * relayed one reaches the MX sink, and the end-of-DATA 550.
 */
import assert from "node:assert/strict";
import { basePolicy, readLogRecords, readSpool, startKumo } from "./support/kumo_process.ts";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";

const TRACE = btoa(
  JSON.stringify({ "_@_": "\\_/", recipient: "ana@customer.test", tenant: "shop" }),
);

function dsn(to: string): string {
  return [
    "From: MAILER-DAEMON@mx.remote.test",
    `To: ${to}`,
    "Subject: Undelivered Mail Returned to Sender",
    "MIME-Version: 1.0",
    'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"',
    "",
    "--b1",
    "Content-Type: text/plain",
    "",
    "Your message could not be delivered.",
    "--b1",
    "Content-Type: message/delivery-status",
    "",
    "Reporting-MTA: dns; mx.remote.test",
    "Arrival-Date: Fri, 2 Jan 2026 03:04:05 +0000",
    "",
    "Original-Recipient: rfc822;ana@remote.test",
    "Final-Recipient: rfc822; ana.alias@remote.test",
    "Action: failed",
    "Status: 5.1.1",
    "Diagnostic-Code: smtp; 550 5.1.1 user",
    " unknown",
    "Last-Attempt-Date: Fri, 2 Jan 2026 03:04:06 +0000",
    "",
    "Final-Recipient: rfc822; bob@remote.test",
    "Action: delayed",
    "Status: 4.2.0",
    "",
    "Final-Recipient: rfc822; cy@remote.test",
    "Action: failed",
    "Status: 5.7.1",
    "Diagnostic-Code: x-local; refused by policy",
    "",
    "--b1",
    "Content-Type: text/rfc822-headers",
    "",
    "From: shop@shop.test",
    "To: ana@remote.test",
    "Subject: hello",
    "",
    "--b1--",
    "",
  ].join("\r\n");
}

const ARF = [
  "From: fbl@isp.test",
  "To: fbl@bounces.test",
  "Subject: FW: hello",
  "MIME-Version: 1.0",
  'Content-Type: multipart/report; report-type=feedback-report; boundary="part"',
  "",
  "--part",
  "Content-Type: text/plain",
  "",
  "This is an email abuse report.",
  "--part",
  "Content-Type: message/feedback-report",
  "",
  "Feedback-Type: abuse",
  "User-Agent: SomeGenerator/1.0",
  "Version: 1",
  "Arrival-Date: Thu, 8 Mar 2026 14:00:00 +0000",
  "Original-Mail-From: <shop@shop.test>",
  "Original-Rcpt-To: <ana@customer.test>",
  "Reporting-MTA: dns; mail.isp.test",
  "Source-IP: 192.0.2.1",
  "Authentication-Results: mail.isp.test; spf=pass smtp.mail=shop@shop.test",
  "Reported-Domain: shop.test",
  "Incidents: 3",
  "X-Custom: one",
  "",
  "--part",
  "Content-Type: message/rfc822",
  "Content-Disposition: inline",
  "",
  `X-KumoRef: ${TRACE.slice(0, 40)}`,
  ` ${TRACE.slice(40)}`,
  "From: shop@shop.test",
  "To: ana@customer.test",
  "Subject: hello",
  "",
  "Buy now.",
  "--part--",
  "",
].join("\r\n");

const SCRIPT = `
import json, smtplib, sys
port, dsn, dsn_relay, arf = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
out = {}
def send(key, frm, to, data, src='127.0.0.1'):
    s = smtplib.SMTP('127.0.0.1', port, source_address=(src, 0), timeout=20)
    try:
        s.ehlo('reporter.test')
        s.mail(frm)
        s.rcpt(to)
        code, msg = s.data(data.encode())
        out[key] = [code, msg.decode()]
    finally:
        s.quit()
send('dsn', '', 'bounce@bounces.test', dsn)
send('arf', 'fbl@isp.test', 'fbl@bounces.test', arf)
send('relay', '', 'bounce@relay-bounces.test', dsn_relay)
send('plain', 'someone@elsewhere.test', 'info@bounces.test', 'Subject: hi\\r\\n\\r\\nnot a report\\r\\n', '127.0.0.2')
print(json.dumps(out))
`;

Deno.test("DSN and ARF reports to a LogThenDrop domain are logged, not spooled or delivered", async () => {
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  await using dns = await startDnsServer({
    zones: {
      "bounces.test": { MX: [{ pref: 10, host: "mx.sink.test" }] },
      "relay-bounces.test": { MX: [{ pref: 10, host: "mx.sink.test" }] },
      "mx.sink.test": { A: ["127.0.0.2"] },
    },
  });
  const dir = await Deno.makeTempDir({ prefix: "kumo-oob-" });
  await using kumo = await startKumo(
    dir,
    basePolicy(
      dir,
      "",
      `kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }`,
      `
kumo.on('get_listener_domain', function(domain)
  if domain == 'bounces.test' then
    return kumo.make_listener_domain { log_oob = 'LogThenDrop', log_arf = 'LogThenDrop' }
  end
  if domain == 'relay-bounces.test' then
    return kumo.make_listener_domain { log_oob = 'LogThenRelay' }
  end
end)
kumo.on('smtp_server_message_received', function(msg)
  local dsn = msg:parse_rfc3464()
  if dsn then msg:set_meta('dsn_action', dsn.per_recipient[1].action) end
  local arf = msg:parse_rfc5965()
  if arf then msg:set_meta('arf_type', arf.feedback_type) end
end)
kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1s' } end)
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path { smtp_port = ${sink.port}, prohibited_hosts = {}, enable_tls = 'Disabled' }
end)`,
    ),
  );
  const py = await new Deno.Command("python3", {
    args: [
      "-c",
      SCRIPT,
      String(kumo.port),
      dsn("bounce@bounces.test"),
      dsn("bounce@relay-bounces.test"),
      ARF,
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const dec = new TextDecoder();
  assert.ok(py.success, dec.decode(py.stderr));
  const replies = JSON.parse(dec.decode(py.stdout)) as Record<string, [number, string]>;
  const idOf = (k: string) => {
    assert.equal(replies[k][0], 250, `${k}: ${replies[k]}`);
    return /^OK ids=([0-9a-f]{32})$/.exec(replies[k][1])![1];
  };
  const dsnId = idOf("dsn");
  const arfId = idOf("arf");
  const relayId = idOf("relay");
  assert.deepEqual(replies.plain, [550, "5.7.1 relaying not permitted"]);

  // The LogThenRelay report is delivered; the dropped ones never are.
  const [got] = await sink.waitFor(1, 15_000);
  assert.deepEqual(got.rcptTo, ["bounce@relay-bounces.test"]);
  assert.equal(await kumo.stop(), 0);
  assert.equal(sink.messages.length, 1);
  assert.equal(readSpool(`${dir}/spool/data`, dsnId), null);
  assert.equal(readSpool(`${dir}/spool/data`, arfId), null);

  const recs = readLogRecords(`${dir}/logs`);
  const of = (id: string) => recs.filter((r) => r.id === id).map((r) => r.type);
  assert.deepEqual(of(dsnId), ["Reception", "OOB", "OOB"]);
  assert.deepEqual(of(arfId), ["Feedback"]);
  assert.deepEqual(of(relayId).slice(0, 3), ["Reception", "OOB", "OOB"]);
  assert.ok(of(relayId).includes("Delivery"));
  assert.ok(!recs.some((r) => (r.id === dsnId || r.id === arfId) && r.type === "Delivery"));

  const [oob1, oob2] = recs.filter((r) => r.id === dsnId && r.type === "OOB");
  assert.equal(oob1.sender, "bounce@bounces.test");
  assert.equal(oob1.recipient, "ana@remote.test");
  assert.equal(oob1.queue, "bounces.test");
  assert.equal(oob1.site, "");
  assert.equal(oob1.size, 0);
  assert.equal(oob1.num_attempts, 0);
  assert.deepEqual(oob1.response, {
    code: 550,
    enhanced_code: { class: 5, subject: 1, detail: 1 },
    content: "5.1.1 user unknown",
    command: null,
  });
  assert.deepEqual(oob1.peer_address, { name: "mx.remote.test", addr: "127.0.0.1" });
  assert.equal(oob1.timestamp, Date.UTC(2026, 0, 2, 3, 4, 6) / 1000);
  assert.equal(oob1.reception_protocol, "ESMTP");
  assert.equal(oob1.delivery_protocol, null);
  assert.equal(oob1.feedback_report, null);
  assert.equal(oob2.recipient, "cy@remote.test");
  assert.deepEqual(oob2.response, {
    code: 550,
    enhanced_code: { class: 5, subject: 7, detail: 1 },
    content: "",
    command: null,
  });

  const fb = recs.find((r) => r.id === arfId)!;
  // msg:parse_rfc3464() / msg:parse_rfc5965() from policy saw the same reports.
  assert.equal(
    (recs.find((r) => r.id === dsnId)!.meta as Record<string, unknown>).dsn_action,
    "failed",
  );
  assert.equal((fb.meta as Record<string, unknown>).arf_type, "abuse");
  assert.equal(fb.sender, "fbl@isp.test");
  assert.equal(fb.recipient, "fbl@bounces.test");
  assert.deepEqual((fb.response as { code: number }).code, 250);
  const report = fb.feedback_report as Record<string, unknown>;
  assert.deepEqual(
    { ...report, original_message: undefined },
    {
      feedback_type: "abuse",
      user_agent: "SomeGenerator/1.0",
      version: "1",
      arrival_date: "2026-03-08T14:00:00Z",
      incidents: 3,
      original_envelope_id: null,
      original_mail_from: "shop@shop.test",
      reporting_mta: { mta_type: "dns", name: "mail.isp.test" },
      source_ip: "192.0.2.1",
      authentication_results: ["mail.isp.test; spf=pass smtp.mail=shop@shop.test"],
      original_rcpto_to: ["ana@customer.test"],
      reported_domain: ["shop.test"],
      reported_uri: [],
      extensions: { "x-custom": ["one"] },
      original_message: undefined,
      supplemental_trace: { recipient: "ana@customer.test", tenant: "shop" },
    },
  );
  assert.match(String(report.original_message), /^X-KumoRef: .*\nFrom: shop@shop\.test\n/s);
  assert.ok(!String(report.original_message).includes("\r"));
  await Deno.remove(dir, { recursive: true });
});
