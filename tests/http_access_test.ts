/**
 * Access rules of the HTTP listener against the real program: with
 * `trusted_hosts = {}` the loopback client is untrusted, so inject needs
 * Basic auth checked by `http_server_validate_auth_basic` (and cached),
 * /metrics stays closed, liveness stays open; a bad Authorization header is
 * refused even from a trusted peer. Admin endpoints stay closed to an
 * untrusted peer whatever its credentials; Bearer tokens, AuthInfo tables
 * returned by the policy, a raising handler (500) and a non-ASCII header
 * (400); HTTPS with `use_tls` and a certificate file; a config epoch bump
 * clears the credential cache.
 */
import assert from "node:assert/strict";
import net from "node:net";
import type { Buffer } from "node:buffer";
import { postJson, startHttpRig } from "./support/http_rig.ts";
import { selfSignedPem } from "./support/self_signed.ts";

const AUTH_POLICY = `
kumo.on('http_server_validate_auth_basic', function(user, password)
  kumo.log_info('auth check ' .. user)
  return user == 'injector' and password == 's3cret'
end)`;

function basic(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${btoa(`${user}:${password}`)}` };
}

const REQUEST = {
  envelope_sender: "bounce@src.test",
  recipients: [{ email: "ana@dest.test" }],
  content: "Subject: hi\r\n\r\nhello\r\n",
};

Deno.test("access: untrusted peer needs Basic auth to inject; metrics stay trusted-only", async () => {
  await using rig = await startHttpRig({ httpExtra: "trusted_hosts = {}", extra: AUTH_POLICY });
  const url = `${rig.base}/api/inject/v1`;

  const live = await fetch(`${rig.base}/api/check-liveness/v1`);
  assert.equal(live.status, 200);
  assert.equal(await live.text(), "OK");

  const anon = await postJson(url, REQUEST);
  assert.equal(anon.status, 401);
  assert.match(anon.text, /not permitted POST on http_listener\/127\.0\.0\.1:\d+\/api\/inject\/v1/);

  const bad = await postJson(url, REQUEST, basic("injector", "wrong"));
  assert.equal(bad.status, 401);
  assert.equal(bad.text, "HttpBasicAuth Authentication Failed for injector");

  const malformed = await postJson(url, REQUEST, { authorization: "Digest abc" });
  assert.equal(malformed.status, 400);

  for (let i = 0; i < 2; i++) {
    const good = await postJson(url, REQUEST, basic("injector", "s3cret"));
    assert.equal(good.status, 200, good.text);
    assert.equal(JSON.parse(good.text).success_count, 1);
  }
  // The second good request was answered from the 60 s cache.
  const checks = rig.kumo.stderr().split("auth check injector").length - 1;
  assert.equal(checks, 2, rig.kumo.stderr());

  const metrics = await fetch(`${rig.base}/metrics`, { headers: basic("injector", "s3cret") });
  assert.equal(metrics.status, 401);
  await metrics.body?.cancel();
  const anonMetrics = await fetch(`${rig.base}/metrics.json`);
  assert.equal(anonMetrics.status, 401);
  await anonMetrics.body?.cancel();
  const missing = await fetch(`${rig.base}/no/such/path`);
  assert.equal(missing.status, 404);
  await missing.body?.cancel();

  const got = await rig.sink.waitFor(2, 20_000);
  assert.deepEqual(got.map((m) => m.rcptTo[0]), ["ana@dest.test", "ana@dest.test"]);
});

Deno.test("access: a config epoch bump forgets cached credentials", async () => {
  await using rig = await startHttpRig({ extra: AUTH_POLICY });
  const url = `${rig.base}/api/inject/v1`;
  const good = await postJson(url, REQUEST, basic("injector", "s3cret"));
  assert.equal(good.status, 200, good.text);

  // The policy now refuses the credential; the 60 s cache would still say yes.
  const refusing = rig.policy.replace(
    "return user == 'injector' and password == 's3cret'",
    "return false",
  );
  assert.notEqual(refusing, rig.policy);
  await Deno.writeTextFile(`${rig.dir}/init.lua`, refusing);
  const bump = await fetch(`${rig.base}/api/admin/bump-config-epoch`, { method: "POST" });
  assert.equal(bump.status, 200);
  await bump.body?.cancel();

  const after = await postJson(url, REQUEST, basic("injector", "s3cret"));
  assert.equal(after.status, 401, after.text);
  assert.equal(after.text, "HttpBasicAuth Authentication Failed for injector");
  await rig.sink.waitFor(1, 20_000);
  assert.equal(rig.sink.messages.length, 1);
});

/** One raw HTTP/1.1 request over node:net (header bytes exactly as given). */
function rawRequest(port: number, head: Uint8Array): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    let buf = "";
    sock.on("data", (d: Buffer) => (buf += d.toString("latin1")));
    sock.on("error", reject);
    sock.on("close", () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(buf)?.[1] ?? 0);
      resolve({ status, body: buf.slice(buf.indexOf("\r\n\r\n") + 4) });
    });
    sock.setTimeout(10_000, () => sock.destroy());
    sock.write(head);
  });
}

const RULES_POLICY = `
kumo.on('http_server_validate_auth_basic', function(user, password)
  if user == 'boom' then error('backend down') end
  if user == 'svc' then
    return { identities = { { identity = 'svc-id', context = 'Custom' } }, groups = { 'injectors' } }
  end
  return user == 'injector' and password == 's3cret'
end)
kumo.on('http_server_validate_auth_bearer', function(token)
  return token == 'tok-123'
end)
kumo.on('http_message_generated', function(msg, auth)
  local ids = {}
  for _, i in ipairs(auth.identities) do table.insert(ids, i.context .. ':' .. i.identity) end
  msg:prepend_header('X-Auth', msg:get_meta('http_auth') .. ' [' .. table.concat(ids, ',') ..
    '] [' .. table.concat(auth.groups, ',') .. ']')
end)`;

Deno.test("access: admin needs a trusted peer even with good credentials; Bearer; AuthInfo tables; 500; 400", async () => {
  await using rig = await startHttpRig({ httpExtra: "trusted_hosts = {}", extra: RULES_POLICY });
  const port = Number(new URL(rig.base).port);
  const admin = `${rig.base}/api/admin/bounce/v1`;

  for (const headers of [{}, basic("injector", "s3cret"), { authorization: "Bearer tok-123" }]) {
    const r = await fetch(admin, { headers });
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.match(
      await r.text(),
      /not permitted GET on http_listener\/127\.0\.0\.1:\d+\/api\/admin\/bounce\/v1$/,
    );
  }
  const post = await postJson(
    admin,
    { reason: "x", domain: "dest.test" },
    basic("injector", "s3cret"),
  );
  assert.equal(post.status, 401);
  const epoch = await fetch(`${rig.base}/api/admin/bump-config-epoch`, {
    method: "POST",
    headers: basic("injector", "s3cret"),
  });
  assert.equal(epoch.status, 401);
  await epoch.body?.cancel();

  const url = `${rig.base}/api/inject/v1`;
  const inject = (email: string, headers: Record<string, string>) =>
    postJson(url, { ...REQUEST, recipients: [{ email }] }, headers);
  const bearer = await inject("bearer@dest.test", { authorization: "Bearer tok-123" });
  assert.equal(bearer.status, 200, bearer.text);
  const badBearer = await inject("x@dest.test", { authorization: "Bearer nope" });
  assert.equal(badBearer.status, 401);
  assert.equal(badBearer.text, "BearerToken Authentication Failed for nope");
  const table = await inject("table@dest.test", basic("svc", "any"));
  assert.equal(table.status, 200, table.text);
  const raised = await inject("x@dest.test", basic("boom", "x"));
  assert.equal(raised.status, 500);
  assert.equal(raised.text, "try again later");
  const undecodable = await inject("x@dest.test", { authorization: "Basic %%%" });
  assert.equal(undecodable.status, 400);
  assert.equal(undecodable.text, "Malformed or unsupported Authorization header");

  const body = JSON.stringify({ ...REQUEST, recipients: [{ email: "x@dest.test" }] });
  const head = new Uint8Array([
    ...new TextEncoder().encode(
      `POST /api/inject/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nAuthorization: Basic `,
    ),
    0xc3,
    0xa9,
    ...new TextEncoder().encode(`\r\n\r\n${body}`),
  ]);
  const nonAscii = await rawRequest(port, head);
  assert.equal(nonAscii.status, 400);
  assert.equal(nonAscii.body, "Malformed Authorization header");

  const got = await rig.sink.waitFor(2, 20_000);
  const by = new Map(got.map((m) => [m.rcptTo[0], new TextDecoder().decode(m.data)]));
  assert.match(by.get("bearer@dest.test")!, /\r\nX-Auth: tok-123 \[BearerToken:tok-123\] \[\]\r\n/);
  assert.match(by.get("table@dest.test")!, /\r\nX-Auth: svc \[Custom:svc-id\] \[injectors\]\r\n/);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(rig.sink.messages.length, 2, "nothing else was injected");
});

Deno.test("access: HTTPS with use_tls and a certificate file", async () => {
  const certDir = await Deno.makeTempDir({ prefix: "kumo-https-" });
  try {
    const pem = await selfSignedPem({
      cn: "localhost",
      extensions: [
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "basicConstraints=critical,CA:FALSE",
      ],
    });
    assert.ok(pem, "openssl could not make a certificate");
    await Deno.writeTextFile(`${certDir}/key.pem`, pem.key);
    await Deno.writeTextFile(`${certDir}/cert.pem`, pem.cert);
    await using rig = await startHttpRig({
      httpExtra: `use_tls = true, tls_certificate = '${certDir}/cert.pem', ` +
        `tls_private_key = '${certDir}/key.pem'`,
    });
    const base = rig.base;
    assert.match(base, /^https:\/\/127\.0\.0\.1:\d+$/);
    const client = Deno.createHttpClient({
      caCerts: [await Deno.readTextFile(`${certDir}/cert.pem`)],
    });
    try {
      const live = await fetch(`${base}/api/check-liveness/v1`, { client });
      assert.equal(live.status, 200);
      assert.equal(await live.text(), "OK");
      const r = await fetch(`${base}/api/inject/v1`, {
        client,
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...REQUEST, recipients: [{ email: "tls@dest.test" }] }),
      });
      assert.equal(r.status, 200);
      assert.equal((await r.json()).success_count, 1);
      // Without the CA the certificate is not trusted: the TLS handshake fails.
      await assert.rejects(() => fetch(`${base}/api/check-liveness/v1`));
    } finally {
      client.close();
    }
    const got = await rig.sink.waitFor(1, 20_000);
    assert.equal(got[0].rcptTo[0], "tls@dest.test");
  } finally {
    await Deno.remove(certDir, { recursive: true }).catch(() => {});
  }
});
