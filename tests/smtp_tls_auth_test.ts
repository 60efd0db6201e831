/**
 * STARTTLS with the generated self-signed certificate and AUTH PLAIN
 * (initial response via swaks, 334 continuation via smtplib): EHLO offers
 * AUTH PLAIN only after TLS, the policy decides, the Received header says
 * ESMTPSA with the TLS version and cipher, and meta carries authn/authz ids.
 */
import assert from "node:assert/strict";
import { basePolicy, readLogRecords, readSpool, run, startKumo } from "./support/kumo_process.ts";

const PY = `
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='py.test', timeout=10)
s.ehlo(); s.starttls(context=ctx); code, resp = s.ehlo()
print('EHLO', resp.decode().replace('\\n', '|'))
s.user, s.password = 'alice', 'wrong'
try:
    s.auth('PLAIN', s.auth_plain, initial_response_ok=False)
except smtplib.SMTPAuthenticationError as e:
    print('AUTHFAIL', e.smtp_code, e.smtp_error.decode())
s.user, s.password = 'alice', 'secret'
code, resp = s.auth('PLAIN', s.auth_plain, initial_response_ok=False)
print('AUTH', code, resp.decode())
code, resp = s.docmd('AUTH', 'PLAIN AGFsaWNlAHNlY3JldA==')
print('AGAIN', code, resp.decode())
code, resp = s.docmd('STARTTLS')
print('TLS2', code, resp.decode())
s.quit()
`;

Deno.test("STARTTLS + AUTH PLAIN, ESMTPSA Received header and auth meta", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-tls-" });
  await using kumo = await startKumo(
    dir,
    basePolicy(
      dir,
      "",
      "",
      `
kumo.on('smtp_server_auth_plain', function(authz, authc, password, conn_meta)
  return authc == 'alice' and password == 'secret'
end)`,
    ),
  );
  const py = await run("python3", ["-c", PY, String(kumo.port)]);
  assert.equal(py.code, 0, py.stderr);
  assert.deepEqual(py.stdout.trim().split("\n"), [
    "EHLO mx.test Aloha py.test|PIPELINING|ENHANCEDSTATUSCODES|8BITMIME|SMTPUTF8|AUTH PLAIN",
    "AUTHFAIL 535 5.7.8 AUTH invalid",
    "AUTH 235 2.7.0 AUTH OK!",
    "AGAIN 503 5.5.1 AUTH me once, can't get authed again!",
    "TLS2 501 Cannot STARTTLS as TLS is already active",
  ]);

  const sw = await run("swaks", [
    "--server",
    `127.0.0.1:${kumo.port}`,
    "--tls",
    "--auth",
    "PLAIN",
    "--auth-user",
    "alice",
    "--auth-password",
    "secret",
    "--from",
    "a@x.test",
    "--to",
    "b@y.test",
    "--helo",
    "sw.test",
    "--timeout",
    "10",
  ]);
  const m = /250 OK ids=([0-9a-f]{32})/.exec(sw.stdout);
  assert.ok(m, sw.stdout + sw.stderr);
  const id = m[1];
  const data = new TextDecoder().decode(readSpool(`${dir}/spool/data`, id)!);
  assert.match(
    data,
    new RegExp(
      `Received: from sw\\.test \\(127\\.0\\.0\\.1\\)\\r\\n  by mx\\.test \\(KumoMTA 127\\.0\\.0\\.1\\) \\r\\n  with ESMTPSA \\((TLSv1\\.[23]):([A-Z0-9_-]+)\\)  id ${id} for <b@y\\.test>;\\r\\n`,
    ),
  );
  const meta = JSON.parse(new TextDecoder().decode(readSpool(`${dir}/spool/meta`, id)!)).meta;
  assert.equal(meta.authn_id, "alice");
  assert.equal(meta.authz_id, "alice");
  assert.match(meta.tls_protocol_version, /^TLSv1\.[23]$/);
  assert.equal(typeof meta.tls_cipher, "string");

  assert.equal(await kumo.stop(), 0);
  const rec = readLogRecords(`${dir}/logs`).find((r) => r.type === "Reception")!;
  assert.equal(rec.tls_protocol_version, meta.tls_protocol_version);
  assert.equal(rec.tls_cipher, meta.tls_cipher);
});
