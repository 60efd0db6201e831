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
 * helper's 552. In-process: the helper's domain lookup follows
 * kumo.domain_map rules, data files load as JSON unless named `.toml` (or
 * come inline), and a signer's key is cached for its `ttl`. At start-up:
 * bad TOML (file and line), unknown keys and bad values (file and key path),
 * setup twice; `--validate` test-signs every domain.
 */
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { dkimVerify } from "mailauth/lib/dkim/verify.js";
import { basePolicy, RawSmtp, readSpool, run, startKumo } from "./support/kumo_process.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import { startDnsServer } from "./support/dns_server.ts";
import { dkimpyVerify } from "./support/dkimpy_verify.ts";
import { loadPolicy } from "./support/policy_engine.ts";
import { policyStartupError } from "./support/policy_startup_error.ts";
import { Message } from "../src/message/message.ts";

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

function message(from: string): Message {
  return new Message({
    sender: "s@src.test",
    recipients: ["r@dest.test"],
    data: new TextEncoder().encode(`From: ${from}\r\nSubject: hi\r\n\r\nbody\r\n`),
  });
}

/** DKIM-Signature tags of a signed message (d, s, a), or null when unsigned. */
function signatureTags(msg: Message): Record<string, string> | null {
  const v = msg.getFirstNamedHeaderValue("DKIM-Signature");
  if (v === undefined) return null;
  const tags: Record<string, string> = {};
  for (const part of v.replace(/\s+/g, "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0) tags[part.slice(0, i)] = part.slice(i + 1);
  }
  return { d: tags.d, s: tags.s, a: tags.a };
}

/** mailauth's verdicts for `msg` against the given TXT records. */
async function verifyWith(msg: Message, records: Record<string, string>): Promise<string[]> {
  const resolver = (name: string) => {
    const txt = records[name];
    if (txt === undefined) {
      return Promise.reject(Object.assign(new Error("ENOTFOUND"), { code: "ENOTFOUND" }));
    }
    return Promise.resolve([[txt]]);
  };
  const res = await dkimVerify(new TextDecoder().decode(msg.getData()), { resolver });
  return res.results.map((r) => `${r.signingDomain}:${r.status.result}`);
}

Deno.test("dkim_sign: domain blocks follow kumo.domain_map rules; any non-.toml file is JSON; inline tables", async () => {
  const wild = keyPair("rsa");
  const exact = keyPair("rsa");
  using p = await loadPolicy((dir) => `
local dkim_sign = require 'policy-extras.dkim_sign'
local sign = dkim_sign:setup {
  '${dir}/dkim.conf',
  { domain = { ['plain.test'] = { filename = '${dir}/exact.key', selector = 'p1' } } },
}
kumo.on('sign', function(msg) sign(msg) end)
`, {
    "wild.key": wild.pem,
    "exact.key": exact.pem,
    // JSON (with a comment), although the name does not end in .json
    "dkim.conf": `{
  // defaults for every domain block
  "base": { "selector": "s1", "headers": ["From", "Subject"] },
  "domain": {
    "*.example.test": { "filename": "WILD" },
    "b.a.example.test": { "filename": "EXACT", "selector": "s2" }
  }
}`,
  });
  const conf = await Deno.readTextFile(`${p.dir}/dkim.conf`);
  await Deno.writeTextFile(
    `${p.dir}/dkim.conf`,
    conf.replace("WILD", `${p.dir}/wild.key`).replace("EXACT", `${p.dir}/exact.key`),
  );
  const sign = async (from: string) => {
    const msg = message(from);
    await p.engine.callOrThrow("sign", "m", [msg]);
    return msg;
  };
  const c = await sign("a@c.example.test");
  assert.deepEqual(signatureTags(c), { d: "c.example.test", s: "s1", a: "rsa-sha256" });
  assert.deepEqual(await verifyWith(c, { "s1._domainkey.c.example.test": wild.txt }), [
    "c.example.test:pass",
  ]);
  assert.deepEqual(signatureTags(await sign("a@x.y.example.test"))?.d, "x.y.example.test");
  const b = await sign("a@b.a.example.test");
  assert.deepEqual(signatureTags(b), { d: "b.a.example.test", s: "s2", a: "rsa-sha256" });
  assert.deepEqual(await verifyWith(b, { "s2._domainkey.b.a.example.test": exact.txt }), [
    "b.a.example.test:pass",
  ]);
  // the exact entry b.a.example.test hides the wildcard below a.example.test
  assert.equal(signatureTags(await sign("a@x.a.example.test")), null);
  // "*.example.test" never matches example.test itself; keys are case-sensitive
  assert.equal(signatureTags(await sign("a@example.test")), null);
  assert.equal(signatureTags(await sign("a@C.EXAMPLE.TEST"))?.d ?? null, null);
  assert.deepEqual(signatureTags(await sign("a@plain.test")), {
    d: "plain.test",
    s: "p1",
    a: "rsa-sha256",
  });
});

Deno.test("kumo.dkim signers cache the key for their ttl: a changed key file is not re-read until then", async () => {
  const [a, b, c] = [keyPair("rsa"), keyPair("rsa"), keyPair("rsa")];
  using p = await loadPolicy((dir) => `
kumo.on('direct', function(msg, ttl)
  msg:dkim_sign(kumo.dkim.rsa_sha256_signer {
    domain = 'cache.test', selector = 'c', headers = { 'From' }, key = '${dir}/c.key', ttl = ttl,
  })
end)
`, { "c.key": a.pem });
  const signed = async (ttl: string) => {
    const msg = message("a@cache.test");
    await p.engine.callOrThrow("direct", "ms", [msg, ttl]);
    return msg;
  };
  const verdict = async (msg: Message, key: { txt: string }) =>
    (await verifyWith(msg, { "c._domainkey.cache.test": key.txt }))[0];
  assert.equal(await verdict(await signed("1 hour"), a), "cache.test:pass");
  await Deno.writeTextFile(`${p.dir}/c.key`, b.pem);
  const second = await signed("1 hour");
  assert.equal(await verdict(second, a), "cache.test:pass", "the cached signer keeps key A");
  assert.equal(await verdict(second, b), "cache.test:fail");
  // ttl = 0: every signer is built afresh and reads the file again
  assert.equal(await verdict(await signed("0s"), b), "cache.test:pass");
  await Deno.writeTextFile(`${p.dir}/c.key`, c.pem);
  assert.equal(await verdict(await signed("0s"), c), "cache.test:pass");
});

async function dkimStartupError(toml: string, extra = ""): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-dkim-bad-" });
  await Deno.writeTextFile(`${dir}/dkim.toml`, toml);
  await Deno.writeTextFile(
    `${dir}/init.lua`,
    `local dkim_sign = require 'policy-extras.dkim_sign'
local sign = dkim_sign:setup { '${dir}/dkim.toml' }
${extra}
kumo.on('init', function() end)
`,
  );
  return await policyStartupError(dir);
}

Deno.test("dkim_sign: bad TOML, unknown keys and bad values stop start-up naming file, line and key", async () => {
  let err = await dkimStartupError(`[base]\nselector = "s1"\n[domain."x.test"\nfilename = "k"\n`);
  assert.match(
    err,
    /Error evaluating policy file "\$DIR\/init\.lua": \$DIR\/init\.lua:2: policy-extras\.dkim_sign: cannot load "\$DIR\/dkim\.toml": Cannot parse \$DIR\/dkim\.toml at line 3, column \d+/,
  );
  err = await dkimStartupError(`[domain."x.test"]\nselector = "s"\nfilname = "k"\n`);
  assert.match(
    err,
    /invalid data in "\$DIR\/dkim\.toml": DkimSignConfig: invalid value for field 'domain'\nmap<string,DkimSignConfig\.Domain>: invalid value for key 'x\.test'\nDkimSignConfig\.Domain: unknown field 'filname'/,
  );
  err = await dkimStartupError(`[bse]\nselector = "s"\n`);
  assert.match(err, /invalid data in "\$DIR\/dkim\.toml": DkimSignConfig: unknown field 'bse'/);
  err = await dkimStartupError(`[domain."x.test"]\nselector = "s"\nalgo = "rsa"\n`);
  assert.match(
    err,
    /DkimSignConfig\.Domain: invalid value for field 'algo'\nUnexpected 'SigningAlgo' value 'rsa', expected one of 'sha256', 'ed25519'/,
  );
  err = await dkimStartupError(`[base]\nheaders = "From"\n`);
  assert.match(
    err,
    /DkimSignConfig\.Base: invalid value for field 'headers'\nExpected 'list<string>', got 'string' From/,
  );
  err = await dkimStartupError(`[signature."esp"]\nselector = "e"\n`);
  assert.match(
    err,
    /DkimSignConfig\.Signature: missing value for field 'domain' of type 'string'/,
  );
  err = await dkimStartupError(`[domain."x.test"]\nfilename = "k"\n`);
  assert.match(
    err,
    /dkim domain 'x\.test' is missing a selector and no default selector is defined in base/,
  );
  err = await dkimStartupError(`[base]\nadditional_signatures = ["esp"]\nselector = "s"\n`);
  assert.match(err, /base\.additional_signature 'esp' but that signature is not defined/);
  err = await dkimStartupError(
    `[base]\nselector = "s"\n`,
    `dkim_sign:setup { '$DIR/dkim.toml' }`,
  );
  assert.match(err, /\$DIR\/init\.lua:3: dkim_sign module has already been configured/);
});

Deno.test("dkim_sign: --validate test-signs every domain and names unused signatures", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-dkim-validate-" });
  const good = keyPair("ed25519");
  await Deno.writeTextFile(`${dir}/good.key`, good.pem);
  await Deno.writeTextFile(
    `${dir}/dkim.toml`,
    `[base]
selector = "s1"
headers = ["From"]

[domain."good.test"]
algo = "ed25519"
filename = "${dir}/good.key"

[domain."nokey.test"]
filename = "${dir}/missing.key"

[signature."unused"]
domain = "esp.test"
`,
  );
  await Deno.writeTextFile(
    `${dir}/init.lua`,
    `local dkim_sign = require 'policy-extras.dkim_sign'
local sign = dkim_sign:setup { '${dir}/dkim.toml' }
kumo.on('init', function() end)
`,
  );
  const out = await run(Deno.execPath(), [
    "run",
    "-A",
    new URL("../mod.ts", import.meta.url).pathname,
    "--validate",
    "--policy",
    `${dir}/init.lua`,
  ], 30_000);
  await Deno.remove(dir, { recursive: true });
  assert.equal(out.code, 1, out.stdout + out.stderr);
  assert.match(out.stdout, /Issues found in the combined set of dkim_sign files:/);
  assert.match(out.stdout, /domain 'nokey\.test': .*Cannot load DKIM key for domain "nokey\.test"/);
  assert.doesNotMatch(out.stdout, /domain 'good\.test'/);
  assert.match(
    out.stdout,
    /\[signature\.'unused'\] is not referenced by base\.additional_signatures and will not be used/,
  );
});

Deno.test("the example policy signs with examples/dkim_data.toml once its key exists", async () => {
  const key = keyPair("rsa");
  await using dns = await startDnsServer({
    zones: { "default._domainkey.example.test": { TXT: [key.txt] } },
  });
  await using sink = await startSmtpSink();
  const root = new URL("..", import.meta.url).pathname;
  const tmp = await Deno.makeTempDir({ prefix: "kumo-example-dkim-" });
  const dir = `${tmp}/examples`;
  await Deno.mkdir(dir);
  for (const e of Deno.readDirSync(`${root}examples`)) {
    if (e.isFile) await Deno.copyFile(`${root}examples/${e.name}`, `${dir}/${e.name}`);
  }
  // the example's state directory is <examples>/../tmp/example
  await Deno.mkdir(`${tmp}/tmp/example/dkim/example.test`, { recursive: true });
  await Deno.writeTextFile(`${tmp}/tmp/example/dkim/example.test/default.key`, key.pem);
  const edit = (text: string, from: string, to: string) => {
    assert.ok(text.includes(from), `the example no longer contains ${JSON.stringify(from)}`);
    return text.replaceAll(from, to);
  };
  let policy = await Deno.readTextFile(`${dir}/init.lua`);
  policy = edit(policy, "'127.0.0.1:2025'", "'127.0.0.1:0'");
  policy = edit(policy, "'127.0.0.1:8000'", "'127.0.0.1:0'");
  policy = edit(policy, "'127.0.0.1:53'", `'${dns.address}'`);
  const shaping = await Deno.readTextFile(`${dir}/shaping.toml`);
  await Deno.writeTextFile(
    `${dir}/shaping.toml`,
    edit(shaping, "smtp_port = 2026", `smtp_port = ${sink.port}`),
  );
  await using kumo = await startKumo(dir, policy);
  {
    await using smtp = await RawSmtp.connect(kumo.port);
    assert.match((await smtp.reply()) ?? "", /^220 /);
    assert.match((await smtp.cmd("EHLO client.test")) ?? "", /^250/);
    for (const from of ["news@example.test", "news@other.test"]) {
      assert.match((await smtp.cmd(`MAIL FROM:<${from}>`)) ?? "", /^250/);
      assert.match((await smtp.cmd("RCPT TO:<ana@customer.test>")) ?? "", /^250/);
      assert.match((await smtp.cmd("DATA")) ?? "", /^354/);
      smtp.send(
        `From: ${from}\r\nTo: ana@customer.test\r\nSubject: signed?\r\n` +
          "Date: Fri, 2 Jan 2026 03:04:05 +0000\r\n\r\nhello\r\n.\r\n",
      );
      assert.match((await smtp.reply()) ?? "", /^250 OK ids=/);
    }
  }
  const got = await sink.waitFor(2, 20_000);
  assert.equal(await kumo.stop(), 0);
  const byFrom = (f: string) =>
    got.find((m) => new TextDecoder().decode(m.data).includes(`From: ${f}`))!;
  const signed = byFrom("news@example.test").data;
  assert.deepEqual(
    await dkimpyVerify(signed, { "default._domainkey.example.test": key.txt }),
    ["example.test:pass"],
  );
  assert.doesNotMatch(new TextDecoder().decode(byFrom("news@other.test").data), /DKIM-Signature/);
  await Deno.remove(tmp, { recursive: true });
});
