/**
 * Relay decisions (queues-and-delivery.md §9.3, lua-api.md §6.5, seed 003)
 * with swaks connecting from chosen loopback addresses: refused under the
 * default relay_hosts, allowed to a `relay_to` domain and from a
 * `relay_from` sender domain; a non-default relay_hosts CIDR; AUTH alone
 * grants nothing; pipelined transactions with a refused recipient;
 * get_listener_domain called for the sender then the recipient domain,
 * cached per session and reused at end of DATA; an IPv6 listener on ::1.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import {
  basePolicy,
  idsOf,
  RawSmtp,
  readLogRecords,
  readSpool,
  run,
  startKumo,
} from "./support/kumo_process.ts";

/** basePolicy pointed at the test's DNS server (nothing it is asked resolves). */
function policy(dir: string, dns: string, listenerExtra = "", extra = ""): string {
  return basePolicy(
    dir,
    listenerExtra,
    `kumo.dns.configure_resolver { name_servers = { '${dns}' } }`,
    `kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1h' } end)
${extra}`,
  );
}

function swaks(port: number, from: string, to: string, local = "127.0.0.2", extra: string[] = []) {
  return run("swaks", [
    "--server",
    `127.0.0.1:${port}`,
    "--local-interface",
    local,
    "--from",
    from,
    "--to",
    to,
    "--helo",
    "relay.test",
    "--body",
    "relay check",
    "--timeout",
    "10",
    ...extra,
  ]);
}

Deno.test("relay refused from 127.0.0.2 unless a listener domain allows it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-relay-" });
  await using dns = await startDnsServer({});
  await using kumo = await startKumo(
    dir,
    policy(
      dir,
      dns.address,
      "",
      `
kumo.on('get_listener_domain', function(domain, listener, conn_meta)
  if domain == 'inbound.test' then return kumo.make_listener_domain { relay_to = true } end
  if domain == 'sender.test' then return kumo.make_listener_domain { relay_from = { '127.0.0.2' } } end
end)`,
    ),
  );
  const refused = await swaks(kumo.port, "a@elsewhere.test", "b@gmail.test");
  assert.match(refused.stdout, /<\*\* 550 5\.7\.1 relaying not permitted for 127\.0\.0\.2:\d+/);
  const relayTo = await swaks(kumo.port, "a@elsewhere.test", "b@inbound.test");
  assert.match(relayTo.stdout, /<- {2}250 OK ids=[0-9a-f]{32}/, relayTo.stdout);
  const relayFrom = await swaks(kumo.port, "a@sender.test", "b@gmail.test");
  assert.match(relayFrom.stdout, /<- {2}250 OK ids=[0-9a-f]{32}/, relayFrom.stdout);
  assert.equal(await kumo.stop(), 0);

  const recs = readLogRecords(`${dir}/logs`);
  const rej = recs.filter((r) => r.type === "Rejection");
  assert.equal(rej.length, 1);
  assert.equal((rej[0].response as { code: number }).code, 550);
  assert.deepEqual(rej[0].peer_address, { name: "relay.test", addr: "127.0.0.2" });
  assert.deepEqual(
    recs.filter((r) => r.type === "Reception").map((r) => r.recipient),
    ["b@inbound.test", "b@gmail.test"],
  );
});

Deno.test("default relay_hosts: 127.0.0.1 relays, 127.0.0.2 does not", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-relay2-" });
  await using dns = await startDnsServer({});
  await using kumo = await startKumo(dir, policy(dir, dns.address));
  const refused = await swaks(kumo.port, "a@x.test", "b@y.test");
  assert.match(refused.stdout, /550 5\.7\.1 relaying not permitted for 127\.0\.0\.2:/);
  const ok = await run("swaks", [
    "--server",
    `127.0.0.1:${kumo.port}`,
    "--from",
    "a@x.test",
    "--to",
    "b@y.test",
    "--timeout",
    "10",
  ]);
  assert.match(ok.stdout, /250 OK ids=/);
  assert.equal(await kumo.stop(), 0);
});

Deno.test("relay_hosts CIDR 127.0.0.0/24: 127.0.0.2 relays, 127.1.0.2 does not", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-relay3-" });
  await using dns = await startDnsServer({});
  await using kumo = await startKumo(
    dir,
    policy(dir, dns.address, "relay_hosts = { '127.0.0.0/24' }"),
  );
  const inside = await swaks(kumo.port, "a@x.test", "b@y.test", "127.0.0.2");
  assert.match(inside.stdout, /<- {2}250 OK ids=[0-9a-f]{32}/, inside.stdout);
  const outside = await swaks(kumo.port, "a@x.test", "b@y.test", "127.1.0.2");
  assert.match(outside.stdout, /<\*\* 550 5\.7\.1 relaying not permitted for 127\.1\.0\.2:\d+\n/);
  // 127.0.0.1 is inside the CIDR too; nothing else is special about it.
  const local = await swaks(kumo.port, "a@x.test", "b@y.test", "127.0.0.1");
  assert.match(local.stdout, /<- {2}250 OK ids=/);
  assert.equal(await kumo.stop(), 0);
  const recs = readLogRecords(`${dir}/logs`);
  assert.deepEqual(
    recs.filter((r) => r.type === "Reception").map((r) =>
      (r.peer_address as { addr: string }).addr
    ),
    ["127.0.0.2", "127.0.0.1"],
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("AUTH alone does not grant relay; pipelined transactions keep going past a refusal", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-relay4-" });
  await using dns = await startDnsServer({});
  await using kumo = await startKumo(
    dir,
    policy(
      dir,
      dns.address,
      "",
      `
kumo.on('smtp_server_auth_plain', function(authz, authc, password)
  return authc == 'alice' and password == 'secret'
end)
kumo.on('get_listener_domain', function(domain)
  if domain == 'inbound.test' then return kumo.make_listener_domain { relay_to = true } end
end)`,
    ),
  );
  // 127.0.0.2 is outside relay_hosts; authenticating changes nothing without a listener domain.
  const authed = await swaks(kumo.port, "a@x.test", "b@gmail.test", "127.0.0.2", [
    "--tls",
    "--auth",
    "PLAIN",
    "--auth-user",
    "alice",
    "--auth-password",
    "secret",
  ]);
  assert.match(authed.stdout, /<~ {2}235 2\.7\.0 AUTH OK!\n/, authed.stdout);
  assert.match(authed.stdout, /<~\* 550 5\.7\.1 relaying not permitted for 127\.0\.0\.2:\d+\n/);
  assert.doesNotMatch(authed.stdout, /250 OK ids=/);

  // --pipeline: MAIL, both RCPTs and DATA go out in one write; one RCPT is refused.
  const piped = await swaks(kumo.port, "a@x.test", "ok@inbound.test,no@gmail.test", "127.0.0.2", [
    "--pipeline",
  ]);
  assert.match(
    piped.stdout,
    / -> MAIL FROM:<a@x\.test>\n -> RCPT TO:<ok@inbound\.test>\n -> RCPT TO:<no@gmail\.test>\n -> DATA\n<- {2}250 OK <a@x\.test>\n<- {2}250 OK <ok@inbound\.test>\n<\*\* 550 5\.7\.1 relaying not permitted for 127\.0\.0\.2:\d+\n<- {2}354 Send body; end with CRLF\.CRLF\n/,
    piped.stdout,
  );
  const id = /<- {2}250 OK ids=([0-9a-f]{32})\n/.exec(piped.stdout)?.[1];
  assert.ok(id, piped.stdout);
  const meta = JSON.parse(new TextDecoder().decode(readSpool(`${dir}/spool/meta`, id)!));
  assert.equal(meta.recipient, "ok@inbound.test");
  assert.equal(await kumo.stop(), 0);
  await Deno.remove(dir, { recursive: true });
});

const LD_TRACE = `
kumo.on('get_listener_domain', function(domain, listener, conn_meta)
  conn_meta:set_meta('x_ld', (conn_meta:get_meta('x_ld') or '') .. domain .. ' ' .. listener .. ',')
end)`;

function tx(c: RawSmtp, from: string, rcpts: string[]): void {
  c.send(
    `MAIL FROM:<${from}>\r\n${
      rcpts.map((r) => `RCPT TO:<${r}>\r\n`).join("")
    }DATA\r\nSubject: t\r\n\r\nhi\r\n.\r\n`,
  );
}

Deno.test("get_listener_domain: sender then recipient domain, even when relay_hosts allows; cached per session", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-ldcache-" });
  await using dns = await startDnsServer({});
  await using kumo = await startKumo(dir, policy(dir, dns.address, "", LD_TRACE));
  const l = `127.0.0.1:${kumo.port}`;
  const meta = (id: string) =>
    JSON.parse(new TextDecoder().decode(readSpool(`${dir}/spool/meta`, id)!)).meta;
  {
    await using c = await RawSmtp.connect(kumo.port);
    await c.reply();
    tx(c, "s@src.test", ["a@r1.test", "b@r2.test", "c@R1.test"]);
    for (let i = 0; i < 5; i++) assert.match((await c.reply())!, /^(250|354) /);
    const ids = idsOf(await c.reply());
    assert.equal(ids.length, 3);
    const once = `src.test ${l},r1.test ${l},r2.test ${l},`;
    for (const id of ids) assert.equal(meta(id).x_ld, once);
    // A second transaction: the end-of-DATA checks above asked nothing new,
    // the known sender domain is not asked again.
    tx(c, "t@src.test", ["d@r3.test"]);
    for (let i = 0; i < 3; i++) await c.reply();
    const [id] = idsOf(await c.reply());
    assert.equal(meta(id).x_ld, `${once}r3.test ${l},`);
  }
  {
    // A new session has its own cache.
    await using c = await RawSmtp.connect(kumo.port);
    await c.reply();
    tx(c, "s@src.test", ["a@r1.test"]);
    for (let i = 0; i < 3; i++) await c.reply();
    const [id] = idsOf(await c.reply());
    assert.equal(meta(id).x_ld, `src.test ${l},r1.test ${l},`);
  }
  assert.equal(await kumo.stop(), 0);
  await Deno.remove(dir, { recursive: true });
});

const PY_V6 = `
import smtplib, sys
s = smtplib.SMTP('::1', int(sys.argv[1]), local_hostname='six.test', timeout=10)
code, resp = s.ehlo()
print(code, resp.decode().split('\\n')[0])
s.mail('a@x.test'); s.rcpt('b@y.test')
code, resp = s.data('Subject: v6\\r\\n\\r\\nhi\\r\\n')
print(code, resp.decode())
s.quit()
`;

Deno.test("an IPv6 listener on [::1]: ::1 relays by default, listener names are [::1]:port", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-v6-" });
  await using dns = await startDnsServer({});
  await using kumo = await startKumo(
    dir,
    basePolicy(
      dir,
      "",
      `kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
  kumo.start_esmtp_listener { listen = '[::1]:0', hostname = 'mx6.test' }`,
      `kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1h' } end)
${LD_TRACE}`,
    ),
  );
  const port = Number(/smtp listener on \[::1\]:(\d+)/.exec(kumo.stderr())?.[1]);
  assert.ok(port > 0, kumo.stderr());
  const py = await run("python3", ["-c", PY_V6, String(port)]);
  assert.equal(py.code, 0, py.stderr);
  const [ehlo, data] = py.stdout.trim().split("\n");
  assert.equal(ehlo, "250 mx6.test Aloha six.test");
  const id = /^250 OK ids=([0-9a-f]{32})$/.exec(data)?.[1];
  assert.ok(id, data);
  const rec = JSON.parse(new TextDecoder().decode(readSpool(`${dir}/spool/meta`, id)!));
  assert.equal(rec.meta.x_ld, `x.test [::1]:${port},y.test [::1]:${port},`);
  assert.match(rec.meta.received_from, /^\[::1\]:\d+$/);
  assert.equal(rec.meta.received_via, `[::1]:${port}`);
  assert.match(
    new TextDecoder().decode(readSpool(`${dir}/spool/data`, id)!),
    /Received: from six\.test \(::1\)\r\n {2}by mx6\.test \(KumoMTA ::1\) \r\n/,
  );
  assert.equal(await kumo.stop(), 0);
  const recs = readLogRecords(`${dir}/logs`);
  const reception = recs.find((r) => r.type === "Reception")!;
  assert.deepEqual(reception.peer_address, { name: "six.test", addr: "::1" });
  await Deno.remove(dir, { recursive: true });
});
