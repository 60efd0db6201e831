/**
 * End to end reception: Python smtplib injects into the real program; the
 * spool holds the byte-exact body under Received/X-KumoRef, the meta record
 * holds the envelope and connection meta, the Reception log has the record,
 * an idle session gets `421 4.3.2 … shutting down` at SIGTERM, and a restart
 * finds the message again (spool_message_enumerated fires) — also with the
 * `RocksDB` (segment-log) spool.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import {
  basePolicy,
  idsOf,
  RawSmtp,
  readLogRecords,
  readSpool,
  readSpoolRecords,
  run,
  startKumo,
} from "./support/kumo_process.ts";

const PY = `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='client.test', timeout=10)
body = b'Subject: hi\\r\\n\\r\\n..leading dot\\r\\nline two\\r\\n'
code, resp = s.ehlo()
print('EHLO', code, resp.decode().replace('\\n', '|'))
s.mail('sender@origin.test')
r = s.rcpt('one@dest.test'); print('RCPT', r[0], r[1].decode())
r = s.rcpt('two@other.test'); print('RCPT', r[0], r[1].decode())
code, resp = s.data(body)
print('DATA', code, resp.decode())
s.quit()
`;

Deno.test("smtplib message is spooled, logged and found again after restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-recv-" });
  const policy = basePolicy(
    dir,
    "",
    "",
    `kumo.on('spool_message_enumerated', function(msg)
  kumo.log_info('enumerated ' .. msg:id() .. ' ' .. tostring(msg:recipient()))
end)`,
  );
  let ids: string[];
  {
    await using kumo = await startKumo(dir, policy);
    const out = await run("python3", ["-c", PY, String(kumo.port)]);
    assert.equal(out.code, 0, out.stderr);
    const lines = out.stdout.trim().split("\n");
    assert.equal(
      lines[0],
      "EHLO 250 mx.test Aloha client.test|PIPELINING|ENHANCEDSTATUSCODES|8BITMIME|SMTPUTF8|STARTTLS",
    );
    assert.equal(lines[1], "RCPT 250 OK <one@dest.test>");
    assert.equal(lines[2], "RCPT 250 OK <two@other.test>");
    const m = /^DATA 250 OK ids=([0-9a-f]{32}) ([0-9a-f]{32})$/.exec(lines[3]);
    assert.ok(m, lines[3]);
    ids = [m[1], m[2]];

    // An idle session is told about the shutdown.
    const idle = await RawSmtp.connect(kumo.port);
    assert.equal(await idle.reply(), "220 mx.test KumoMTA");
    assert.equal(await kumo.stop(), 0);
    assert.equal(await idle.reply(), "421 4.3.2 mx.test shutting down");
    assert.ok(await idle.waitClosed());
    idle.close();
  }

  const rcpts = ["one@dest.test", "two@other.test"];
  for (let i = 0; i < 2; i++) {
    const id = ids[i];
    const data = new TextDecoder().decode(readSpool(`${dir}/spool/data`, id)!);
    const [kumoRef, received, rest] = [
      data.slice(0, data.indexOf("Received: ")),
      data.slice(data.indexOf("Received: "), data.indexOf("Subject: ")),
      data.slice(data.indexOf("Subject: ")),
    ];
    assert.equal(rest, "Subject: hi\r\n\r\n..leading dot\r\nline two\r\n");
    assert.match(
      received,
      new RegExp(
        `^Received: from client\\.test \\(127\\.0\\.0\\.1\\)\\r\\n  by mx\\.test \\(KumoMTA 127\\.0\\.0\\.1\\) \\r\\n  with ESMTP id ${id} for <${
          rcpts[i].replace(".", "\\.")
        }>;\\r\\n  [A-Z][a-z]{2}, \\d{1,2} [A-Z][a-z]{2} \\d{4} \\d\\d:\\d\\d:\\d\\d \\+0000\\r\\n$`,
      ),
    );
    const b64 = /^X-KumoRef: ([\s\S]*)\r\n$/.exec(kumoRef)![1].replace(/\s/g, "");
    assert.equal(atob(b64), JSON.stringify({ "_@_": "\\_/", recipient: rcpts[i] }));
    const meta = JSON.parse(new TextDecoder().decode(readSpool(`${dir}/spool/meta`, id)!));
    assert.equal(meta.sender, "sender@origin.test");
    assert.equal(meta.recipient, rcpts[i]);
    assert.equal(meta.meta.reception_protocol, "ESMTP");
    assert.equal(meta.meta.ehlo_domain, "client.test");
    assert.equal(meta.meta.hostname, "mx.test");
    assert.match(meta.meta.received_from, /^127\.0\.0\.1:\d+$/);
  }

  const recs = readLogRecords(`${dir}/logs`).filter((r) => r.type === "Reception");
  assert.deepEqual(recs.map((r) => r.id).sort(), [...ids].sort());
  const r0 = recs.find((r) => r.id === ids[0])!;
  assert.equal(r0.sender, "sender@origin.test");
  assert.equal(r0.recipient, "one@dest.test");
  assert.equal(r0.queue, "dest.test");
  assert.deepEqual(r0.peer_address, { name: "client.test", addr: "127.0.0.1" });
  assert.equal(r0.reception_protocol, "ESMTP");
  assert.equal(r0.size, readSpool(`${dir}/spool/data`, ids[0])!.length);
  assert.deepEqual(r0.response, { code: 250, enhanced_code: null, content: "", command: null });

  // Restart: both acknowledged messages are enumerated.
  await using again = await startKumo(dir, policy);
  const err = again.stderr();
  assert.ok(err.includes(`enumerated ${ids[0]} one@dest.test`), err);
  assert.ok(err.includes(`enumerated ${ids[1]} two@other.test`), err);
  assert.ok(err.includes("spool enumeration complete: 2 messages"), err);
  assert.equal(await again.stop(), 0);
});

Deno.test("RocksDB spool: an acknowledged message is found again after restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-recv-rocks-" });
  // Held an hour (no delivery attempt); dest.test would never be answered anyway.
  await using dns = await startDnsServer({ drop: ["dest.test"] });
  const holdUntil = new Date(Date.now() + 3600_000).toISOString();
  const policy = basePolicy(
    dir,
    "",
    `kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }`,
    `kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1h' } end)
kumo.on('smtp_server_message_received', function(msg)
  msg:set_scheduling { first_attempt = '${holdUntil}' }
end)
kumo.on('spool_message_enumerated', function(msg)
  kumo.log_info('enumerated ' .. msg:id() .. ' ' .. tostring(msg:recipient()))
end)`,
  ).replaceAll(/kumo\.define_spool \{ name = '(data|meta)',/g, "$& kind = 'RocksDB',");
  let id: string;
  {
    await using kumo = await startKumo(dir, policy);
    await using c = await RawSmtp.connect(kumo.port);
    assert.equal(await c.reply(), "220 mx.test KumoMTA");
    assert.match((await c.cmd("EHLO client.test"))!, /^250-mx\.test Aloha client\.test/);
    assert.equal(await c.cmd("MAIL FROM:<sender@origin.test>"), "250 OK <sender@origin.test>");
    assert.equal(await c.cmd("RCPT TO:<one@dest.test>"), "250 OK <one@dest.test>");
    assert.match((await c.cmd("DATA"))!, /^354 /);
    [id] = idsOf(await c.cmd("Subject: rocks\r\n\r\n..dot\r\nbody\r\n."));
    assert.equal(await c.cmd("QUIT"), "221 So long, and thanks for all the fish!");
    assert.equal(await kumo.stop(), 0);
  }
  assert.ok(Deno.statSync(`${dir}/spool/data/log`).isDirectory, "the segment-log layout");
  const data = await readSpoolRecords(`${dir}/spool/data`, "RocksDB", [id]);
  assert.match(
    new TextDecoder().decode(data.get(id)),
    /\r\nSubject: rocks\r\n\r\n\.dot\r\nbody\r\n$/,
  );
  const meta = await readSpoolRecords(`${dir}/spool/meta`, "RocksDB", [id]);
  const rec = JSON.parse(new TextDecoder().decode(meta.get(id)));
  assert.equal(rec.recipient, "one@dest.test");
  assert.equal(rec.meta.ehlo_domain, "client.test");

  await using again = await startKumo(dir, policy);
  const until = Date.now() + 10_000;
  while (!again.stderr().includes(`enumerated ${id}`) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(again.stderr().includes(`enumerated ${id} one@dest.test`), again.stderr());
  assert.equal(await again.stop(), 0);
  await Deno.remove(dir, { recursive: true });
});
