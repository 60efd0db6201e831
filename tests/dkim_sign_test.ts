/**
 * DKIM signing through the real program (lua-api.md §7.1 `msg:dkim_sign`,
 * §8 `kumo.dkim.*`, policy-extras.md §5 `dkim_sign`): the policy signs in
 * `smtp_server_message_received` with the `policy-extras.dkim_sign` helper
 * (an RSA domain signature plus an Ed25519 additional signature) and with
 * `kumo.dkim.rsa_sha256_signer` directly; the spooled message is verified by
 * mailauth's verifier, which reads the public keys from the test's own DNS
 * server, and by an independent implementation, Debian's python3-dkim
 * (dkimpy, tests/support/dkimpy_verify.ts), so a bug shared by mailauth's
 * signer and verifier cannot hide. A message without From is refused with the
 * helper's 552.
 */
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { dkimVerify } from "mailauth/lib/dkim/verify.js";
import { basePolicy, RawSmtp, readSpool, startKumo } from "./support/kumo_process.ts";
import { startDnsServer } from "./support/dns_server.ts";
import { dkimpyVerify } from "./support/dkimpy_verify.ts";

function keyPair(type: "rsa" | "ed25519"): { pem: string; txt: string } {
  const { privateKey, publicKey } = type === "rsa"
    ? crypto.generateKeyPairSync("rsa", { modulusLength: 2048 })
    : crypto.generateKeyPairSync("ed25519");
  const spki = publicKey.export({ type: "spki", format: "der" });
  // Ed25519 TXT records carry the raw 32-byte key (RFC 8463), RSA the SPKI.
  const p = (type === "rsa" ? spki : spki.subarray(spki.length - 32)).toString("base64");
  return {
    pem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    txt: `v=DKIM1; k=${type}; p=${p}`,
  };
}

Deno.test("messages signed in smtp_server_message_received verify with an independent verifier", async () => {
  const rsa = keyPair("rsa");
  const ed = keyPair("ed25519");
  const direct = keyPair("rsa");
  await using dns = await startDnsServer({
    zones: {
      "s1._domainkey.shop.test": { TXT: [rsa.txt] },
      "esp1._domainkey.esp.test": { TXT: [ed.txt] },
      "direct._domainkey.direct.test": { TXT: [direct.txt] },
    },
  });
  const dir = await Deno.makeTempDir({ prefix: "kumo-dkim-" });
  await Deno.writeTextFile(`${dir}/shop.key`, rsa.pem);
  await Deno.writeTextFile(`${dir}/esp.key`, ed.pem);
  await Deno.writeTextFile(
    `${dir}/dkim_data.toml`,
    `
[base]
selector = "s1"
headers = ["From", "To", "Subject", "Date"]
additional_signatures = ["esp"]
expiration = 3600

[domain."shop.test"]
filename = "${dir}/shop.key"

[signature."esp"]
domain = "esp.test"
selector = "esp1"
algo = "ed25519"
filename = "${dir}/esp.key"
header_canonicalization = "Simple"
body_canonicalization = "Simple"
`,
  );
  await using kumo = await startKumo(
    dir,
    basePolicy(
      dir,
      "",
      `kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }`,
      `
local dkim_sign = require 'policy-extras.dkim_sign'
local sign = dkim_sign:setup({ '${dir}/dkim_data.toml' })
kumo.on('smtp_server_message_received', function(msg)
  if msg:recipient().domain == 'direct.test' then
    local ok, err = pcall(kumo.dkim.rsa_sha256_signer, {
      domain = 'direct.test', selector = 'direct', headers = { 'From' }, key = { key_data = 'x' },
      atps = 'a.test',
    })
    assert(not ok and tostring(err):find('atps is not currently supported'), tostring(err))
    msg:dkim_sign(kumo.dkim.rsa_sha256_signer {
      domain = 'direct.test', selector = 'direct', headers = { 'From', 'Subject' },
      key = { key_data = ${JSON.stringify(direct.pem)} },
    })
    return
  end
  sign(msg)
end)
kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1h' } end)`,
    ),
  );

  const body = "From: Shop <news@shop.test>\r\nTo: ana@customer.test\r\nSubject: hello\r\n" +
    "Date: Fri, 2 Jan 2026 03:04:05 +0000\r\n\r\nHello  there\r\n..dot line\r\n";
  await using smtp = await RawSmtp.connect(kumo.port);
  assert.match((await smtp.reply()) ?? "", /^220 /);
  assert.match((await smtp.cmd("EHLO client.test")) ?? "", /^250/);
  const sendMessage = async (rcpt: string, data: string) => {
    assert.match((await smtp.cmd("MAIL FROM:<news@shop.test>")) ?? "", /^250/);
    assert.match((await smtp.cmd(`RCPT TO:<${rcpt}>`)) ?? "", /^250/);
    assert.match((await smtp.cmd("DATA")) ?? "", /^354/);
    smtp.send(`${data}.\r\n`);
    return (await smtp.reply()) ?? "";
  };
  const ids: string[] = [];
  for (const rcpt of ["ana@customer.test", "bo@direct.test"]) {
    const reply = await sendMessage(rcpt, body);
    const m = /^250 OK ids=([0-9a-f]{32})/.exec(reply);
    assert.ok(m, reply);
    ids.push(m[1]);
  }
  const noFrom = await sendMessage(
    "ana@customer.test",
    "To: ana@customer.test\r\nSubject: no from\r\n\r\nbody\r\n",
  );
  assert.match(
    noFrom,
    /^552 5\.6\.0 DKIM signing requires a From header, but it is missing from this message/,
  );
  assert.equal(await kumo.stop(), 0);

  const resolver = (name: string, type: string) =>
    Deno.resolveDns(name, type as "TXT", { nameServer: { ipAddr: "127.0.0.1", port: dns.port } });
  const verify = async (id: string) => {
    const data = readSpool(`${dir}/spool/data`, id);
    assert.ok(data, `message ${id} not spooled`);
    const res = await dkimVerify(new TextDecoder().decode(data), { resolver });
    return res.results.map((r) => `${r.signingDomain}:${r.status.result}`).sort();
  };
  assert.deepEqual(await verify(ids[0]), ["esp.test:pass", "shop.test:pass"]);
  assert.deepEqual(await verify(ids[1]), ["direct.test:pass"]);

  // Tampering is detected (the verifier is not a rubber stamp).
  const raw = new TextDecoder().decode(readSpool(`${dir}/spool/data`, ids[0])!);
  const tampered = raw.replace("Subject: hello", "Subject: hellO");
  const bad = await dkimVerify(tampered, { resolver });
  assert.ok(bad.results.every((r) => r.status.result === "fail"));

  // The same signatures (RSA and Ed25519, relaxed and simple) verify with dkimpy.
  const records = {
    "s1._domainkey.shop.test": rsa.txt,
    "esp1._domainkey.esp.test": ed.txt,
    "direct._domainkey.direct.test": direct.txt,
  };
  const spooled0 = readSpool(`${dir}/spool/data`, ids[0])!;
  assert.deepEqual(await dkimpyVerify(spooled0, records), ["esp.test:pass", "shop.test:pass"]);
  assert.deepEqual(
    await dkimpyVerify(readSpool(`${dir}/spool/data`, ids[1])!, records),
    ["direct.test:pass"],
  );
  assert.deepEqual(
    await dkimpyVerify(new TextEncoder().encode(tampered), records),
    ["esp.test:fail", "shop.test:fail"],
  );
  // A body change breaks both body hashes too.
  const bodyTampered = raw.replace("Hello  there", "Hello there!");
  assert.deepEqual(
    await dkimpyVerify(new TextEncoder().encode(bodyTampered), records),
    ["esp.test:fail", "shop.test:fail"],
  );
  const sig = /DKIM-Signature: v=1; a=rsa-sha256[^]*?(?=\r\n\S)/.exec(raw)![0];
  assert.match(sig.replace(/\r\n\s+/g, " "), /\bx=\d+/);
  await Deno.remove(dir, { recursive: true });
});
