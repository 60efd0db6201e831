/**
 * Policy-driven reception features against the real program: dynamic
 * parameters, `smtp_server_ehlo` replacing the extension list,
 * `kumo.disconnect(..., 'FollowWith421')`, `smtp_server_split_transaction`
 * and `batch_handling = 'BatchByDomain'`, `deferred_spool`,
 * `msg:check_fix_conformance`, `filter_event` and log rotation by
 * `max_file_size`; and bad input (garbage bytes, a failed TLS handshake)
 * that must not take the server down.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { idsOf, RawSmtp, readLogRecords, readSpool, startKumo } from "./support/kumo_process.ts";

function policy(dir: string, dns: string): string {
  return `local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns}' } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'mx.test', meta = { split = 'yes' } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'mx.test', batch_handling = 'BatchByDomain' }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'mx.test', deferred_spool = true }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs', max_file_size = 400, filter_event = 'should_log' }
end)
kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1h' } end)
kumo.on('should_log', function(msg)
  return msg:get_first_named_header_value('Subject') ~= 'nolog'
end)
kumo.on('smtp_server_get_dynamic_parameters', function(listener, conn)
  if conn:get_meta('split') == 'yes' then return { banner = 'Dyn' } end
end)
kumo.on('smtp_server_ehlo', function(domain, conn, ext)
  if domain == 'ext.test' then return { 'PIPELINING', 'X-TEST' } end
end)
kumo.on('smtp_server_mail_from', function(sender, conn)
  if tostring(sender) == 'bye@src.test' then
    kumo.disconnect(550, '5.7.1 go away', 'FollowWith421')
  end
end)
kumo.on('smtp_server_split_transaction', function(msg, conn)
  local r = msg:recipient_list()
  if conn:get_meta('split') ~= 'yes' or #r < 3 then return nil end
  return { { r[1], r[3] }, { r[2] } }
end)
kumo.on('smtp_server_message_received', function(msg, conn)
  local err = msg:check_fix_conformance('MISSING_COLON_VALUE',
    'MISSING_DATE_HEADER|MISSING_MESSAGE_ID_HEADER|MISSING_MIME_VERSION')
  if err then kumo.reject(552, '5.6.0 ' .. err) end
end)
`;
}

function ports(stderr: string): number[] {
  return [...stderr.matchAll(/smtp listener on 127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
}

async function send(c: RawSmtp, rcpts: string[], body: string): Promise<string | null> {
  assert.equal(await c.cmd("MAIL FROM:<s@src.test>"), "250 OK <s@src.test>");
  for (const r of rcpts) assert.equal(await c.cmd(`RCPT TO:<${r}>`), `250 OK <${r}>`);
  assert.match((await c.cmd("DATA"))!, /^354 /);
  return await c.cmd(body + "\r\n.");
}

const dec = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

Deno.test("dynamic params, EHLO list, disconnect, splitting, deferred spool, conformance, logs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-features-" });
  // slow.test is never answered: the deferred message stays in memory while we look.
  await using dns = await startDnsServer({ drop: ["slow.test"] });
  await using kumo = await startKumo(dir, policy(dir, dns.address));
  const [splitPort, byDomainPort, deferredPort] = ports(kumo.stderr());
  const meta = (id: string) => JSON.parse(dec(readSpool(`${dir}/spool/meta`, id))!);

  {
    await using c = await RawSmtp.connect(splitPort);
    assert.equal(await c.reply(), "220 mx.test Dyn", "dynamic banner");
    assert.equal(
      await c.cmd("EHLO ext.test"),
      "250-mx.test Aloha ext.test\n250-PIPELINING\n250 X-TEST",
    );
    assert.match((await c.cmd("EHLO other.test"))!, /\n250-SMTPUTF8\n250 STARTTLS$/);

    // split_transaction: r1+r3 together, r2 alone; conformance fixes applied.
    const ids = idsOf(
      await send(c, ["r1@slow.test", "r2@slow.test", "r3@slow.test"], "Subject: split\r\n\r\nhi"),
    );
    assert.equal(ids.length, 2);
    assert.deepEqual(meta(ids[0]).recipient, ["r1@slow.test", "r3@slow.test"]);
    assert.equal(meta(ids[1]).recipient, "r2@slow.test");
    const data = dec(readSpool(`${dir}/spool/data`, ids[0]))!;
    assert.match(
      data,
      /\r\nDate: .*\r\nMessage-ID: <[0-9a-f]+@mx\.test>\r\nMIME-Version: 1\.0\r\n\r\nhi\r\n$/,
    );

    // An unfixable conformance issue rejects the transaction.
    assert.equal(
      await send(c, ["r1@slow.test"], "Subject: x\r\nno colon line\r\n\r\nhi"),
      "552 5.6.0 Message has conformance issues: MISSING_COLON_VALUE",
    );
    // filter_event: this one is spooled but not logged.
    const [hidden] = idsOf(await send(c, ["r1@slow.test"], "Subject: nolog\r\n\r\nhi"));
    assert.ok(readSpool(`${dir}/spool/data`, hidden));

    // kumo.disconnect FollowWith421
    assert.equal(await c.cmd("MAIL FROM:<bye@src.test>"), "550 5.7.1 go away");
    assert.equal(await c.reply(), "421 mx.test disconnecting due to previous error");
    assert.ok(await c.waitClosed());

    await using b = await RawSmtp.connect(byDomainPort);
    assert.equal(await b.reply(), "220 mx.test KumoMTA");
    const byDomain = idsOf(
      await send(b, ["a@slow.test", "b@other.test", "c@SLOW.test"], "Subject: d\r\n\r\nhi"),
    );
    assert.equal(byDomain.length, 2);
    assert.deepEqual(meta(byDomain[0]).recipient, ["a@slow.test", "c@SLOW.test"]);

    await using d = await RawSmtp.connect(deferredPort);
    assert.equal(await d.reply(), "220 mx.test KumoMTA");
    const [deferred] = idsOf(await send(d, ["x@slow.test"], "Subject: deferred\r\n\r\nhi"));
    assert.ok(deferred);
    assert.equal(readSpool(`${dir}/spool/data`, deferred), null, "deferred_spool: not spooled");
    assert.equal(readSpool(`${dir}/spool/meta`, deferred), null);

    // Garbage bytes and a failed TLS handshake do not hurt the server.
    await using g = await RawSmtp.connect(byDomainPort);
    assert.equal(await g.reply(), "220 mx.test KumoMTA");
    g.send(new Uint8Array([0, 1, 2, 0xff, 0xfe, 13, 10, 0x80, 0x81, 13, 10, 7, 7, 13, 10]));
    assert.equal(await g.reply(), "501 5.5.2 Invalid UTF-8 in command");
    assert.equal(await g.reply(), "501 5.5.2 Invalid UTF-8 in command");
    assert.equal(await g.reply(), "502 5.5.1 Command unimplemented");
    assert.equal(await g.cmd("NOOP"), "250 the goggles do nothing");
    assert.equal(await g.cmd("STARTTLS"), "220 Ready to Start TLS");
    g.send(new Uint8Array(300).fill(0x41)); // not a ClientHello
    assert.ok(await g.waitClosed(10_000), "failed handshake closes that session");

    await using h = await RawSmtp.connect(byDomainPort);
    assert.equal(await h.reply(), "220 mx.test KumoMTA", "server still serving");
    assert.equal(await h.cmd("QUIT"), "221 So long, and thanks for all the fish!");

    for (const x of [b, d, g, h]) x.close();
    assert.equal(await kumo.stop(), 0);
    // deferred_spool: the message still only in memory is written at shutdown.
    assert.match(dec(readSpool(`${dir}/spool/data`, deferred)) ?? "", /\r\nSubject: deferred\r\n/);
    assert.equal(meta(deferred).recipient, "x@slow.test", "deferred message in the meta spool");
    const receptions = readLogRecords(`${dir}/logs`).filter((r) => r.type === "Reception");
    const logged = new Set(receptions.map((r) => r.id));
    for (const id of [...ids, ...byDomain, deferred]) assert.ok(logged.has(id), `logged ${id}`);
    assert.ok(!logged.has(hidden), "filter_event skipped the nolog message");
    assert.doesNotMatch(kumo.stderr(), /filter_event|Cannot write log record/);
    const segments = [...Deno.readDirSync(`${dir}/logs`)].filter((e) => e.isFile);
    assert.ok(segments.length >= 3, `max_file_size rotated segments: ${segments.length}`);
  }
  await Deno.remove(dir, { recursive: true });
});
