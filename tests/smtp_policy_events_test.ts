/**
 * Reception policy events against the real program: kumo.reject from
 * MAIL/RCPT (421 closes), smtp_server_rewrite_response, the `null` queue
 * (acknowledged, logged, not spooled), a Lua error at DATA (421 4.3.0 and
 * close, nothing spooled), and a client vanishing mid-DATA (nothing spooled
 * or logged).
 */
import assert from "node:assert/strict";
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
  await using kumo = await startKumo(dir, basePolicy(dir, "", "", EVENTS));

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
