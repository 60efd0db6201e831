/**
 * Incoming DSN (RFC 3464) and ARF (RFC 5965) reports (queues-and-delivery.md
 * §10, logs.md §3–§4): Python's smtplib, connecting from 127.0.0.2 (a peer
 * that may not relay), sends a bounce and a feedback report to a
 * `LogThenDrop` listener domain of the real program, a bounce to a
 * `LogThenRelay` domain, a report without `report-type=feedback-report` and
 * ordinary mail to report domains. Checks the OOB / Feedback records in the
 * zstd log segments (fields, captured headers, session ids, the
 * Diagnostic-Code and date fallbacks, a non-UTF-8 original message as bytes),
 * that dropped reports are neither spooled nor delivered, that the relayed
 * one reaches the MX sink, and the end-of-DATA 550. A second test takes
 * reports through the operator guide's listener_domains.toml (verbatim;
 * legacy `log_oob = true` / `log_arf = true` log and relay).
 */
import assert from "node:assert/strict";
import { readLogRecords, readSpool, startKumo } from "./support/kumo_process.ts";
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
    "Final-Recipient: rfc822; dee@remote.test",
    "Action: failed",
    "Status: 5.2.2",
    "Diagnostic-Code: smtp; mailbox full",
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

function arf(opts: { reportType?: string; to?: string } = {}): string {
  const reportType = opts.reportType ?? "report-type=feedback-report; ";
  return [
    "From: fbl@isp.test",
    `To: ${opts.to ?? "fbl@bounces.test"}`,
    "Subject: FW: hello",
    "MIME-Version: 1.0",
    `Content-Type: multipart/report; ${reportType}boundary="part"`,
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
}

const ARF = arf();

/** An ARF whose returned message carries a Latin-1 byte (not UTF-8). */
function latin1Arf(): Uint8Array {
  const text = arf({ to: "fbl2@bounces.test" }).replace("Buy now.", "Caf\u00e9 now.");
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

const b64 = (data: string | Uint8Array) =>
  btoa(String.fromCharCode(...(typeof data === "string" ? new TextEncoder().encode(data) : data)));

/** argv: port, then a JSON list of [key, mail from, rcpt to, base64 data, xclient or ""]. */
const SCRIPT = `
import base64, json, smtplib, sys
port, sends = int(sys.argv[1]), json.loads(sys.argv[2])
out = {}
for key, frm, to, data, xclient in sends:
    s = smtplib.SMTP('127.0.0.1', port, source_address=('127.0.0.2', 0), timeout=20)
    try:
        s.ehlo('reporter.test')
        if xclient:
            code, _ = s.docmd('XCLIENT', xclient)
            assert code == 220, code
            s.ehlo('reporter.test')
        s.mail(frm)
        code, msg = s.rcpt(to)
        if code != 250:
            out[key] = [code, msg.decode()]
            continue
        code, msg = s.data(base64.b64decode(data))
        out[key] = [code, msg.decode()]
    except smtplib.SMTPServerDisconnected as e:
        out[key] = [0, 'disconnected: %s' % e]
        continue
    try:
        s.quit()
    except smtplib.SMTPServerDisconnected:
        pass
print(json.dumps(out))
`;

async function sendAll(
  port: number,
  sends: [string, string, string, string | Uint8Array, string?][],
): Promise<Record<string, [number, string]>> {
  const py = await new Deno.Command("python3", {
    args: [
      "-c",
      SCRIPT,
      String(port),
      JSON.stringify(sends.map(([k, f, t, d, x]) => [k, f, t, b64(d), x ?? ""])),
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const dec = new TextDecoder();
  assert.ok(py.success, dec.decode(py.stderr));
  return JSON.parse(dec.decode(py.stdout));
}

function reportPolicy(dir: string, dns: string, extra: string, listenerExtra = ""): string {
  return `local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns}' } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'mx.test', ${listenerExtra} }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs', meta = { '*' }, headers = { 'Subject' } }
end)
kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1s' } end)
${extra}
`;
}

Deno.test("DSN and ARF reports to a LogThenDrop domain are logged, not spooled or delivered", async () => {
  await using sink = await startSmtpSink({ addresses: ["127.0.0.3"] });
  await using dns = await startDnsServer({
    zones: {
      "bounces.test": { MX: [{ pref: 10, host: "mx.sink.test" }] },
      "relay-bounces.test": { MX: [{ pref: 10, host: "mx.sink.test" }] },
      "arfonly.test": { MX: [{ pref: 10, host: "mx.sink.test" }] },
      "mx.sink.test": { A: ["127.0.0.3"] },
    },
  });
  const dir = await Deno.makeTempDir({ prefix: "kumo-oob-" });
  await using kumo = await startKumo(
    dir,
    reportPolicy(
      dir,
      dns.address,
      `
kumo.on('get_listener_domain', function(domain)
  if domain == 'bounces.test' then
    return kumo.make_listener_domain { log_oob = 'LogThenDrop', log_arf = 'LogThenDrop' }
  end
  if domain == 'relay-bounces.test' then
    return kumo.make_listener_domain { log_oob = 'LogThenRelay' }
  end
  if domain == 'arfonly.test' then
    return kumo.make_listener_domain { log_arf = 'LogThenDrop' }
  end
end)
kumo.on('smtp_server_message_received', function(msg)
  local dsn = msg:parse_rfc3464()
  if dsn then msg:set_meta('dsn_action', dsn.per_recipient[1].action) end
  local arf = msg:parse_rfc5965()
  if arf then msg:set_meta('arf_type', arf.feedback_type) end
end)
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path { smtp_port = ${sink.port}, prohibited_hosts = {}, enable_tls = 'Disabled' }
end)`,
    ),
  );
  const t0 = Math.floor(Date.now() / 1000);
  const replies = await sendAll(kumo.port, [
    ["dsn", "", "bounce@bounces.test", dsn("bounce@bounces.test")],
    ["arf", "fbl@isp.test", "fbl@bounces.test", ARF],
    ["arf8", "fbl@isp.test", "fbl2@bounces.test", latin1Arf()],
    ["relay", "", "bounce@relay-bounces.test", dsn("bounce@relay-bounces.test")],
    ["plain", "someone@elsewhere.test", "info@bounces.test", "Subject: hi\r\n\r\nnot a report\r\n"],
    // a feedback report without report-type=feedback-report is not an ARF report
    ["notarf", "fbl@isp.test", "fbl@arfonly.test", arf({ reportType: "", to: "fbl@arfonly.test" })],
  ]);
  const t1 = Math.ceil(Date.now() / 1000);
  const idOf = (k: string) => {
    assert.equal(replies[k][0], 250, `${k}: ${replies[k]}`);
    return /^OK ids=([0-9a-f]{32})$/.exec(replies[k][1])![1];
  };
  const dsnId = idOf("dsn");
  const arfId = idOf("arf");
  const arf8Id = idOf("arf8");
  const relayId = idOf("relay");
  assert.deepEqual(replies.plain, [550, "5.7.1 relaying not permitted"]);
  assert.deepEqual(replies.notarf, [550, "5.7.1 relaying not permitted"]);

  // The LogThenRelay report is delivered; the dropped ones never are.
  const [got] = await sink.waitFor(1, 15_000);
  assert.deepEqual(got.rcptTo, ["bounce@relay-bounces.test"]);
  assert.equal(await kumo.stop(), 0);
  assert.equal(sink.messages.length, 1);
  for (const id of [dsnId, arfId, arf8Id]) {
    assert.equal(readSpool(`${dir}/spool/data`, id), null);
  }

  const recs = readLogRecords(`${dir}/logs`);
  const of = (id: string) => recs.filter((r) => r.id === id).map((r) => r.type);
  assert.deepEqual(of(dsnId), ["Reception", "OOB", "OOB", "OOB"]);
  assert.deepEqual(of(arfId), ["Feedback"]);
  assert.deepEqual(of(arf8Id), ["Feedback"]);
  assert.deepEqual(of(relayId).slice(0, 4), ["Reception", "OOB", "OOB", "OOB"]);
  assert.ok(of(relayId).includes("Delivery"));
  assert.ok(
    !recs.some((r) => [dsnId, arfId, arf8Id].includes(r.id as string) && r.type === "Delivery"),
  );

  const reception = recs.find((r) => r.id === dsnId && r.type === "Reception")!;
  const [oob1, oob2, oob3] = recs.filter((r) => r.id === dsnId && r.type === "OOB");
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
  assert.deepEqual(oob1.peer_address, { name: "mx.remote.test", addr: "127.0.0.2" });
  assert.equal(oob1.timestamp, Date.UTC(2026, 0, 2, 3, 4, 6) / 1000);
  assert.equal(oob1.reception_protocol, "ESMTP");
  assert.equal(oob1.delivery_protocol, null);
  assert.equal(oob1.feedback_report, null);
  // headers and session come from the DSN message and its session
  assert.deepEqual(oob1.headers, { Subject: "Undelivered Mail Returned to Sender" });
  assert.match(
    String(oob1.session_id),
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  );
  assert.equal(oob1.session_id, reception.session_id);
  assert.equal((oob1.meta as Record<string, unknown>).dsn_action, "failed");
  // a non-smtp diagnostic type: 550 and no text
  assert.equal(oob2.recipient, "cy@remote.test");
  assert.deepEqual(oob2.response, {
    code: 550,
    enhanced_code: { class: 5, subject: 7, detail: 1 },
    content: "",
    command: null,
  });
  // smtp without a numeric first token: 550 and the whole text; no
  // Last-Attempt-Date: the time of processing
  assert.equal(oob3.recipient, "dee@remote.test");
  assert.deepEqual(oob3.response, {
    code: 550,
    enhanced_code: { class: 5, subject: 2, detail: 2 },
    content: "mailbox full",
    command: null,
  });
  const ts = oob3.timestamp as number;
  assert.ok(ts >= t0 && ts <= t1, `${t0} <= ${ts} <= ${t1}`);

  const fb = recs.find((r) => r.id === arfId)!;
  // msg:parse_rfc3464() / msg:parse_rfc5965() from policy saw the same reports.
  assert.equal((fb.meta as Record<string, unknown>).arf_type, "abuse");
  assert.equal(fb.sender, "fbl@isp.test");
  assert.equal(fb.recipient, "fbl@bounces.test");
  assert.deepEqual((fb.response as { code: number }).code, 250);
  assert.deepEqual(fb.peer_address, { name: "reporter.test", addr: "127.0.0.2" });
  assert.deepEqual(fb.headers, { Subject: "FW: hello" });
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

  // A returned message that is not UTF-8 is logged as its bytes.
  const fb8 = recs.find((r) => r.id === arf8Id)!.feedback_report as Record<string, unknown>;
  const bytes = fb8.original_message as number[];
  assert.ok(Array.isArray(bytes), JSON.stringify(fb8.original_message));
  const text = String.fromCharCode(...bytes);
  assert.match(text, /\nSubject: hello\n\nCaf\u00e9 now\.\n$/);
  assert.ok(!bytes.includes(0x0d), "CRLF → LF");
  assert.deepEqual(fb8.supplemental_trace, { recipient: "ana@customer.test", tenant: "shop" });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("reports through the guide's listener_domains.toml: log_oob / log_arf = true log and relay", async () => {
  await using sink = await startSmtpSink({ addresses: ["127.0.0.3"] });
  await using dns = await startDnsServer({
    zones: {
      "bounce.example.com": { MX: [{ pref: 10, host: "mx.sink.test" }] },
      "fbl.example.com": { MX: [{ pref: 10, host: "mx.sink.test" }] },
      "mx.sink.test": { A: ["127.0.0.3"] },
    },
  });
  const seed = new URL("./fixtures/seeds/listener_domains.toml", import.meta.url).pathname;
  const dir = await Deno.makeTempDir({ prefix: "kumo-oob-ld-" });
  await using kumo = await startKumo(
    dir,
    reportPolicy(
      dir,
      dns.address,
      `
local listener_domains = require 'policy-extras.listener_domains'
kumo.on('get_listener_domain', listener_domains:setup { '${seed}' })
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path { smtp_port = ${sink.port}, prohibited_hosts = {}, enable_tls = 'Disabled' }
end)`,
      "allow_xclient = true",
    ),
  );
  const replies = await sendAll(kumo.port, [
    ["dsn", "", "bounce@bounce.example.com", dsn("bounce@bounce.example.com")],
    ["arf", "fbl@isp.test", "fbl@fbl.example.com", arf({ to: "fbl@fbl.example.com" })],
    [
      "plain",
      "someone@elsewhere.test",
      "info@bounce.example.com",
      "Subject: hi\r\n\r\nnot a report\r\n",
    ],
    // on the file's listener "127.0.0.1:25", "*.example.com" has log_oob = false
    // (and no relay_to): the bounce domain is not a report domain there
    [
      "on25",
      "",
      "bounce@bounce.example.com",
      dsn("bounce@bounce.example.com"),
      "DESTADDR=127.0.0.1 DESTPORT=25",
    ],
  ]);
  const idOf = (k: string) => {
    assert.equal(replies[k][0], 250, `${k}: ${replies[k]}`);
    return /^OK ids=([0-9a-f]{32})$/.exec(replies[k][1])![1];
  };
  const dsnId = idOf("dsn");
  const arfId = idOf("arf");
  assert.deepEqual(replies.plain, [550, "5.7.1 relaying not permitted"]);
  assert.equal(replies.on25[0], 550, String(replies.on25));
  assert.match(replies.on25[1], /^5\.7\.1 relaying not permitted/);
  // legacy `true` = LogThenRelay: both reports are also delivered
  const got = await sink.waitFor(2, 15_000);
  assert.deepEqual(got.map((m) => m.rcptTo[0]).sort(), [
    "bounce@bounce.example.com",
    "fbl@fbl.example.com",
  ]);
  assert.equal(await kumo.stop(), 0);
  const recs = readLogRecords(`${dir}/logs`);
  const of = (id: string) => recs.filter((r) => r.id === id).map((r) => r.type);
  assert.deepEqual(of(dsnId).slice(0, 4), ["Reception", "OOB", "OOB", "OOB"]);
  assert.ok(of(dsnId).includes("Delivery"));
  assert.deepEqual(of(arfId).filter((t) => t !== "Delivery"), ["Feedback"]);
  const oob = recs.filter((r) => r.id === dsnId && r.type === "OOB");
  assert.deepEqual(oob.map((r) => r.recipient), [
    "ana@remote.test",
    "cy@remote.test",
    "dee@remote.test",
  ]);
  assert.equal(oob[0].queue, "bounce.example.com");
  await Deno.remove(dir, { recursive: true });
});
