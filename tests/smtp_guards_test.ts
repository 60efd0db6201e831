/**
 * Connection guards and address rewriting against the real program:
 * too many protocol errors, max_connections, idle client_timeout, XCLIENT,
 * PROXY v1/v2 headers (require_proxy_protocol) re-resolving `peer` params
 * and relay checks (conn meta keeps the socket's addresses as
 * `orig_received_from` / `orig_received_via`), and the disk-space floor
 * before the banner.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { idsOf, RawSmtp, readSpool, startKumo } from "./support/kumo_process.ts";

function policy(dir: string, dns: string, spoolExtra = ""): string {
  return `local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns}' } }
  local peer = { ['10.9.9.0/24'] = { hostname = 'peer.test', relay_hosts = { '10.9.9.0/24' } } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'mx.test',
    max_connections = 2, client_timeout = '2s', allow_xclient = true, peer = peer }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'mx.test',
    require_proxy_protocol = true, peer = peer }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' ${spoolExtra} }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs' }
end)
kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1h' } end)
`;
}

function ports(stderr: string): number[] {
  return [...stderr.matchAll(/smtp listener on 127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
}

function v2Header(src: number[], srcPort: number, dst: number[], dstPort: number): Uint8Array {
  return new Uint8Array([
    0x0d,
    0x0a,
    0x0d,
    0x0a,
    0x00,
    0x0d,
    0x0a,
    0x51,
    0x55,
    0x49,
    0x54,
    0x0a,
    0x21,
    0x11,
    0,
    12,
    ...src,
    ...dst,
    srcPort >> 8,
    srcPort & 0xff,
    dstPort >> 8,
    dstPort & 0xff,
  ]);
}

Deno.test("error limit, max_connections, idle timeout, XCLIENT and PROXY headers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-guards-" });
  await using dns = await startDnsServer({});
  await using kumo = await startKumo(dir, policy(dir, dns.address));
  const [port, proxyPort] = ports(kumo.stderr());
  assert.ok(proxyPort > 0, "second listener started");

  // Too many protocol errors: the 20th 5xx is followed by 421 and a close.
  {
    await using c = await RawSmtp.connect(port);
    assert.equal(await c.reply(), "220 mx.test KumoMTA");
    c.send("BOGUS\r\n".repeat(25));
    for (let i = 0; i < 20; i++) assert.equal(await c.reply(), "502 5.5.1 Command unimplemented");
    assert.equal(await c.reply(), "421 4.7.0 mx.test too many errors");
    assert.ok(await c.waitClosed(), "closed after too many errors");
  }

  // max_connections = 2: the third concurrent session is refused; idle ones time out.
  {
    await using a = await RawSmtp.connect(port);
    await using b = await RawSmtp.connect(port);
    assert.equal(await a.reply(), "220 mx.test KumoMTA");
    assert.equal(await b.reply(), "220 mx.test KumoMTA");
    await using c = await RawSmtp.connect(port);
    assert.equal(await c.reply(), "421 4.3.2 mx.test too many concurrent sessions. Try later");
    assert.ok(await c.waitClosed());
    assert.equal(await a.cmd("NOOP"), "250 the goggles do nothing");
    assert.equal(await a.reply(8000), "421 4.3.2 mx.test idle too long");
    assert.ok(await a.waitClosed());
    assert.equal(await b.reply(8000), "421 4.3.2 mx.test idle too long");
  }

  // XCLIENT: the session becomes 10.9.9.9:4444 → `peer` params and relay_hosts apply.
  {
    await using c = await RawSmtp.connect(port);
    assert.equal(await c.reply(), "220 mx.test KumoMTA");
    assert.match((await c.cmd("EHLO c.test"))!, /\n250 XCLIENT ADDR PORT DESTADDR DESTPORT$/);
    assert.equal(await c.cmd("XCLIENT NAME=x"), "501 5.5.4 Bad XCLIENT attribute name: NAME");
    assert.equal(
      await c.cmd("XCLIENT ADDR=10.9.9.9 PORT=4444 DESTADDR=10.1.1.1 DESTPORT=25"),
      "220 peer.test KumoMTA",
    );
    assert.match((await c.cmd("EHLO c.test"))!, /^250-peer\.test Aloha c\.test/);
    assert.equal(await c.cmd("MAIL FROM:<s@src.test>"), "250 OK <s@src.test>");
    assert.equal(await c.cmd("XCLIENT ADDR=10.0.0.1"), "503 mail transaction in progress");
    assert.equal(await c.cmd("RCPT TO:<r@remote.test>"), "250 OK <r@remote.test>");
    assert.match((await c.cmd("DATA"))!, /^354 /);
    const ids = idsOf(await c.cmd("Subject: x\r\n\r\nhi\r\n."));
    assert.equal(ids.length, 1);
    const meta = JSON.parse(new TextDecoder().decode(readSpool(`${dir}/spool/meta`, ids[0])!));
    assert.equal(meta.meta.received_from, "10.9.9.9:4444");
    assert.equal(meta.meta.received_via, "10.1.1.1:25");
    // The socket's own addresses stay visible (lua-api.md §7.4).
    assert.match(meta.meta.orig_received_from, /^127\.0\.0\.1:\d+$/);
    assert.equal(meta.meta.orig_received_via, `127.0.0.1:${port}`);
    assert.equal(meta.meta.hostname, "peer.test");
    // Now pretend to be an outsider: relaying is refused for it.
    assert.equal(await c.cmd("XCLIENT ADDR=192.0.2.1 PORT=5"), "220 mx.test KumoMTA");
    assert.equal(await c.cmd("MAIL FROM:<s@src.test>"), "250 OK <s@src.test>");
    assert.equal(
      await c.cmd("RCPT TO:<r@remote.test>"),
      "550 5.7.1 relaying not permitted for 192.0.2.1:5",
    );
    // A third XCLIENT: orig_* still name the socket, not an earlier XCLIENT.
    assert.equal(await c.cmd("RSET"), "250 Reset state");
    assert.equal(await c.cmd("XCLIENT ADDR=10.9.9.8 PORT=1"), "220 peer.test KumoMTA");
    assert.equal(await c.cmd("MAIL FROM:<s@src.test>"), "250 OK <s@src.test>");
    assert.equal(await c.cmd("RCPT TO:<r@remote.test>"), "250 OK <r@remote.test>");
    assert.match((await c.cmd("DATA"))!, /^354 /);
    const [again] = idsOf(await c.cmd("Subject: x\r\n\r\nhi\r\n."));
    const m2 = JSON.parse(new TextDecoder().decode(readSpool(`${dir}/spool/meta`, again)!)).meta;
    assert.equal(m2.received_from, "10.9.9.8:1");
    assert.equal(m2.orig_received_from, meta.meta.orig_received_from);
    assert.equal(m2.orig_received_via, `127.0.0.1:${port}`);
  }

  // PROXY v1 and v2 headers before the banner; a session without one is dropped.
  {
    await using c = await RawSmtp.connect(proxyPort);
    c.send("PROXY TCP4 192.0.2.50 127.0.0.1 5555 25\r\nEHLO early.test\r\n");
    assert.equal(await c.reply(), "220 mx.test KumoMTA");
    assert.match((await c.reply())!, /^250-mx\.test Aloha early\.test/);
    assert.equal(await c.cmd("MAIL FROM:<s@src.test>"), "250 OK <s@src.test>");
    assert.equal(
      await c.cmd("RCPT TO:<r@remote.test>"),
      "550 5.7.1 relaying not permitted for 192.0.2.50:5555",
    );
  }
  {
    await using c = await RawSmtp.connect(proxyPort);
    c.send(v2Header([10, 9, 9, 7], 40000, [127, 0, 0, 1], 25));
    assert.equal(await c.reply(), "220 peer.test KumoMTA");
    assert.equal(await c.cmd("MAIL FROM:<s@src.test>"), "250 OK <s@src.test>");
    assert.equal(await c.cmd("RCPT TO:<r@remote.test>"), "250 OK <r@remote.test>");
    assert.match((await c.cmd("DATA"))!, /^354 /);
    const [id] = idsOf(await c.cmd("Subject: x\r\n\r\nhi\r\n."));
    const meta = JSON.parse(new TextDecoder().decode(readSpool(`${dir}/spool/meta`, id)!)).meta;
    assert.equal(meta.received_from, "10.9.9.7:40000");
    assert.equal(meta.received_via, "127.0.0.1:25");
    assert.match(meta.orig_received_from, /^127\.0\.0\.1:\d+$/);
    assert.equal(meta.orig_received_via, `127.0.0.1:${proxyPort}`);
  }
  {
    await using c = await RawSmtp.connect(proxyPort);
    c.send("EHLO no-header.test\r\n");
    assert.equal(await c.reply(), null, "no reply without a PROXY header");
    assert.ok(await c.waitClosed());
  }
  assert.equal(await kumo.stop(), 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a spool below min_free_space refuses sessions before the banner", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-diskfull-" });
  await using dns = await startDnsServer({});
  await using kumo = await startKumo(dir, policy(dir, dns.address, ", min_free_space = '100%'"));
  await using c = await RawSmtp.connect(ports(kumo.stderr())[0]);
  assert.equal(await c.reply(), "421 4.3.2 mx.test disk is too full. Try later");
  assert.ok(await c.waitClosed());
  assert.equal(await kumo.stop(), 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sessions get 421 while the spools are still opening", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-spoolwait-" });
  await using dns = await startDnsServer({});
  // Thousands of crash leftovers in new/ keep LocalDiskSpool.open busy for a while.
  await Deno.mkdir(`${dir}/spool/data/new`, { recursive: true });
  for (let i = 0; i < 10_000; i++) {
    Deno.writeFileSync(`${dir}/spool/data/new/t${i}`, new Uint8Array());
  }
  await Deno.writeTextFile(`${dir}/init.lua`, policy(dir, dns.address));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "mod.ts", "--policy", `${dir}/init.lua`],
    cwd: new URL("..", import.meta.url).pathname,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.getReader();
  try {
    let text = "";
    const deadline = Date.now() + 20_000;
    while (!/smtp listener on 127\.0\.0\.1:\d+/.test(text) && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    assert.doesNotMatch(text, /initialization complete/, "spools opened too fast to observe");
    await using c = await RawSmtp.connect(ports(text)[0]);
    assert.equal(await c.reply(), "421 4.3.2 mx.test waiting for spool startup. Try again soon!");
    assert.ok(await c.waitClosed());
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "haproxy with send-proxy-v2 in front: kumo sees the real client",
  ignore: !(() => {
    try {
      return Deno.statSync("/usr/sbin/haproxy").isFile;
    } catch {
      return false;
    }
  })(),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kumo-haproxy-" });
    await using dns = await startDnsServer({});
    await using kumo = await startKumo(dir, policy(dir, dns.address));
    const proxyPort = ports(kumo.stderr())[1];
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const haPort = (l.addr as Deno.NetAddr).port;
    l.close();
    await Deno.writeTextFile(
      `${dir}/haproxy.cfg`,
      `global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:${haPort}
  default_backend be
backend be
  server kumo 127.0.0.1:${proxyPort} send-proxy-v2
`,
    );
    const ha = new Deno.Command("/usr/sbin/haproxy", {
      args: ["-f", `${dir}/haproxy.cfg`, "-db"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      let c: RawSmtp | null = null;
      for (let i = 0; i < 100 && c === null; i++) {
        c = await RawSmtp.connect(haPort, "127.0.0.3").catch(() => null);
        if (c === null) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(c, "haproxy is listening");
      await using conn = c;
      assert.equal(await conn.reply(), "220 mx.test KumoMTA");
      assert.equal(await conn.cmd("MAIL FROM:<s@src.test>"), "250 OK <s@src.test>");
      // Behind the proxy the peer is 127.0.0.3, outside relay_hosts.
      assert.match(
        (await conn.cmd("RCPT TO:<r@remote.test>"))!,
        /^550 5\.7\.1 relaying not permitted for 127\.0\.0\.3:\d+$/,
      );
    } finally {
      ha.kill("SIGTERM");
      await ha.status;
    }
    assert.equal(await kumo.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  },
});
