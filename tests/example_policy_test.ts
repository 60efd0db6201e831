/**
 * The bundled example policy (`examples/init.lua`, what `deno task start`
 * runs) with its policy-extras data files: it starts, receives one message
 * over SMTP, applies the queue helper (tenant header → `bulk` pool →
 * `loopback-2` source), enforces listener_domains for a non-relay peer and
 * delivers to its loopback smart host; `--validate` accepts it.
 *
 * Our Lua's `os.getenv` sees only the WASM sandbox's environment, so the
 * test runs a temp copy of `examples/` with its ports (0), DNS server (the
 * test's own) and smart-host port (the test's sink) edited; the example's
 * state lands under `<tmp>/tmp/example` because it is relative to the policy
 * file. Each edit must match, so a changed example fails here visibly.
 */
import assert from "node:assert/strict";
import { idsOf, RawSmtp, readLogRecords, run, startKumo } from "./support/kumo_process.ts";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";

const ROOT = new URL("..", import.meta.url).pathname;

function edit(text: string, from: string, to: string, file: string): string {
  assert.ok(text.includes(from), `examples/${file} no longer contains ${JSON.stringify(from)}`);
  return text.replaceAll(from, to);
}

Deno.test("the example policy starts, relays one message to its loopback smart host and validates", async () => {
  await using dns = await startDnsServer();
  await using sink = await startSmtpSink();
  const tmp = await Deno.makeTempDir({ prefix: "kumo-example-" });
  const dir = `${tmp}/examples`;
  await Deno.mkdir(dir);
  for (const e of Deno.readDirSync(`${ROOT}examples`)) {
    if (e.isFile) await Deno.copyFile(`${ROOT}examples/${e.name}`, `${dir}/${e.name}`);
  }
  let policy = await Deno.readTextFile(`${dir}/init.lua`);
  policy = edit(policy, "'127.0.0.1:2025'", "'127.0.0.1:0'", "init.lua");
  policy = edit(policy, "'127.0.0.1:8000'", "'127.0.0.1:0'", "init.lua");
  policy = edit(policy, "'127.0.0.1:53'", `'${dns.address}'`, "init.lua");
  const shaping = await Deno.readTextFile(`${dir}/shaping.toml`);
  await Deno.writeTextFile(
    `${dir}/shaping.toml`,
    edit(shaping, "smtp_port = 2026", `smtp_port = ${sink.port}`, "shaping.toml"),
  );

  await using kumo = await startKumo(dir, policy);
  assert.match(kumo.stderr(), /http listener on 127\.0\.0\.1:\d+/);

  // A loopback client relays anywhere; the queue helper picks the tenant.
  {
    await using smtp = await RawSmtp.connect(kumo.port);
    assert.match((await smtp.reply()) ?? "", /^220 /);
    assert.match((await smtp.cmd("EHLO client.test")) ?? "", /^250/);
    assert.match((await smtp.cmd("MAIL FROM:<news@send.example.test>")) ?? "", /^250/);
    assert.match((await smtp.cmd("RCPT TO:<ana@customer.test>")) ?? "", /^250/);
    assert.match((await smtp.cmd("DATA")) ?? "", /^354/);
    smtp.send(
      "From: news@send.example.test\r\nTo: ana@customer.test\r\nSubject: example\r\n" +
        "X-Tenant: newsletter\r\n\r\nhello\r\n.\r\n",
    );
    assert.equal(idsOf(await smtp.reply()).length, 1);
  }
  // 127.0.0.2 is outside relay_hosts: listener_domains.toml decides.
  {
    await using smtp = await RawSmtp.connect(kumo.port, "127.0.0.2");
    assert.match((await smtp.reply()) ?? "", /^220 /);
    assert.match((await smtp.cmd("EHLO outside.test")) ?? "", /^250/);
    assert.match((await smtp.cmd("MAIL FROM:<someone@outside.test>")) ?? "", /^250/);
    assert.match((await smtp.cmd("RCPT TO:<bo@example.test>")) ?? "", /^250/);
    assert.match((await smtp.cmd("RCPT TO:<bo@customer.test>")) ?? "", /^5\d\d /);
  }

  // Delivered to the smart host from 127.0.0.1 by the bulk pool's source.
  const [first] = await sink.waitFor(1, 20_000);
  assert.equal(first.remoteAddress, "127.0.0.1");
  assert.equal(first.ehlo, "mta2.example.test");
  const text = new TextDecoder().decode(first.data);
  assert.match(text, /Subject: example/);
  assert.doesNotMatch(text, /X-Tenant/i);
  assert.equal(await kumo.stop(), 0);

  const records = readLogRecords(`${tmp}/tmp/example/logs`);
  const types = records.map((r) => `${r.type} ${r.queue}`);
  assert.ok(types.includes("Reception newsletter@customer.test![127.0.0.1]"), types.join("\n"));
  assert.ok(types.includes("Delivery newsletter@customer.test![127.0.0.1]"), types.join("\n"));

  const validate = await run(Deno.execPath(), [
    "run",
    "-A",
    `${ROOT}mod.ts`,
    "--validate",
    "--policy",
    `${dir}/init.lua`,
  ], 60_000);
  assert.equal(validate.code, 0, validate.stdout + validate.stderr);
  await Deno.remove(tmp, { recursive: true });
});
