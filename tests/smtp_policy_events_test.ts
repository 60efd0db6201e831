/**
 * Reception policy events against the real program: kumo.reject from
 * MAIL/RCPT (421 closes), smtp_server_rewrite_response, the `null` queue
 * (acknowledged, logged, not spooled), a Lua error at DATA (421 4.3.0 and
 * close, nothing spooled), and a client vanishing mid-DATA (nothing spooled
 * or logged); smtp_server_connection_accepted (reject replaces the banner,
 * an error is 421 4.3.0), smtp_server_rcpt_to reject, get_listener_domain
 * failing or rejecting (421 4.3.0, the custom reply is not used),
 * data_processing_timeout (451 4.4.5 … (rx), nothing kept), and a queue
 * whose config cannot be resolved at end of DATA (421 4.3.0, nothing
 * spooled, the failure remembered for 60 s); records written by msg:save()
 * for a message that is then refused are removed (nothing delivered after a
 * restart).
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import {
  basePolicy,
  idsOf,
  RawSmtp,
  readLogRecords,
  readSpool,
  startKumo,
} from "./support/kumo_process.ts";

const EVENTS = `
kumo.on('smtp_server_mail_from', function(sender, conn_meta)
  if sender.domain == 'spam.test' then kumo.reject(550, '5.7.1 go away') end
  if sender.domain == 'close.test' then kumo.reject(421, '4.7.0 closing now') end
end)
kumo.on('smtp_server_message_received', function(msg, conn_meta)
  if msg:recipient().domain == 'drop.test' then msg:set_meta('queue', 'null') end
  msg:set_meta('x_seen', 'yes')
end)
kumo.on('smtp_server_data', function(msg, conn_meta)
  if msg:sender().domain == 'boom.test' then error('boom') end
end)
kumo.on('smtp_server_rewrite_response', function(status, response, command, conn_meta)
  if status == 250 and response == 'the goggles do nothing' then return 250, 'rewritten noop' end
end)
`;

function tx(c: RawSmtp, from: string, to: string, body = "Subject: t\r\n\r\nhello\r\n"): void {
  c.send(`MAIL FROM:<${from}>\r\nRCPT TO:<${to}>\r\nDATA\r\n${body}.\r\n`);
}

Deno.test("policy rejects, rewrite, null queue, Lua error, vanished client", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-events-" });
  await using dns = await startDnsServer({});
  await using kumo = await startKumo(
    dir,
    basePolicy(
      dir,
      "",
      `kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }`,
      EVENTS,
    ),
  );

  await using a = await RawSmtp.connect(kumo.port);
  await a.reply();
  assert.equal(await a.cmd("EHLO a.test") !== null, true);
  assert.equal(await a.cmd("NOOP"), "250 rewritten noop");
  assert.equal(await a.cmd("MAIL FROM:<x@spam.test>"), "550 5.7.1 go away");
  // MAIL was not recorded: a new MAIL is fine.
  tx(a, "ok@good.test", "keep@dest.test");
  assert.equal(await a.reply(), "250 OK <ok@good.test>");
  await a.reply();
  await a.reply();
  const [kept] = idsOf(await a.reply());
  tx(a, "ok@good.test", "gone@drop.test");
  await a.reply();
  await a.reply();
  await a.reply();
  const [dropped] = idsOf(await a.reply());
  assert.equal(await a.cmd("MAIL FROM:<x@close.test>"), "421 4.7.0 closing now");
  assert.ok(await a.waitClosed());

  await using b = await RawSmtp.connect(kumo.port);
  await b.reply();
  tx(b, "x@boom.test", "r@dest.test");
  await b.reply();
  await b.reply();
  await b.reply();
  assert.equal(await b.reply(), "421 4.3.0 mx.test technical difficulties");
  assert.ok(await b.waitClosed());

  const c = await RawSmtp.connect(kumo.port);
  await c.reply();
  c.send(
    "MAIL FROM:<v@vanish.test>\r\nRCPT TO:<r@dest.test>\r\nDATA\r\nSubject: partial\r\n\r\nhalf a bo",
  );
  await c.reply();
  await c.reply();
  await c.reply();
  c.close();
  await new Promise((r) => setTimeout(r, 100));

  assert.equal(await kumo.stop(), 0);
  assert.ok(readSpool(`${dir}/spool/data`, kept) !== null);
  const meta = JSON.parse(new TextDecoder().decode(readSpool(`${dir}/spool/meta`, kept)!));
  assert.equal(meta.meta.x_seen, "yes");
  assert.equal(readSpool(`${dir}/spool/data`, dropped), null);
  assert.equal(readSpool(`${dir}/spool/meta`, dropped), null);

  const recs = readLogRecords(`${dir}/logs`);
  const receptions = recs.filter((r) => r.type === "Reception");
  assert.deepEqual(receptions.map((r) => [r.id, r.queue]), [[kept, "dest.test"], [
    dropped,
    "null",
  ]]);
  assert.equal((receptions[0].meta as Record<string, unknown>).x_seen, "yes");
  const rej = recs.filter((r) => r.type === "Rejection").map((r) =>
    r.response as Record<string, unknown>
  );
  assert.deepEqual(rej.map((r) => [r.code, r.content]), [
    [550, "go away"],
    [421, "closing now"],
    [421, "mx.test technical difficulties"],
  ]);
  assert.ok(!JSON.stringify(recs).includes("vanish.test"));
  // Only the kept message was spooled.
  let files = 0;
  for await (const _ of walk(`${dir}/spool/data/data`)) files++;
  assert.equal(files, 1);
});

async function* walk(d: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(d)) {
    if (e.isDirectory) yield* walk(`${d}/${e.name}`);
    else yield `${d}/${e.name}`;
  }
}

function ports(stderr: string): number[] {
  return [...stderr.matchAll(/smtp listener on 127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
}

function countFiles(d: string): number {
  let n = 0;
  try {
    for (const e of Deno.readDirSync(d)) n += e.isDirectory ? countFiles(`${d}/${e.name}`) : 1;
  } catch { /* no directory: nothing spooled */ }
  return n;
}

Deno.test("connection_accepted, rcpt_to, get_listener_domain failures, data_processing_timeout", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-events2-" });
  await using dns = await startDnsServer({});
  await using kumo = await startKumo(
    dir,
    `local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'mx.test' }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'mx.test', data_processing_timeout = '1s' }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs' }
end)
kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1h' } end)
kumo.on('smtp_server_connection_accepted', function(conn_meta)
  local from = conn_meta:get_meta('received_from')
  if from:find('^127%.0%.0%.9:') then kumo.reject(421, '4.7.0 not from there') end
  if from:find('^127%.0%.0%.10:') then error('accept bug') end
end)
kumo.on('smtp_server_rcpt_to', function(rcpt, conn_meta)
  if rcpt.user == 'nope' then kumo.reject(550, '5.1.1 no such user') end
end)
kumo.on('get_listener_domain', function(domain, listener, conn_meta)
  if domain == 'ld-error.test' then error('listener domain bug') end
  if domain == 'ld-reject.test' then kumo.reject(550, '5.7.1 custom refusal') end
end)
kumo.on('smtp_server_message_received', function(msg, conn_meta)
  if msg:recipient().domain == 'slow.test' then kumo.sleep(3) end
end)
`,
  );
  const [port, slowPort] = ports(kumo.stderr());

  {
    await using c = await RawSmtp.connect(port, "127.0.0.9");
    assert.equal(await c.reply(), "421 4.7.0 not from there", "reject replaces the banner");
    assert.ok(await c.waitClosed());
  }
  {
    await using c = await RawSmtp.connect(port, "127.0.0.10");
    assert.equal(await c.reply(), "421 4.3.0 mx.test technical difficulties");
    assert.ok(await c.waitClosed());
  }
  {
    await using c = await RawSmtp.connect(port);
    assert.equal(await c.reply(), "220 mx.test KumoMTA");
    assert.equal(await c.cmd("MAIL FROM:<s@src.test>"), "250 OK <s@src.test>");
    assert.equal(await c.cmd("RCPT TO:<nope@dest.test>"), "550 5.1.1 no such user");
    assert.equal(await c.cmd("RCPT TO:<ok@dest.test>"), "250 OK <ok@dest.test>");
    assert.equal(
      await c.cmd("RCPT TO:<x@ld-error.test>"),
      "421 4.3.0 mx.test technical difficulties",
    );
    assert.ok(await c.waitClosed());
  }
  {
    await using c = await RawSmtp.connect(port);
    await c.reply();
    assert.equal(await c.cmd("MAIL FROM:<s@src.test>"), "250 OK <s@src.test>");
    assert.equal(
      await c.cmd("RCPT TO:<x@ld-reject.test>"),
      "421 4.3.0 mx.test technical difficulties",
      "a reject in get_listener_domain is an error; its text is not used",
    );
    assert.ok(await c.waitClosed());
  }
  {
    // The sender domain is looked up too.
    await using c = await RawSmtp.connect(port);
    await c.reply();
    assert.equal(await c.cmd("MAIL FROM:<s@ld-error.test>"), "250 OK <s@ld-error.test>");
    assert.equal(
      await c.cmd("RCPT TO:<ok@dest.test>"),
      "421 4.3.0 mx.test technical difficulties",
    );
    assert.ok(await c.waitClosed());
  }
  {
    await using c = await RawSmtp.connect(slowPort);
    await c.reply();
    tx(c, "s@src.test", "r@slow.test");
    await c.reply();
    await c.reply();
    await c.reply();
    assert.equal(await c.reply(), "451 4.4.5 data_processing_timeout exceeded (rx)");
    // The session goes on.
    assert.equal(await c.cmd("NOOP"), "250 the goggles do nothing");
  }
  await new Promise((r) => setTimeout(r, 3000)); // the slow handler finishes meanwhile
  assert.equal(await kumo.stop(), 0);
  assert.equal(countFiles(`${dir}/spool/data/data`), 0, "nothing spooled");
  const recs = readLogRecords(`${dir}/logs`);
  assert.equal(recs.filter((r) => r.type === "Reception").length, 0, "nothing received");
  const rej = recs.filter((r) => r.type === "Rejection").map((r) => {
    const res = r.response as { code: number; content: string };
    return [res.code, res.content];
  });
  assert.deepEqual(rej, [
    [421, "not from there"],
    [421, "mx.test technical difficulties"],
    [550, "no such user"],
    [421, "mx.test technical difficulties"],
    [421, "mx.test technical difficulties"],
    [421, "mx.test technical difficulties"],
    [451, "data_processing_timeout exceeded (rx)"],
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a queue that cannot be resolved at end of DATA: 421 4.3.0, nothing spooled, 60 s memory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-qresolve-" });
  await using dns = await startDnsServer({});
  await Deno.writeTextFile(`${dir}/qcfg.json`, `{ "retry_intervall": "5m" }`);
  await using kumo = await startKumo(
    dir,
    basePolicy(
      dir,
      "",
      `kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }`,
      `
kumo.on('get_queue_config', function(domain)
  if domain == 'typo.test' then
    return kumo.make_queue_config(kumo.json_load('${dir}/qcfg.json'))
  end
  if domain == 'badsrc.test' then return kumo.make_queue_config { egress_pool = 'warm' } end
  return kumo.make_queue_config { retry_interval = '1h' }
end)
kumo.on('get_egress_pool', function(name)
  return kumo.make_egress_pool { name = name, entries = { { name = 'mta-a' } } }
end)
kumo.on('get_egress_source', function(name) error('no such source ' .. name) end)
`,
    ),
  );
  const send = async (rcpt: string) => {
    await using c = await RawSmtp.connect(kumo.port);
    await c.reply();
    tx(c, "s@src.test", rcpt);
    await c.reply();
    await c.reply();
    await c.reply();
    const final = await c.reply();
    if (final?.startsWith("421 ")) assert.ok(await c.waitClosed(), "421 closes");
    return final;
  };
  assert.equal(await send("a@typo.test"), "421 4.3.0 mx.test technical difficulties");
  assert.equal(await send("b@badsrc.test"), "421 4.3.0 mx.test technical difficulties");
  // Fixed on disk, but the failure is remembered for 60 s.
  await Deno.writeTextFile(`${dir}/qcfg.json`, `{ "retry_interval": "5m" }`);
  assert.equal(await send("c@typo.test"), "421 4.3.0 mx.test technical difficulties");
  const [ok] = idsOf(await send("d@fine.test"));
  assert.equal(await kumo.stop(), 0);
  assert.match(
    kumo.stderr(),
    /Cannot resolve queue "typo\.test": .*unknown field `retry_intervall`/,
  );
  assert.match(kumo.stderr(), /Cannot resolve queue "badsrc\.test": .*no such source mta-a/);
  assert.equal(countFiles(`${dir}/spool/data/data`), 1, "only the good message was spooled");
  assert.ok(readSpool(`${dir}/spool/data`, ok) !== null);
  const recs = readLogRecords(`${dir}/logs`);
  assert.deepEqual(
    recs.filter((r) => r.type === "Reception").map((r) => r.recipient),
    ["d@fine.test"],
  );
  assert.equal(
    recs.filter((r) => r.type === "Rejection" && (r.response as { code: number }).code === 421)
      .length,
    3,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("msg:save() then a refusal: nothing stays in either spool, nothing is delivered after restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-saverej-" });
  await using dns = await startDnsServer({
    zones: {
      "dest.test": { MX: [{ pref: 10, host: "mx.dest.test" }] },
      "mx.dest.test": { A: ["127.0.0.1"] },
    },
  });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.1"] });
  const policy = basePolicy(
    dir,
    "",
    `kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }`,
    `
kumo.on('smtp_server_data', function(msg, conn_meta)
  -- the whole transaction written to the spool: it is never queued itself
  if msg:sender().user == 'txn' then msg:save() end
end)
kumo.on('smtp_server_message_received', function(msg, conn_meta)
  local user = msg:recipient().user
  if user == 'shrunk' then msg:shrink_data() else msg:save() end
  if user == 'refuse' then kumo.reject(550, '5.7.1 saved then refused') end
  if user == 'shrunk' then kumo.reject(451, '4.7.1 shrunk then refused') end
  if user == 'boom' then error('saved then failed') end
  if user == 'nulled' then msg:set_meta('queue', 'null') end
end)
kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1s' } end)
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path { smtp_port = ${sink.port}, prohibited_hosts = {}, enable_tls = 'Disabled' }
end)
`,
  );
  const send = async (port: number, from: string, rcpts: string[]) => {
    await using c = await RawSmtp.connect(port);
    await c.reply();
    c.send(
      `MAIL FROM:<${from}>\r\n${rcpts.map((r) => `RCPT TO:<${r}>\r\n`).join("")}DATA\r\n` +
        `Subject: t\r\n\r\nhello\r\n.\r\n`,
    );
    for (let i = 0; i < rcpts.length + 2; i++) await c.reply();
    return await c.reply();
  };
  const spooled = () => countFiles(`${dir}/spool/data/data`) + countFiles(`${dir}/spool/meta/data`);

  let kumo = await startKumo(dir, policy);
  assert.equal(
    await send(kumo.port, "s@src.test", ["refuse@dest.test"]),
    "550 5.7.1 saved then refused",
  );
  assert.equal(
    await send(kumo.port, "s@src.test", ["shrunk@dest.test"]),
    "451 4.7.1 shrunk then refused",
  );
  assert.equal(
    await send(kumo.port, "s@src.test", ["boom@dest.test"]),
    "421 4.3.0 mx.test technical difficulties",
  );
  idsOf(await send(kumo.port, "s@src.test", ["nulled@dest.test"]));
  // Gone at once (before the reply), not at shutdown: SIGKILL, then look.
  await kumo.kill();
  assert.equal(spooled(), 0, "no record left in the data or meta spool");

  // After the restart nothing of them is delivered; a transaction whose
  // smtp_server_data saved the whole transaction delivers each recipient once.
  kumo = await startKumo(dir, policy);
  try {
    const ids = idsOf(await send(kumo.port, "txn@src.test", ["k1@dest.test", "k2@dest.test"]));
    assert.equal(ids.length, 2);
    await sink.waitFor(2, 20_000);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(sink.messages.map((m) => m.rcptTo.join(",")).sort(), [
      "k1@dest.test",
      "k2@dest.test",
    ]);
    assert.equal(await kumo.stop(), 0);
  } finally {
    await kumo.kill();
  }
  assert.equal(spooled(), 0, "delivered messages removed, the saved transaction too");
  // (The killed first run's log lines are lost; the second run logged only its own two.)
  const recs = readLogRecords(`${dir}/logs`);
  assert.deepEqual(
    recs.filter((r) => r.type === "Reception").map((r) => r.recipient).sort(),
    ["k1@dest.test", "k2@dest.test"],
  );
  assert.equal(recs.filter((r) => r.type === "Delivery").length, 2);
  await Deno.remove(dir, { recursive: true });
});
