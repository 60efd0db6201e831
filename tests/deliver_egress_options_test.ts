/**
 * Egress path and source options as the remote end sees them
 * (queues-and-delivery §4.1, §5): max_connection_rate, skip_hosts,
 * RequiredInsecure/Required TLS, ehlo_domain precedence, response timeouts,
 * idle_timeout, try_next_host_on_transport_error, enable_pipelining,
 * enable_rset, max_recipients_per_batch, max_deliveries_per_connection and
 * the source's remote_port. Real policy engine, spools, the test's DNS
 * server and SMTP sinks on 127.0.0.x; assertions on what the sink received
 * and on the log records.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { type SinkConnection, startSmtpSink } from "./support/smtp_sink.ts";
import { policyText, startHarness } from "./support/queue_harness.ts";

const ZONES = {
  "dest.test": { MX: [{ pref: 10, host: "mx1.dest.test" }, { pref: 20, host: "mx2.dest.test" }] },
  "mx1.dest.test": { A: ["127.0.0.2"] },
  "mx2.dest.test": { A: ["127.0.0.3"] },
  // Own MX hosts, so each domain gets its own site (and ready queue, path config).
  "a.test": { MX: [{ pref: 10, host: "mx.a.test" }] },
  "b.test": { MX: [{ pref: 10, host: "mx.b.test" }] },
  "c.test": { MX: [{ pref: 10, host: "mx.c.test" }] },
  "mx.a.test": { A: ["127.0.0.2"] },
  "mx.b.test": { A: ["127.0.0.2"] },
  "mx.c.test": { A: ["127.0.0.2"] },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll until `fn` holds (bounded). */
async function waitUntil(fn: () => boolean | Promise<boolean>, what: string, ms = 8000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The verbs of a connection, flattened. */
const verbs = (c: SinkConnection) => c.commands.flat();

Deno.test("max_connection_rate spaces new connections at the sink", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: sink.port,
    path: "max_connection_rate = '2/s,max_burst=1', max_deliveries_per_connection = 1",
  }));
  for (let i = 0; i < 6; i++) await h.inject("s@src.test", `r${i}@dest.test`);
  await sink.waitFor(6, 20_000);
  await h.logs.waitFor("Delivery", 6);
  const times = sink.connections.map((c) => c.connectedAt).sort((a, b) => a - b);
  assert.equal(times.length, 6, "one connection per message");
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  // 2/s without burst: 500 ms apart, 2.5 s for six (generous margins).
  assert.ok(times[5] - times[0] >= 2000, `6 connections in ${times[5] - times[0]} ms: ${gaps}`);
  assert.ok(Math.min(...gaps) >= 250, `gaps ${gaps}`);
  assert.equal(h.logs.of("TransientFailure").length, 0);
});

Deno.test("skip_hosts removes addresses; all skipped is 451 4.4.4 MX didn't resolve", async (t) => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2", "127.0.0.3"] });
  await t.step("the skipped lowest MX is passed over", async () => {
    await using h = await startHarness(policyText({
      dns: dns.address,
      port: sink.port,
      path: "skip_hosts = { '127.0.0.2' }",
    }));
    await h.inject("s@src.test", "r@dest.test");
    const [d] = await h.logs.waitFor("Delivery", 1);
    assert.deepEqual(d.peer_address, { name: "mx2.dest.test.", addr: "127.0.0.3" });
    assert.deepEqual(sink.connections.map((c) => c.localAddress), ["127.0.0.3"]);
  });
  await t.step("every address skipped", async () => {
    const before = sink.connections.length;
    await using h = await startHarness(policyText({
      dns: dns.address,
      port: sink.port,
      path: "skip_hosts = { '127.0.0.0/24' }",
    }));
    await h.inject("s@src.test", "r@dest.test");
    const [tf] = await h.logs.waitFor("TransientFailure", 1);
    assert.equal(tf.response.code, 451);
    assert.deepEqual(tf.response.enhanced_code, { class: 4, subject: 4, detail: 4 });
    assert.equal(tf.response.content, "MX didn't resolve to any hosts");
    assert.equal(tf.site, "unspecified->(mx1|mx2).dest.test@smtp_client");
    assert.equal(h.logs.of("Bounce").length, 0);
    assert.equal(sink.connections.length, before, "no connection was made");
  });
});

Deno.test("RequiredInsecure delivers over TLS to a self-signed sink; Required fails validation", async (t) => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"], starttls: true });
  if (!sink.tlsAvailable) {
    console.log("TLS cases skipped: openssl is not available for the sink's certificate");
    return;
  }
  const policy = (mode: string) =>
    policyText({ dns: dns.address, port: sink.port, path: `enable_tls = '${mode}'` })
      .replace("enable_tls = 'Disabled',", "");
  await t.step("RequiredInsecure", async () => {
    await using h = await startHarness(policy("RequiredInsecure"));
    await h.inject("s@src.test", "r@a.test");
    const [d] = await h.logs.waitFor("Delivery", 1);
    await sink.waitFor(1);
    assert.equal(sink.messages[0].tls, true);
    assert.match(d.tls_protocol_version ?? "", /TLS/);
    assert.ok(d.tls_cipher);
  });
  await t.step("Required", async () => {
    await using h = await startHarness(policy("Required"));
    await h.inject("s@src.test", "r@b.test");
    const [tf] = await h.logs.waitFor("TransientFailure", 1);
    assert.equal(tf.response.code, 400);
    assert.match(
      tf.response.content,
      /^KumoMTA internal: failed to connect to any candidate hosts: .*TLS handshake with 127\.0\.0\.2 failed/,
    );
    assert.equal(sink.messages.length, 1, "nothing delivered without a valid certificate");
  });
});

Deno.test("ehlo_domain: path value, else source value, else the hostname", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  const extra = `
kumo.on('get_egress_pool', function(name)
  return kumo.make_egress_pool { name = name, entries = { { name = 'src1' } } }
end)
kumo.on('get_egress_source', function(name)
  return kumo.make_egress_source { name = name, ehlo_domain = 'source.ehlo.test' }
end)`;
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: sink.port,
    queue: "egress_pool = (domain ~= 'c.test') and 'p' or nil",
    path: "ehlo_domain = (domain == 'a.test') and 'path.ehlo.test' or nil",
    extra,
  }));
  for (const d of ["a.test", "b.test", "c.test"]) await h.inject("s@src.test", `r@${d}`);
  await sink.waitFor(3);
  const ehloFor = (d: string) => sink.messages.find((m) => m.rcptTo[0] === `r@${d}`)?.ehlo;
  assert.equal(ehloFor("a.test"), "path.ehlo.test");
  assert.equal(ehloFor("b.test"), "source.ehlo.test");
  assert.equal(ehloFor("c.test"), "host.test"); // the harness's hostname stands in for the OS's
});

Deno.test("a response timeout is 421 4.4.2 ... Timed Out and drops the connection", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  // Every reply comes 1.5 s late; only the final reply has a shorter timeout.
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"], delayMs: 1500 });
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: sink.port,
    path: "data_dot_timeout = '1s'",
  }));
  await h.inject("s@src.test", "r@a.test");
  const [tf] = await h.logs.waitFor("TransientFailure", 1, 20_000);
  assert.equal(tf.response.code, 421);
  assert.deepEqual(tf.response.enhanced_code, { class: 4, subject: 4, detail: 2 });
  assert.match(tf.response.content, /^KumoMTA internal: .*Timed Out/);
  assert.deepEqual(tf.peer_address, { name: "mx.a.test.", addr: "127.0.0.2" });
  assert.equal(h.logs.of("Delivery").length, 0);
  await waitUntil(() => sink.connections[0].closedAt !== undefined, "the connection to close");
  assert.ok(!verbs(sink.connections[0]).includes("QUIT"), "dropped, not QUIT");
});

Deno.test("idle_timeout: a connection is reused while busy and closed when idle", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: sink.port,
    path: "idle_timeout = '1s'",
  }));
  await h.inject("s@src.test", "r1@a.test");
  await h.logs.waitFor("Delivery", 1);
  await sleep(300);
  await h.inject("s@src.test", "r2@a.test");
  await h.logs.waitFor("Delivery", 2);
  const [m1, m2] = await sink.waitFor(2);
  assert.equal(m1.connectionId, m2.connectionId, "reused within idle_timeout");
  await waitUntil(() => sink.connections[0].closedAt !== undefined, "the idle close", 5000);
  const idle = sink.connections[0].closedAt! - m2.receivedAt;
  assert.ok(idle >= 700 && idle <= 3000, `closed ${idle} ms after the last message`);
  assert.equal(verbs(sink.connections[0]).at(-1), "QUIT");
  await h.inject("s@src.test", "r3@a.test");
  const [, , m3] = await sink.waitFor(3);
  assert.notEqual(m3.connectionId, m1.connectionId, "a new connection after the idle close");
});

Deno.test("try_next_host_on_transport_error moves a message to the next host at once", async (t) => {
  await using dns = await startDnsServer({ zones: ZONES });
  // The lowest MX drops the connection after the body, before its reply.
  await using sink = await startSmtpSink({
    addresses: ["127.0.0.2", "127.0.0.3"],
    hangup: (stage, _arg, s) => stage === "message" && s.localAddress === "127.0.0.2",
  });
  await t.step("true: delivered through mx2 with no TransientFailure", async () => {
    await using h = await startHarness(policyText({
      dns: dns.address,
      port: sink.port,
      path: "try_next_host_on_transport_error = true",
    }));
    await h.inject("s@src.test", "r1@dest.test");
    const [d] = await h.logs.waitFor("Delivery", 1);
    assert.deepEqual(d.peer_address, { name: "mx2.dest.test.", addr: "127.0.0.3" });
    assert.equal(d.num_attempts, 0);
    assert.equal(h.logs.of("TransientFailure").length, 0);
    assert.deepEqual(sink.messages.map((m) => m.localAddress), ["127.0.0.3"]);
  });
  await t.step("default false: a 400 TransientFailure and a retry", async () => {
    await using h = await startHarness(policyText({ dns: dns.address, port: sink.port }));
    await h.inject("s@src.test", "r2@dest.test");
    const [tf] = await h.logs.waitFor("TransientFailure", 1);
    assert.equal(tf.response.code, 400);
    assert.match(tf.response.content, /^KumoMTA internal: failed to send message: /);
    assert.deepEqual(tf.peer_address, { name: "mx1.dest.test.", addr: "127.0.0.2" });
    assert.equal(tf.num_attempts, 0);
    assert.equal(h.logs.of("Delivery").length, 0);
  });
});

Deno.test("enable_pipelining=false sends one command at a time to a PIPELINING server", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: sink.port,
    path: "enable_pipelining = (domain ~= 'a.test')",
  }));
  await h.inject("s@src.test", ["x@a.test", "y@a.test"]); // pipelining off
  await h.inject("s@src.test", ["x@b.test", "y@b.test"]); // default: on
  await sink.waitFor(2);
  const connOf = (d: string) =>
    sink.connections[sink.messages.find((m) => m.rcptTo[0].endsWith(d))!.connectionId - 1];
  const off = connOf("@a.test");
  assert.ok(off.commands.every((g) => g.length === 1), JSON.stringify(off.commands));
  assert.deepEqual(verbs(off).slice(0, 5), ["EHLO", "MAIL", "RCPT", "RCPT", "DATA"]);
  const on = connOf("@b.test");
  assert.ok(
    on.commands.some((g) => g.join(" ") === "MAIL RCPT RCPT DATA"),
    `control: pipelined group expected in ${JSON.stringify(on.commands)}`,
  );
});

Deno.test("enable_rset: RSET between reused transactions, and always after a failed one", async (t) => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({
    addresses: ["127.0.0.2"],
    replies: (stage, arg) =>
      stage === "rcpt" && arg.startsWith("bad@") ? { code: 550, text: "5.1.1 nope" } : undefined,
  });
  const run = async (rset: boolean, first: string, second: string) => {
    const before = sink.connections.length;
    await using h = await startHarness(policyText({
      dns: dns.address,
      port: sink.port,
      path: `connection_limit = 1, enable_rset = ${rset}`,
    }));
    await h.inject("s@src.test", first);
    await waitUntil(() => h.logs.records.length >= 1, "the first outcome");
    await h.inject("s@src.test", second);
    await h.logs.waitFor("Delivery", first.startsWith("bad@") ? 1 : 2);
    const conns = sink.connections.slice(before);
    assert.equal(conns.length, 1, "both transactions on one connection");
    return verbs(conns[0]).filter((v) => v !== "QUIT");
  };
  await t.step("default true: RSET before the second MAIL", async () => {
    const v = await run(true, "r1@a.test", "r2@a.test");
    assert.deepEqual(v, ["EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA"]);
  });
  await t.step("false: no RSET after a successful transaction", async () => {
    const v = await run(false, "r1@a.test", "r2@a.test");
    assert.deepEqual(v, ["EHLO", "MAIL", "RCPT", "DATA", "MAIL", "RCPT", "DATA"]);
  });
  await t.step("false: still RSET after a failed transaction", async () => {
    const v = await run(false, "bad@a.test", "r3@a.test");
    assert.deepEqual(v, ["EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA"]);
  });
});

Deno.test("max_recipients_per_batch splits one message into transactions on one connection", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: sink.port,
    path: "max_recipients_per_batch = 2",
  }));
  const rcpts = ["a", "b", "c", "d", "e"].map((x) => `${x}@a.test`);
  await h.inject("s@src.test", rcpts);
  await sink.waitFor(3);
  await h.logs.waitFor("Delivery", 3);
  assert.deepEqual(sink.messages.map((m) => m.rcptTo), [
    ["a@a.test", "b@a.test"],
    ["c@a.test", "d@a.test"],
    ["e@a.test"],
  ]);
  assert.equal(new Set(sink.messages.map((m) => m.connectionId)).size, 1);
  assert.deepEqual(h.logs.of("Delivery").flatMap((r) => r.recipient).sort(), rcpts);
  assert.equal(h.logs.of("TransientFailure").length, 0);
});

Deno.test("max_deliveries_per_connection opens a new connection after N messages", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: sink.port,
    path: "connection_limit = 1, max_deliveries_per_connection = 2",
  }));
  for (let i = 0; i < 6; i++) await h.inject("s@src.test", `r${i}@a.test`);
  await sink.waitFor(6, 15_000);
  await h.logs.waitFor("Delivery", 6);
  assert.deepEqual(sink.connections.map((c) => c.messages), [2, 2, 2]);
  for (const c of sink.connections) assert.equal(verbs(c).at(-1), "QUIT");
});

Deno.test("the source's remote_port wins over smtp_port and the routing domain's port", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  const extra = `
kumo.on('get_egress_pool', function(name)
  return kumo.make_egress_pool { name = name, entries = { { name = 'rp' } } }
end)
kumo.on('get_egress_source', function(name)
  return kumo.make_egress_source { name = name, remote_port = ${sink.port} }
end)`;
  // smtp_port 9 and the literal's :9 would both hit a closed port.
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: 9,
    queue: "egress_pool = 'p'",
    extra,
  }));
  await h.inject("s@src.test", "r1@a.test");
  await h.inject("s@src.test", "r2@b.test", { routing_domain: "[127.0.0.2]:9" });
  await sink.waitFor(2);
  const recs = await h.logs.waitFor("Delivery", 2);
  assert.deepEqual(sink.messages.map((m) => m.rcptTo[0]).sort(), ["r1@a.test", "r2@b.test"]);
  const lit = recs.find((r) => r.recipient === "r2@b.test")!;
  assert.equal(lit.queue, "b.test![127.0.0.2]:9");
  assert.equal(lit.site, "rp->127.0.0.2:9@smtp_client");
  assert.equal(h.logs.of("TransientFailure").length, 0);
});
