/**
 * The built-in reply table (lua-api.md §9, queues-and-delivery.md §9.3),
 * driven by a raw node:net client against the real program: exact texts,
 * pipelining in one write, DATA-phase checks, EXPN/LHLO, bad sender syntax,
 * XCLIENT when not allowed, max_messages_per_connection (452 within a
 * transaction, 421 and close at its first RCPT), and which replies become
 * Rejection records.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import {
  basePolicy,
  idsOf,
  RawSmtp,
  readLogRecords,
  readSpool,
  startKumo,
} from "./support/kumo_process.ts";

Deno.test("reply table, pipelining and Rejection records", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-replies-" });
  await using dns = await startDnsServer({});
  await using kumo = await startKumo(
    dir,
    basePolicy(
      dir,
      "max_message_size = 2000, max_recipients_per_message = 2, line_length_hard_limit = 100",
      `kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }`,
    ),
  );
  await using c = await RawSmtp.connect(kumo.port);
  assert.equal(await c.reply(), "220 mx.test KumoMTA");
  assert.equal(await c.cmd("HELO c.test"), "250 Hello c.test!");
  assert.equal(
    await c.cmd("EHLO c.test"),
    "250-mx.test Aloha c.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250-8BITMIME\n250-SMTPUTF8\n250 STARTTLS",
  );
  assert.equal(await c.cmd("RCPT TO:<a@b.test>"), "503 5.5.0 MAIL FROM must be issued first");
  assert.equal(await c.cmd("DATA"), "503 5.5.0 MAIL FROM must be issued first");
  assert.equal(await c.cmd("MAIL FROM:<> BODY=8BITMIME SIZE=100"), "250 OK <>");
  assert.equal(
    await c.cmd("MAIL FROM:<x@y.test>"),
    "503 5.5.0 MAIL FROM already issued; you must RSET first",
  );
  assert.equal(await c.cmd("DATA"), "503 5.5.0 RCPT TO must be issued first");
  assert.equal(await c.cmd("RCPT TO:<bad"), "501 5.1.3 Invalid recipient address syntax");
  assert.equal(await c.cmd("RCPT TO:<a@b.test>"), "250 OK <a@b.test>");
  assert.equal(await c.cmd("RCPT TO:<b@b.test>"), "250 OK <b@b.test>");
  assert.equal(await c.cmd("RCPT TO:<c@b.test>"), "452 4.5.3 too many recipients");
  assert.equal(await c.cmd("RSET"), "250 Reset state");
  assert.equal(await c.cmd("NOOP"), "250 the goggles do nothing");
  assert.equal(await c.cmd("VRFY postmaster"), "502 5.5.1 Command unimplemented");
  assert.equal(await c.cmd("HELP"), "502 5.5.1 Command unimplemented");
  assert.equal(await c.cmd("BOGUS"), "502 5.5.1 Command unimplemented");
  assert.equal(
    await c.cmd("AUTH PLAIN AHUAcA=="),
    "524 5.7.11 AUTH PLAIN requires an encrypted channel",
  );
  assert.equal(await c.cmd("NOOP " + "x".repeat(200)), "500 5.2.3 line too long");
  c.send(new Uint8Array([0x4e, 0x4f, 0x4f, 0x50, 0x20, 0xff, 0x0d, 0x0a]));
  assert.equal(await c.reply(), "501 5.5.2 Invalid UTF-8 in command");

  // Pipelined transaction in one write; the body starts with a dot-stuffed line.
  c.send(
    "MAIL FROM:<p@y.test>\r\nRCPT TO:<r@b.test>\r\nDATA\r\n..dot\r\nbody\r\n.\r\nNOOP\r\n",
  );
  assert.equal(await c.reply(), "250 OK <p@y.test>");
  assert.equal(await c.reply(), "250 OK <r@b.test>");
  assert.equal(await c.reply(), "354 Send body; end with CRLF.CRLF");
  const [id] = idsOf(await c.reply());
  assert.equal(await c.reply(), "250 the goggles do nothing");
  const spooled = new TextDecoder().decode(readSpool(`${dir}/spool/data`, id)!);
  assert.ok(spooled.endsWith("+0000\r\n.dot\r\nbody\r\n"), JSON.stringify(spooled));

  // Size, line length and bare LF are checked after the whole body was read.
  c.send("MAIL FROM:<p@y.test>\r\nRCPT TO:<r@b.test>\r\nDATA\r\n");
  await c.reply();
  await c.reply();
  assert.equal(await c.reply(), "354 Send body; end with CRLF.CRLF");
  c.send(("y".repeat(90) + "\r\n").repeat(30) + ".\r\n");
  assert.equal(await c.reply(), "552 5.3.4 message too big");
  c.send("MAIL FROM:<p@y.test>\r\nRCPT TO:<r@b.test>\r\nDATA\r\n");
  await c.reply();
  await c.reply();
  await c.reply();
  c.send("z".repeat(150) + "\r\n.\r\n");
  assert.equal(await c.reply(), "500 5.2.3 line too long");
  c.send("MAIL FROM:<p@y.test>\r\nRCPT TO:<r@b.test>\r\nDATA\r\n");
  await c.reply();
  await c.reply();
  await c.reply();
  c.send("bare\nlf\r\n.\r\n");
  assert.equal(await c.reply(), "552 5.6.0 message data must use CRLF for line endings");
  assert.equal(await c.cmd("QUIT"), "221 So long, and thanks for all the fish!");
  assert.ok(await c.waitClosed());

  assert.equal(await kumo.stop(), 0);
  const rej = readLogRecords(`${dir}/logs`).filter((r) => r.type === "Rejection");
  const codes = rej.map((r) => (r.response as { code: number }).code);
  assert.deepEqual(codes, [
    503,
    503,
    503,
    503,
    501,
    452,
    502,
    502,
    502,
    524,
    500,
    501,
    552,
    500,
    552,
  ]);
  const first = rej[0];
  assert.equal(first.id, "");
  assert.equal(first.queue, "");
  assert.deepEqual(first.response, {
    code: 503,
    enhanced_code: { class: 5, subject: 5, detail: 0 },
    content: "MAIL FROM must be issued first",
    command: "RCPT TO:<a@b.test>",
  });
  assert.deepEqual(first.peer_address, { name: "c.test", addr: "127.0.0.1" });
  const tooMany = rej[5];
  assert.equal(tooMany.sender, "");
  assert.equal(tooMany.recipient, "b@b.test");
  const big = rej[12];
  assert.equal((big.response as { command: string }).command, "DATA");
  assert.equal(big.sender, "p@y.test");
  assert.equal(big.recipient, "r@b.test");
  assert.equal(big.reception_protocol, null);
});

Deno.test("EXPN, LHLO, bad sender syntax, XCLIENT not allowed, max_messages_per_connection", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-replies2-" });
  await using dns = await startDnsServer({});
  await using kumo = await startKumo(
    dir,
    basePolicy(
      dir,
      "max_messages_per_connection = 3",
      `kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }`,
      `kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1h' } end)`,
    ),
  );
  await using c = await RawSmtp.connect(kumo.port);
  assert.equal(await c.reply(), "220 mx.test KumoMTA");
  assert.equal(await c.cmd("EXPN staff"), "502 5.5.1 Command unimplemented");
  assert.equal(await c.cmd("LHLO c.test"), "502 5.5.1 Command unimplemented");
  assert.equal(await c.cmd("XCLIENT ADDR=10.0.0.1"), "550 insufficient authorization");
  assert.equal(
    await c.cmd("MAIL FROM:bad@x.test"),
    "501 5.1.7 Invalid sender address syntax: expected <address>",
  );
  assert.equal(
    await c.cmd("MAIL FROM:<a b@x.test>"),
    "501 5.1.7 Invalid sender address syntax: invalid local part",
  );
  // max_messages_per_connection counts accepted RCPTs on the connection.
  assert.equal(await c.cmd("MAIL FROM:<s@src.test>"), "250 OK <s@src.test>");
  assert.equal(await c.cmd("RCPT TO:<a@dest.test>"), "250 OK <a@dest.test>");
  assert.equal(await c.cmd("RCPT TO:<b@dest.test>"), "250 OK <b@dest.test>");
  assert.match((await c.cmd("DATA"))!, /^354 /);
  assert.equal(idsOf(await c.cmd("Subject: 1\r\n\r\none\r\n.")).length, 2);
  assert.equal(await c.cmd("MAIL FROM:<s@src.test>"), "250 OK <s@src.test>");
  assert.equal(await c.cmd("RCPT TO:<c@dest.test>"), "250 OK <c@dest.test>");
  assert.equal(
    await c.cmd("RCPT TO:<d@dest.test>"),
    "452 4.5.3 too many recipients on this connection",
    "the transaction already has a recipient",
  );
  assert.match((await c.cmd("DATA"))!, /^354 /);
  assert.equal(idsOf(await c.cmd("Subject: 2\r\n\r\ntwo\r\n.")).length, 1);
  assert.equal(await c.cmd("MAIL FROM:<s@src.test>"), "250 OK <s@src.test>");
  assert.equal(
    await c.cmd("RCPT TO:<e@dest.test>"),
    "421 4.5.3 mx.test too many recipients on this connection",
    "first RCPT of a transaction: 421 and close",
  );
  assert.ok(await c.waitClosed());
  assert.equal(await kumo.stop(), 0);
  const rej = readLogRecords(`${dir}/logs`).filter((r) => r.type === "Rejection").map((r) => {
    const res = r.response as { code: number; command: string };
    return [res.code, res.command];
  });
  assert.deepEqual(rej, [
    [502, "EXPN staff"],
    [502, "LHLO c.test"],
    [550, "XCLIENT ADDR=10.0.0.1"],
    [501, "MAIL FROM:bad@x.test"],
    [501, "MAIL FROM:<a b@x.test>"],
    [452, "RCPT TO:<d@dest.test>"],
    [421, "RCPT TO:<e@dest.test>"],
  ]);
  await Deno.remove(dir, { recursive: true });
});
