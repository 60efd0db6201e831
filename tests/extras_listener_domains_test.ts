/**
 * policy-extras.listener_domains through the real program. The operator
 * guide's listener_domains.toml is loaded verbatim
 * (tests/fixtures/seeds/listener_domains.toml): Python's smtplib sends
 * `XCLIENT ADDR=10.0.0.5 DESTADDR=127.0.0.1 DESTPORT=25` (only session
 * metadata; nothing is sent to 10.x) so the session is treated as coming
 * from 10.0.0.5 to the listener "127.0.0.1:25", which makes the file's
 * `[listener."127.0.0.1:25".…]` table and its `relay_from = [ '10.0.0.0/24' ]`
 * rule apply as written; relay_from_authz is exercised after STARTTLS + AUTH.
 * Accepted test messages go to the `null` queue (never delivered). Also:
 * `*.suffix` never matches the bare domain, listener `*`, later files
 * override keys, bad files at start-up (with the serde reason), setup
 * twice, --validate.
 */
import assert from "node:assert/strict";
import { run, startKumo } from "./support/kumo_process.ts";
import { startDnsServer } from "./support/dns_server.ts";
import { policyStartupError } from "./support/policy_startup_error.ts";

/** The operator guide's listener_domains.toml, byte for byte (seed 003). */
const SEED_LD = new URL("./fixtures/seeds/listener_domains.toml", import.meta.url).pathname;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function policy(dir: string, dns: string, ports: number[], files: string[]): string {
  const listeners = ports.map((p) =>
    `kumo.start_esmtp_listener { listen = '127.0.0.1:${p}', hostname = 'mx.test', allow_xclient = true }`
  ).join("\n  ");
  return `local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns}' } }
  ${listeners}
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs' }
end)
kumo.on('smtp_server_auth_plain', function(authz, authc, password, conn_meta)
  return password == 'pw'
end)
-- accepted test mail is discarded, never queued for delivery
kumo.on('smtp_server_message_received', function(msg) msg:set_meta('queue', 'null') end)
local listener_domains = require 'policy-extras.listener_domains'

kumo.on(
  'get_listener_domain',
  listener_domains:setup { ${files.map((f) => `'${f}'`).join(", ")} }
)
`;
}

type Outcome = "accepted" | "rcpt refused" | "data refused";

async function swaks(port: number, from: string, to: string, auth?: string): Promise<Outcome> {
  const args = [
    "--server",
    `127.0.0.1:${port}`,
    "--local-interface",
    "127.0.0.2",
    "--from",
    from,
    "--to",
    to,
    "--helo",
    "relay.test",
    "--timeout",
    "10",
  ];
  if (auth) args.push("--tls", "--auth", "PLAIN", "--auth-user", auth, "--auth-password", "pw");
  const r = await run("swaks", args);
  // plain lines: "<-  250", "<** 550"; inside TLS: "<~  250", "<~* 550"
  if (/^<[-~] {2}250 OK ids=/m.test(r.stdout)) return "accepted";
  const refused = /^ ?[-~]> (.*)\n<(?:\*\*|~\*) 550 5\.7\.1 relaying not permitted/m.exec(r.stdout);
  if (refused) return refused[1].startsWith("RCPT TO:") ? "rcpt refused" : "data refused";
  throw new Error(`unexpected swaks output:\n${r.stdout}\n${r.stderr}`);
}

/** One session per case: [xclient args, MAIL FROM, RCPT TO, AUTH user or ""]. */
const CLIENT_PY = `
import json, smtplib, ssl, sys
port = int(sys.argv[1])
out = []
for xclient, frm, to, user in json.loads(sys.argv[2]):
    s = smtplib.SMTP('127.0.0.1', port, timeout=10)
    s.ehlo('relay.test')
    if xclient:
        code, _ = s.docmd('XCLIENT', xclient)
        assert code == 220, code
        s.ehlo('relay.test')
    if user:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        s.ehlo('relay.test')
        s.auth('PLAIN', lambda challenge=None: user + '\\0' + user + '\\0pw', initial_response_ok=True)
    s.mail(frm)
    code, text = s.rcpt(to)
    if code != 250:
        # the reply may name the peer ("... for 10.0.0.5:port"); compare the text before it
        out.append('rcpt %d %s' % (code, text.decode().split(' for ')[0]))
    else:
        try:
            code, text = s.data(b'Subject: t\\r\\n\\r\\nbody\\r\\n')
            out.append('accepted' if code == 250 else 'data %d %s' % (code, text.decode()))
        except smtplib.SMTPDataError as e:
            out.append('data %d %s' % (e.smtp_code, e.smtp_error.decode()))
    s.quit()
print(json.dumps(out))
`;

const REFUSED = "550 5.7.1 relaying not permitted";

Deno.test("listener_domains: the guide's TOML verbatim — per-listener table, 10.0.0.0/24 via XCLIENT, wildcards, relay_from_authz", async () => {
  await using dns = await startDnsServer();
  const dir = await Deno.makeTempDir({ prefix: "kumo-ld-" });
  const port = freePort();
  await using _kumo = await startKumo(dir, policy(dir, dns.address, [port], [SEED_LD]));
  // The file's listener is "127.0.0.1:25"; 2525 is a listener it does not name.
  const on25 = "ADDR=10.0.0.5 DESTADDR=127.0.0.1 DESTPORT=25";
  const on2525 = "ADDR=10.0.0.5 DESTADDR=127.0.0.1 DESTPORT=2525";
  const cases: [string, string, string, string, string][] = [
    // relay_from = [ '10.0.0.0/24' ] for send.example.com (global table)
    [on2525, "a@send.example.com", "b@other.test", "", "accepted"],
    ["ADDR=10.0.0.5", "a@send.example.com", "b@other.test", "", "accepted"],
    [
      "ADDR=10.0.1.5 DESTADDR=127.0.0.1 DESTPORT=2525",
      "a@send.example.com",
      "b@other.test",
      "",
      `data ${REFUSED}`,
    ],
    // on 127.0.0.1:25 the listener's "*.example.com" entry answers for
    // send.example.com first (first hit wins, no merging): no relay_from there
    [on25, "a@send.example.com", "b@other.test", "", `data ${REFUSED}`],
    // recipients: the listener entry has only log_oob = false, so no relay_to
    [on25, "a@else.test", "b@x.example.com", "", `rcpt ${REFUSED}`],
    [on2525, "a@else.test", "b@x.example.com", "", "accepted"], // global wildcard
    [on2525, "a@else.test", "b@x.y.example.com", "", "accepted"], // deeper label
    [on25, "a@else.test", "b@example.com", "", "accepted"], // exact; "*.example.com" never matches it
    [on2525, "a@else.test", "b@www.example.com", "", `rcpt ${REFUSED}`], // exact beats wildcard
    // "*": log_oob/log_arf only: RCPT accepted, a non-report refused at end of DATA
    [on2525, "a@else.test", "b@other.test", "", `data ${REFUSED}`],
    // relay_from_authz after AUTH
    [on2525, "a@auth-send.example.com", "b@other.test", "username1", "accepted"],
    [on2525, "a@auth-send.example.com", "b@other.test", "username2", "accepted"],
    [on2525, "a@auth-send.example.com", "b@other.test", "username3", `data ${REFUSED}`],
    [on25, "a@auth-send.example.com", "b@other.test", "username1", `data ${REFUSED}`],
  ];
  const r = await run("python3", [
    "-c",
    CLIENT_PY,
    String(port),
    JSON.stringify(cases.map(([x, f, t, u]) => [x, f, t, u])),
  ], 60_000);
  assert.equal(r.code, 0, r.stderr);
  const got = JSON.parse(r.stdout) as string[];
  assert.deepEqual(
    got.map((o, i) => `${cases[i][0]} ${cases[i][1]} → ${cases[i][2]} ${cases[i][3]}: ${o}`),
    cases.map(([x, f, t, u, o]) => `${x} ${f} → ${t} ${u}: ${o}`),
  );
  await Deno.remove(dir, { recursive: true }).catch(() => {});
});

Deno.test("listener_domains: *.suffix never matches the bare domain; listener '*'; later files override keys", async () => {
  await using dns = await startDnsServer();
  const dir = await Deno.makeTempDir({ prefix: "kumo-ld2-" });
  const [a, b] = [freePort(), freePort()];
  await Deno.writeTextFile(
    `${dir}/one.toml`,
    `["*.wild.test"]\nrelay_to = true\n\n["late.test"]\nrelay_to = true\n\n[listener."127.0.0.1:${a}"."*"]\nrelay_to = true\n`,
  );
  await Deno.writeTextFile(`${dir}/two.json`, `{ "late.test": { "relay_to": false } }`);
  await using _kumo = await startKumo(
    dir,
    policy(dir, dns.address, [a, b], [`${dir}/one.toml`, `${dir}/two.json`]),
  );
  assert.equal(await swaks(b, "a@x.test", "b@wild.test"), "rcpt refused");
  assert.equal(await swaks(b, "a@x.test", "b@a.wild.test"), "accepted");
  assert.equal(await swaks(b, "a@x.test", "b@late.test"), "rcpt refused");
  assert.equal(await swaks(a, "a@x.test", "b@anything.test"), "accepted");
  await Deno.remove(dir, { recursive: true }).catch(() => {});
});

async function startupError(toml: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-ld-bad-" });
  await Deno.writeTextFile(`${dir}/ld.toml`, toml);
  await Deno.writeTextFile(
    `${dir}/init.lua`,
    policy(dir, "127.0.0.1:1", [freePort()], [`${dir}/ld.toml`]),
  );
  return await policyStartupError(dir);
}

Deno.test("listener_domains: bad values and unknown keys stop start-up with file and key", async () => {
  let err = await startupError('["bounces.example.org"]\nlog_oob = "yes"\n');
  assert.match(
    err,
    /Error: Error evaluating policy file "\$DIR\/init\.lua": \$DIR\/init\.lua:\d+: /,
  );
  assert.match(
    err,
    /invalid data in "\$DIR\/ld\.toml": invalid value for domain 'bounces\.example\.org'\nListenerConfig: invalid value for field 'log_oob'\nunknown variant `yes`, expected one of `Ignore`, `LogThenRelay`, `LogThenDrop`\n/,
  );
  err = await startupError('["x.test"]\nrelay_to = "yes"\n');
  assert.match(
    err,
    /ListenerConfig: invalid value for field 'relay_to'\ninvalid type: string "yes", expected a boolean\n/,
  );
  err = await startupError('["x.test"]\nrelay_tox = true\n');
  assert.match(err, /ListenerConfig: unknown field 'relay_tox'/);
  err = await startupError('[listener."127.0.0.1:25"."x.test"]\nrelay_from = ["10.0.0.1/8"]\n');
  assert.match(
    err,
    /ListenerConfig: invalid value for field 'relay_from'\n"10\.0\.0\.1\/8" is not a valid CIDR: host bits set/,
  );
  err = await startupError('["x.test"]\nrelay_to = true\n[y\n');
  assert.match(err, /Cannot parse \$DIR\/ld\.toml at line 3/);
});

Deno.test("listener_domains: setup twice is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-ld-twice-" });
  await Deno.writeTextFile(`${dir}/ld.toml`, '["x.test"]\nrelay_to = true\n');
  await Deno.writeTextFile(
    `${dir}/init.lua`,
    policy(dir, "127.0.0.1:1", [freePort()], [`${dir}/ld.toml`]) +
      `listener_domains:setup { '${dir}/ld.toml' }\n`,
  );
  const err = await policyStartupError(dir);
  assert.match(
    err,
    /\$DIR\/init\.lua:\d+: listener_domains module has already been configured/,
  );
});

Deno.test("listener_domains: --validate reloads the files and reports a file broken after start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-ld-validate-" });
  await Deno.writeTextFile(`${dir}/good.toml`, '["x.test"]\nrelay_to = true\n');
  await Deno.writeTextFile(`${dir}/bad.toml`, '["y.test"]\nlog_arf = 3\n');
  const validate = async (file: string) => {
    await Deno.writeTextFile(
      `${dir}/init.lua`,
      `local listener_domains = require 'policy-extras.listener_domains'
kumo.on('get_listener_domain', listener_domains:setup { '${dir}/${file}' })
kumo.on('init', function() end)
`,
    );
    return await run(Deno.execPath(), [
      "run",
      "-A",
      new URL("../mod.ts", import.meta.url).pathname,
      "--validate",
      "--policy",
      `${dir}/init.lua`,
    ], 30_000);
  };
  try {
    const good = await validate("good.toml");
    assert.equal(good.code, 0, good.stdout + good.stderr);
    const bad = await validate("bad.toml");
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(
      bad.stdout + bad.stderr,
      /invalid value for domain 'y\.test'\nListenerConfig: invalid value for field 'log_arf'/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
