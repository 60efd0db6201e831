/**
 * STARTTLS and AUTH against the real program: the generated self-signed
 * certificate and AUTH PLAIN (initial response via swaks, 334 continuation
 * via smtplib); AUTH LOGIN (a deliberate extension, issue 3) with and
 * without an initial response; AUTH inside a transaction; a configured
 * tls_certificate / tls_private_key pair is the one served, and a lone half
 * of the pair stops start-up; tls_required_client_ca verifies client
 * certificates into `tls_peer_subject_name`; the Received header says
 * ESMTPS (TLS, no AUTH) or ESMTPSA (TLS + AUTH).
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { basePolicy, readLogRecords, readSpool, run, startKumo } from "./support/kumo_process.ts";
import { policyStartupError } from "./support/policy_startup_error.ts";

/** basePolicy with the test's DNS server and a slow retry (nothing resolves anyway). */
function policy(dir: string, dns: string, listenerExtra: string, extra: string): string {
  return basePolicy(
    dir,
    listenerExtra,
    `kumo.dns.configure_resolver { name_servers = { '${dns}' } }`,
    `kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1h' } end)
${extra}`,
  );
}

const AUTH_POLICY = `
kumo.on('smtp_server_auth_plain', function(authz, authc, password, conn_meta)
  return authc == 'alice' and password == 'secret'
end)`;

const dec = (b: Uint8Array | null) => new TextDecoder().decode(b!);

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
  await using dns = await startDnsServer({});
  await using kumo = await startKumo(dir, policy(dir, dns.address, "", AUTH_POLICY));
  const py = await run("python3", ["-c", PY, String(kumo.port)]);
  assert.equal(py.code, 0, py.stderr);
  assert.deepEqual(py.stdout.trim().split("\n"), [
    "EHLO mx.test Aloha py.test|PIPELINING|ENHANCEDSTATUSCODES|8BITMIME|SMTPUTF8|AUTH PLAIN LOGIN",
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
  const data = dec(readSpool(`${dir}/spool/data`, id));
  assert.match(
    data,
    new RegExp(
      `Received: from sw\\.test \\(127\\.0\\.0\\.1\\)\\r\\n  by mx\\.test \\(KumoMTA 127\\.0\\.0\\.1\\) \\r\\n  with ESMTPSA \\((TLSv1\\.[23]):([A-Z0-9_-]+)\\)  id ${id} for <b@y\\.test>;\\r\\n`,
    ),
  );
  const meta = JSON.parse(dec(readSpool(`${dir}/spool/meta`, id))).meta;
  assert.equal(meta.authn_id, "alice");
  assert.equal(meta.authz_id, "alice");
  assert.match(meta.tls_protocol_version, /^TLSv1\.[23]$/);
  assert.equal(typeof meta.tls_cipher, "string");

  assert.equal(await kumo.stop(), 0);
  const rec = readLogRecords(`${dir}/logs`).find((r) => r.type === "Reception")!;
  assert.equal(rec.tls_protocol_version, meta.tls_protocol_version);
  assert.equal(rec.tls_cipher, meta.tls_cipher);
});

const PY_LOGIN = `
import smtplib, ssl, sys, base64
b64 = lambda t: base64.b64encode(t.encode()).decode()
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
port = int(sys.argv[1])
s = smtplib.SMTP('127.0.0.1', port, local_hostname='py.test', timeout=10)
print('PRE', *s.docmd('AUTH', 'LOGIN'))
s.ehlo(); s.starttls(context=ctx); s.ehlo()
print('STEP1', *s.docmd('AUTH', 'LOGIN'))
print('STEP2', *s.docmd(b64('alice')))
print('STEP3', *s.docmd(b64('wrong')))
print('CANCEL1', *s.docmd('AUTH', 'LOGIN'))
print('CANCEL2', *s.docmd('*'))
print('MAIL', *s.docmd('MAIL', 'FROM:<a@x.test>'))
print('INTXN', *s.docmd('AUTH', 'LOGIN ' + b64('alice')))
print('RSET', *s.docmd('RSET'))
s.user, s.password = 'alice', 'secret'
print('IR', *s.auth('LOGIN', s.auth_login))
s.sendmail('a@x.test', ['b@y.test'], 'Subject: login\\r\\n\\r\\nhi\\r\\n')
s.quit()
s = smtplib.SMTP('127.0.0.1', port, local_hostname='py2.test', timeout=10)
s.ehlo(); s.starttls(context=ctx); s.ehlo()
s.user, s.password = 'alice', 'secret'
print('NOIR', *s.auth('LOGIN', s.auth_login, initial_response_ok=False))
s.quit()
`;

Deno.test("AUTH LOGIN: prompts, initial response, cancel, inside a transaction, swaks", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-login-" });
  await using dns = await startDnsServer({});
  await using kumo = await startKumo(dir, policy(dir, dns.address, "", AUTH_POLICY));
  const py = await run("python3", ["-c", PY_LOGIN, String(kumo.port)]);
  assert.equal(py.code, 0, py.stderr);
  assert.deepEqual(
    py.stdout.trim().split("\n"),
    [
      "PRE 524 b'5.7.11 AUTH LOGIN requires an encrypted channel'",
      "STEP1 334 b'VXNlcm5hbWU6'",
      "STEP2 334 b'UGFzc3dvcmQ6'",
      "STEP3 535 b'5.7.8 AUTH invalid'",
      "CANCEL1 334 b'VXNlcm5hbWU6'",
      "CANCEL2 501 b'5.7.0 AUTH cancelled'",
      "MAIL 250 b'OK <a@x.test>'",
      "INTXN 503 b'5.5.1 AUTH not permitted inside a transaction'",
      "RSET 250 b'Reset state'",
      "IR 235 b'2.7.0 AUTH OK!'",
      "NOIR 235 b'2.7.0 AUTH OK!'",
    ],
  );

  const sw = await run("swaks", [
    "--server",
    `127.0.0.1:${kumo.port}`,
    "--tls",
    "--auth",
    "LOGIN",
    "--auth-user",
    "alice",
    "--auth-password",
    "secret",
    "--from",
    "a@x.test",
    "--to",
    "c@y.test",
    "--helo",
    "sw.test",
    "--timeout",
    "10",
  ]);
  assert.match(sw.stdout, /~> AUTH LOGIN\n/, sw.stdout);
  assert.match(sw.stdout, /<~ {2}334 VXNlcm5hbWU6\n/);
  assert.match(sw.stdout, /<~ {2}334 UGFzc3dvcmQ6\n/);
  assert.match(sw.stdout, /<~ {2}235 2\.7\.0 AUTH OK!\n/);
  const id = /250 OK ids=([0-9a-f]{32})/.exec(sw.stdout)?.[1];
  assert.ok(id, sw.stdout + sw.stderr);
  const meta = JSON.parse(dec(readSpool(`${dir}/spool/meta`, id))).meta;
  assert.equal(meta.authn_id, "alice");
  assert.equal(meta.authz_id, "alice", "LOGIN has no authz: it is the authc");
  assert.match(dec(readSpool(`${dir}/spool/data`, id)), /\r\n {2}with ESMTPSA \(/);
  assert.equal(await kumo.stop(), 0);

  // Credentials never reach the logs.
  const recs = readLogRecords(`${dir}/logs`);
  const text = JSON.stringify(recs);
  assert.ok(!text.includes("c2VjcmV0") && !text.includes("d3Jvbmc="), "no base64 secrets");
  assert.deepEqual(
    recs.filter((r) => r.type === "Rejection").map((r) => {
      const res = r.response as { code: number; command: string | null };
      return [res.code, res.command];
    }),
    [[524, "AUTH LOGIN"], [535, "AUTH"], [501, "AUTH"], [503, "AUTH LOGIN"]],
  );
});

async function openssl(args: string[]): Promise<void> {
  const r = await run("openssl", args);
  assert.equal(r.code, 0, r.stderr);
}

/** A CA, a client certificate it issued, a rogue self-signed client, and a server identity. */
async function makeCertificates(dir: string): Promise<void> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl([
    "req",
    "-x509",
    ...ec,
    "-days",
    "2",
    "-subj",
    "/CN=Test CA",
    "-keyout",
    `${dir}/ca.key`,
    "-out",
    `${dir}/ca.pem`,
  ]);
  await openssl([
    "req",
    ...ec,
    "-subj",
    "/O=Client Org/CN=client.test",
    "-keyout",
    `${dir}/client.key`,
    "-out",
    `${dir}/client.csr`,
  ]);
  await openssl([
    "x509",
    "-req",
    "-in",
    `${dir}/client.csr`,
    "-CA",
    `${dir}/ca.pem`,
    "-CAkey",
    `${dir}/ca.key`,
    "-CAcreateserial",
    "-days",
    "2",
    "-out",
    `${dir}/client.pem`,
  ]);
  await openssl([
    "req",
    "-x509",
    ...ec,
    "-days",
    "2",
    "-subj",
    "/CN=rogue.test",
    "-keyout",
    `${dir}/rogue.key`,
    "-out",
    `${dir}/rogue.pem`,
  ]);
  await openssl([
    "req",
    "-x509",
    ...ec,
    "-days",
    "2",
    "-subj",
    "/CN=configured.test",
    "-keyout",
    `${dir}/server.key`,
    "-out",
    `${dir}/server.pem`,
  ]);
}

const PY_CERTS = `
import smtplib, ssl, sys, hashlib, re
port, d = int(sys.argv[1]), sys.argv[2]
for who in ['client', 'rogue', 'none']:
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    if who != 'none':
        ctx.load_cert_chain(d + '/' + who + '.pem', d + '/' + who + '.key')
    s = smtplib.SMTP('127.0.0.1', port, local_hostname=who + '.test', timeout=10)
    s.ehlo(); s.starttls(context=ctx); s.ehlo()
    fp = hashlib.sha256(s.sock.getpeercert(True)).hexdigest()
    s.mail('a@x.test'); s.rcpt('b@y.test')
    code, resp = s.data('Subject: ' + who + '\\r\\n\\r\\nhi\\r\\n')
    print(who, fp, code, re.sub(r'^OK ids=', '', resp.decode()))
    s.quit()
`;

Deno.test("configured certificate is served; tls_required_client_ca sets tls_peer_subject_name", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-mtls-" });
  await makeCertificates(dir);
  const ca = await Deno.readTextFile(`${dir}/ca.pem`);
  await using dns = await startDnsServer({});
  await using kumo = await startKumo(
    dir,
    policy(
      dir,
      dns.address,
      `tls_certificate = '${dir}/server.pem', tls_private_key = { key_data = [[${await Deno
        .readTextFile(`${dir}/server.key`)}]] }, tls_required_client_ca = { key_data = [[${ca}]] }`,
      "",
    ),
  );
  const py = await run("python3", ["-c", PY_CERTS, String(kumo.port), dir]);
  assert.equal(py.code, 0, py.stderr);
  const der = await run("openssl", [
    "x509",
    "-in",
    `${dir}/server.pem`,
    "-outform",
    "DER",
    "-out",
    `${dir}/server.der`,
  ]);
  assert.equal(der.code, 0, der.stderr);
  const want = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(`${dir}/server.der`))),
  ).map((b) => b.toString(16).padStart(2, "0")).join("");
  const lines = py.stdout.trim().split("\n").map((l) => l.split(" "));
  assert.deepEqual(lines.map((l) => [l[0], l[1], l[2]]), [
    ["client", want, "250"],
    ["rogue", want, "250"],
    ["none", want, "250"],
  ]);
  const [client, rogue, none] = lines.map((l) => l[3]);
  const meta = (id: string) => JSON.parse(dec(readSpool(`${dir}/spool/meta`, id))).meta;
  assert.deepEqual(meta(client).tls_peer_subject_name, ["O=Client Org", "CN=client.test"]);
  assert.equal(meta(rogue).tls_peer_subject_name, undefined, "not issued by the CA");
  assert.equal(meta(none).tls_peer_subject_name, undefined, "no client certificate");
  // TLS without AUTH: ESMTPS.
  assert.match(
    dec(readSpool(`${dir}/spool/data`, none)),
    new RegExp(
      `Received: from none\\.test \\(127\\.0\\.0\\.1\\)\\r\\n  by mx\\.test \\(KumoMTA 127\\.0\\.0\\.1\\) \\r\\n  with ESMTPS \\(TLSv1\\.[23]:[A-Z0-9_-]+\\)  id ${none} for <b@y\\.test>;\\r\\n`,
    ),
  );
  assert.equal(await kumo.stop(), 0);
  const rec = readLogRecords(`${dir}/logs`).filter((r) => r.type === "Reception");
  assert.deepEqual(rec.map((r) => [r.id, r.tls_peer_subject_name]), [
    [client, ["O=Client Org", "CN=client.test"]],
    [rogue, undefined],
    [none, undefined],
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a lone tls_certificate or tls_private_key stops start-up, naming the missing key", async () => {
  for (
    const [extra, want] of [
      ["tls_certificate = '/nonexistent/cert.pem'", "tls_certificate is set but tls_private_key"],
      [
        "peer = { ['10.0.0.0/8'] = { tls_private_key = '/x.key' } }",
        "peer.10.0.0.0/8.tls_private_key is set but peer.10.0.0.0/8.tls_certificate",
      ],
    ]
  ) {
    const dir = await Deno.makeTempDir({ prefix: "kumo-tlspair-" });
    await Deno.writeTextFile(`${dir}/init.lua`, basePolicy(dir, extra));
    const err = await policyStartupError(dir);
    assert.ok(
      err.includes(`Cannot start ESMTP listener "127.0.0.1:0": ${want} is missing`),
      err,
    );
  }
});

const PY_QUIT = `
import socket, ssl, sys
port = int(sys.argv[1])
def session():
    s = socket.create_connection(('127.0.0.1', port), timeout=10)
    return s, s.makefile('rb')
def reply(f):
    out = b''
    while True:
        line = f.readline()
        out += line
        if line[3:4] != b'-':
            return out
s, f = session()
reply(f)
s.sendall(b'QUIT\\r\\n')
print('PLAIN', reply(f).decode().strip())
print('PLAIN_EOF', s.recv(10) == b'')
s, f = session()
reply(f)
s.sendall(b'EHLO py.test\\r\\n'); reply(f)
s.sendall(b'STARTTLS\\r\\n'); reply(f)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s, suppress_ragged_eofs=False)
f = t.makefile('rb')
t.sendall(b'EHLO py.test\\r\\n'); reply(f)
t.sendall(b'QUIT\\r\\n')
print('TLS', reply(f).decode().strip())
try:
    print('TLS_EOF', 'close_notify' if t.recv(10) == b'' else 'data')
except ssl.SSLEOFError:
    print('TLS_EOF', 'ragged')
`;

Deno.test("QUIT: the 221 arrives before the close; over TLS the close carries close_notify", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-tls-quit-" });
  await using dns = await startDnsServer({});
  await using kumo = await startKumo(dir, policy(dir, dns.address, "", ""));
  const py = await run("python3", ["-c", PY_QUIT, String(kumo.port)]);
  assert.equal(py.code, 0, py.stderr);
  const lines = py.stdout.trim().split("\n");
  assert.match(lines[0], /^PLAIN 221 /);
  assert.equal(lines[1], "PLAIN_EOF True");
  assert.match(lines[2], /^TLS 221 /);
  assert.equal(lines[3], "TLS_EOF close_notify");
});
