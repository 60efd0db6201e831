/**
 * policy-extras.listener_domains through the real program, with swaks
 * connecting from 127.0.0.2 (not a relay host): the operator guide's
 * listener_domains.toml (10.0.0.0/24 → 127.0.0.0/24, listener port → the
 * test's port), wildcard precedence, per-listener overrides, relay_from,
 * relay_from_authz after AUTH over STARTTLS, and bad files at start-up.
 */
import assert from "node:assert/strict";
import { run, startKumo } from "./support/kumo_process.ts";
import { startDnsServer } from "./support/dns_server.ts";
import { policyStartupError } from "./support/policy_startup_error.ts";

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function seedToml(port: number): string {
  return `["*"]
# You can specify * as a default, overridden by any more explicitly defined domains.
# Since all options are false by default, this would only be needed to default
# An option to true for all domains.
relay_to = false
log_oob = true
log_arf = true

["example.com"]
# allow relaying mail from anyone, so long as it is
# addressed to example.com
relay_to = true

["bounce.example.com"]
# accept and log OOB bounce reports sent to bounce.example.com
log_oob = true

["fbl.example.com"]
# accept and log ARF feedback reports sent to fbl.example.com
log_arf = true

["send.example.com"]
# relay to anywhere, so long as the sender domain is send.example.com
# and the connected peer matches one of the listed CIDR blocks
relay_from = [ '127.0.0.0/24' ]

["auth-send.example.com"]
# relay to anywhere, so long as the sender domain is auth-send.example.com
# and the connected peer has authenticated as any of the authorization identities
# listed below using SMTP AUTH
relay_from_authz = [ 'username1', 'username2' ]

# wildcards are permitted. This will match
# <anything>.example.com that doesn't have
# another non-wildcard entry explicitly
# listed in this set of domains.
# Note that "example.com" won't match
# "*.example.com".
["*.example.com"]
# You can specify multiple options if you wish
log_oob = true
log_arf = true
relay_to = true

# and you can explicitly set options to false to
# essentially exclude an entry from a wildcard
["www.example.com"]
relay_to = false
log_arf = false
log_oob = false

# Define a per-listener configuration
[listener."127.0.0.1:${port}"."*.example.com"]
log_oob = false
`;
}

function policy(dir: string, dns: string, ports: number[], files: string[]): string {
  const listeners = ports.map((p) =>
    `kumo.start_esmtp_listener { listen = '127.0.0.1:${p}', hostname = 'mx.test' }`
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

Deno.test("listener_domains: the guide's TOML — wildcards, exclusions, per-listener, relay_from(_authz)", async () => {
  await using dns = await startDnsServer();
  const dir = await Deno.makeTempDir({ prefix: "kumo-ld-" });
  const [a, b] = [freePort(), freePort()];
  await Deno.writeTextFile(`${dir}/listener_domains.toml`, seedToml(a));
  await using _kumo = await startKumo(
    dir,
    policy(dir, dns.address, [a, b], [`${dir}/listener_domains.toml`]),
  );
  const cases: [number, string, string, string | undefined, Outcome][] = [
    [a, "a@else.test", "b@example.com", undefined, "accepted"], // exact relay_to
    [b, "a@else.test", "b@x.example.com", undefined, "accepted"], // global wildcard
    [b, "a@else.test", "b@x.y.example.com", undefined, "accepted"], // deeper wildcard
    [a, "a@else.test", "b@x.example.com", undefined, "rcpt refused"], // listener entry wins, not merged
    [b, "a@else.test", "b@www.example.com", undefined, "rcpt refused"], // exact beats wildcard
    [a, "a@else.test", "b@www.example.com", undefined, "rcpt refused"],
    [b, "a@else.test", "b@other.test", undefined, "data refused"], // "*": report domain only
    [b, "a@send.example.com", "b@other.test", undefined, "accepted"], // relay_from CIDR
    [b, "a@auth-send.example.com", "b@other.test", undefined, "data refused"],
    [b, "a@auth-send.example.com", "b@other.test", "username1", "accepted"], // relay_from_authz
    // on A the listener's own "*.example.com" entry answers first: no relay_from_authz there
    [a, "a@auth-send.example.com", "b@other.test", "username2", "data refused"],
    [b, "a@auth-send.example.com", "b@other.test", "username2", "accepted"],
    [b, "a@auth-send.example.com", "b@other.test", "username3", "data refused"],
  ];
  const got = await Promise.all(cases.map(([p, f, t, auth]) => swaks(p, f, t, auth)));
  assert.deepEqual(
    got.map((o, i) => `${cases[i][0] === a ? "A" : "B"} ${cases[i][1]} → ${cases[i][2]}: ${o}`),
    cases.map(([p, f, t, _auth, o]) => `${p === a ? "A" : "B"} ${f} → ${t}: ${o}`),
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
    /invalid data in "\$DIR\/ld\.toml": invalid value for domain 'bounces\.example\.org'\nListenerConfig: invalid value for field 'log_oob'/,
  );
  err = await startupError('["x.test"]\nrelay_tox = true\n');
  assert.match(err, /ListenerConfig: unknown field 'relay_tox'/);
  err = await startupError('[listener."127.0.0.1:25"."x.test"]\nrelay_from = ["10.0.0.1/8"]\n');
  assert.match(err, /ListenerConfig: invalid value for field 'relay_from'/);
  err = await startupError('["x.test"]\nrelay_to = true\n[y\n');
  assert.match(err, /Cannot parse \$DIR\/ld\.toml at line 3/);
});
