/**
 * Access rules of the HTTP listener against the real program: with
 * `trusted_hosts = {}` the loopback client is untrusted, so inject needs
 * Basic auth checked by `http_server_validate_auth_basic` (and cached),
 * /metrics stays closed, liveness stays open; a bad Authorization header is
 * refused even from a trusted peer.
 */
import assert from "node:assert/strict";
import { postJson, startHttpRig } from "./support/http_rig.ts";

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
